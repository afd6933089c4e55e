//! The imaging section of the administration pages in Chromium
//! (`tests/browser/manage_imaging.mjs`): an administrator registers a county hospital's
//! DICOM node, points the tertiary hospital's destination at a running DCMTK `storescp`
//! and tests it with a C-ECHO, then retries and cancels forwards the relay could not
//! deliver; the page fits a phone, for the administrator and for a coordinator.

use std::net::SocketAddr;
use std::time::Duration;

use duikou_tests::browser::{on_backend, run_scenario};
use duikou_tests::dcmtk::{Storescp, free_port, pydicom_files};
use duikou_tests::{Backend, TestApp, eventually, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::forwarding::{send_all, wire};

on_both_backends!(an_administrator_sets_up_imaging_and_works_the_forward_queue_in_the_pages);

async fn forwards(app: &TestApp) -> Vec<Value> {
    let (status, list) = app.get("/api/v1/forwards", &app.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

async fn an_administrator_sets_up_imaging_and_works_the_forward_queue_in_the_pages(
    backend: Backend,
) {
    let pacs = Storescp::start("JMZX_PACS");
    // A failed forward waits ten minutes for its next try: only the page's Retry sends
    // it sooner.
    let app = TestApp::spawn_with(backend, |c| {
        c.imaging.forward_retry_base_ms = 600_000;
        c.imaging.forward_retry_max_seconds = 600;
    })
    .await;
    let relay = app.dicom.expect("DICOM listens");
    // The tertiary hospital's destination is down: two images wait in the queue.
    let down = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (county, tertiary) = wire(&app, down).await;
    let dir = pydicom_files();
    send_all(relay, &[dir.join("CT_small.dcm"), dir.join("MR_small.dcm")]);
    eventually(Duration::from_secs(30), "two failed tries", async || {
        let list = forwards(&app).await;
        let tried = list
            .iter()
            .all(|f| f["state"] == "pending" && f["attempts"].as_i64() >= Some(1));
        if list.len() == 2 && tried {
            Ok(())
        } else {
            Err(format!("{list:#?}"))
        }
    })
    .await;

    let commission = app.institution_id("江门市卫生计生局").await;
    let admin = app
        .account(json!({"username": "hc.zhang", "display_name": "张主任", "institution_id": commission, "roles": ["admin"]}))
        .await;
    let office = app
        .account(json!({"username": "jm.office", "display_name": "医务科李老师", "institution_id": tertiary, "roles": ["coordinator"]}))
        .await;
    let who = |a: &Value| json!({"username": a["user"]["username"], "password": a["password"]});
    let input = json!({
        "admin": who(&admin),
        "coordinator": who(&office),
        "county": county,
        "tertiary": tertiary,
        "down_port": down.port(),
        "pacs_port": pacs.addr.port(),
    });
    let out = run_scenario(
        "manage_imaging",
        &on_backend("manage_imaging", backend),
        &app.base,
        input,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));

    // What the pages did is what the API holds.
    let (_, nodes) = app
        .get(
            &format!("/api/v1/institutions/{county}/dicom-nodes"),
            &app.admin_token,
        )
        .await;
    let titles: Vec<(&str, &str)> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["ae_title"].as_str().unwrap(), n["host"].as_str().unwrap()))
        .collect();
    assert_eq!(
        titles,
        [("TAISHAN_CT", "*"), ("TAISHAN_DR", "192.168.10.22")]
    );
    let (_, destination) = app
        .get(
            &format!("/api/v1/institutions/{tertiary}/imaging-destination"),
            &app.admin_token,
        )
        .await;
    assert_eq!(destination["port"], pacs.addr.port(), "{destination}");
    let list = forwards(&app).await;
    let state = |id: &Value| {
        list.iter()
            .find(|f| f["id"] == *id)
            .map(|f| f["state"].clone())
    };
    assert_eq!(
        state(&out["retried"]),
        Some(json!("delivered")),
        "{list:#?}"
    );
    assert_eq!(
        state(&out["cancelled"]),
        Some(json!("cancelled")),
        "{list:#?}"
    );
    let delivered = list.iter().find(|f| f["id"] == out["retried"]).unwrap();
    assert!(
        pacs.received(delivered["sop_instance_uid"].as_str().unwrap())
            .is_some(),
        "the retried image reached the PACS"
    );
    app.stop().await;
}
