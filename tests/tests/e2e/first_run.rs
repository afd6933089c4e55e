//! The first run of a fresh installation, in the browser only: the administrator's
//! one-time password is replaced, the set-up checklist leads through the management pages
//! until it is empty (a pairing in force, a qualified consultant with hours and an
//! account, a county doctor's and a radiologist's accounts, the county's DICOM node, the
//! tertiary hospital's destination tested with a C-ECHO to a DCMTK `storescp`), and the
//! county doctor then books with that consultant.

use duikou_tests::browser::{on_backend, run_scenario};
use duikou_tests::dcmtk::Storescp;
use duikou_tests::{Backend, TestApp, on_both_backends};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(a_fresh_installation_is_set_up_from_the_pages_by_following_the_checklist);

async fn a_fresh_installation_is_set_up_from_the_pages_by_following_the_checklist(
    backend: Backend,
) {
    let app = TestApp::spawn_first_run(backend).await;
    let pacs = Storescp::start("JMZX_PACS");
    let (username, password) = app.first_admin.clone();
    let out = run_scenario(
        "first_run",
        &on_backend("first_run", backend),
        &app.base,
        json!({"admin": {"username": username, "password": password},
               "pacs": {"ae_title": "JMZX_PACS", "port": pacs.addr.port()}}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    // What the pages did is what the API now holds: the request is booked with the
    // consultant set up on the way, who logs in with the password they chose.
    let consultant = app.login("jm.lin", "林志远自己设定的新密码2026").await;
    let id = out["request"].as_i64().expect("the request's id");
    let (status, request) = app
        .get(&format!("/api/v1/requests/{id}"), &consultant)
        .await;
    assert_eq!(status, StatusCode::OK, "{request}");
    assert_eq!(request["state"], "scheduled");
    assert!(request["scheduled_start"].is_string(), "{request}");
    app.stop().await;
}
