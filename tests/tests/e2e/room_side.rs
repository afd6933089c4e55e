//! Around the video of a room: its brief (when it opens, who leads, where it stands), the
//! names the others see, and the text chat kept with the session; in the pages, the lobby
//! that admits an early arrival at the opening time, and the case, chat and opinion in
//! the room.

use std::time::Duration;

use chrono::{DateTime, Utc};
use duikou_tests::browser::{artifacts_dir, on_backend, run_scenario};
use duikou_tests::signal::SignalClient;
use duikou_tests::{Backend, TestApp, assert_refused, eventually, on_both_backends, password_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::pages_flows::{paired, token_of};
use crate::requests::{available_daily, content, draft, free_slot_of, ok_step};
use crate::rooms::booked;

on_both_backends!(
    the_room_says_when_it_opens_and_who_leads_it_and_the_others_see_names,
    the_chat_is_kept_with_the_session_for_its_people_only_while_open_and_bounded,
    an_early_arrival_waits_in_the_lobby_and_the_case_chat_and_opinion_are_in_the_room,
);

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// Moves the gateway's clock to `to` (forwards only).
fn move_to(app: &TestApp, to: DateTime<Utc>) {
    let by = (to - app.clock.now()).to_std().expect("forwards");
    app.clock.advance(by);
}

async fn the_room_says_when_it_opens_and_who_leads_it_and_the_others_see_names(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = booked(&app).await;
    let room = format!("consultation-{}", b.id);
    let path = format!("/api/v1/sessions/{room}");

    // Tomorrow's session: the room is not open yet, and says when it opens by the
    // gateway's clock.
    let (status, brief) = app.get(&path, &b.c.doctor).await;
    assert_eq!(status, StatusCode::OK, "{brief}");
    assert_eq!(brief["phase"], "early");
    assert_eq!(brief["kind"], "consultation");
    assert_eq!(brief["request_id"], b.id);
    assert_eq!(brief["state"], "scheduled");
    assert_eq!(brief["role"], "requester");
    let opens = at(&brief["opens_at"]);
    assert_eq!(
        at(&brief["starts_at"]) - opens,
        chrono::Duration::minutes(15)
    );
    assert!((at(&brief["now"]) - app.clock.now()).num_seconds().abs() < 5);
    let people = brief["people"].as_array().unwrap();
    let consultant = people.iter().find(|p| p["role"] == "consultant").unwrap();
    assert_eq!(consultant["name"], "林主任");
    assert_eq!(consultant["about"], "主任医师 · 江门市中心医院");
    let accompanying = people.iter().find(|p| p["role"] == "accompanying").unwrap();
    assert_eq!(accompanying["name"], "李医生");
    assert_eq!(
        people.iter().find(|p| p["role"] == "requester").unwrap()["about"],
        "台山市人民医院"
    );
    // The room itself agrees: too early.
    let join = format!("{path}/join");
    let (status, problem) = app.post(&join, &b.c.doctor, json!({})).await;
    assert_refused(
        status,
        &problem,
        StatusCode::CONFLICT,
        "outside-session-window",
    );

    // Someone the booking does not name learns nothing of it; a session that is not
    // there is not found.
    let (status, problem) = app.get(&path, &b.c.coordinator).await;
    assert_refused(status, &problem, StatusCode::FORBIDDEN, "not-a-participant");
    let (status, _) = app
        .get("/api/v1/sessions/consultation-999999", &b.c.doctor)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/v1/sessions/nonsense", &b.c.doctor).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // At the opening time it is open, and the people meet by name, title and
    // institution.
    move_to(&app, opens + chrono::Duration::seconds(1));
    let doctor = app.login("ts.doctor", &password_for("ts.doctor")).await;
    let lin = app.login("jm.lin", &password_for("jm.lin")).await;
    let (_, brief) = app.get(&path, &doctor).await;
    assert_eq!(brief["phase"], "open", "{brief}");
    let (status, d) = app.post(&join, &doctor, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["name"], "ts.doctor");
    assert_eq!(d["about"], "台山市人民医院");
    let (status, k) = app.post(&join, &lin, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{k}");
    let (mut doctor_socket, _) = SignalClient::join(&app.base, &d).await;
    let (_, welcome) = SignalClient::join(&app.base, &k).await;
    assert_eq!(welcome["participants"][0]["name"], "ts.doctor", "{welcome}");
    assert_eq!(welcome["participants"][0]["about"], "台山市人民医院");
    let joined = doctor_socket.recv_kind("joined").await;
    assert_eq!(joined["participant"]["name"], "林主任", "{joined}");
    assert_eq!(joined["participant"]["about"], "主任医师 · 江门市中心医院");

    // After the grace time the room is over; once the consultation is finished the
    // booking holds no session, and the brief says so with the request's state.
    move_to(&app, at(&brief["closes_at"]) + chrono::Duration::seconds(1));
    let doctor = app.login("ts.doctor", &password_for("ts.doctor")).await;
    let (_, brief) = app.get(&path, &doctor).await;
    assert_eq!(brief["phase"], "over", "{brief}");
    let (status, r) = app
        .post(
            &format!("/api/v1/requests/{}/cancel", b.id),
            &doctor,
            json!({"version": brief_version(&app, b.id, &doctor).await}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let (_, brief) = app.get(&path, &doctor).await;
    assert_eq!(brief["phase"], "closed", "{brief}");
    assert_eq!(brief["state"], "cancelled");
    app.stop().await;
}

async fn brief_version(app: &TestApp, id: i64, token: &str) -> Value {
    let (_, r) = app.get(&format!("/api/v1/requests/{id}"), token).await;
    r["version"].clone()
}

async fn the_chat_is_kept_with_the_session_for_its_people_only_while_open_and_bounded(
    backend: Backend,
) {
    // Rooms open four days ahead, so that tomorrow's session is open now; a chat keeps
    // three messages.
    let app = TestApp::spawn_with(backend, |c| {
        c.signaling.lead_minutes = 4 * 24 * 60;
        c.signaling.chat_max_messages = 3;
    })
    .await;
    let b = booked(&app).await;
    let room = format!("consultation-{}", b.id);
    let path = format!("/api/v1/sessions/{room}/messages");

    let (status, first) = app
        .post(
            &path,
            &b.c.doctor,
            json!({"body": "  血压记录已上传到附件。 "}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["body"], "血压记录已上传到附件。");
    assert_eq!(first["name"], "ts.doctor");
    let (status, second) = app
        .post(
            &path,
            &b.c.consultant,
            json!({"body": "收到，请再测一次卧位血压。"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["name"], "林主任");

    // The people of the session read it, in order, and from where they left off.
    let (status, all) = app.get(&path, &b.c.consultant).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let bodies: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["血压记录已上传到附件。", "收到，请再测一次卧位血压。"]
    );
    let (_, rest) = app
        .get(&format!("{path}?after={}", first["id"]), &b.c.doctor)
        .await;
    assert_eq!(rest.as_array().unwrap().len(), 1);
    assert_eq!(rest[0]["id"], second["id"]);

    // Bad messages are refused naming the field, and add nothing.
    for bad in [
        json!({"body": "   "}),
        json!({"body": "长".repeat(1001)}),
        json!({"body": 5}),
        json!({"body": "好", "to": "u1"}),
        json!({}),
    ] {
        let (status, problem) = app.post(&path, &b.c.doctor, bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {problem}");
    }
    let (status, problem) = app.post(&path, &b.c.doctor, json!({"body": "   "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "body", "{problem}");
    for query in [
        "?after=-1",
        "?limit=0",
        "?limit=201",
        "?after=x",
        "?since=1",
    ] {
        let (status, problem) = app.get(&format!("{path}{query}"), &b.c.doctor).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {problem}"
        );
    }

    // The supporter's coordinator reads it but does not write; another county's doctor
    // does neither, and the refusals are audited.
    let (status, read) = app.get(&path, &b.c.coordinator).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read.as_array().unwrap().len(), 2);
    let (status, problem) = app
        .post(&path, &b.c.coordinator, json!({"body": "我也说一句"}))
        .await;
    assert_refused(status, &problem, StatusCode::FORBIDDEN, "not-a-participant");
    let other = app.institution_id("开平市中心医院").await;
    let (_, stranger) = app.user("kp.zhou", other, &["clinician"]).await;
    let (status, _) = app.get(&path, &stranger).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.post(&path, &stranger, json!({"body": "你好"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The third message fills the chat; the fourth is refused and adds nothing.
    let (status, _) = app
        .post(
            &path,
            &b.accompanying,
            json!({"body": "已测：卧位 150/95。"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, problem) = app
        .post(&path, &b.c.doctor, json!({"body": "还有一个问题"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (_, all) = app.get(&path, &b.c.doctor).await;
    assert_eq!(all.as_array().unwrap().len(), 3);

    // The writes, the reads and the refusals are in the audit log.
    let (_, audit) = app
        .get(
            &format!("/api/v1/audit?object_kind=request&object_id={}", b.id),
            &app.admin_token,
        )
        .await;
    let actions = |action: &str, allowed: bool| {
        audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["action"] == action && e["outcome"] == if allowed { "allowed" } else { "denied" }
            })
            .count()
    };
    assert_eq!(actions("post_message", true), 3, "{audit}");
    assert!(actions("post_message", false) >= 3, "{audit}");
    assert!(actions("read_messages", true) >= 4, "{audit}");
    assert_eq!(actions("read_messages", false), 1, "{audit}");

    // Once the room has closed, the chat takes nothing more and is still there to read.
    let (_, brief) = app
        .get(&format!("/api/v1/sessions/{room}"), &b.c.doctor)
        .await;
    let closes: DateTime<Utc> = at(&brief["closes_at"]);
    move_to(&app, closes + chrono::Duration::seconds(1));
    let doctor = app.login("ts.doctor", &password_for("ts.doctor")).await;
    let (status, problem) = app.get(&path, &doctor).await;
    assert_eq!(status, StatusCode::OK, "{problem}");
    assert_eq!(problem.as_array().unwrap().len(), 3);
    let app_doctor = doctor;
    let (status, problem) = app
        .post(&path, &app_doctor, json!({"body": "会后补充"}))
        .await;
    assert_refused(status, &problem, StatusCode::CONFLICT, "session-not-open");
    app.stop().await;
}

async fn an_early_arrival_waits_in_the_lobby_and_the_case_chat_and_opinion_are_in_the_room(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let p = paired(&app, json!(["consult"])).await;
    let doctor = token_of(&app, &p.doctor).await;
    let consultant = token_of(&app, &p.consultant).await;
    available_daily(&app, p.lin, &consultant, "00:00", "23:30").await;
    // A consultation scheduled with 林主任 for tomorrow.
    let r = draft(
        &app,
        &doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    let id = r["id"].clone();
    ok_step(&app, &doctor, &id, "submit", json!({})).await;
    ok_step(
        &app,
        &consultant,
        &id,
        "accept",
        json!({"consultant_id": p.lin}),
    )
    .await;
    let start = free_slot_of(&app, p.lin, &doctor, 0).await;
    ok_step(&app, &consultant, &id, "schedule", json!({"start": start})).await;
    let room = format!("consultation-{id}");
    let (_, brief) = app.get(&format!("/api/v1/sessions/{room}"), &doctor).await;
    let opens = at(&brief["opens_at"]);
    // A minute before the room opens.
    move_to(&app, opens - chrono::Duration::seconds(60));

    let name = on_backend("room_lobby", backend);
    let mark = artifacts_dir(&name).join("lobby-seen");
    // A mark of an earlier run is no mark of this one.
    let _ = std::fs::remove_file(&mark);
    {
        let scenario = run_scenario(
            "room_lobby",
            &name,
            &app.base,
            json!({"doctor": p.doctor, "consultant": p.consultant, "id": id}),
        );
        // Once the doctor waits in the lobby, the opening time comes.
        tokio::pin!(scenario);
        let waiting = eventually(
            Duration::from_secs(90),
            "the doctor waits in the lobby",
            async || {
                if mark.exists() {
                    Ok(())
                } else {
                    Err("no mark yet")
                }
            },
        );
        tokio::select! {
            out = &mut scenario => panic!("the scenario ended before the lobby: {out:?}"),
            () = waiting => move_to(&app, opens + chrono::Duration::seconds(1)),
        }
        scenario.await.unwrap_or_else(|e| panic!("{e:#}"));
    }

    // What the room did is what the API holds.
    let doctor = token_of(&app, &p.doctor).await;
    let (_, r) = app.get(&format!("/api/v1/requests/{id}"), &doctor).await;
    assert_eq!(r["state"], "opinion_signed", "{r}");
    let (_, opinions) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &doctor)
        .await;
    assert!(
        opinions[0]["body"]
            .as_str()
            .unwrap()
            .starts_with("考虑高血压相关头痛"),
        "{opinions}"
    );
    // Presence is on the gateway's clock, as the session is: after the opening time.
    let (_, record) = app
        .get(&format!("/api/v1/sessions/{room}/attendance"), &doctor)
        .await;
    let stretches = record["stretches"].as_array().unwrap();
    assert!(stretches.len() >= 3, "{record}");
    for s in stretches {
        assert!(at(&s["joined_at"]) >= opens, "{record}");
    }
    assert!(
        record["together_seconds"].as_i64().unwrap() >= 1,
        "{record}"
    );
    let (_, chat) = app
        .get(&format!("/api/v1/sessions/{room}/messages"), &doctor)
        .await;
    let said: Vec<(&str, &str)> = chat
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["body"].as_str().unwrap()))
        .collect();
    assert_eq!(
        said,
        [
            ("王医生", "患者昨日测卧位血压 150/95。"),
            ("林主任", "收到，继续监测。")
        ]
    );
    app.stop().await;
}
