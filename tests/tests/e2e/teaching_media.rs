//! Teaching sessions' media through the forwarding unit: a presenter and twenty
//! trainees, each a `webrtc` 0.21 peer that offers to the unit through the signaling
//! WebSocket.

use duikou_tests::media::{MediaPeer, Part};
use duikou_tests::signal::SignalClient;
use duikou_tests::{Backend, TestApp, eventually, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::requests::cast;
use crate::rooms::teaching_session;

on_both_backends!(
    every_trainee_receives_the_presenters_audio_and_video,
    a_trainee_is_heard_only_while_the_presenter_gives_it_the_microphone,
    attendance_is_the_time_media_reached_a_trainee_and_a_vanished_one_is_given_up,
);

fn ws_url(base: &str, answer: &Value) -> String {
    format!(
        "{}{}",
        base.replacen("http", "ws", 1),
        answer["signal_url"].as_str().unwrap()
    )
}

/// A teaching session of the tertiary hospital's consultant for `places` trainees of the
/// paired county, all enrolled; returns the session's id and the join answers of the
/// presenter and of each trainee.
async fn teaching_room(app: &TestApp, places: usize) -> (i64, Value, Vec<Value>) {
    let c = cast(app).await;
    let id = teaching_session(app, &c, places).await;
    let room = format!("teaching-{id}");
    let join = |token: String| {
        let room = room.clone();
        async move {
            let (status, answer) = app
                .post(&format!("/api/v1/sessions/{room}/join"), &token, json!({}))
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            answer
        }
    };
    let presenter = join(c.consultant.clone()).await;
    let mut trainees = Vec::new();
    for n in 0..places {
        let (_, token) = app.user(&format!("tm.t{n}"), c.county, &["trainee"]).await;
        let (status, r) = app
            .post(&format!("/api/v1/teaching/{id}/enrol"), &token, json!({}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
        trainees.push(join(token).await);
    }
    (id, presenter, trainees)
}

async fn every_trainee_receives_the_presenters_audio_and_video(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.signaling.lead_minutes = 4 * 24 * 60).await;
    let (_, presenter, trainees) = teaching_room(&app, 20).await;
    let url = ws_url(&app.base, &presenter);
    let teacher = MediaPeer::join(&url, presenter["token"].as_str().unwrap(), Part::Present)
        .await
        .unwrap();
    assert_eq!(teacher.welcome()["unit"], "@sfu");
    let joining = trainees.iter().map(|t| {
        let url = ws_url(&app.base, t);
        let token = t["token"].as_str().unwrap().to_owned();
        async move { MediaPeer::join(&url, &token, Part::Receive).await.unwrap() }
    });
    let listeners = futures_util::future::join_all(joining).await;
    let patience = std::time::Duration::from_secs(30);
    for (n, l) in listeners.iter().enumerate() {
        l.receives(50, 50, patience)
            .await
            .unwrap_or_else(|e| panic!("trainee {n}: {e:#}"));
    }

    // What the unit cannot answer is refused, and the connection stays.
    let first = &listeners[0];
    first.send(json!({"v": 1, "type": "offer", "to": "@sfu", "sdp": "not SDP"}));
    first.send(json!({"v": 1, "type": "answer", "to": "@sfu", "sdp": "v=0"}));
    first.send(json!({"v": 1, "type": "mute", "audio": true, "video": true}));
    let mut codes = eventually(
        std::time::Duration::from_secs(5),
        "two refusals and the mute passed on",
        async || {
            let codes: Vec<String> = first
                .messages()
                .iter()
                .filter(|m| m["type"] == "error")
                .map(|m| m["code"].as_str().unwrap_or_default().to_owned())
                .collect();
            let muted = teacher.messages().iter().any(|m| m["type"] == "mute");
            if codes.len() == 2 && muted {
                Ok(codes)
            } else {
                Err(format!("{codes:?}, mute passed on: {muted}"))
            }
        },
    )
    .await;
    // The unit answers on its own task, so the two may come in either order.
    codes.sort();
    assert_eq!(codes, ["media_refused", "unknown_participant"]);
    let (audio, video) = first.received();
    first
        .receives(audio + 25, video + 25, patience)
        .await
        .expect("the refused offer left the working connection alone");
    for l in listeners {
        l.vanish().await;
    }
    teacher.vanish().await;
    app.stop().await;
}

async fn a_trainee_is_heard_only_while_the_presenter_gives_it_the_microphone(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.signaling.lead_minutes = 4 * 24 * 60).await;
    let (_, presenter, trainees) = teaching_room(&app, 2).await;
    let join = |answer: &Value, part| {
        let url = ws_url(&app.base, answer);
        let token = answer["token"].as_str().unwrap().to_owned();
        async move { MediaPeer::join(&url, &token, part).await.unwrap() }
    };
    // The presenter listens here; the first trainee sends audio and video, the second
    // listens.
    let teacher = join(&presenter, Part::Receive).await;
    let speaker = join(&trainees[0], Part::Present).await;
    let neighbour = join(&trainees[1], Part::Receive).await;
    let speaker_id = speaker.welcome()["identity"].as_str().unwrap().to_owned();
    // Everyone is connected to the unit, then the speaker sends two seconds of media:
    // had the unit forwarded it, the listeners would have had it.
    let patience = std::time::Duration::from_secs(20);
    for peer in [&teacher, &speaker, &neighbour] {
        eventually(patience, "connected to the unit", async || {
            if peer.connected() {
                Ok(())
            } else {
                Err("not yet")
            }
        })
        .await;
    }
    two_seconds_more_sent(&speaker).await;
    assert_eq!(
        teacher.received(),
        (0, 0),
        "a trainee without the grant is not forwarded"
    );
    assert_eq!(neighbour.received(), (0, 0));

    speaker.send(json!({"v": 1, "type": "hand", "raised": true}));
    wait_for(&teacher, "hand", patience).await;
    // A trainee cannot give the microphone.
    neighbour.send(json!({"v": 1, "type": "grant", "to": speaker_id, "audio": true}));
    wait_for(&neighbour, "error", patience).await;
    teacher.send(json!({"v": 1, "type": "grant", "to": speaker_id, "audio": true}));
    for listener in [&teacher, &neighbour] {
        listener.receives(50, 0, patience).await.unwrap();
    }
    assert_eq!(teacher.received().1, 0, "the microphone, not the camera");

    teacher.send(json!({"v": 1, "type": "grant", "to": speaker_id, "audio": false}));
    eventually(patience, "the microphone taken back", async || {
        let taken = speaker
            .messages()
            .iter()
            .any(|m| m["type"] == "granted" && m["audio"] == false);
        if taken {
            Ok(())
        } else {
            Err(format!("{:?}", speaker.messages()))
        }
    })
    .await;
    // What the unit forwarded before it took the revocation arrives within two seconds
    // of the speaker's media; two seconds more bring the teacher nothing.
    two_seconds_more_sent(&speaker).await;
    let (after_revoke, _) = teacher.received();
    two_seconds_more_sent(&speaker).await;
    assert_eq!(teacher.received().0, after_revoke, "taken back, not heard");
    for p in [teacher, speaker, neighbour] {
        p.vanish().await;
    }
    app.stop().await;
}

/// Waits until `peer` got a message of `kind`.
async fn wait_for(peer: &MediaPeer, kind: &str, patience: std::time::Duration) {
    eventually(patience, kind, async || {
        if peer.messages().iter().any(|m| m["type"] == kind) {
            Ok(())
        } else {
            Err(format!("{:?}", peer.messages()))
        }
    })
    .await;
}

/// Waits until `sender` has sent 60 more video packets (two seconds' worth) than when
/// called. The media is real (UDP through the unit) and the unit tells no one what it
/// withheld, so real time has to pass: this waits for that much media to have gone out,
/// rather than for a guess at how long it takes.
async fn two_seconds_more_sent(sender: &MediaPeer) {
    let from = sender.video_sent().await;
    eventually(
        std::time::Duration::from_secs(20),
        "60 more video packets sent",
        async || match sender.video_sent().await {
            n if n >= from + 60 => Ok(()),
            n => Err(format!("{n}, from {from}")),
        },
    )
    .await;
}

/// (user, joined, left, seconds received) of each attendance stretch of `session`.
type Stretch = (
    i64,
    chrono::DateTime<chrono::Utc>,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<i64>,
);

async fn attendance(app: &TestApp, session: i64) -> Vec<Stretch> {
    let query = "select user_id, joined_at, left_at, received_seconds from attendance
                 where session_id = $1 order by id";
    duikou_tests::on_db!(app.db, |conn| sqlx::query_as(query)
        .bind(session)
        .fetch_all(&mut conn)
        .await
        .unwrap())
}

async fn attendance_is_the_time_media_reached_a_trainee_and_a_vanished_one_is_given_up(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| {
        c.signaling.lead_minutes = 4 * 24 * 60;
        c.signaling.resume_seconds = 2;
    })
    .await;
    let (session, presenter, trainees) = teaching_room(&app, 2).await;
    let user =
        |answer: &Value| -> i64 { answer["identity"].as_str().unwrap()[1..].parse().unwrap() };
    let join = |answer: &Value, part, relayed| {
        let url = ws_url(&app.base, answer);
        let token = answer["token"].as_str().unwrap().to_owned();
        async move {
            MediaPeer::join_via(&url, &token, part, relayed)
                .await
                .unwrap()
        }
    };
    let teacher = join(&presenter, Part::Present, false).await;
    let watcher = join(&trainees[0], Part::Receive, true).await;
    // The second trainee is in the room but never takes media.
    let (_signal_only, _) = SignalClient::join(&app.base, &trainees[1]).await;
    let patience = std::time::Duration::from_secs(60);
    watcher.receives(25, 25, patience).await.unwrap();
    let receiving_since = std::time::Instant::now();
    // Attendance is the real time media reached the trainee: four seconds of it, 200
    // more packets of 20 ms of audio.
    let (audio, video) = watcher.received();
    watcher
        .receives(audio + 200, video, patience)
        .await
        .unwrap();
    // Its link goes, and it says nothing: no leave, no DTLS close that gets through.
    watcher.cut();
    let watched = receiving_since.elapsed().as_secs_f64();
    watcher.vanish().await;

    let rows = eventually(patience, "the vanished trainee given up", async || {
        let rows = attendance(&app, session).await;
        if rows.iter().any(|(_, _, left, _)| left.is_some()) {
            Ok(rows)
        } else {
            Err(format!("{rows:?}"))
        }
    })
    .await;
    assert_eq!(
        rows.len(),
        1,
        "only the trainee who received media attended: {rows:?}"
    );
    let (who, joined, left, seconds) = rows[0];
    assert_eq!(who, user(&trainees[0]));
    let stretch = (left.unwrap() - joined).num_milliseconds() as f64 / 1000.0;
    let seconds = seconds.expect("counted by the unit") as f64;
    // From the first media (a little before the 25th packet) to the cut, not to when the
    // unit gave up on it.
    assert!(
        stretch >= watched - 1.0 && stretch <= watched + 3.0,
        "stretch {stretch} s for {watched} s watched"
    );
    assert!(
        seconds >= watched - 1.0 && seconds <= watched + 3.0,
        "{seconds} s received for {watched} s watched"
    );
    teacher.vanish().await;
    app.stop().await;
}
