//! Remote ward rounds (远程查房) between a supporting team and a county hospital's ward.

use chrono::{Duration, Utc};
use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(a_team_holds_weekly_ward_rounds_with_a_patient_list_and_notes);

async fn a_team_holds_weekly_ward_rounds_with_a_patient_list_and_notes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = &app.admin_token;
    let tertiary = app.institution_id("江门市中心医院").await;
    let county = app.institution_id("台山市人民医院").await;
    let mut members = Vec::new();
    for (name, title) in [("周主任", "主任医师"), ("吴医生", "主治医师")] {
        let (_, c) = app
            .post("/api/v1/clinicians", admin, json!({"name": name, "institution_id": tertiary, "title": title, "specialty": "内科"}))
            .await;
        members.push(c["id"].as_i64().unwrap());
    }
    let (status, t) = app
        .post("/api/v1/teams", admin, json!({"name": "内科查房组", "institution_id": tertiary, "leader_id": members[0], "member_ids": [members[1]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let (_, other) = app
        .post(
            "/api/v1/teams",
            admin,
            json!({"name": "外科组", "institution_id": tertiary, "leader_id": members[1]}),
        )
        .await;
    let today = Utc::now().date_naive();
    let (status, _) = app
        .post(
            "/api/v1/pairings",
            admin,
            json!({"supporter": {"kind": "team", "id": t["id"]}, "supported": {"kind": "institution", "value": county},
                   "services": ["ward_round"], "valid_from": today - Duration::days(10), "valid_to": today + Duration::days(400)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, office) = app.user("ts.office", county, &["coordinator"]).await;
    let starts = Utc::now() + Duration::days(1);
    let body = json!({"team_id": t["id"], "supported_institution_id": county, "ward": "内科病区", "starts_at": starts, "duration_minutes": 60, "weeks": 3});
    let mut wrong = body.clone();
    wrong["team_id"] = other["id"].clone();
    let (status, p) = app.post("/api/v1/ward-rounds", &office, wrong).await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not-designated-supporter",
    );
    assert!(
        p["detail"].as_str().unwrap().contains("内科查房组"),
        "names the designated team: {p}"
    );
    let (status, rounds) = app.post("/api/v1/ward-rounds", &office, body).await;
    assert_eq!(status, StatusCode::CREATED, "{rounds}");
    let rounds = rounds.as_array().unwrap();
    assert_eq!(rounds.len(), 3);
    assert_eq!(rounds[1]["series_id"], rounds[0]["id"]);
    let gap = rounds[1]["starts_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<Utc>>()
        .unwrap()
        - rounds[0]["starts_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap();
    assert_eq!(gap, Duration::weeks(1));
    let id = rounds[0]["id"].clone();
    let (status, listed) = app.get("/api/v1/ward-rounds", &office).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed.as_array().unwrap().len(),
        3,
        "the ward sees its rounds"
    );

    let (_, ward_doctor) = app.user("ts.ward", county, &["clinician"]).await;
    let (status, list) = app
        .post(&format!("/api/v1/ward-rounds/{id}/patients"), &ward_doctor, json!({"bed": "12床", "patient_name": "陈某某", "question": "心衰加重，利尿剂如何调整？"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{list}");
    let patient = list[0]["id"].clone();
    let (status, p) = app
        .post(
            &format!("/api/v1/ward-rounds/{id}/patients"),
            &ward_doctor,
            json!({"bed": "13床", "patient_name": "", "question": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["field"], "patient_name");

    // The leader writes the note; a clinician of the ward may not.
    let body = app
        .account(json!({"username": "jm.zhou", "display_name": "周主任", "institution_id": tertiary, "clinician_id": members[0], "roles": ["clinician"]}))
        .await;
    let leader = app
        .login("jm.zhou", body["password"].as_str().unwrap())
        .await;
    let note_path = format!("/api/v1/ward-rounds/{id}/patients/{patient}/note");
    let (status, _) = app
        .call(
            Method::PUT,
            &note_path,
            Some(&ward_doctor),
            Some(json!({"note": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, list) = app
        .call(
            Method::PUT,
            &note_path,
            Some(&leader),
            Some(json!({"note": "呋塞米加量至 40mg bid，监测电解质"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["note"], "呋塞米加量至 40mg bid，监测电解质");

    let (_, round) = app.get(&format!("/api/v1/ward-rounds/{id}"), &leader).await;
    assert_eq!(round["patients"][0]["bed"], "12床");
    let kaiping = app.institution_id("开平市中心医院").await;
    let (outsider_id, outsider) = app.user("kp.doctor", kaiping, &["clinician"]).await;
    let (status, p) = app
        .get(&format!("/api/v1/ward-rounds/{id}"), &outsider)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!p.to_string().contains("陈某某"));
    let (_, log) = app
        .get(
            &format!("/api/v1/audit?user_id={outsider_id}&object_kind=ward_round"),
            admin,
        )
        .await;
    assert_eq!(log[0]["outcome"], "denied", "{log}");
    app.stop().await;
}
