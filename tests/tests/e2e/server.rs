//! The real `duikou` binary: first start, second start, SIGTERM, HTTPS, health, metrics
//! and the OpenAPI document.

use std::process::Command;
use std::time::Duration;

use duikou_tests::process::Served;
use duikou_tests::{Backend, TestApp, TestDb, duikou_binary, on_both_backends};
use reqwest::StatusCode;

on_both_backends!(
    the_server_starts_twice_on_the_same_data_without_changes_and_stops_on_sigterm,
    health_metrics_and_openapi_answer
);

async fn the_server_starts_twice_on_the_same_data_without_changes_and_stops_on_sigterm(
    backend: Backend,
) {
    let db = TestDb::new(backend).await.unwrap();
    let first = Served::start(&db, &[], &[]);
    let health = reqwest::get(format!("{}/healthz", first.base))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let password_line = first
        .stdout
        .recv_timeout(Duration::from_secs(5))
        .expect("the one-time password is printed");
    let password = password_line.rsplit(": ").next().unwrap().trim().to_owned();
    assert!(password.len() >= 20, "{password_line}");
    let status = first.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let after_first = db.snapshot().await.unwrap();
    assert!(
        after_first.iter().any(|(t, n)| t == "pairing" && *n == 107),
        "{after_first:?}"
    );

    let second = Served::start(&db, &[], &[]);
    let login = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", second.base))
        .json(&serde_json::json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK, "the printed password works");
    let status = second.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let mut after_second = db.snapshot().await.unwrap();
    // The login made a session; nothing else may differ.
    let sessions = after_second
        .iter_mut()
        .find(|(t, _)| t == "user_session")
        .unwrap();
    assert_eq!(sessions.1, 1);
    sessions.1 = 0;
    assert_eq!(after_first, after_second, "a second start changes nothing");
}

async fn health_metrics_and_openapi_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let get = |path: &'static str| {
        let app = &app;
        async move {
            app.client
                .get(format!("{}{path}", app.base))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(get("/readyz").await.status(), StatusCode::OK);
    let _ = app.get("/api/v1/institutions", &app.admin_token).await;
    let metrics = get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"duikou_http_requests_total{method="GET",route="/api/v1/institutions",status="200"} 1"#), "{metrics}");
    let openapi: serde_json::Value = get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/institutions",
        "/clinicians",
        "/teams",
        "/pairings",
        "/pairings/{id}",
        "/pairings/{id}/history",
        "/pairings/{id}/end",
        "/supporters",
        "/requests",
        "/requests/{id}/{step}",
        "/requests/{id}/opinions",
        "/requests/{id}/attachments",
        "/clinicians/{id}/slots",
        "/teaching",
        "/teaching/{id}/enrol",
        "/ward-rounds",
        "/reports/pairings/{id}",
        "/audit",
        "/visits",
        "/institutions/{id}/webhook",
        "/users",
        "/auth/login",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} is documented");
    }
    app.stop().await;
}

#[tokio::test]
async fn user_add_creates_an_account_whose_printed_password_works() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let out = Command::new(duikou_binary())
        .args([
            "user",
            "add",
            "--username",
            "ts.radiology",
            "--institution",
            "台山市人民医院",
        ])
        .args(["--role", "radiologist", "--role", "clinician"])
        .env("DUIKOU_DATABASE_URL", &app.db.url)
        .env("DUIKOU_DATA_DIR", app.db.dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let password = stdout.trim().rsplit(": ").next().unwrap();
    let token = app.login("ts.radiology", password).await;
    let (_, me) = app.get("/api/v1/me", &token).await;
    assert_eq!(me["roles"], serde_json::json!(["clinician", "radiologist"]));
    assert_eq!(
        me["institution_id"],
        app.institution_id("台山市人民医院").await
    );

    let unknown = Command::new(duikou_binary())
        .args([
            "user",
            "add",
            "--username",
            "x.y",
            "--institution",
            "不存在医院",
            "--role",
            "trainee",
        ])
        .env("DUIKOU_DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no institution 不存在医院"));
    app.stop().await;
}

#[tokio::test]
async fn self_signed_https_serves_the_api() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let served = Served::start(&db, &["--self-signed"], &[]);
    assert!(served.base.starts_with("https://"));
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/healthz", served.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(db.dir.path().join("tls/self-signed.crt").exists());
    assert!(served.terminate().success());
}
