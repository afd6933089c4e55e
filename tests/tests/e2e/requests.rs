//! Remote consultation requests from draft to closed, and every refusal by name
//! (DESIGN.md, "Rules the software enforces"; the 2018 remote-medicine specification).

use chrono::{Duration, Utc};
use duikou_tests::{Backend, TestApp, assert_refused, eventually, on_both_backends};
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    a_consultation_runs_from_draft_to_closed,
    requests_go_only_to_the_designated_supporter,
    an_incomplete_request_is_not_submitted,
    only_a_qualified_consultant_is_assigned,
    steps_out_of_order_and_from_the_wrong_side_are_refused,
    a_signed_opinion_is_amended_never_changed,
    another_county_can_neither_read_nor_change_a_request_and_is_audited,
    remote_villages_are_served_first,
    two_concurrent_bookings_of_one_slot_let_exactly_one_in,
    attachments_are_kept_with_their_checksum_and_a_scanned_consent_needs_one,
    state_changes_reach_the_webhook_signed_and_retried_and_overdue_requests_are_offered,
    a_webhook_answering_with_a_redirect_is_not_followed,
    a_request_whose_window_passes_unscheduled_expires,
    the_consultant_is_checked_again_when_signing,
    a_day_off_takes_its_slots_away,
    a_pathologist_answers_a_pathology_read_from_her_own_inbox,
);

async fn a_pathologist_answers_a_pathology_read_from_her_own_inbox(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let county = app.institution_id("台山市人民医院").await;
    let tertiary = app.institution_id("江门市中心医院").await;
    pair(&app, tertiary, county, json!(["pathology_read"])).await;
    // 周病理 of the pathology department, whose account holds the pathologist role only;
    // 林主任, a clinician, does not answer pathology reads.
    let zhou = clinician(
        &app,
        tertiary,
        "周病理",
        "主任医师",
        Some("110440700000555"),
        12,
    )
    .await;
    let account = app
        .account(
            json!({"username": "jm.zhou", "display_name": "周病理", "institution_id": tertiary,
                   "clinician_id": zhou, "roles": ["pathologist"]}),
        )
        .await;
    let pathologist = app
        .login("jm.zhou", account["password"].as_str().unwrap())
        .await;
    let lin = clinician(
        &app,
        tertiary,
        "林主任",
        "主任医师",
        Some("110440700000001"),
        20,
    )
    .await;
    user_for_clinician(&app, "jm.lin", tertiary, lin).await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    let (_, office) = app.user("jm.office", tertiary, &["coordinator"]).await;

    let r = draft(
        &app,
        &doctor,
        json!({"kind": "pathology_read", "content": content()}),
    )
    .await;
    let id = r["id"].clone();
    ok_step(&app, &doctor, &id, "submit", json!({})).await;

    // It waits in her inbox, and she was told.
    let (_, inbox) = app
        .get("/api/v1/requests?box=inbox&state=submitted", &pathologist)
        .await;
    assert!(
        inbox.as_array().unwrap().iter().any(|x| x["id"] == id),
        "{inbox}"
    );
    let (_, notices) = app.get("/api/v1/notifications", &pathologist).await;
    assert!(
        notices
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["event"] == "submitted" && n["request_id"] == id),
        "{notices}"
    );
    // Only pathologists are offered, and a clinician is not assigned.
    let (status, offered) = app
        .get(&format!("/api/v1/requests/{id}/consultants"), &office)
        .await;
    assert_eq!(status, StatusCode::OK, "{offered}");
    let offered: Vec<&Value> = offered
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(offered, [&json!(zhou)]);
    let (status, p) = step(&app, &office, &id, "accept", json!({"consultant_id": lin})).await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "consultant-not-qualified",
    );

    // She accepts, writes and signs.
    ok_step(
        &app,
        &pathologist,
        &id,
        "accept",
        json!({"consultant_id": zhou}),
    )
    .await;
    let (status, opinion) = app
        .call(
            Method::PUT,
            &format!("/api/v1/requests/{id}/opinions"),
            Some(&pathologist),
            Some(json!({"body": "（胃窦）慢性非萎缩性胃炎，未见异型增生。"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{opinion}");
    ok_step(&app, &pathologist, &id, "sign", signing("jm.zhou")).await;
    let (_, r) = app.get(&format!("/api/v1/requests/{id}"), &doctor).await;
    assert_eq!(r["state"], "opinion_signed", "{r}");
    assert_eq!(r["consultant_id"], zhou);
    app.stop().await;
}

async fn a_day_off_takes_its_slots_away(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let day = (Utc::now() + Duration::days(2) + Duration::hours(8)).date_naive();
    let path = format!(
        "/api/v1/clinicians/{}/slots?from={day}&to={day}",
        c.consultant_id
    );
    let slots = || {
        let (app, path, token) = (&app, path.clone(), c.doctor.clone());
        async move { app.get(&path, &token).await.1.as_array().unwrap().len() }
    };
    assert_eq!(slots().await, 24, "08:00 to 20:00 in 30-minute slots");
    let exceptions = format!(
        "/api/v1/clinicians/{}/availability/exceptions",
        c.consultant_id
    );
    let (status, p) = app
        .post(
            &exceptions,
            &c.consultant,
            json!({"day": day, "start_time": "08:00", "reason": "会议"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["field"], "end_time");
    let (status, _) = app
        .post(&exceptions, &c.doctor, json!({"day": day, "reason": "x"}))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a county doctor does not manage a consultant's time"
    );
    let (status, p) = app
        .post(
            &exceptions,
            &c.consultant,
            json!({"day": day, "start_time": "08:00", "end_time": "12:00", "reason": "会议"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(slots().await, 16);
    let (status, _) = app
        .post(
            &exceptions,
            &c.coordinator,
            json!({"day": day, "reason": "下乡义诊"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(slots().await, 0);
    let (status, p) = app
        .post(
            &format!("/api/v1/clinicians/{}/availability", c.consultant_id),
            &c.consultant,
            json!({"weekday": 8, "start_time": "08:00", "end_time": "09:00", "slot_minutes": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["field"], "weekday");

    // The exceptions are listed by day, and removed by those who may add them: the
    // hours come back.
    let (status, listed) = app
        .get(&format!("{exceptions}?from={day}&to={day}"), &c.doctor)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed = listed.as_array().unwrap().clone();
    assert_eq!(listed.len(), 2);
    let (status, p) = app
        .get(&format!("{exceptions}?from={day}&to=2000-01-01"), &c.doctor)
        .await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("to"))
    );
    let whole_day = listed.iter().find(|e| e["start_time"].is_null()).unwrap()["id"].clone();
    let remove = |path: String, token: String| {
        let app = &app;
        async move { app.call(Method::DELETE, &path, Some(&token), None).await }
    };
    let (status, _) = remove(format!("{exceptions}/{whole_day}"), c.doctor.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = remove(format!("{exceptions}/{whole_day}"), c.coordinator.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(slots().await, 16, "the morning's meeting still stands");
    let (status, p) = remove(format!("{exceptions}/{whole_day}"), c.coordinator.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
    let (status, p) = remove(format!("{exceptions}/x"), c.coordinator.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
    assert_eq!(p["type"], "https://duikou.invalid/problems/not-found");
    // A weekly rule removed takes that weekday's hours away; another clinician's id
    // does not reach this consultant's rules.
    let rules = format!("/api/v1/clinicians/{}/availability", c.consultant_id);
    let (_, all) = app.get(&rules, &c.doctor).await;
    let weekday = i64::from(day.format("%u").to_string().parse::<u8>().unwrap());
    let rule = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["weekday"] == weekday)
        .unwrap()["id"]
        .clone();
    let (status, _) = remove(
        format!("/api/v1/clinicians/{}/availability/{rule}", c.junior_id),
        c.coordinator.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = remove(format!("{rules}/{rule}"), c.consultant.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(slots().await, 0);
    app.stop().await;
}

async fn the_consultant_is_checked_again_when_signing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let id = in_session(&app, &c).await;
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/requests/{id}/opinions"),
            Some(&c.consultant),
            Some(json!({"body": "建议规律降压，一周后复诊。"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The licence lapses between acceptance and signing.
    let (status, p) = app
        .patch(
            &format!("/api/v1/clinicians/{}", c.consultant_id),
            &c.doctor,
            json!({"licence_number": null, "practice_since": "2006-09-01"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "another institution does not edit credentials: {p}"
    );
    let (status, p) = app
        .patch(
            &format!("/api/v1/clinicians/{}", c.consultant_id),
            &c.coordinator,
            json!({"licence_number": null, "practice_since": "2006-09-01"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    let (status, p) = step(&app, &c.consultant, &id, "sign", signing("jm.lin")).await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "consultant-not-qualified",
    );
    assert!(p["detail"].as_str().unwrap().contains("licence"));
    let (status, _) = app
        .patch(
            &format!("/api/v1/clinicians/{}", c.consultant_id),
            &c.coordinator,
            json!({"licence_number": "110440700000009", "practice_since": "2006-09-01"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    ok_step(&app, &c.consultant, &id, "sign", signing("jm.lin")).await;
    app.stop().await;
}

async fn a_request_whose_window_passes_unscheduled_expires(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.notify.interval_ms = 100).await;
    let c = cast(&app).await;
    let mut body = content();
    let start = Utc::now() + Duration::minutes(10);
    body["window"] = json!({"start": start, "end": start + Duration::minutes(20)});
    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": body}),
    )
    .await;
    let id = r["id"].clone();
    ok_step(&app, &c.doctor, &id, "submit", json!({})).await;
    let (status, p) = step(&app, &c.doctor, &id, "expire", json!({})).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "nobody expires a request by hand: {p}"
    );
    // The window passes: the gateway's clock moves on rather than the test waiting.
    app.clock.advance(std::time::Duration::from_secs(31 * 60));
    let view = eventually(std::time::Duration::from_secs(10), "expired", async || {
        let (_, view) = app.get(&format!("/api/v1/requests/{id}"), &c.doctor).await;
        if view["state"] == "expired" {
            Ok(view)
        } else {
            Err(view)
        }
    })
    .await;
    let last = view["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor_user_id"], Value::Null, "duikou took the step");
    let (status, p) = step(
        &app,
        &c.coordinator,
        &id,
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    app.stop().await;
}

/// A webhook receiver that fails its first call and records every call.
async fn receiver() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
) {
    use std::sync::{Arc, Mutex};
    let calls: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut calls = seen.lock().unwrap();
                calls.push((headers, body));
                if calls.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

async fn state_changes_reach_the_webhook_signed_and_retried_and_overdue_requests_are_offered(
    backend: Backend,
) {
    use hmac::Mac as _;
    let app = TestApp::spawn_with(backend, |c| {
        c.notify.interval_ms = 100;
        c.notify.retry_base_ms = 200;
        c.booking.decision_hours_normal = 0;
    })
    .await;
    let c = cast(&app).await;
    // A request submitted before the hospital sets its webhook: the webhook, once set,
    // is told of what happens from then on, not of this.
    let before = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    ok_step(&app, &c.doctor, &before["id"], "submit", json!({})).await;
    ok_step(&app, &c.doctor, &before["id"], "cancel", json!({})).await;
    let (url, calls) = receiver().await;
    let secret = "a shared secret of the hospital";
    let (status, p) = app
        .call(
            Method::PUT,
            &format!("/api/v1/institutions/{}/webhook", c.tertiary),
            Some(&c.coordinator),
            Some(json!({"url": url, "secret": secret})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{p}");
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/institutions/{}/webhook", c.tertiary),
            Some(&c.doctor),
            Some(json!({"url": url, "secret": secret})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only the institution's own coordinators"
    );

    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    ok_step(&app, &c.doctor, &r["id"], "submit", json!({})).await;
    // With a zero-hour deadline the request is overdue at once and offered to the
    // supporter's qualified consultants.
    let (_, view) = app
        .get(&format!("/api/v1/requests/{}", r["id"]), &c.coordinator)
        .await;
    assert_eq!(view["overdue"], true);
    assert_eq!(
        view["offered_to"],
        json!([c.consultant_id]),
        "the junior does not qualify: {view}"
    );

    // Calls are retried on the system's time (the first one fails): real time passes.
    eventually(
        std::time::Duration::from_secs(10),
        "submitted and overdue delivered",
        async || {
            let events: Vec<String> = calls
                .lock()
                .unwrap()
                .iter()
                .skip(1)
                .map(|(h, _)| h["x-duikou-event"].to_str().unwrap().to_owned())
                .collect();
            if events.iter().any(|e| e == "submitted") && events.iter().any(|e| e == "overdue") {
                Ok(())
            } else {
                Err(format!("{events:?}"))
            }
        },
    )
    .await;
    // The supporting hospital's coordinators and clinicians were told once that the time
    // to decide has passed.
    for token in [&c.coordinator, &c.consultant] {
        let (_, notices) = app.get("/api/v1/notifications", token).await;
        let overdue: Vec<&Value> = notices
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["event"] == "overdue" && n["request_id"] == r["id"])
            .collect();
        assert_eq!(overdue.len(), 1, "{notices}");
    }
    let calls = calls.lock().unwrap().clone();
    assert!(calls.len() >= 3, "the first call failed and was retried");
    for (headers, body) in &calls {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(headers["x-duikou-signature"].to_str().unwrap(), expected);
        assert!(
            !body.contains("王某某"),
            "no patient data leaves in a notice: {body}"
        );
        // Only the request of after the webhook was set.
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["request_id"], r["id"]);
    }
    let failed_delivery = calls[0].0["x-duikou-delivery"].clone();
    assert!(
        calls[1..]
            .iter()
            .any(|(h, _)| h["x-duikou-delivery"] == failed_delivery),
        "the failed one came again"
    );
    app.stop().await;
}

/// Uploads `bytes` as `consent.pdf`.
pub(crate) async fn upload(
    app: &TestApp,
    token: &str,
    id: &Value,
    content_type: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let disposition = HeaderValue::from_static("attachment; filename=\"consent.pdf\"");
    upload_with(app, token, id, content_type, vec![disposition], "", bytes).await
}

/// Uploads `bytes` with these `Content-Disposition` headers (none, one or several) and
/// `query` after the path.
async fn upload_with(
    app: &TestApp,
    token: &str,
    id: &Value,
    content_type: &str,
    dispositions: Vec<HeaderValue>,
    query: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(format!(
            "{}/api/v1/requests/{id}/attachments{query}",
            app.base
        ))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes.to_vec());
    for disposition in dispositions {
        // Appended: each one a header of its own.
        request = request.header("content-disposition", disposition);
    }
    duikou_tests::read(request.send().await.unwrap()).await
}

async fn attachments_are_kept_with_their_checksum_and_a_scanned_consent_needs_one(
    backend: Backend,
) {
    use sha2::Digest as _;
    let app = TestApp::spawn_with(backend, |c| c.booking.max_attachment_bytes = 4096).await;
    let c = cast(&app).await;
    let mut body = content();
    body["consent"] = json!({"given_by": "guardian", "name": "李某", "relation": "女儿", "reason": "患者失语",
                             "at": Utc::now() - Duration::hours(2), "method": "scan", "scan_sha256": "0".repeat(64)});
    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": body}),
    )
    .await;
    let id = r["id"].clone();
    let (status, p) = step(&app, &c.doctor, &id, "submit", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["field"], "consent.scan_sha256");

    let pdf = b"%PDF-1.4\n% signed consent form\n%%EOF\n";
    // The name, which names the patient, travels in a header (RFC 6266, RFC 8187), never
    // in the URL.
    let name = "知情同意书（王某某）.pdf";
    let encoded = format!("UTF-8''{}", duikou_tests::urlencode(name));
    let disposition = |header: String| vec![HeaderValue::try_from(header).unwrap()];
    let (status, a) = upload_with(
        &app,
        &c.doctor,
        &id,
        "application/pdf",
        disposition(format!(
            "attachment; filename=\"fallback.pdf\"; filename*={encoded}"
        )),
        "",
        pdf,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    assert_eq!(a["sha256"], hex::encode(sha2::Sha256::digest(pdf)));
    assert_eq!(a["size"], pdf.len());
    assert_eq!(a["filename"], name, "filename* is preferred");
    // The same bytes again, under another name, are the attachment already kept: the
    // reply says so, with its id and first name.
    let (status, again) = upload_with(
        &app,
        &c.doctor,
        &id,
        "application/pdf",
        disposition("attachment; filename=\"consent (copy).pdf\"".into()),
        "",
        pdf,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], a["id"], "{again}");
    assert_eq!(
        again["filename"], name,
        "the name kept, not the one sent: {again}"
    );
    for (header, query) in [
        (vec![], ""),
        // The query parameter of old is no way to name the file any more.
        (vec![], "?filename=consent.pdf"),
        // Which of two names is meant would be a guess.
        (
            [
                disposition("attachment; filename=a.pdf".into()),
                disposition("attachment; filename=b.pdf".into()),
            ]
            .concat(),
            "",
        ),
        // Shown as "扫描件exe.pdf" if kept: a right-to-left override.
        (
            disposition(format!(
                "attachment; filename*=UTF-8''{}",
                duikou_tests::urlencode("扫描件\u{202E}fdp.exe")
            )),
            "",
        ),
        (disposition("attachment; filename=\"..\"".into()), ""),
        (disposition("inline; filename=consent.pdf".into()), ""),
        (
            disposition("attachment; filename*=UTF-8''%E7%9F".into()),
            "",
        ),
        (
            disposition("attachment; filename*=GBK''%D6%AA.pdf".into()),
            "",
        ),
        (
            disposition("attachment; filename=\"../consent.pdf\"".into()),
            "",
        ),
        (
            disposition(format!("attachment; filename*=UTF-8''{}", "x".repeat(201))),
            "",
        ),
        (
            vec![HeaderValue::from_bytes("attachment; filename=\"王.pdf\"".as_bytes()).unwrap()],
            "",
        ),
    ] {
        let shown = format!("{header:?}{query}");
        let (status, p) =
            upload_with(&app, &c.doctor, &id, "application/pdf", header, query, pdf).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{shown}: {p}");
        assert_eq!(p["field"], "filename", "{shown}: {p}");
        // What the caller sent is not read back to them (nor to a log of the reply).
        let detail = p["detail"].as_str().unwrap();
        for sent in ["inline", "GBK", "扫描件", "王"] {
            assert!(!detail.contains(sent), "{shown}: {detail}");
        }
    }
    let (status, p) = upload(
        &app,
        &c.doctor,
        &id,
        "application/pdf",
        b"MZ\x90\x00 not a pdf",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (status, _) = upload(&app, &c.doctor, &id, "text/plain", b"hello").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut big = b"%PDF-".to_vec();
    big.resize(5000, b'x');
    let (status, _) = upload(&app, &c.doctor, &id, "application/pdf", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = upload(&app, &c.consultant, &id, "application/pdf", pdf).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the supporter does not see drafts, let alone attach to them"
    );
    let (_, me) = app.get("/api/v1/me", &c.consultant).await;
    let (_, log) = app
        .get(
            &format!("/api/v1/audit?user_id={}&outcome=denied", me["id"]),
            &app.admin_token,
        )
        .await;
    assert!(
        log.as_array().unwrap().iter().any(|e| e["object_id"] == id),
        "the refusal is audited: {log}"
    );

    let (status, r) = app
        .patch(&format!("/api/v1/requests/{id}"), &c.doctor, json!({"content": {"consent": {"given_by": "guardian", "name": "李某", "relation": "女儿", "reason": "患者失语", "at": Utc::now() - Duration::hours(2), "method": "scan", "scan_sha256": a["sha256"]}}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    ok_step(&app, &c.doctor, &id, "submit", json!({})).await;

    let (_, list) = app
        .get(
            &format!("/api/v1/requests/{id}/attachments"),
            &c.coordinator,
        )
        .await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "the rejected uploads left nothing, the repeated one no second: {list}"
    );
    assert_eq!(list[0]["filename"], again["filename"], "{list}");
    let bytes = app
        .client
        .get(format!(
            "{}/api/v1/requests/{id}/attachments/{}",
            app.base, a["id"]
        ))
        .bearer_auth(&c.coordinator)
        .send()
        .await
        .unwrap();
    assert_eq!(bytes.headers()["content-type"], "application/pdf");
    assert_eq!(
        bytes.headers()["content-disposition"],
        format!("inline; filename*={encoded}").as_str(),
        "the download keeps its name"
    );
    // Shown on the gateway's origin, a patient's file is taken for what it was checked to
    // be, kept in no cache, and kept from the origin's cookies and scripts.
    assert_eq!(bytes.headers()["x-content-type-options"], "nosniff");
    assert_eq!(bytes.headers()["cache-control"], "no-store");
    assert_eq!(bytes.headers()["content-security-policy"], "sandbox");
    assert_eq!(bytes.bytes().await.unwrap().as_ref(), pdf);
    let kaiping = app.institution_id("开平市中心医院").await;
    let (_, outsider) = app.user("kp.doctor", kaiping, &["clinician"]).await;
    let (status, _) = app
        .get(
            &format!("/api/v1/requests/{id}/attachments/{}", a["id"]),
            &outsider,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn two_concurrent_bookings_of_one_slot_let_exactly_one_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = draft(
            &app,
            &c.doctor,
            json!({"kind": "consultation", "content": content()}),
        )
        .await;
        ok_step(&app, &c.doctor, &r["id"], "submit", json!({})).await;
        ok_step(
            &app,
            &c.coordinator,
            &r["id"],
            "accept",
            json!({"consultant_id": c.consultant_id}),
        )
        .await;
        ids.push(r["id"].clone());
    }
    let slot = free_slot(&app, &c, 3).await;
    let (a, b) = tokio::join!(
        step(
            &app,
            &c.coordinator,
            &ids[0],
            "schedule",
            json!({"start": slot})
        ),
        step(
            &app,
            &c.coordinator,
            &ids[1],
            "schedule",
            json!({"start": slot})
        ),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        a.1,
        b.1
    );
    let loser = if a.0 == StatusCode::CONFLICT {
        &a.1
    } else {
        &b.1
    };
    assert!(
        matches!(rule(loser), "slot-taken" | "slot-not-free"),
        "{loser}"
    );
    // The slot is gone from the free list; the loser books the next one.
    let (_, slots) = app
        .get(
            &format!("/api/v1/clinicians/{}/slots", c.consultant_id),
            &c.doctor,
        )
        .await;
    assert!(!slots.as_array().unwrap().iter().any(|s| s["start"] == slot));
    let loser_id = if a.0 == StatusCode::CONFLICT {
        &ids[0]
    } else {
        &ids[1]
    };
    let next = free_slot(&app, &c, 3).await;
    assert_ne!(next, slot);
    ok_step(
        &app,
        &c.coordinator,
        loser_id,
        "schedule",
        json!({"start": next}),
    )
    .await;
    app.stop().await;
}

/// The cast of a consultation between Taishan People's Hospital and Jiangmen Central
/// Hospital, paired for consultations and imaging reads from a month ago.
pub(crate) struct Cast {
    pub(crate) county: i64,
    pub(crate) tertiary: i64,
    pub(crate) doctor: String,
    pub(crate) consultant_id: i64,
    pub(crate) consultant: String,
    pub(crate) junior_id: i64,
    pub(crate) coordinator: String,
}

pub(crate) async fn clinician(
    app: &TestApp,
    institution: i64,
    name: &str,
    title: &str,
    licence: Option<&str>,
    years: u32,
) -> i64 {
    // Practice began `years` years ago today, a day in China.
    let today = (Utc::now() + Duration::hours(8)).date_naive();
    let practice_since = today - chrono::Months::new(12 * years);
    let (status, c) = app
        .post(
            "/api/v1/clinicians",
            &app.admin_token,
            json!({"name": name, "institution_id": institution, "title": title, "specialty": "神经内科",
                   "licence_number": licence, "practice_since": practice_since}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    c["id"].as_i64().unwrap()
}

pub(crate) async fn pair(app: &TestApp, supporter: i64, supported: i64, services: Value) {
    let today = Utc::now().date_naive();
    let (status, p) = app
        .post(
            "/api/v1/pairings",
            &app.admin_token,
            json!({"supporter": {"kind": "institution", "id": supporter},
                   "supported": {"kind": "institution", "value": supported},
                   "services": services, "valid_from": today - Duration::days(30), "valid_to": today + Duration::days(1000)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
}

pub(crate) async fn user_for_clinician(
    app: &TestApp,
    username: &str,
    institution: i64,
    clinician: i64,
) -> String {
    let body = app
        .account(
            json!({"username": username, "display_name": username, "institution_id": institution,
                        "clinician_id": clinician, "roles": ["clinician"]}),
        )
        .await;
    app.login(username, body["password"].as_str().unwrap())
        .await
}

pub(crate) async fn cast(app: &TestApp) -> Cast {
    let county = app.institution_id("台山市人民医院").await;
    let tertiary = app.institution_id("江门市中心医院").await;
    pair(app, tertiary, county, json!(["consult", "imaging_read"])).await;
    let consultant_id = clinician(
        app,
        tertiary,
        "林主任",
        "主任医师",
        Some("110440700000001"),
        20,
    )
    .await;
    let junior_id = clinician(
        app,
        tertiary,
        "陈医生",
        "主治医师",
        Some("110440700000002"),
        2,
    )
    .await;
    let consultant = user_for_clinician(app, "jm.lin", tertiary, consultant_id).await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    let (_, coordinator) = app.user("jm.office", tertiary, &["coordinator"]).await;
    // The consultant is available every day, 08:00 to 20:00 China time, in 30-minute slots.
    available_daily(app, consultant_id, &consultant, "08:00", "20:00").await;
    Cast {
        county,
        tertiary,
        doctor,
        consultant_id,
        consultant,
        junior_id,
        coordinator,
    }
}

/// Makes `clinician` available every day from `start` to `end` (China time), in 30-minute
/// slots, with `token` (theirs or their coordinator's).
pub(crate) async fn available_daily(
    app: &TestApp,
    clinician: i64,
    token: &str,
    start: &str,
    end: &str,
) {
    for weekday in 1..=7 {
        let (status, rule) = app
            .post(
                &format!("/api/v1/clinicians/{clinician}/availability"),
                token,
                json!({"weekday": weekday, "start_time": start, "end_time": end, "slot_minutes": 30}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{rule}");
    }
}

/// A complete request content, with the window starting in a day.
pub(crate) fn content() -> Value {
    let start = Utc::now() + Duration::days(1);
    json!({
        "reason": "基层无神经内科专科医师，需上级医院会诊",
        "purpose": "明确头痛病因并指导下一步治疗",
        "window": {"start": start, "end": start + Duration::days(3)},
        "case_summary": {
            "chief_complaint": "反复头痛三天",
            "history": "三天前无明显诱因出现头痛，以双侧颞部为主，伴恶心，无呕吐",
            "findings": "血压 168/102 mmHg，神经系统查体未见明显异常",
            "question": "是否需要转诊行头颅 CT 检查？"
        },
        "specialty": "神经内科",
        "min_title": "deputy_senior",
        "patient": {"name": "王某某", "sex": "M", "birth_date": "1958-03-02", "id_number": "440781195803020011"},
        "consent": {"given_by": "patient", "at": Utc::now() - Duration::hours(1), "method": "e_consent"}
    })
}

/// The consultant's first free slot inside the window of `content()`.
pub(crate) async fn free_slot(app: &TestApp, c: &Cast, skip: usize) -> Value {
    free_slot_of(app, c.consultant_id, &c.doctor, skip).await
}

/// Clinician `consultant`'s free slot inside the window of `content()`, after `skip`
/// others, as `token` sees the slots.
pub(crate) async fn free_slot_of(
    app: &TestApp,
    consultant: i64,
    token: &str,
    skip: usize,
) -> Value {
    let from = (Utc::now() + Duration::days(1)).date_naive();
    let (status, slots) = app
        .get(
            &format!(
                "/api/v1/clinicians/{consultant}/slots?from={from}&to={}",
                from + Duration::days(2)
            ),
            token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{slots}");
    let window_start = Utc::now() + Duration::days(1) + Duration::minutes(5);
    let fitting: Vec<&Value> = slots
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["start"]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<Utc>>()
                .unwrap()
                > window_start
        })
        .collect();
    fitting[skip]["start"].clone()
}

pub(crate) async fn draft(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, r) = app.post("/api/v1/requests", token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    r
}

pub(crate) async fn step(
    app: &TestApp,
    token: &str,
    id: &Value,
    step: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.post(&format!("/api/v1/requests/{id}/{step}"), token, body)
        .await
}

/// The body of the sign step: the signer's password, asked again.
pub(crate) fn signing(username: &str) -> Value {
    json!({"password": duikou_tests::password_for(username)})
}

pub(crate) async fn ok_step(
    app: &TestApp,
    token: &str,
    id: &Value,
    name: &str,
    body: Value,
) -> Value {
    let (status, r) = step(app, token, id, name, body).await;
    assert_eq!(status, StatusCode::OK, "{name}: {r}");
    r
}

/// The program rule a problem names: the last part of its type.
pub(crate) fn rule(problem: &Value) -> &str {
    problem["type"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
}

/// Drafts and submits a complete consultation; returns its id.
pub(crate) async fn submitted(app: &TestApp, c: &Cast) -> Value {
    let r = draft(
        app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    ok_step(app, &c.doctor, &r["id"], "submit", json!({})).await;
    r["id"].clone()
}

/// Submits a complete consultation and has the consultant accept, schedule and start it.
pub(crate) async fn in_session(app: &TestApp, c: &Cast) -> Value {
    let r = draft(
        app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
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
    let start = free_slot(app, c, 0).await;
    ok_step(
        app,
        &c.coordinator,
        &id,
        "schedule",
        json!({"start": start}),
    )
    .await;
    ok_step(app, &c.consultant, &id, "start", json!({})).await;
    id
}

async fn a_consultation_runs_from_draft_to_closed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    // The draft starts without a patient or consent and is completed later.
    let mut partial = content();
    partial.as_object_mut().unwrap().remove("consent");
    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": partial}),
    )
    .await;
    assert_eq!(r["state"], "draft");
    assert_eq!(
        r["supporter"],
        json!({"kind": "institution", "id": c.tertiary})
    );
    assert_eq!(r["supporter_institution_id"], c.tertiary);
    let id = r["id"].clone();
    let (status, r) = app
        .patch(
            &format!("/api/v1/requests/{id}"),
            &c.doctor,
            json!({"content": {"consent": content()["consent"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");

    let r = ok_step(&app, &c.doctor, &id, "submit", json!({})).await;
    assert_eq!(r["state"], "submitted");
    assert!(r["decision_due_at"].is_string());
    assert_eq!(r["overdue"], false);
    let (_, inbox) = app.get("/api/v1/requests?box=inbox", &c.coordinator).await;
    assert_eq!(inbox[0]["id"], id);
    let r = ok_step(
        &app,
        &c.coordinator,
        &id,
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    assert_eq!(r["state"], "accepted");
    assert_eq!(r["consultant_id"], c.consultant_id);
    let start = free_slot(&app, &c, 0).await;
    let r = ok_step(
        &app,
        &c.coordinator,
        &id,
        "schedule",
        json!({"start": start}),
    )
    .await;
    assert_eq!(r["scheduled_start"], start);
    let local = start
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<Utc>>()
        .unwrap()
        + Duration::hours(8);
    assert_eq!(
        r["scheduled_local"],
        local.format("%Y-%m-%d %H:%M").to_string(),
        "shown in China time"
    );
    assert_eq!(r["state"], "scheduled");
    ok_step(&app, &c.consultant, &id, "start", json!({})).await;

    let (status, ops) = app
        .call(Method::PUT, &format!("/api/v1/requests/{id}/opinions"), Some(&c.consultant), Some(json!({"body": "考虑高血压相关头痛，建议规律降压，一周后复诊；如头痛加重行头颅 CT。"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{ops}");
    let r = ok_step(&app, &c.consultant, &id, "sign", signing("jm.lin")).await;
    assert_eq!(r["state"], "opinion_signed");
    let (_, opinions) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &c.doctor)
        .await;
    assert_eq!(opinions.as_array().unwrap().len(), 1);
    assert_eq!(opinions[0]["status"], "signed");
    ok_step(&app, &c.doctor, &id, "acknowledge", json!({})).await;
    let r = ok_step(&app, &c.doctor, &id, "close", json!({})).await;
    assert_eq!(r["state"], "closed");

    let states: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "draft",
            "submitted",
            "accepted",
            "scheduled",
            "in_session",
            "opinion_signed",
            "acknowledged",
            "closed"
        ]
    );
    assert!(
        r["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor_user_id"].is_i64() && e["at"].is_string())
    );

    // The program sees it in the pairing's report for this year.
    let today = Utc::now().date_naive();
    let (_, pairings) = app
        .get(
            &format!("/api/v1/pairings?supporter_institution_id={}&supported_institution_id={}&date={today}", c.tertiary, c.county),
            &app.admin_token,
        )
        .await;
    let year = (Utc::now() + Duration::hours(8)).format("%Y");
    let (status, report) = app
        .get(
            &format!(
                "/api/v1/reports/pairings/{}?period={year}",
                pairings[0]["id"]
            ),
            &c.coordinator,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["requests_by_state"], json!({"closed": 1}));
    assert_eq!(report["sessions_held"], 1);
    assert!(report["median_hours_to_accept"].as_f64().unwrap() >= 0.0);
    assert!(report["median_hours_to_opinion"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        report["targets"][0]["met"],
        Value::Null,
        "a county hospital has no villages"
    );
    app.stop().await;
}

async fn requests_go_only_to_the_designated_supporter(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let before = app.db.snapshot().await.unwrap();
    let other = app.institution_id("江门市人民医院").await;
    let (status, p) = app
        .post("/api/v1/requests", &c.doctor, json!({"kind": "consultation", "addressed_to": {"kind": "institution", "id": other}, "content": content()}))
        .await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not-designated-supporter",
    );
    assert_eq!(p["field"], "addressed_to");
    assert!(
        p["detail"].as_str().unwrap().contains("江门市中心医院"),
        "the refusal names the designated supporter: {p}"
    );

    // Pathology is not covered by the current pairing; the Taishan system's pairing that
    // covered it ended in 2018.
    let (status, p) = app
        .post(
            "/api/v1/requests",
            &c.doctor,
            json!({"kind": "pathology_read", "content": content()}),
        )
        .await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "outside-pairing-period",
    );

    // An institution no pairing names.
    let (_, lone) = app
        .post("/api/v1/institutions", &app.admin_token, json!({"name": "新建卫生院", "level": "township", "kind": "health_centre", "region": "广东省/阳江市/阳春市"}))
        .await;
    let lone = lone["id"].as_i64().unwrap();
    let (_, lone_doctor) = app.user("yc.doctor", lone, &["clinician"]).await;
    let (status, p) = app
        .post(
            "/api/v1/requests",
            &lone_doctor,
            json!({"kind": "consultation", "content": content()}),
        )
        .await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unpaired-supporter",
    );
    // Paired for imaging only: a consultation is a service not covered.
    pair(&app, c.tertiary, lone, json!(["imaging_read"])).await;
    let (status, p) = app
        .post(
            "/api/v1/requests",
            &lone_doctor,
            json!({"kind": "consultation", "content": content()}),
        )
        .await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "service-not-covered",
    );

    // Only clinicians ask.
    let (status, _) = app
        .post(
            "/api/v1/requests",
            &c.coordinator,
            json!({"kind": "consultation", "content": content()}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut after = app.db.snapshot().await.unwrap();
    // The refusals above changed nothing but the accounts, pairing and institution the test made.
    for table in ["consult_request", "request_event"] {
        let b = before.iter().find(|(t, _)| t == table);
        let a = after.iter_mut().find(|(t, _)| t == table);
        assert_eq!(b.map(|x| x.1), a.map(|x| x.1), "{table}");
    }
    app.stop().await;
}

async fn an_incomplete_request_is_not_submitted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    for (edit, expected_rule, field) in [
        (json!({"consent": null}), "missing-consent", "consent"),
        (
            json!({"consent": {"given_by": "relative", "name": "王某", "at": Utc::now(), "method": "e_consent"}}),
            "missing-consent",
            "consent.relation",
        ),
        (
            json!({"case_summary": {"chief_complaint": "头痛", "history": "三天", "findings": "", "question": "怎么办"}}),
            "thin-case-summary",
            "case_summary.chief_complaint",
        ),
        (json!({"reason": null}), "incomplete-request", "reason"),
        (
            json!({"min_title": null}),
            "incomplete-request",
            "min_title",
        ),
        (json!({"patient": null}), "incomplete-request", "patient"),
    ] {
        let mut body = content();
        for (k, v) in edit.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        let r = draft(
            &app,
            &c.doctor,
            json!({"kind": "consultation", "content": body}),
        )
        .await;
        let (status, p) = step(&app, &c.doctor, &r["id"], "submit", json!({})).await;
        assert_refused(status, &p, StatusCode::UNPROCESSABLE_ENTITY, expected_rule);
        assert_eq!(p["field"], field, "{p}");
        if expected_rule == "thin-case-summary" {
            let detail = p["detail"].as_str().unwrap();
            assert!(
                detail.contains("findings is missing")
                    && detail.contains("history has 2 characters"),
                "{detail}"
            );
        }
        let (_, still) = app
            .get(&format!("/api/v1/requests/{}", r["id"]), &c.doctor)
            .await;
        assert_eq!(
            still["state"], "draft",
            "a refused submission changes nothing"
        );
        assert_eq!(still["version"], r["version"]);
    }
    app.stop().await;
}

async fn only_a_qualified_consultant_is_assigned(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let id = submitted(&app, &c).await;
    // Two years of practice and an intermediate title, where deputy senior is asked for.
    let (status, p) = step(
        &app,
        &c.coordinator,
        &id,
        "accept",
        json!({"consultant_id": c.junior_id}),
    )
    .await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "consultant-not-qualified",
    );
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("three years") && detail.contains("deputy_senior"),
        "{detail}"
    );
    // No licence on record.
    let unlicensed = clinician(&app, c.tertiary, "赵主任", "主任医师", None, 15).await;
    let (_, p) = step(
        &app,
        &c.coordinator,
        &id,
        "accept",
        json!({"consultant_id": unlicensed}),
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("licence"), "{p}");
    // Someone of another institution.
    let elsewhere = clinician(&app, c.county, "县医生", "主任医师", Some("1"), 15).await;
    let (status, p) = step(
        &app,
        &c.coordinator,
        &id,
        "accept",
        json!({"consultant_id": elsewhere}),
    )
    .await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "consultant-not-qualified",
    );
    let (_, p) = step(&app, &c.coordinator, &id, "accept", json!({})).await;
    assert_eq!(p["field"], "consultant_id");
    let (_, r) = app.get(&format!("/api/v1/requests/{id}"), &c.doctor).await;
    assert_eq!(r["state"], "submitted");

    // A decline needs both a code and words.
    let (status, p) = step(
        &app,
        &c.coordinator,
        &id,
        "decline",
        json!({"reason_code": "no_specialist"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["field"], "reason_text");
    let r = ok_step(
        &app,
        &c.coordinator,
        &id,
        "decline",
        json!({"reason_code": "no_specialist", "reason_text": "本周神经内科专家外出"}),
    )
    .await;
    assert_eq!(r["state"], "declined");
    assert_eq!(r["decline_code"], "no_specialist");
    app.stop().await;
}

async fn steps_out_of_order_and_from_the_wrong_side_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    let id = r["id"].clone();
    let (status, p) = step(
        &app,
        &c.coordinator,
        &id,
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the supporter does not see drafts: {p}"
    );
    ok_step(&app, &c.doctor, &id, "submit", json!({})).await;
    let (status, p) = step(
        &app,
        &c.doctor,
        &id,
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the requester does not accept its own request: {p}"
    );
    let (status, p) = step(&app, &c.doctor, &id, "acknowledge", json!({})).await;
    assert_refused(status, &p, StatusCode::CONFLICT, "step-out-of-order");
    ok_step(
        &app,
        &c.coordinator,
        &id,
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    let (status, p) = step(&app, &c.consultant, &id, "sign", signing("jm.lin")).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a consultation is signed after its session: {p}"
    );
    let (status, p) = step(&app, &c.coordinator, &id, "schedule", json!({"start": Utc::now() + Duration::days(30), "end": Utc::now() + Duration::days(30) + Duration::hours(1)})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "outside the window: {p}"
    );
    let (status, _) = step(&app, &c.doctor, &id, "launch", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an unknown step");
    let (status, p) = step(&app, &c.coordinator, &id, "start", json!({"version": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    app.stop().await;
}

async fn a_signed_opinion_is_amended_never_changed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let id = in_session(&app, &c).await;
    let put = |body: &'static str| {
        let app = &app;
        let token = c.consultant.clone();
        let id = id.clone();
        async move {
            app.call(
                Method::PUT,
                &format!("/api/v1/requests/{id}/opinions"),
                Some(&token),
                Some(json!({"body": body})),
            )
            .await
        }
    };
    let (status, _) = put("第一版意见：建议规律降压治疗，一周后复诊。").await;
    assert_eq!(status, StatusCode::OK);
    let (_, seen) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &c.doctor)
        .await;
    assert!(
        seen.as_array().unwrap().is_empty(),
        "the requester never sees a draft: {seen}"
    );
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/requests/{id}/opinions"),
            Some(&c.doctor),
            Some(json!({"body": "requester edits the opinion"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    ok_step(&app, &c.consultant, &id, "sign", signing("jm.lin")).await;
    ok_step(&app, &c.doctor, &id, "acknowledge", json!({})).await;

    // Writing again makes an amendment: version 2, linked to version 1, which stays.
    let (status, all) = put("修订意见：复查血压仍高，加用氨氯地平 5mg 每日一次。").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all[0]["status"], "signed");
    assert_eq!(all[0]["body"], "第一版意见：建议规律降压治疗，一周后复诊。");
    assert_eq!(all[1]["status"], "draft");
    assert_eq!(all[1]["amends_id"], all[0]["id"]);
    let (_, seen) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &c.doctor)
        .await;
    assert_eq!(
        seen.as_array().unwrap().len(),
        1,
        "still only the signed version: {seen}"
    );
    let r = ok_step(&app, &c.consultant, &id, "sign", signing("jm.lin")).await;
    assert_eq!(
        r["state"], "opinion_signed",
        "the amendment is acknowledged again"
    );
    let (_, seen) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &c.doctor)
        .await;
    let versions: Vec<i64> = seen
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2]);
    assert_eq!(
        seen[0]["body"],
        "第一版意见：建议规律降压治疗，一周后复诊。"
    );
    let (status, p) = step(&app, &c.consultant, &id, "sign", signing("jm.lin")).await;
    assert_eq!(status, StatusCode::CONFLICT, "nothing left to sign: {p}");
    app.stop().await;
}

async fn another_county_can_neither_read_nor_change_a_request_and_is_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let id = submitted(&app, &c).await;
    let kaiping = app.institution_id("开平市中心医院").await;
    let (intruder_id, intruder) = app.user("kp.doctor", kaiping, &["clinician"]).await;
    let (status, p) = app.get(&format!("/api/v1/requests/{id}"), &intruder).await;
    assert_refused(status, &p, StatusCode::FORBIDDEN, "wrong-institution");
    assert!(
        !p.to_string().contains("王某某"),
        "no patient data in a refusal"
    );
    let (status, _) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &intruder)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = step(&app, &intruder, &id, "cancel", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .patch(
            &format!("/api/v1/requests/{id}"),
            &intruder,
            json!({"content": {"reason": "mine"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, outbox) = app.get("/api/v1/requests", &intruder).await;
    assert!(outbox.as_array().unwrap().is_empty());
    // The administrator runs the program but is not one of the two institutions.
    let (status, _) = app
        .get(&format!("/api/v1/requests/{id}"), &app.admin_token)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, log) = app
        .get(
            &format!("/api/v1/audit?user_id={intruder_id}&outcome=denied"),
            &app.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in ["read", "read_opinions", "cancel", "update"] {
        assert!(
            actions.contains(&action),
            "{action} attempt is audited: {log}"
        );
    }
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|e| e["object_id"] == id && e["institution_id"] == kaiping)
    );
    let (_, reads) = app
        .get(
            &format!("/api/v1/audit?object_kind=request&object_id={id}&outcome=allowed"),
            &app.admin_token,
        )
        .await;
    assert!(
        reads
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "submit")
    );
    let (status, _) = app.get("/api/v1/audit", &c.doctor).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only administrators read the audit log"
    );
    for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
        let (status, _) = app
            .call(
                method.clone(),
                "/api/v1/audit",
                Some(&app.admin_token),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}: the audit log cannot be edited"
        );
    }
    app.stop().await;
}

async fn remote_villages_are_served_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let village = app.institution_id("北陡镇石蕉村卫生站").await;
    pair(&app, c.tertiary, village, json!(["consult"])).await;
    let (_, village_doctor) = app.user("sj.doctor", village, &["clinician"]).await;
    let mut ids = Vec::new();
    for (token, urgency) in [
        (&c.doctor, "normal"),
        (&village_doctor, "normal"),
        (&c.doctor, "urgent"),
    ] {
        let r = draft(
            &app,
            token,
            json!({"kind": "consultation", "urgency": urgency, "content": content()}),
        )
        .await;
        ok_step(&app, token, &r["id"], "submit", json!({})).await;
        ids.push(r["id"].clone());
    }
    let (_, inbox) = app
        .get("/api/v1/requests?box=inbox&state=submitted", &c.coordinator)
        .await;
    let order: Vec<Value> = inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    // Urgent first; then the remote village before the county hospital that asked earlier.
    assert_eq!(order, [ids[2].clone(), ids[1].clone(), ids[0].clone()]);
    assert_eq!(inbox[1]["remote"], true);
    app.stop().await;
}

/// A webhook that answers with a redirect to another address on this machine: the
/// gateway does not follow it (the delivery fails and is retried), and the address it
/// points to hears nothing.
async fn a_webhook_answering_with_a_redirect_is_not_followed(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.notify.interval_ms = 100;
        c.notify.retry_base_ms = 100;
    })
    .await;
    let c = cast(&app).await;
    let (target, reached) = receiver().await;
    let redirects = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = redirects.clone();
    let redirector = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let (counted, target) = (counted.clone(), target.clone());
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, target)],
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirector).await });
    let (status, p) = app
        .call(
            Method::PUT,
            &format!("/api/v1/institutions/{}/webhook", c.tertiary),
            Some(&c.coordinator),
            Some(json!({"url": url, "secret": "a shared secret of the hospital"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{p}");
    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    ok_step(&app, &c.doctor, &r["id"], "submit", json!({})).await;
    eventually(
        std::time::Duration::from_secs(10),
        "the redirecting webhook called, and called again",
        async || match redirects.load(std::sync::atomic::Ordering::SeqCst) {
            n if n >= 2 => Ok(()),
            n => Err(format!("{n} calls")),
        },
    )
    .await;
    // A client that followed the first redirect would have called the target before it
    // gave up on that delivery, so before the second call.
    assert!(
        reached.lock().unwrap().is_empty(),
        "the redirect's target heard nothing"
    );
    app.stop().await;
}
