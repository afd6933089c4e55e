//! Whole tasks in the browser pages (issue 7), each a scenario in headless Chromium
//! (`tests/browser/<name>.mjs`) against a gateway prepared over the API: the people and
//! pairings, the studies, the requests the task starts from. Screenshots land in
//! `target/browser-artifacts/<scenario>-<backend>/`.

use duikou_tests::browser::{on_backend, run_scenario};
use duikou_tests::{Backend, TestApp, dcmtk, on_both_backends, phantom};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::requests::{clinician, content, draft, ok_step, pair};

on_both_backends!(a_radiologist_scrolls_a_forwarded_study_and_signs_the_read);

/// A user of `institution` with `roles`, tied to `clinician` when given, for a browser to
/// log in with.
async fn account(
    app: &TestApp,
    username: &str,
    institution: i64,
    roles: &[&str],
    clinician: Option<i64>,
) -> Value {
    let (status, body) = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            json!({"username": username, "display_name": username, "institution_id": institution,
                   "clinician_id": clinician, "roles": roles}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    json!({"username": username, "password": body["initial_password"]})
}

async fn a_radiologist_scrolls_a_forwarded_study_and_signs_the_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let relay = app.dicom.expect("DICOM listens");
    let county = app.institution_id("台山市人民医院").await;
    let tertiary = app.institution_id("江门市中心医院").await;
    pair(&app, tertiary, county, json!(["imaging_read"])).await;
    let (status, node) = app
        .post(
            &format!("/api/v1/institutions/{county}/dicom-nodes"),
            &app.admin_token,
            json!({"ae_title": "TAISHAN_CT", "host": "*"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    let dir = tempfile::tempdir().unwrap();
    let images = 12;
    let series = phantom::ct_series(dir.path(), images, 128, "TS20261201").unwrap();
    let sent = dcmtk::store(
        relay,
        "TAISHAN_CT",
        "DUIKOU",
        "1.2.840.10008.1.2.1",
        &series.files,
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );

    // The county asks for a read of the study; the tertiary's office assigns its radiologist.
    let reader = clinician(
        &app,
        tertiary,
        "黄主任",
        "主任医师",
        Some("110440700000007"),
        18,
    )
    .await;
    let radiologist = account(&app, "jm.huang", tertiary, &["radiologist"], Some(reader)).await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    let (_, office) = app.user("jm.office", tertiary, &["coordinator"]).await;
    let mut body = content();
    body["study_instance_uid"] = json!(series.study);
    body["accession_number"] = json!("TS20261201");
    let r = draft(
        &app,
        &doctor,
        json!({"kind": "imaging_read", "content": body}),
    )
    .await;
    let id = r["id"].clone();
    ok_step(&app, &doctor, &id, "submit", json!({})).await;
    ok_step(
        &app,
        &office,
        &id,
        "accept",
        json!({"consultant_id": reader}),
    )
    .await;

    let report = "头颅 CT 平扫：未见明确出血及占位。建议结合临床，必要时 MRI 检查。";
    let mut input = radiologist;
    input["study"] = json!(series.study);
    input["images"] = json!(images);
    input["request_id"] = id.clone();
    input["report"] = json!(report);
    let out = run_scenario("viewer", &on_backend("viewer", backend), &app.base, input)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(out["scrolled"], images);

    // The read went back through booking: signed, for the county to see.
    let (status, r) = app.get(&format!("/api/v1/requests/{id}"), &doctor).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["state"], "opinion_signed", "{r}");
    let (_, opinions) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &doctor)
        .await;
    assert_eq!(opinions[0]["body"], report);
    assert_eq!(opinions[0]["consultant_id"], reader);
    app.stop().await;
}
