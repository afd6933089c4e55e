//! The first run of a fresh installation, in the browser only: the administrator's
//! one-time password is replaced, and the set-up checklist leads to a program a county
//! doctor can book in.

use duikou_tests::browser::{on_backend, run_scenario};
use duikou_tests::{Backend, TestApp, on_both_backends};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(a_fresh_installation_is_set_up_from_the_pages_by_following_the_checklist);

async fn a_fresh_installation_is_set_up_from_the_pages_by_following_the_checklist(
    backend: Backend,
) {
    let app = TestApp::spawn_first_run(backend).await;
    let (username, password) = app.first_admin.clone();
    let out = run_scenario(
        "first_run",
        &on_backend("first_run", backend),
        &app.base,
        json!({"admin": {"username": username, "password": password}}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    // What the pages did is what the API now holds: the doctor's reset password is
    // one-time, and it logs in.
    let doctor = &out["doctor"];
    let token = app
        .login(
            doctor["username"].as_str().unwrap(),
            doctor["password"].as_str().unwrap(),
        )
        .await;
    let (status, me) = app.get("/api/v1/me", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["must_change_password"], true);
    app.stop().await;
}
