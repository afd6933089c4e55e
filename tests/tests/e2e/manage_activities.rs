//! The management pages' teaching, ward rounds and visits (`/manage/activities`) in
//! headless Chromium (`tests/browser/manage_activities.mjs`): a hospital's education
//! office schedules, changes and cancels a teaching session, schedules a ward-round series
//! and cancels one round, and records a visit to a village, on an office screen and on a
//! phone; an administrator finds the hospital with the institution picker and sees the
//! same, again on reopening the page with `?institution=<id>`. What the pages did is then
//! read back over the API.

use duikou_tests::browser::{on_backend, run_scenario};
use duikou_tests::{Backend, TestApp, on_both_backends, password_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::requests::clinician;
use crate::rounds::round_team;

on_both_backends!(an_education_office_runs_its_teaching_rounds_and_visits_from_the_pages);

async fn an_education_office_runs_its_teaching_rounds_and_visits_from_the_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tertiary = app.institution_id("江门市中心医院").await;
    let county = app.institution_id("台山市人民医院").await;
    let village = app.institution_id("北陡镇石蕉村卫生站").await;
    let presenter = clinician(
        &app,
        tertiary,
        "黄教授",
        "主任医师",
        Some("110440700000021"),
        18,
    )
    .await;
    let leader = clinician(
        &app,
        tertiary,
        "周主任",
        "主任医师",
        Some("110440700000022"),
        22,
    )
    .await;
    let team = round_team(&app, tertiary, county, &json!(leader), 400).await;
    let office = app
        .account(
            json!({"username": "jm.office", "display_name": "江门市中心医院医务科",
                        "institution_id": tertiary, "roles": ["coordinator"]}),
        )
        .await;
    let (admin, _) = &app.first_admin;
    let input = json!({
        "office": {"username": "jm.office", "password": office["password"]},
        "admin": {"username": admin, "password": password_for(admin)},
        "presenter": presenter, "team": team["id"], "tertiary": tertiary, "county": county, "village": village,
    });
    let out = run_scenario(
        "manage_activities",
        &on_backend("manage_activities", backend),
        &app.base,
        input,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));

    let token = app
        .login("jm.office", office["password"].as_str().unwrap())
        .await;
    // The session, moved and then cancelled with its reason.
    let (status, session) = app
        .get(&format!("/api/v1/teaching/{}", out["session"]), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["topic"], "基层高血压规范化管理");
    assert_eq!(session["presenter_clinician_id"], presenter);
    assert_eq!(session["capacity"], 30);
    let instant = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<chrono::DateTime<chrono::Utc>>().ok())
    };
    assert_eq!(
        instant(&session["starts_at"]),
        instant(&out["moved_to"]),
        "moved as the page said: {session} {out}"
    );
    assert!(instant(&out["moved_to"]).is_some(), "{out}");
    assert_eq!(
        session["cancel_reason"],
        "主讲专家临时承担抢救任务，另行安排"
    );
    // Three weekly rounds of the county's ward, the second cancelled.
    let (_, rounds) = app
        .get(
            &format!("/api/v1/ward-rounds?institution_id={tertiary}"),
            &token,
        )
        .await;
    let rounds = rounds.as_array().expect("a list");
    assert_eq!(rounds.len(), 3, "{rounds:?}");
    let cancelled: Vec<&Value> = rounds.iter().map(|r| &r["cancel_reason"]).collect();
    assert_eq!(
        cancelled,
        [&Value::Null, &json!("病区停电检修"), &Value::Null]
    );
    assert!(
        rounds
            .iter()
            .all(|r| r["supported_institution_id"] == county && r["team_id"] == team["id"])
    );
    // The visit by the team.
    let (_, visits) = app
        .get(&format!("/api/v1/visits?village_id={village}"), &token)
        .await;
    assert_eq!(visits.as_array().unwrap().len(), 1, "{visits}");
    assert_eq!(visits[0]["team_id"], team["id"]);
    assert_eq!(visits[0]["services"], json!(["consult", "teaching"]));
    app.stop().await;
}
