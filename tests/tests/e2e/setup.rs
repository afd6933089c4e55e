//! The set-up checklist (`GET /setup`): computed from the data, for administrators and
//! coordinators only.

use chrono::{Duration, FixedOffset, Months};
use duikou_tests::{Backend, TestApp, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::requests::cast;

on_both_backends!(
    the_checklist_empties_as_the_program_is_set_up,
    a_clinician_qualifies_as_a_consultant_on_the_day_they_reach_three_years,
);

/// `{step: done}` of the caller's checklist.
async fn checklist(app: &TestApp, token: &str) -> Vec<(String, bool)> {
    let (status, items) = app.get("/api/v1/setup", token).await;
    assert_eq!(status, StatusCode::OK, "{items}");
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["step"].as_str().unwrap().to_owned(),
                i["done"] == Value::Bool(true),
            )
        })
        .collect()
}

fn open(list: &[(String, bool)]) -> Vec<&str> {
    list.iter()
        .filter(|(_, done)| !done)
        .map(|(step, _)| step.as_str())
        .collect()
}

async fn the_checklist_empties_as_the_program_is_set_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // The seeded pairings ran 2016–2020: nothing is in force, nothing can be booked.
    let fresh = checklist(&app, &app.admin_token).await;
    assert_eq!(
        open(&fresh),
        [
            "pairing_in_force",
            "qualified_consultant",
            "availability",
            "consultant_account",
            "requester_account"
        ]
    );
    // A pairing for consultations and reads, a qualified consultant with hours and an
    // account, a county doctor: the imaging steps appear, still open.
    let c = cast(&app).await;
    assert_eq!(
        open(&checklist(&app, &app.admin_token).await),
        ["radiologist_account", "dicom_node", "imaging_destination"]
    );
    app.user("jm.rad", c.tertiary, &["radiologist"]).await;
    let (status, node) = app
        .post(
            &format!("/api/v1/institutions/{}/dicom-nodes", c.county),
            &app.admin_token,
            json!({"ae_title": "TAISHAN_CT", "host": "*"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    assert_eq!(
        open(&checklist(&app, &app.admin_token).await),
        ["imaging_destination"]
    );
    let (status, d) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/institutions/{}/imaging-destination", c.tertiary),
            Some(&app.admin_token),
            Some(json!({"ae_title": "JMZX_PACS", "host": "127.0.0.1", "port": 11112})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert!(open(&checklist(&app, &app.admin_token).await).is_empty());

    // The tertiary hospital's coordinator sees the same pairing's steps; another
    // county's sees its own, which has no pairing in force; clinicians see none.
    assert!(open(&checklist(&app, &c.coordinator).await).is_empty());
    let enping = app.institution_id("恩平市人民医院").await;
    let (_, office) = app.user("ep.office", enping, &["coordinator"]).await;
    assert_eq!(open(&checklist(&app, &office).await)[0], "pairing_in_force");
    let (status, _) = app.get("/api/v1/setup", &c.doctor).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn a_clinician_qualifies_as_a_consultant_on_the_day_they_reach_three_years(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = &app.admin_token;
    let tertiary = app.institution_id("江门市中心医院").await;
    let county = app.institution_id("台山市人民医院").await;
    let china = FixedOffset::east_opt(8 * 3600).unwrap();
    let today = app.clock.now().with_timezone(&china).date_naive();
    let (status, p) = app
        .post(
            "/api/v1/pairings",
            admin,
            json!({"supporter": {"kind": "institution", "id": tertiary}, "supported": {"kind": "institution", "value": county},
                   "services": ["consult"], "valid_from": today - Duration::days(30), "valid_to": today + Duration::days(365)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    // Licensed, and three years of practice tomorrow.
    let since = (today + Duration::days(1)) - Months::new(36);
    let (status, c) = app
        .post(
            "/api/v1/clinicians",
            admin,
            json!({"name": "陈医生", "institution_id": tertiary, "title": "主治医师", "specialty": "心血管内科",
                   "licence_number": "110440700000555", "practice_since": since}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    let path = format!("/api/v1/clinicians/{}", c["id"]);
    let (_, record) = app.get(&path, admin).await;
    assert_eq!(record["practice_years"], 2, "{record}");
    assert_eq!(record["consultant_gaps"], json!(["under_three_years"]));
    assert!(
        open(&checklist(&app, admin).await).contains(&"qualified_consultant"),
        "nobody qualifies today"
    );

    // The next day, by the gateway's clock, they do (the administrator logs in again: a
    // day outlasts a session).
    app.clock.advance(std::time::Duration::from_secs(24 * 3600));
    let admin = &app
        .login("admin", &duikou_tests::password_for("admin"))
        .await;
    let (_, record) = app.get(&path, admin).await;
    assert_eq!(record["practice_years"], 3, "{record}");
    assert_eq!(record["consultant_gaps"], json!([]));
    assert!(
        !open(&checklist(&app, admin).await).contains(&"qualified_consultant"),
        "they qualify from that day"
    );
    app.stop().await;
}
