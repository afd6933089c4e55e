//! The video room of a booked session: admission by the booking, the signaling WebSocket
//! (join, relay, resume, limits), presence records, TURN credentials, and two gateway
//! processes meeting over PostgreSQL.

use chrono::{Duration, Utc};
use duikou_tests::coturn::Coturn;
use duikou_tests::peer::{Peer, PeerOptions, ice_servers};
use duikou_tests::process::Served;
use duikou_tests::signal::{Ended, SignalClient};
use duikou_tests::{Backend, TestApp, assert_refused, eventually, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::requests::{
    Cast, cast, clinician, content, draft, free_slot, ok_step, user_for_clinician,
};

on_both_backends!(
    only_the_people_the_booking_names_get_into_the_room,
    the_booked_people_meet_and_foreign_or_stale_tokens_are_refused,
    a_dropped_connection_resumes_without_a_second_joined_and_loses_nothing,
    bad_messages_get_errors_the_connection_stays_and_a_flood_is_closed,
    joins_and_leaves_are_recorded_with_how_long_people_were_together,
    turn_credentials_are_minted_at_each_join,
    a_teaching_room_admits_the_presenter_and_enrolled_trainees_and_records_their_presence,
    webrtc_peers_of_a_booked_consultation_connect_and_exchange_data,
    a_ward_round_room_admits_the_supporting_team_and_the_ward_team,
    with_tls_the_signaling_websocket_is_wss,
    a_full_room_turns_the_next_one_away,
);

/// A gateway whose rooms open four days ahead, so that tomorrow's sessions are open now.
async fn app(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| c.signaling.lead_minutes = 4 * 24 * 60).await
}

/// A consultation with an accompanying clinician, accepted and scheduled for tomorrow.
pub(crate) struct Booked {
    pub(crate) c: Cast,
    pub(crate) id: i64,
    pub(crate) accompanying: String,
}

pub(crate) async fn booked(app: &TestApp) -> Booked {
    let c = cast(app).await;
    let li = clinician(
        app,
        c.county,
        "李医生",
        "主治医师",
        Some("110440700000009"),
        5,
    )
    .await;
    let accompanying = user_for_clinician(app, "ts.li", c.county, li).await;
    let mut body = content();
    body["accompanying_clinician_id"] = json!(li);
    let r = draft(
        app,
        &c.doctor,
        json!({"kind": "consultation", "content": body}),
    )
    .await;
    let id = r["id"].clone();
    ok_step(app, &c.doctor, &id, "submit", json!({})).await;
    ok_step(
        app,
        &c.coordinator,
        &id,
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    let start = free_slot(app, &c, 0).await;
    ok_step(
        app,
        &c.coordinator,
        &id,
        "schedule",
        json!({"start": start}),
    )
    .await;
    Booked {
        c,
        id: id.as_i64().unwrap(),
        accompanying,
    }
}

async fn join(app: &TestApp, session: &str, token: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/sessions/{session}/join"),
        token,
        json!({}),
    )
    .await
}

async fn admitted(app: &TestApp, session: &str, token: &str) -> Value {
    let (status, answer) = join(app, session, token).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn only_the_people_the_booking_names_get_into_the_room(backend: Backend) {
    let app = app(backend).await;
    let b = booked(&app).await;
    let room = format!("consultation-{}", b.id);

    let doctor = admitted(&app, &room, &b.c.doctor).await;
    assert_eq!(doctor["role"], "requester");
    assert_eq!(doctor["room"], room.as_str());
    assert!(doctor["identity"].as_str().unwrap().starts_with('u'));
    assert_eq!(
        doctor["signal_url"],
        format!("/api/v1/sessions/{room}/signal")
    );
    assert_eq!(
        doctor["ice_servers"],
        json!([]),
        "no STUN or TURN configured"
    );
    let consultant = admitted(&app, &room, &b.c.consultant).await;
    assert_eq!(consultant["role"], "consultant");
    assert_eq!(consultant["grants"]["moderate"], true);
    let accompanying = admitted(&app, &room, &b.accompanying).await;
    assert_eq!(accompanying["role"], "accompanying");
    assert_eq!(accompanying["grants"]["moderate"], false);
    // Nothing in the answer names the patient.
    for answer in [&doctor, &consultant, &accompanying] {
        assert!(!answer.to_string().contains("王某某"));
    }

    // Not named: another clinician of the same county, the supporter's coordinator.
    let (_, colleague) = app.user("ts.other", b.c.county, &["clinician"]).await;
    let (status, problem) = join(&app, &room, &colleague).await;
    assert_refused(status, &problem, StatusCode::FORBIDDEN, "not-a-participant");
    let (status, problem) = join(&app, &room, &b.c.coordinator).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert_eq!(
        app.get(
            &format!(
                "/api/v1/audit?object_kind=request&object_id={}&outcome=denied",
                b.id
            ),
            &app.admin_token
        )
        .await
        .1
        .as_array()
        .map_or(0, Vec::len),
        2,
        "both refusals are audited"
    );

    // Sessions that do not exist, and names that are not sessions.
    for missing in ["consultation-999999", "consultation-x", "exam-1"] {
        let (status, problem) = join(&app, missing, &b.c.doctor).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}: {problem}");
    }

    // An accompanying clinician from an unrelated hospital is refused on the request.
    let far = app.institution_id("江门市五邑中医院").await;
    let stranger = clinician(&app, far, "赵医生", "主治医师", Some("110440700000010"), 5).await;
    let mut body = content();
    body["accompanying_clinician_id"] = json!(stranger);
    let (status, problem) = app
        .post(
            "/api/v1/requests",
            &b.c.doctor,
            json!({"kind": "consultation", "content": body}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "accompanying_clinician_id");

    // A teaching session six days ahead is outside its window, even for its presenter.
    let starts = Utc::now() + Duration::days(6);
    let (status, session) = app
        .post(
            "/api/v1/teaching",
            &b.c.coordinator,
            json!({"presenter_clinician_id": b.c.consultant_id, "topic": "脑卒中早期识别",
                   "starts_at": starts, "ends_at": starts + Duration::hours(2), "capacity": 20}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let (status, problem) = join(
        &app,
        &format!("teaching-{}", session["id"]),
        &b.c.consultant,
    )
    .await;
    assert_refused(
        status,
        &problem,
        StatusCode::CONFLICT,
        "outside-session-window",
    );

    // A cancelled consultation has no session any more.
    ok_step(&app, &b.c.doctor, &json!(b.id), "cancel", json!({})).await;
    let (status, problem) = join(&app, &room, &b.c.doctor).await;
    assert_refused(status, &problem, StatusCode::CONFLICT, "session-not-open");
    app.stop().await;
}

async fn the_booked_people_meet_and_foreign_or_stale_tokens_are_refused(backend: Backend) {
    let app = app(backend).await;
    let b = booked(&app).await;
    let room = format!("consultation-{}", b.id);
    let doctor = admitted(&app, &room, &b.c.doctor).await;
    let consultant = admitted(&app, &room, &b.c.consultant).await;
    let doctor_id = doctor["identity"].as_str().unwrap();
    let consultant_id = consultant["identity"].as_str().unwrap();

    // A first message that is not a join is answered, and the connection stays.
    let mut d = SignalClient::connect(&app.base, doctor["signal_url"].as_str().unwrap()).await;
    d.send(json!({"v": 1, "type": "pong"})).await;
    assert_eq!(d.recv().await["code"], "join_first");
    d.send(json!({"v": 1, "type": "join", "token": doctor["token"]}))
        .await;
    let welcome = d.recv().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["identity"], doctor_id);
    assert_eq!(welcome["participants"], json!([]));
    assert_eq!(welcome["resumed"], false);

    let (mut k, welcome) = SignalClient::join(&app.base, &consultant).await;
    assert_eq!(welcome["participants"][0]["identity"], doctor_id);
    assert_eq!(welcome["participants"][0]["role"], "requester");
    let joined = d.recv().await;
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["participant"]["identity"], consultant_id);

    // Offers, answers, candidates and mute state reach the named participant.
    k.send(json!({"v": 1, "type": "offer", "to": doctor_id, "sdp": "v=0 offer"}))
        .await;
    let offer = d.recv().await;
    assert_eq!(
        (offer["type"].as_str(), offer["from"].as_str()),
        (Some("offer"), Some(consultant_id))
    );
    assert_eq!(offer["sdp"], "v=0 offer");
    d.send(json!({"v": 1, "type": "answer", "to": consultant_id, "sdp": "v=0 answer"}))
        .await;
    assert_eq!(k.recv().await["sdp"], "v=0 answer");
    d.send(json!({"v": 1, "type": "candidate", "to": consultant_id,
                  "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
                  "sdp_mid": "0", "sdp_mline_index": 0}))
        .await;
    assert_eq!(k.recv().await["type"], "candidate");
    d.send(json!({"v": 1, "type": "mute", "audio": true, "video": false}))
        .await;
    let mute = k.recv().await;
    assert_eq!(
        (mute["identity"].as_str(), mute["audio"].as_bool()),
        (Some(doctor_id), Some(true))
    );
    k.send(json!({"v": 1, "type": "offer", "to": "u999999", "sdp": "v=0"}))
        .await;
    assert_eq!(k.recv().await["code"], "unknown_participant");

    // A token for another room is refused at that room, and the socket closed.
    let (_, other) = app
        .post(
            "/api/v1/requests",
            &b.c.doctor,
            json!({"kind": "consultation", "content": content()}),
        )
        .await;
    let elsewhere = format!("/api/v1/sessions/consultation-{}/signal", other["id"]);
    let mut x = SignalClient::connect(&app.base, &elsewhere).await;
    x.send(json!({"v": 1, "type": "join", "token": doctor["token"]}))
        .await;
    assert_eq!(x.recv().await["code"], "token_wrong_room");
    assert_eq!(x.until_closed().await.0, Ended::Closed(4003));

    // An expired token, signed with the real secret, and a forged one.
    let secret = room_secret(&app).await;
    let now = Utc::now().timestamp();
    let expired = duikou_signaling::token::mint(
        secret.as_bytes(),
        &duikou_signaling::token::RoomClaims {
            room: room.as_str().into(),
            sub: doctor_id.to_owned(),
            role: "requester".into(),
            name: None,
            about: None,
            grants: duikou_signaling::Grants {
                publish: true,
                subscribe: true,
                moderate: false,
            },
            capacity: 4,
            nbf: now - 600,
            exp: now - 300,
        },
    );
    for (token, code) in [
        (expired.as_str(), "token_expired"),
        ("eyJhbGciOiJIUzI1NiJ9.e30.AAAA", "token_invalid"),
    ] {
        let mut x = SignalClient::connect(&app.base, doctor["signal_url"].as_str().unwrap()).await;
        x.send(json!({"v": 1, "type": "join", "token": token}))
            .await;
        assert_eq!(x.recv().await["code"], code);
        assert_eq!(x.until_closed().await.0, Ended::Closed(4003));
    }
    // None of that disturbed the room.
    k.send(json!({"v": 1, "type": "offer", "to": doctor_id, "sdp": "v=0 again"}))
        .await;
    assert_eq!(d.recv().await["sdp"], "v=0 again");
    app.stop().await;
}

/// The room-token secret the gateway generated and keeps in the database.
async fn room_secret(app: &TestApp) -> String {
    let query = "select value from setting where key = 'room_token_secret'";
    duikou_tests::on_db!(app.db, |conn| sqlx::query_scalar(query)
        .fetch_one(&mut conn)
        .await
        .unwrap())
}

async fn a_ward_round_room_admits_the_supporting_team_and_the_ward_team(backend: Backend) {
    let app = app(backend).await;
    let admin = &app.admin_token;
    let tertiary = app.institution_id("江门市中心医院").await;
    let county = app.institution_id("台山市人民医院").await;
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for (n, (name, title, institution)) in [
        ("周主任", "主任医师", tertiary),
        ("吴医生", "主治医师", tertiary),
        ("黄医生", "主治医师", county),
        ("梁医生", "主治医师", county),
    ]
    .into_iter()
    .enumerate()
    {
        let id = clinician(
            &app,
            institution,
            name,
            title,
            Some(&format!("11044070000010{n}")),
            8,
        )
        .await;
        tokens.push(user_for_clinician(&app, &format!("round.{n}"), institution, id).await);
        ids.push(id);
    }
    let team = |name: &str, institution: i64, leader: i64| json!({"name": name, "institution_id": institution, "leader_id": leader});
    let (_, supporting) = app
        .post("/api/v1/teams", admin, team("内科查房组", tertiary, ids[0]))
        .await;
    let mut body = team("内科病区组", county, ids[2]);
    body["member_ids"] = json!([]);
    let (status, ward) = app.post("/api/v1/teams", admin, body).await;
    assert_eq!(status, StatusCode::CREATED, "{ward}");
    let today = Utc::now().date_naive();
    let (status, p) = app
        .post(
            "/api/v1/pairings",
            admin,
            json!({"supporter": {"kind": "team", "id": supporting["id"]}, "supported": {"kind": "institution", "value": county},
                   "services": ["ward_round"], "valid_from": today - Duration::days(10), "valid_to": today + Duration::days(400)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let (_, office) = app.user("ts.office", county, &["coordinator"]).await;
    let round = json!({"team_id": supporting["id"], "supported_institution_id": county, "ward": "内科病区",
                       "starts_at": Utc::now() + Duration::days(1), "duration_minutes": 60, "ward_team_id": ward["id"]});
    let mut foreign = round.clone();
    foreign["ward_team_id"] = supporting["id"].clone();
    let (status, problem) = app.post("/api/v1/ward-rounds", &office, foreign).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "ward_team_id");
    let (status, rounds) = app.post("/api/v1/ward-rounds", &office, round).await;
    assert_eq!(status, StatusCode::CREATED, "{rounds}");
    assert_eq!(rounds[0]["ward_team_id"], ward["id"]);
    let room = format!("ward-round-{}", rounds[0]["id"]);

    assert_eq!(
        admitted(&app, &room, &tokens[0]).await["role"],
        "team_leader"
    );
    assert_eq!(admitted(&app, &room, &tokens[2]).await["role"], "ward");
    // 吴医生 is not on the supporting team (it has only its leader); 梁医生 works in the
    // county hospital but not on the ward's team.
    for outsider in [&tokens[1], &tokens[3]] {
        let (status, problem) = join(&app, &room, outsider).await;
        assert_refused(status, &problem, StatusCode::FORBIDDEN, "not-a-participant");
    }
    app.stop().await;
}

/// The teaching attendance rows of a session: (user, whether the stretch is closed).
async fn teaching_attendance(app: &TestApp, session_id: i64) -> Vec<(i64, bool)> {
    let query =
        "select user_id, left_at is not null from attendance where session_id = $1 order by id";
    duikou_tests::on_db!(app.db, |conn| sqlx::query_as(query)
        .bind(session_id)
        .fetch_all(&mut conn)
        .await
        .unwrap())
}

/// A teaching session tomorrow by the tertiary hospital's consultant for `capacity`
/// trainees of the county, which the two are paired for; returns its id.
pub(crate) async fn teaching_session(app: &TestApp, c: &Cast, capacity: usize) -> i64 {
    let (status, p) = app
        .post(
            "/api/v1/pairings",
            &app.admin_token,
            json!({"supporter": {"kind": "institution", "id": c.tertiary}, "supported": {"kind": "institution", "value": c.county},
                   "services": ["teaching"], "valid_from": Utc::now().date_naive() - Duration::days(30),
                   "valid_to": Utc::now().date_naive() + Duration::days(400)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let starts = Utc::now() + Duration::days(1);
    let (status, session) = app
        .post(
            "/api/v1/teaching",
            &c.coordinator,
            json!({"presenter_clinician_id": c.consultant_id, "topic": "脑卒中早期识别",
                   "starts_at": starts, "ends_at": starts + Duration::hours(2), "capacity": capacity}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    session["id"].as_i64().unwrap()
}

async fn a_teaching_room_admits_the_presenter_and_enrolled_trainees_and_records_their_presence(
    backend: Backend,
) {
    let app = app(backend).await;
    let c = cast(&app).await;
    let id = teaching_session(&app, &c, 1).await;
    let room = format!("teaching-{id}");
    let (_, first) = app.user("ts.t1", c.county, &["trainee"]).await;
    let (_, second) = app.user("ts.t2", c.county, &["trainee"]).await;
    for token in [&first, &second] {
        let (status, r) = app
            .post(&format!("/api/v1/teaching/{id}/enrol"), token, json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
    }

    let presenter = admitted(&app, &room, &c.consultant).await;
    assert_eq!(presenter["role"], "presenter");
    let trainee = admitted(&app, &room, &first).await;
    assert_eq!(trainee["role"], "trainee");
    assert_eq!(
        trainee["grants"],
        json!({"publish": false, "subscribe": true, "moderate": false})
    );
    let (status, problem) = join(&app, &room, &second).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the waiting list is not in the room: {problem}"
    );

    let (mut p, _) = SignalClient::join(&app.base, &presenter).await;
    let (mut t, welcome) = SignalClient::join(&app.base, &trainee).await;
    assert_eq!(welcome["participants"][0]["role"], "presenter");
    p.recv_kind("joined").await;
    t.send(json!({"v": 1, "type": "leave"})).await;
    p.recv_kind("left").await;
    // Back again: a second stretch.
    let again = admitted(&app, &room, &first).await;
    let (mut t, _) = SignalClient::join(&app.base, &again).await;
    t.send(json!({"v": 1, "type": "leave"})).await;
    t.until_closed().await;

    // The room's record has every stretch (the presenter's and the trainee's two); the
    // trainee's attendance counts only time media reached it, and none did here
    // (`teaching_media` tests that).
    let path = format!("/api/v1/sessions/{room}/attendance");
    eventually(
        std::time::Duration::from_secs(10),
        "three stretches recorded",
        async || {
            let (_, record) = app.get(&path, &c.coordinator).await;
            if record["stretches"].as_array().unwrap().len() == 3 {
                Ok(())
            } else {
                Err(record)
            }
        },
    )
    .await;
    assert_eq!(
        teaching_attendance(&app, id).await,
        [],
        "signaling alone is no attendance"
    );
    app.stop().await;
}

async fn a_dropped_connection_resumes_without_a_second_joined_and_loses_nothing(backend: Backend) {
    let app = app(backend).await;
    let b = booked(&app).await;
    let room = format!("consultation-{}", b.id);
    let doctor = admitted(&app, &room, &b.c.doctor).await;
    let consultant = admitted(&app, &room, &b.c.consultant).await;
    let doctor_id = doctor["identity"].as_str().unwrap();
    let (mut d, welcome) = SignalClient::join(&app.base, &doctor).await;
    let session_id = welcome["session_id"].as_str().unwrap().to_owned();
    let (mut k, _) = SignalClient::join(&app.base, &consultant).await;
    assert_eq!(d.recv().await["type"], "joined");
    k.send(json!({"v": 1, "type": "offer", "to": doctor_id, "sdp": "v=0 first"}))
        .await;
    assert_eq!(d.recv().await["sdp"], "v=0 first");
    let last_seq = d.last_seq;

    // The doctor's link drops; once the gateway has let the connection go, the
    // consultant goes on sending.
    d.drop_connection().await;
    for n in 0..3 {
        k.send(json!({"v": 1, "type": "candidate", "to": doctor_id, "candidate": format!("candidate:{n}"),
                      "sdp_mid": "0", "sdp_mline_index": 0}))
            .await;
    }
    k.send(json!({"v": 1, "type": "mute", "audio": false, "video": true}))
        .await;

    // Back with a fresh token (the old one may have expired) and the session id.
    let fresh = admitted(&app, &room, &b.c.doctor).await;
    let mut back = SignalClient::connect(&app.base, fresh["signal_url"].as_str().unwrap()).await;
    back.send(json!({"v": 1, "type": "resume", "token": fresh["token"], "session_id": session_id, "last_seq": last_seq}))
        .await;
    let welcome = back.recv().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["resumed"], true);
    let mut missed = Vec::new();
    for _ in 0..4 {
        missed.push(back.recv().await);
    }
    let candidates: Vec<&str> = missed[..3]
        .iter()
        .map(|m| m["candidate"].as_str().unwrap())
        .collect();
    assert_eq!(
        candidates,
        ["candidate:0", "candidate:1", "candidate:2"],
        "in order, none lost"
    );
    assert_eq!(missed[3]["type"], "mute");
    let seqs: Vec<u64> = missed.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (last_seq + 1..=last_seq + 4).collect::<Vec<_>>());

    // The consultant saw neither a "left" nor a second "joined".
    k.send(json!({"v": 1, "type": "offer", "to": doctor_id, "sdp": "v=0 after"}))
        .await;
    assert_eq!(back.recv().await["sdp"], "v=0 after");
    k.send(json!({"v": 1, "type": "leave"})).await;
    let (ended, seen) = k.until_closed().await;
    assert_eq!(ended, Ended::Closed(1000));
    assert!(
        seen.iter()
            .all(|m| m["type"] != "joined" && m["type"] != "left"),
        "{seen:?}"
    );

    // A resume with an unknown session id is refused; the client may then join afresh.
    let again = admitted(&app, &room, &b.c.consultant).await;
    let mut k2 = SignalClient::connect(&app.base, again["signal_url"].as_str().unwrap()).await;
    k2.send(json!({"v": 1, "type": "resume", "token": again["token"], "session_id": "nope", "last_seq": 0}))
        .await;
    assert_eq!(k2.recv().await["code"], "resume_refused");
    k2.send(json!({"v": 1, "type": "join", "token": again["token"]}))
        .await;
    assert_eq!(k2.recv().await["type"], "welcome");
    app.stop().await;
}

async fn bad_messages_get_errors_the_connection_stays_and_a_flood_is_closed(backend: Backend) {
    let app = app(backend).await;
    let b = booked(&app).await;
    let room = format!("consultation-{}", b.id);
    let doctor = admitted(&app, &room, &b.c.doctor).await;
    let (mut d, _) = SignalClient::join(&app.base, &doctor).await;

    d.send_text("{not json".into()).await;
    let error = d.recv().await;
    assert_eq!(error["code"], "malformed");
    d.send(json!({"v": 1, "type": "shout"})).await;
    assert!(
        d.recv().await["message"]
            .as_str()
            .unwrap()
            .contains("unknown variant")
    );
    d.send(json!({"v": 2, "type": "pong"})).await;
    assert!(
        d.recv().await["message"]
            .as_str()
            .unwrap()
            .contains("version 2")
    );
    d.send(json!({"v": 1, "type": "offer", "to": "u1", "sdp": "a".repeat(70_000)}))
        .await;
    let error = d.recv().await;
    assert_eq!(error["code"], "too_large");
    assert!(error["message"].as_str().unwrap().contains("65536"));
    // Still in the room.
    d.send(json!({"v": 1, "type": "mute", "audio": true, "video": true}))
        .await;
    d.send(json!({"v": 1, "type": "offer", "to": "u999999", "sdp": "v=0"}))
        .await;
    assert_eq!(d.recv().await["code"], "unknown_participant");

    // A flood: the burst passes, then messages are refused, then the socket is closed.
    for _ in 0..600 {
        d.send(json!({"v": 1, "type": "pong"})).await;
    }
    let (ended, seen) = d.until_closed().await;
    assert_eq!(ended, Ended::Closed(1008), "{seen:?}");
    assert!(seen.iter().any(|m| m["code"] == "rate_limited"));
    app.stop().await;
}

async fn joins_and_leaves_are_recorded_with_how_long_people_were_together(backend: Backend) {
    let app = app(backend).await;
    let b = booked(&app).await;
    let room = format!("consultation-{}", b.id);
    let path = format!("/api/v1/sessions/{room}/attendance");
    let doctor = admitted(&app, &room, &b.c.doctor).await;
    let consultant = admitted(&app, &room, &b.c.consultant).await;
    let (mut d, _) = SignalClient::join(&app.base, &doctor).await;
    let (mut k, _) = SignalClient::join(&app.base, &consultant).await;
    d.recv_kind("joined").await;
    // The signaling layer stamps presence with the system's time, not the gateway's
    // clock, so a second of real time passes with both in the room. The record counts a
    // stretch still open up to now: it says when that second has passed.
    eventually(
        std::time::Duration::from_secs(10),
        "a second together",
        async || {
            let (status, r) = app.get(&path, &b.c.coordinator).await;
            assert_eq!(status, StatusCode::OK, "{r}");
            if r["together_seconds"].as_i64().unwrap() >= 1 {
                Ok(())
            } else {
                Err(r)
            }
        },
    )
    .await;
    k.send(json!({"v": 1, "type": "leave"})).await;
    assert_eq!(
        d.recv_kind("left").await["identity"],
        consultant["identity"]
    );
    d.send(json!({"v": 1, "type": "leave"})).await;
    d.until_closed().await;

    // Presence is written by a worker behind the room; wait until both leaves are in.
    let record = eventually(
        std::time::Duration::from_secs(10),
        "both leaves recorded",
        async || {
            let (status, r) = app.get(&path, &b.c.coordinator).await;
            assert_eq!(status, StatusCode::OK, "{r}");
            let stretches = r["stretches"].as_array().unwrap();
            if stretches.len() == 2 && stretches.iter().all(|s| !s["left_at"].is_null()) {
                Ok(r)
            } else {
                Err(r)
            }
        },
    )
    .await;
    let stretches = record["stretches"].as_array().unwrap();
    assert_eq!(stretches.len(), 2, "{record}");
    let user = |answer: &Value| {
        answer["identity"].as_str().unwrap()[1..]
            .parse::<i64>()
            .unwrap()
    };
    assert_eq!(stretches[0]["user_id"], user(&doctor));
    assert_eq!(stretches[1]["user_id"], user(&consultant));
    assert!(
        stretches.iter().all(|s| !s["left_at"].is_null()),
        "{record}"
    );
    assert!(
        record["together_seconds"].as_i64().unwrap() >= 1,
        "{record}"
    );

    // A clinician of another county may not read it; the refusal is audited.
    let other = app.institution_id("开平市中心医院").await;
    let (_, outsider) = app.user("kp.doctor", other, &["clinician"]).await;
    let (status, _) = app.get(&path, &outsider).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn turn_credentials_are_minted_at_each_join(backend: Backend) {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let app = TestApp::spawn_with(backend, |c| {
        c.signaling.lead_minutes = 4 * 24 * 60;
        c.signaling.stun_urls = vec!["stun:turn.example.cn:3478".into()];
        c.signaling.turn_urls = vec!["turn:turn.example.cn:3478?transport=udp".into()];
        c.signaling.turn_secret = Some(duikou::config::Secret::new("north"));
        c.signaling.turn_ttl_seconds = 3600;
    })
    .await;
    let b = booked(&app).await;
    let room = format!("consultation-{}", b.id);
    let answer = admitted(&app, &room, &b.c.doctor).await;
    let servers = answer["ice_servers"].as_array().unwrap();
    assert_eq!(servers[0], json!({"urls": ["stun:turn.example.cn:3478"]}));
    let username = servers[1]["username"].as_str().unwrap();
    let (expiry, identity) = username.split_once(':').unwrap();
    assert_eq!(identity, answer["identity"].as_str().unwrap());
    let expiry: i64 = expiry.parse().unwrap();
    assert!(
        (expiry - Utc::now().timestamp() - 3600).abs() < 60,
        "{username}"
    );
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"north").unwrap();
    mac.update(username.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(servers[1]["credential"], expected.as_str());
    // The welcome carries servers with a credential of its own.
    let (_, welcome) = SignalClient::join(&app.base, &answer).await;
    assert_eq!(welcome["ice_servers"][1]["urls"], servers[1]["urls"]);
    assert!(
        welcome["ice_servers"][1]["username"]
            .as_str()
            .unwrap()
            .ends_with(identity)
    );
    app.stop().await;
}

/// A consultation booked on `app` (PostgreSQL) and a second `duikou serve` on the same
/// database; the doctor is admitted on `app`, the consultant on the second process.
/// Returns (room, second process, doctor's admission, consultant's admission).
async fn on_two_processes(app: &TestApp) -> (String, Served, Value, Value) {
    let b = booked(app).await;
    let room = format!("consultation-{}", b.id);
    let lead = (4 * 24 * 60).to_string();
    let second = Served::start(
        &app.db,
        &[],
        &[("DUIKOU_SIGNALING_LEAD_MINUTES", lead.as_str())],
    );
    // Logins live in the database: the consultant's token works at both.
    let doctor = admitted(app, &room, &b.c.doctor).await;
    let (status, consultant) = app
        .client
        .post(format!("{}/api/v1/sessions/{room}/join", second.base))
        .bearer_auth(&b.c.consultant)
        .send()
        .await
        .map(duikou_tests::read)
        .unwrap()
        .await;
    assert_eq!(status, StatusCode::OK, "{consultant}");
    (room, second, doctor, consultant)
}

/// Two gateway processes on one PostgreSQL database: the doctor on this test's gateway,
/// the consultant on a separate `duikou serve`; they meet in one room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_processes_share_a_room_over_postgres() {
    let app = app(Backend::Postgres).await;
    let (_, second, doctor, consultant) = on_two_processes(&app).await;
    let doctor_id = doctor["identity"].as_str().unwrap().to_owned();
    let consultant_id = consultant["identity"].as_str().unwrap().to_owned();

    let (mut d, _) = SignalClient::join(&app.base, &doctor).await;
    let (mut k, welcome) = SignalClient::join(&second.base, &consultant).await;
    // The consultant hears of the doctor in the welcome or, if the bus was slower, just after.
    let listed = welcome["participants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["identity"] == doctor_id.as_str());
    if !listed {
        assert_eq!(
            k.recv_kind("joined").await["participant"]["identity"],
            doctor_id.as_str()
        );
    }
    assert_eq!(
        d.recv_kind("joined").await["participant"]["identity"],
        consultant_id.as_str()
    );

    // A small offer and one too large for a NOTIFY payload both cross over, in order.
    let big_sdp = format!(
        "v=0\r\n{}",
        "a=candidate:1 1 udp 2122260223 10.0.0.1 50000 typ host\r\n".repeat(200)
    );
    assert!(big_sdp.len() > 8000);
    k.send(json!({"v": 1, "type": "offer", "to": doctor_id, "sdp": "v=0 small"}))
        .await;
    k.send(json!({"v": 1, "type": "offer", "to": doctor_id, "sdp": big_sdp}))
        .await;
    assert_eq!(d.recv_kind("offer").await["sdp"], "v=0 small");
    assert_eq!(d.recv_kind("offer").await["sdp"], big_sdp.as_str());
    d.send(json!({"v": 1, "type": "answer", "to": consultant_id, "sdp": "v=0 answer"}))
        .await;
    assert_eq!(k.recv_kind("answer").await["sdp"], "v=0 answer");

    // Leaving crosses over too.
    d.send(json!({"v": 1, "type": "leave"})).await;
    assert_eq!(k.recv_kind("left").await["identity"], doctor_id.as_str());
    // On SIGTERM the second process closes its sockets with 1001, "going away".
    let stopping = tokio::task::spawn_blocking(move || second.terminate());
    assert_eq!(k.until_closed().await.0, Ended::Closed(1001));
    drop(k);
    assert!(stopping.await.unwrap().success());
    app.stop().await;
}

fn ws_url(base: &str, answer: &Value) -> String {
    format!(
        "{}{}",
        base.replacen("http", "ws", 1),
        answer["signal_url"].as_str().unwrap()
    )
}

const ICE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

/// Real WebRTC peers: the doctor and the consultant trickle their candidates, the
/// accompanying clinician puts all of them in the SDP and never trickles; all three reach
/// ICE connected with each other and exchange data-channel messages.
async fn webrtc_peers_of_a_booked_consultation_connect_and_exchange_data(backend: Backend) {
    let app = app(backend).await;
    let b = booked(&app).await;
    let room = format!("consultation-{}", b.id);
    let trickle = PeerOptions {
        trickle: true,
        ..PeerOptions::default()
    };
    let mut peers = Vec::new();
    for (token, options) in [
        (&b.c.doctor, trickle.clone()),
        (&b.c.consultant, trickle.clone()),
        (&b.accompanying, PeerOptions::default()),
    ] {
        let answer = admitted(&app, &room, token).await;
        let peer = Peer::join(
            &ws_url(&app.base, &answer),
            answer["token"].as_str().unwrap(),
            options,
        )
        .await
        .unwrap();
        peers.push(peer);
    }
    let ids: Vec<String> = peers.iter().map(Peer::identity).collect();
    for (i, peer) in peers.iter().enumerate() {
        for (j, other) in ids.iter().enumerate() {
            if i != j {
                peer.connected_to(other, ICE_PATIENCE).await.unwrap();
            }
        }
    }
    for (i, peer) in peers.iter().enumerate() {
        for (j, other) in ids.iter().enumerate() {
            if i != j {
                peer.send(other, &format!("from {} to {other}", ids[i]))
                    .await
                    .unwrap();
            }
        }
    }
    for (i, peer) in peers.iter().enumerate() {
        for (j, other) in ids.iter().enumerate() {
            if i != j {
                let got = peer.recv_from(other, ICE_PATIENCE).await.unwrap();
                assert_eq!(got, format!("from {other} to {}", ids[i]));
            }
        }
    }
    // The accompanying clinician never trickled: nobody got a candidate from it.
    for peer in &peers[..2] {
        assert!(
            !peer
                .messages()
                .iter()
                .any(|m| m["type"] == "candidate" && m["from"] == ids[2].as_str()),
            "a non-trickling peer sends no candidates"
        );
    }
    assert!(
        peers[1].messages().iter().any(|m| m["type"] == "candidate"),
        "trickling peers do"
    );
    for peer in peers {
        peer.leave().await.unwrap();
    }
    app.stop().await;
}

/// A gateway on PostgreSQL stops only once its pool has every connection back, and the
/// signaling bus's listener holds one for as long as it listens. It lets go when the hub
/// lets go of the bus (even if the hub's own goodbye came back before that), and when the
/// pool closes under it while the hub still listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signaling_bus_lets_go_of_its_connection_when_the_hub_or_the_pool_stops() {
    use duikou_signaling::hub::{BusBody, BusEvent};
    for hub_stops_first in [true, false] {
        let db = duikou_tests::TestDb::new(Backend::Postgres)
            .await
            .expect("a test database");
        let prepared = duikou::startup::prepare(db.config())
            .await
            .expect("the gateway prepares");
        let duikou::store::Db::Postgres(pool) = prepared.store.db().clone() else {
            panic!("a PostgreSQL store");
        };
        let mut link = duikou::bus::start(pool.clone())
            .await
            .expect("the bus starts");
        // Its own events come back to it: it listens, on a connection of the pool.
        let hello = BusEvent {
            node: "this-test".into(),
            body: BusBody::Sync,
        };
        link.outgoing
            .send(hello.clone())
            .expect("the publisher runs");
        let heard = tokio::time::timeout(std::time::Duration::from_secs(10), link.incoming.recv())
            .await
            .expect("the event comes back within 10 s");
        assert_eq!(heard, Some(hello));
        assert!(pool.size() >= 1, "the listener holds a connection");
        let kept = if hub_stops_first {
            drop(link);
            None
        } else {
            Some(link)
        };
        // As when the gateway stops while its last writes are still under way: no
        // connection is idle when the pool closes (sqlx's close counts an idle one it
        // closes as one more returned), and those at work come back after.
        let mut at_work = Vec::new();
        while pool.num_idle() > 0 {
            at_work.push(pool.acquire().await.expect("an idle connection"));
        }
        let store = prepared.store.clone();
        let closing = tokio::spawn(async move { store.close().await });
        tokio::time::timeout(std::time::Duration::from_secs(10), pool.close_event())
            .await
            .expect("the pool starts closing");
        drop(at_work);
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), closing).await;
        assert!(
            closed.is_ok(),
            "the pool did not close within 10 s (hub stopped first: {hub_stops_first}): \
             the bus kept its connection"
        );
        drop(kept);
    }
}

/// The same with the two peers on two gateway processes sharing PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_peers_on_two_gateway_processes_connect_over_postgres() {
    let app = app(Backend::Postgres).await;
    let (_, second, doctor, consultant) = on_two_processes(&app).await;
    let options = PeerOptions {
        trickle: true,
        ..PeerOptions::default()
    };
    let d = Peer::join(
        &ws_url(&app.base, &doctor),
        doctor["token"].as_str().unwrap(),
        options.clone(),
    )
    .await
    .unwrap();
    let k = Peer::join(
        &ws_url(&second.base, &consultant),
        consultant["token"].as_str().unwrap(),
        options,
    )
    .await
    .unwrap();
    d.connected_to(&k.identity(), ICE_PATIENCE).await.unwrap();
    k.connected_to(&d.identity(), ICE_PATIENCE).await.unwrap();
    d.send(&k.identity(), "检查结果已上传").await.unwrap();
    assert_eq!(
        k.recv_from(&d.identity(), ICE_PATIENCE).await.unwrap(),
        "检查结果已上传"
    );
    k.send(&d.identity(), "收到").await.unwrap();
    assert_eq!(
        d.recv_from(&k.identity(), ICE_PATIENCE).await.unwrap(),
        "收到"
    );
    d.leave().await.unwrap();
    k.leave().await.unwrap();
    let stopping = tokio::task::spawn_blocking(move || second.terminate());
    assert!(stopping.await.unwrap().success());
    app.stop().await;
}

/// coturn, started on loopback with a shared secret, relays for the TURN credentials the
/// gateway mints at each join: two relay-only peers connect through it. Credentials that
/// expired, or were signed with another secret, get no relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coturn_relays_for_credentials_minted_at_join_and_refuses_expired_ones() {
    let secret = "north-of-the-river";
    let coturn = Coturn::start(secret);
    let turn_url = format!("turn:{}?transport=udp", coturn.addr());
    let url = turn_url.clone();
    let app = TestApp::spawn_with(Backend::Sqlite, move |c| {
        c.signaling.lead_minutes = 4 * 24 * 60;
        c.signaling.turn_urls = vec![url];
        c.signaling.turn_secret = Some(duikou::config::Secret::new(secret));
    })
    .await;
    let b = booked(&app).await;
    let room = format!("consultation-{}", b.id);
    let relayed = |answer: &Value| PeerOptions {
        trickle: true,
        ice_servers: ice_servers(answer),
        relay_only: true,
    };
    let doctor = admitted(&app, &room, &b.c.doctor).await;
    let consultant = admitted(&app, &room, &b.c.consultant).await;
    let d = Peer::join(
        &ws_url(&app.base, &doctor),
        doctor["token"].as_str().unwrap(),
        relayed(&doctor),
    )
    .await
    .unwrap();
    let k = Peer::join(
        &ws_url(&app.base, &consultant),
        consultant["token"].as_str().unwrap(),
        relayed(&consultant),
    )
    .await
    .unwrap();
    d.connected_to(&k.identity(), ICE_PATIENCE).await.unwrap();
    k.connected_to(&d.identity(), ICE_PATIENCE).await.unwrap();
    d.send(&k.identity(), "经中继").await.unwrap();
    assert_eq!(
        k.recv_from(&d.identity(), ICE_PATIENCE).await.unwrap(),
        "经中继"
    );
    for peer in [&d, &k] {
        let candidates = peer.sent_candidates();
        assert!(!candidates.is_empty());
        assert!(
            candidates.iter().all(|c| c.contains("typ relay")),
            "{candidates:?}"
        );
    }

    // The accompanying clinician comes with a credential that expired a minute ago, then
    // with one signed with another secret: coturn allocates nothing.
    let accompanying = admitted(&app, &room, &b.accompanying).await;
    let identity = accompanying["identity"].as_str().unwrap().to_owned();
    let now = Utc::now().timestamp();
    let expired = duikou_signaling::turn::credential(secret.as_bytes(), &identity, now - 60);
    let forged = duikou_signaling::turn::credential(b"another secret", &identity, now + 600);
    for credential in [expired.clone(), forged.clone()] {
        let fresh = admitted(&app, &room, &b.accompanying).await;
        let options = PeerOptions {
            trickle: false,
            ice_servers: vec![webrtc::peer_connection::RTCIceServer {
                urls: vec![turn_url.clone()],
                username: credential.username.clone(),
                credential: credential.password.clone(),
            }],
            relay_only: true,
        };
        let a = Peer::join(
            &ws_url(&app.base, &fresh),
            fresh["token"].as_str().unwrap(),
            options,
        )
        .await
        .unwrap();
        assert!(
            a.connected_to(&d.identity(), std::time::Duration::from_secs(5))
                .await
                .is_err(),
            "no relay, no connection"
        );
        let candidates = a.sent_candidates();
        assert!(
            !candidates.iter().any(|c| c.contains("typ relay")),
            "{candidates:?}"
        );
        a.leave().await.unwrap();
    }
    let log = coturn.log();
    for refused in [&expired.username, &forged.username] {
        assert!(
            log.lines()
                .any(|l| l.contains("check_stun_auth") && l.contains(refused.as_str())),
            "coturn says it refused {refused}: {log}"
        );
    }
    d.leave().await.unwrap();
    k.leave().await.unwrap();
    app.stop().await;
}

async fn with_tls_the_signaling_websocket_is_wss(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.signaling.lead_minutes = 4 * 24 * 60;
        c.http.self_signed = true;
    })
    .await;
    assert!(app.base.starts_with("https://"));
    let b = booked(&app).await;
    let room = format!("consultation-{}", b.id);
    let cert = app.db.dir.path().join("tls/self-signed.crt");
    let doctor = admitted(&app, &room, &b.c.doctor).await;
    let consultant = admitted(&app, &room, &b.c.consultant).await;
    let mut d =
        SignalClient::connect_tls(&app.base, doctor["signal_url"].as_str().unwrap(), &cert).await;
    d.send(json!({"v": 1, "type": "join", "token": doctor["token"]}))
        .await;
    assert_eq!(d.recv().await["type"], "welcome");
    let mut k =
        SignalClient::connect_tls(&app.base, consultant["signal_url"].as_str().unwrap(), &cert)
            .await;
    k.send(json!({"v": 1, "type": "join", "token": consultant["token"]}))
        .await;
    assert_eq!(
        k.recv().await["participants"][0]["identity"],
        doctor["identity"]
    );
    k.send(json!({"v": 1, "type": "offer", "to": doctor["identity"], "sdp": "v=0 over tls"}))
        .await;
    assert_eq!(d.recv_kind("offer").await["sdp"], "v=0 over tls");
    app.stop().await;
}

async fn a_full_room_turns_the_next_one_away(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.signaling.lead_minutes = 4 * 24 * 60;
        c.signaling.capacity_consultation = 2;
    })
    .await;
    let b = booked(&app).await;
    let room = format!("consultation-{}", b.id);
    let doctor = admitted(&app, &room, &b.c.doctor).await;
    let consultant = admitted(&app, &room, &b.c.consultant).await;
    let accompanying = admitted(&app, &room, &b.accompanying).await;
    let (_d, _) = SignalClient::join(&app.base, &doctor).await;
    let (_k, _) = SignalClient::join(&app.base, &consultant).await;
    let mut a =
        SignalClient::connect(&app.base, accompanying["signal_url"].as_str().unwrap()).await;
    a.send(json!({"v": 1, "type": "join", "token": accompanying["token"]}))
        .await;
    assert_eq!(a.recv().await["code"], "room_full");
    assert_eq!(a.until_closed().await.0, Ended::Closed(4004));
    // Someone already inside may come back on a new device.
    let again = admitted(&app, &room, &b.c.doctor).await;
    let (_d2, welcome) = SignalClient::join(&app.base, &again).await;
    assert_eq!(welcome["participants"].as_array().unwrap().len(), 1);
    app.stop().await;
}
