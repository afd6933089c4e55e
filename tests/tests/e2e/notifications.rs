//! What waits for each person: notices written with each step of a request, to the
//! people the step concerns and nobody else; the summary the pages count from; and its
//! stream of Server-Sent Events.

use duikou_tests::{Backend, TestApp, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::requests::{cast, content, draft, free_slot, ok_step};

on_both_backends!(
    each_step_of_a_consultation_tells_the_people_it_concerns,
    the_summary_streams_as_server_sent_events_and_changes_when_a_request_arrives,
);

/// `(event, request_id, urgent)` of `token`'s unread notices, newest first.
async fn unread(app: &TestApp, token: &str) -> Vec<(String, i64, bool)> {
    let (status, list) = app.get("/api/v1/notifications?unread=true", token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["event"].as_str().unwrap().to_owned(),
                n["request_id"].as_i64().unwrap(),
                n["urgent"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn summary(app: &TestApp, token: &str) -> Value {
    let (status, s) = app.get("/api/v1/notifications/summary", token).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    s
}

async fn each_step_of_a_consultation_tells_the_people_it_concerns(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let (_, radiologist) = app.user("jm.rad", c.tertiary, &["radiologist"]).await;
    let (_, other_clinician) = app.user("jm.zhang", c.tertiary, &["clinician"]).await;
    let (_, county_colleague) = app.user("ts.colleague", c.county, &["clinician"]).await;
    let kaiping = app.institution_id("开平市中心医院").await;
    let (_, stranger) = app.user("kp.office", kaiping, &["coordinator"]).await;

    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content(), "urgency": "urgent"}),
    )
    .await;
    let id = r["id"].as_i64().unwrap();
    assert!(
        unread(&app, &c.coordinator).await.is_empty(),
        "a draft tells nobody"
    );
    ok_step(&app, &c.doctor, &r["id"], "submit", json!({})).await;

    // Submitted: the supporting hospital's coordinators and clinicians, urgent as it is;
    // not its radiologists (a consultation), not the county, not a stranger.
    let submitted = vec![("submitted".to_owned(), id, true)];
    for token in [&c.coordinator, &c.consultant, &other_clinician] {
        assert_eq!(unread(&app, token).await, submitted);
    }
    for token in [&radiologist, &c.doctor, &county_colleague, &stranger] {
        assert!(unread(&app, token).await.is_empty());
    }
    let s = summary(&app, &c.consultant).await;
    assert_eq!(
        (s["unread"].as_i64(), s["inbox"].as_i64()),
        (Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(
        summary(&app, &radiologist).await["inbox"],
        0,
        "radiologists read images"
    );

    // Accepted by the coordinator: the doctor, and the consultant assigned; the
    // coordinator who did it is told nothing.
    ok_step(
        &app,
        &c.coordinator,
        &r["id"],
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    assert_eq!(
        unread(&app, &c.doctor).await,
        [("accepted".to_owned(), id, true)]
    );
    assert_eq!(unread(&app, &c.consultant).await[0].0, "accepted");
    assert_eq!(unread(&app, &c.coordinator).await, submitted);
    assert_eq!(
        unread(&app, &other_clinician).await,
        submitted,
        "only the one assigned"
    );
    assert_eq!(
        summary(&app, &c.consultant).await["inbox"],
        0,
        "nothing waits for a decision"
    );

    let start = free_slot(&app, &c, 0).await;
    ok_step(
        &app,
        &c.coordinator,
        &r["id"],
        "schedule",
        json!({"start": start}),
    )
    .await;
    ok_step(&app, &c.consultant, &r["id"], "start", json!({})).await;
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/requests/{id}/opinions"),
            Some(&c.consultant),
            Some(json!({"body": "考虑高血压相关头痛，建议规律降压，一周后复诊。"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    ok_step(&app, &c.consultant, &r["id"], "sign", json!({})).await;
    let events: Vec<String> = unread(&app, &c.doctor)
        .await
        .into_iter()
        .map(|n| n.0)
        .collect();
    assert_eq!(
        events,
        ["opinion_signed", "in_session", "scheduled", "accepted"],
        "newest first"
    );
    let s = summary(&app, &c.doctor).await;
    assert_eq!(
        (s["unread"].as_i64(), s["opinions"].as_i64()),
        (Some(4), Some(1)),
        "{s}"
    );

    // Marked read one by one, or all at once; nobody marks another's.
    let (_, list) = app.get("/api/v1/notifications", &c.doctor).await;
    let newest = list[0]["id"].as_i64().unwrap();
    for token in [&county_colleague, &c.consultant] {
        let (status, _) = app
            .call(
                Method::POST,
                &format!("/api/v1/notifications/{newest}/read"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/notifications/{newest}/read"),
            Some(&c.doctor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(summary(&app, &c.doctor).await["unread"], 3);
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/notifications/read",
            Some(&c.doctor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(summary(&app, &c.doctor).await["unread"], 0);
    let (_, all) = app.get("/api/v1/notifications", &c.doctor).await;
    assert_eq!(
        all.as_array().unwrap().len(),
        4,
        "read notices stay in the list"
    );
    assert!(all[0]["read_at"].is_string());

    // Acknowledged: no opinion waits any more.
    ok_step(&app, &c.doctor, &r["id"], "acknowledge", json!({})).await;
    assert_eq!(summary(&app, &c.doctor).await["opinions"], 0);
    for (path, field) in [
        ("/api/v1/notifications?limit=0", "limit"),
        ("/api/v1/notifications?colour=red", "colour"),
    ] {
        let (status, p) = app.get(path, &c.doctor).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(p["field"], field, "{p}");
    }
    // Declined by the consultant: the doctor hears of it, the consultant does not.
    let second = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    ok_step(&app, &c.doctor, &second["id"], "submit", json!({})).await;
    ok_step(
        &app,
        &c.consultant,
        &second["id"],
        "decline",
        json!({"reason_code": "no_specialist", "reason_text": "本周神经内科专家外出"}),
    )
    .await;
    let second = second["id"].as_i64().unwrap();
    assert_eq!(
        unread(&app, &c.doctor).await,
        [("declined".to_owned(), second, false)]
    );
    assert!(
        !unread(&app, &c.consultant)
            .await
            .iter()
            .any(|n| n.0 == "declined")
    );
    let (status, _) = app
        .call(Method::GET, "/api/v1/notifications", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn the_summary_streams_as_server_sent_events_and_changes_when_a_request_arrives(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let mut stream = app
        .client
        .get(format!("{}/api/v1/notifications/stream", app.base))
        .bearer_auth(&c.consultant)
        .send()
        .await
        .expect("the stream answers");
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    // The next `summary` event's data.
    async fn next(stream: &mut reqwest::Response, buffer: &mut String) -> Value {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    assert!(event.contains("event: summary"), "{event}");
                    return serde_json::from_str(data).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(15), stream.chunk())
                .await
                .expect("an event within 15 s")
                .expect("the stream goes on")
                .expect("the stream is not over");
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
    let mut buffer = String::new();
    let first = next(&mut stream, &mut buffer).await;
    assert_eq!(
        (first["unread"].as_i64(), first["inbox"].as_i64()),
        (Some(0), Some(0)),
        "{first}"
    );
    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    ok_step(&app, &c.doctor, &r["id"], "submit", json!({})).await;
    let then = next(&mut stream, &mut buffer).await;
    assert_eq!(
        (then["unread"].as_i64(), then["inbox"].as_i64()),
        (Some(1), Some(1)),
        "{then}"
    );
    assert!(then["newest"].as_i64().unwrap() > 0);
    drop(stream);
    let (status, _) = app
        .call(Method::GET, "/api/v1/notifications/stream", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}
