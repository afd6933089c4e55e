//! What waits for each person: notices written with each step of a request, to the
//! people the step concerns and nobody else; the summary the pages count from; and its
//! stream of Server-Sent Events.

use duikou_tests::{Backend, TestApp, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::requests::{cast, content, draft, free_slot, ok_step, signing, submitted};

on_both_backends!(
    each_step_of_a_consultation_tells_the_people_it_concerns,
    notices_reach_email_and_the_chat_group_robot_without_patient_data,
    the_people_of_a_session_are_reminded_once_a_quarter_of_an_hour_before,
    a_coordinator_sets_the_group_robot_in_the_pages_and_sees_its_message_delivered,
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
    let told = vec![("submitted".to_owned(), id, true)];
    for token in [&c.coordinator, &c.consultant, &other_clinician] {
        assert_eq!(unread(&app, token).await, told);
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
    assert_eq!(unread(&app, &c.coordinator).await, told);
    assert_eq!(
        unread(&app, &other_clinician).await,
        told,
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
    ok_step(&app, &c.consultant, &r["id"], "sign", signing("jm.lin")).await;
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
        ("/api/v1/notifications?before=yesterday", "before"),
        ("/api/v1/notifications?unread=perhaps", "unread"),
    ] {
        let (status, p) = app.get(path, &c.doctor).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(p["field"], field, "{p}");
    }
    // Declined by the consultant: the doctor hears of it, the consultant does not.
    let second = submitted(&app, &c).await;
    ok_step(
        &app,
        &c.consultant,
        &second,
        "decline",
        json!({"reason_code": "no_specialist", "reason_text": "本周神经内科专家外出"}),
    )
    .await;
    let second = second.as_i64().unwrap();
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
    let app = TestApp::spawn_with(backend, |c| c.notify.max_streams = 2).await;
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
    submitted(&app, &c).await;
    let then = next(&mut stream, &mut buffer).await;
    assert_eq!(
        (then["unread"].as_i64(), then["inbox"].as_i64()),
        (Some(1), Some(1)),
        "{then}"
    );
    assert!(then["newest"].as_i64().unwrap() > 0);
    // Streams are bounded: with two open (the limit here), a third is asked to come back.
    let open = || {
        app.client
            .get(format!("{}/api/v1/notifications/stream", app.base))
            .bearer_auth(&c.doctor)
            .send()
    };
    let second = open().await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    let third = open().await.unwrap();
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(third.headers()["retry-after"], "5");
    drop(second);
    duikou_tests::eventually(
        std::time::Duration::from_secs(40),
        "a place again",
        async || {
            let again = open().await.unwrap();
            if again.status() == StatusCode::OK {
                Ok(())
            } else {
                Err(again.status().to_string())
            }
        },
    )
    .await;
    drop(stream);
    let (status, _) = app
        .call(Method::GET, "/api/v1/notifications/stream", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// A real SMTP server (aiosmtpd from PyPI) writing what it receives into a Maildir.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server that requires STARTTLS with the PKI's server certificate.
    fn start_tls(pki: &duikou_tests::certs::TestPki) -> Self {
        use duikou_tests::certs::arg;
        Self::start_with(&[
            "--tlscert",
            &arg(&pki.path("server.pem")),
            "--tlskey",
            &arg(&pki.path("server.key")),
        ])
    }

    fn start_with(options: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = duikou_tests::dcmtk::free_port();
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(options)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd runs (tests/run installs it from PyPI)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "aiosmtpd listens");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self { child, port, dir }
    }

    /// The messages received so far, as text.
    fn messages(&self) -> Vec<String> {
        let new = self.dir.path().join("mail").join("new");
        let Ok(entries) = std::fs::read_dir(new) else {
            return Vec::new();
        };
        entries
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A chat group robot's incoming webhook: it answers as the robots do and keeps what came
/// (query, body).
async fn chat_robot() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
) {
    use std::sync::{Arc, Mutex};
    let calls: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/robot/send",
        axum::routing::post(
            move |uri: axum::http::Uri, axum::Json(body): axum::Json<Value>| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push((uri.query().unwrap_or_default().to_owned(), body));
                    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/robot/send", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

/// E-mail goes over STARTTLS to a server whose certificate the configured CA signed; a
/// gateway that does not trust it sends nothing, and the office's deliveries say why.
#[tokio::test]
async fn email_goes_over_starttls_only_to_a_server_the_gateway_trusts() {
    let pki = duikou_tests::certs::TestPki::new();
    let smtp = SmtpServer::start_tls(&pki);
    let port = smtp.port;
    for trusted in [false, true] {
        let ca = pki.path("ca.pem");
        let app = TestApp::spawn_with(Backend::Sqlite, move |c| {
            c.notify.interval_ms = 100;
            c.notify.retry_base_ms = 60_000;
            c.notify.smtp_url = Some(duikou::config::Secret::new(format!(
                "smtp://127.0.0.1:{port}?tls=required"
            )));
            c.notify.smtp_ca = trusted.then_some(ca);
        })
        .await;
        let c = cast(&app).await;
        let (status, choice) = app
            .call(
                Method::PUT,
                "/api/v1/me/notices",
                Some(&c.consultant),
                Some(json!({"email": "lin@jmzx.example", "email_notices": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{choice}");
        let before = smtp.messages().len();
        submitted(&app, &c).await;
        let deliveries = format!("/api/v1/institutions/{}/deliveries", c.tertiary);
        let email = duikou_tests::eventually(
            std::time::Duration::from_secs(15),
            "the e-mail delivered or failed",
            async || {
                let (_, list) = app.get(&deliveries, &c.coordinator).await;
                let email = list
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|d| d["channel"] == "email")
                    .cloned();
                match email {
                    Some(d) if !d["delivered_at"].is_null() || !d["last_error"].is_null() => Ok(d),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        if trusted {
            assert!(email["last_error"].is_null(), "{email}");
            assert_eq!(smtp.messages().len(), before + 1);
        } else {
            assert!(email["delivered_at"].is_null(), "{email}");
            let error = email["last_error"].as_str().unwrap();
            assert!(error.contains("SMTP"), "{error}");
            assert_eq!(smtp.messages().len(), before, "nothing sent in the clear");
        }
        app.stop().await;
    }
}

async fn notices_reach_email_and_the_chat_group_robot_without_patient_data(backend: Backend) {
    let smtp = SmtpServer::start();
    let port = smtp.port;
    let app = TestApp::spawn_with(backend, move |c| {
        c.notify.interval_ms = 100;
        c.notify.smtp_url = Some(duikou::config::Secret::new(format!(
            "smtp://127.0.0.1:{port}"
        )));
        c.notify.smtp_from = "对口远程医疗 <duikou@jmzx.example>".into();
        c.notify.public_url = Some("https://duikou.jiangmen.example".into());
    })
    .await;
    let c = cast(&app).await;

    // The consultant chooses e-mail; bad choices are refused naming the field.
    for (body, field) in [
        (
            json!({"email": "not an address", "email_notices": true}),
            "email",
        ),
        (json!({"email": null, "email_notices": true}), "email"),
        (
            json!({"email": "lin@jmzx.example", "email_notices": true, "sms": true}),
            "sms",
        ),
    ] {
        let (status, p) = app
            .call(
                Method::PUT,
                "/api/v1/me/notices",
                Some(&c.consultant),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert_eq!(p["field"], field, "{body}: {p}");
    }
    let (status, choice) = app
        .call(
            Method::PUT,
            "/api/v1/me/notices",
            Some(&c.consultant),
            Some(json!({"email": " lin@jmzx.example ", "email_notices": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{choice}");
    assert_eq!(
        choice,
        json!({"email": "lin@jmzx.example", "email_notices": true, "email_available": true})
    );

    // The tertiary hospital's office sets its DingTalk group robot, signed; a county
    // doctor may not, nor point it at something that is no URL.
    let (url, calls) = chat_robot().await;
    let path = format!("/api/v1/institutions/{}/chat-robot", c.tertiary);
    let robot = json!({"kind": "dingtalk", "url": format!("{url}?access_token=abc"), "secret": "SEC-robot"});
    let (status, _) = app
        .call(Method::PUT, &path, Some(&c.doctor), Some(robot.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (body, field) in [
        (json!({"kind": "wechat", "url": url}), "kind"),
        (json!({"kind": "wecom", "url": "ftp://robot"}), "url"),
        (
            json!({"kind": "dingtalk", "url": url, "secret": "S".repeat(201)}),
            "secret",
        ),
        (
            json!({"kind": "feishu", "url": url, "colour": "red"}),
            "colour",
        ),
    ] {
        let (status, p) = app
            .call(Method::PUT, &path, Some(&c.coordinator), Some(body))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(p["field"], field, "{p}");
    }
    let (status, p) = app
        .call(Method::PUT, &path, Some(&c.coordinator), Some(robot))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{p}");
    let (_, shown) = app.get(&path, &c.coordinator).await;
    assert_eq!(shown["signed"], true);
    assert!(
        shown.get("secret").is_none(),
        "the secret is never shown: {shown}"
    );
    // The deliveries are the office's to see, in pages of at most 1000.
    let deliveries = format!("/api/v1/institutions/{}/deliveries", c.tertiary);
    let (status, _) = app.get(&deliveries, &c.doctor).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in ["?limit=0", "?limit=1001", "?limit=all"] {
        let (status, p) = app.get(&format!("{deliveries}{bad}"), &c.coordinator).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {p}");
        assert_eq!(p["field"], "limit", "{bad}: {p}");
    }

    // An urgent request: an e-mail to the consultant, a message to the group; a normal
    // one: an e-mail only.
    let urgent = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content(), "urgency": "urgent"}),
    )
    .await;
    ok_step(&app, &c.doctor, &urgent["id"], "submit", json!({})).await;
    submitted(&app, &c).await;
    duikou_tests::eventually(
        std::time::Duration::from_secs(15),
        "two e-mails and a chat message",
        async || {
            let (mails, chats) = (smtp.messages().len(), calls.lock().unwrap().len());
            if mails >= 2 && chats >= 1 {
                Ok(())
            } else {
                Err(format!("{mails} e-mails, {chats} chat messages"))
            }
        },
    )
    .await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 2, "{mails:?}");
    for mail in &mails {
        assert!(mail.contains("lin@jmzx.example"), "{mail}");
        assert!(
            !mail.contains("王某某") && !mail.contains("440781195803020011"),
            "no patient data: {mail}"
        );
    }
    let urgent_id = urgent["id"].as_i64().unwrap();
    let decoded: Vec<String> = mails.iter().map(|m| decode_mail(m)).collect();
    assert!(
        decoded.iter().any(
            |m| m.contains(&format!("收到新的远程会诊申请 #{urgent_id}"))
                && m.contains(&format!(
                    "https://duikou.jiangmen.example/requests/{urgent_id}"
                ))
        ),
        "{decoded:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let chats = calls.lock().unwrap().clone();
    assert_eq!(
        chats.len(),
        1,
        "only the urgent one reaches the group: {chats:?}"
    );
    let (query, body) = &chats[0];
    assert_eq!(body["msgtype"], "text", "DingTalk's shape: {body}");
    let text = body["text"]["content"].as_str().unwrap();
    assert!(
        text.contains(&format!("#{urgent_id}")) && text.contains("紧急"),
        "{text}"
    );
    assert!(!text.contains("王某某"), "no patient data: {text}");
    // Signed as DingTalk checks it: HMAC-SHA256 of "timestamp\nsecret", in Base64.
    let pairs: std::collections::HashMap<String, String> =
        reqwest::Url::parse(&format!("http://robot/?{query}"))
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
    assert_eq!(pairs["access_token"], "abc");
    let timestamp = &pairs["timestamp"];
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"SEC-robot").unwrap();
    mac.update(format!("{timestamp}\nSEC-robot").as_bytes());
    use base64::Engine as _;
    assert_eq!(
        pairs["sign"],
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    app.stop().await;
}

/// The text of an e-mail with its encoded words and quoted-printable or Base64 body
/// decoded, enough to read what it says.
fn decode_mail(raw: &str) -> String {
    use base64::Engine as _;
    let (head, body) = raw
        .split_once("\n\n")
        .or_else(|| raw.split_once("\r\n\r\n"))
        .unwrap_or((raw, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: base64")
    {
        let joined: String = body.split_whitespace().collect();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(joined)
                .unwrap(),
        )
        .unwrap()
    } else if head.to_ascii_lowercase().contains("quoted-printable") {
        let joined = body.replace("=\r\n", "").replace("=\n", "");
        let mut bytes = Vec::new();
        let mut rest = joined.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            if b == b'=' && tail.len() >= 2 {
                bytes.push(
                    u8::from_str_radix(std::str::from_utf8(&tail[..2]).unwrap(), 16).unwrap(),
                );
                rest = &tail[2..];
            } else {
                bytes.push(b);
                rest = tail;
            }
        }
        String::from_utf8(bytes).unwrap()
    } else {
        body.to_owned()
    };
    format!("{head}\n\n{body}")
}

async fn the_people_of_a_session_are_reminded_once_a_quarter_of_an_hour_before(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.notify.interval_ms = 100).await;
    let c = cast(&app).await;
    let r = submitted(&app, &c).await;
    ok_step(
        &app,
        &c.coordinator,
        &r,
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    let start = free_slot(&app, &c, 0).await;
    ok_step(
        &app,
        &c.coordinator,
        &r,
        "schedule",
        json!({"start": start}),
    )
    .await;
    let start: chrono::DateTime<chrono::Utc> = serde_json::from_value(start).unwrap();
    let id = r.as_i64().unwrap();
    let starting = async |username: &str| {
        let token = app
            .login(username, &duikou_tests::password_for(username))
            .await;
        unread(&app, &token)
            .await
            .into_iter()
            .filter(|n| n.0 == "starting" && n.1 == id)
            .count()
    };
    assert_eq!(starting("ts.doctor").await, 0, "not yet");
    // Ten minutes before the start, by the gateway's clock.
    let ahead = start - chrono::Duration::minutes(10) - app.clock.now();
    app.clock.advance(ahead.to_std().unwrap());
    duikou_tests::eventually(
        std::time::Duration::from_secs(10),
        "the reminder",
        async || match starting("ts.doctor").await {
            0 => Err("no reminder yet".to_owned()),
            n => Ok(n),
        },
    )
    .await;
    // A few more passes of the notifier: still one each.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(starting("ts.doctor").await, 1);
    assert_eq!(starting("jm.lin").await, 1, "the consultant too");
    assert_eq!(
        starting("jm.office").await,
        0,
        "not the office that scheduled it"
    );
    app.stop().await;
}

async fn a_coordinator_sets_the_group_robot_in_the_pages_and_sees_its_message_delivered(
    backend: Backend,
) {
    use duikou_tests::browser::{on_backend, run_scenario};
    let app = TestApp::spawn_with(backend, |c| c.notify.interval_ms = 100).await;
    let c = cast(&app).await;
    let (url, calls) = chat_robot().await;
    let who = |username: &str| json!({"username": username, "password": duikou_tests::password_for(username)});
    let out = run_scenario(
        "manage_notices",
        &on_backend("manage_notices", backend),
        &app.base,
        json!({"coordinator": who("jm.office"), "doctor": who("ts.doctor"), "robot": url, "content": content()}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let chats = calls.lock().unwrap().clone();
    assert_eq!(chats.len(), 1, "{chats:?}");
    assert_eq!(
        chats[0].1["msgtype"], "text",
        "WeCom's shape: {:?}",
        chats[0].1
    );
    assert!(
        chats[0].1["text"]["content"]
            .as_str()
            .unwrap()
            .contains(&format!("#{}", out["request"])),
        "{chats:?}"
    );
    let (_, robot) = app
        .get(
            &format!("/api/v1/institutions/{}/chat-robot", c.tertiary),
            &c.coordinator,
        )
        .await;
    assert_eq!(robot["kind"], "wecom");
    app.stop().await;
}
