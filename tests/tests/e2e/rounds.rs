//! Remote ward rounds (远程查房) between a supporting team and a county hospital's ward.

use chrono::{Duration, SubsecRound as _, Utc};
use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    a_team_holds_weekly_ward_rounds_with_a_patient_list_and_notes,
    organisers_move_a_round_and_cancel_it_or_the_rest_of_its_series,
);

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

/// 内科查房组, a team of `tertiary` led by the clinician `leader`, made the designated
/// supporter of `county` for ward rounds from ten days ago to `days` days ahead; the team.
pub(crate) async fn round_team(
    app: &TestApp,
    tertiary: i64,
    county: i64,
    leader: &Value,
    days: i64,
) -> Value {
    let (status, team) = app
        .post(
            "/api/v1/teams",
            &app.admin_token,
            json!({"name": "内科查房组", "institution_id": tertiary, "leader_id": leader}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let today = Utc::now().date_naive();
    let (status, p) = app
        .post(
            "/api/v1/pairings",
            &app.admin_token,
            json!({"supporter": {"kind": "team", "id": team["id"]}, "supported": {"kind": "institution", "value": county},
                   "services": ["ward_round"], "valid_from": today - Duration::days(10), "valid_to": today + Duration::days(days)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    team
}

/// The starts of `rounds` (a list of rounds as the API gives them).
fn starts_of(rounds: &Value) -> Vec<chrono::DateTime<Utc>> {
    rounds
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["starts_at"].as_str().unwrap().parse().unwrap())
        .collect()
}

async fn organisers_move_a_round_and_cancel_it_or_the_rest_of_its_series(backend: Backend) {
    // Rooms open ten days ahead, so that the rounds of the coming ten days are open now.
    let app = TestApp::spawn_with(backend, |c| c.signaling.lead_minutes = 10 * 24 * 60).await;
    let admin = &app.admin_token;
    let tertiary = app.institution_id("江门市中心医院").await;
    let county = app.institution_id("台山市人民医院").await;
    let (_, leader) = app
        .post("/api/v1/clinicians", admin, json!({"name": "周主任", "institution_id": tertiary, "title": "主任医师", "specialty": "内科"}))
        .await;
    let account = app
        .account(
            json!({"username": "jm.zhou", "display_name": "周主任", "institution_id": tertiary,
                        "clinician_id": leader["id"], "roles": ["clinician"]}),
        )
        .await;
    let leader_token = app
        .login("jm.zhou", account["password"].as_str().unwrap())
        .await;
    let team = round_team(&app, tertiary, county, &leader["id"], 120).await;
    let (_, ward_office) = app.user("ts.office", county, &["coordinator"]).await;
    let (_, team_office) = app.user("jm.office", tertiary, &["coordinator"]).await;
    // Whole seconds: PostgreSQL keeps microseconds.
    let starts = (Utc::now() + Duration::days(1)).trunc_subsecs(0);
    let (status, rounds) = app
        .post(
            "/api/v1/ward-rounds",
            &ward_office,
            json!({"team_id": team["id"], "supported_institution_id": county, "ward": "内科病区",
              "starts_at": starts, "duration_minutes": 60, "weeks": 4}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rounds}");
    let ids: Vec<i64> = rounds
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    let path = |id: i64| format!("/api/v1/ward-rounds/{id}");

    // Neither a clinician of either side nor another hospital's coordinator organises.
    let (_, ward_doctor) = app.user("ts.ward", county, &["clinician"]).await;
    let kaiping = app.institution_id("开平市中心医院").await;
    let (_, stranger) = app.user("kp.office", kaiping, &["coordinator"]).await;
    let moved_to = starts + Duration::hours(2);
    for token in [&ward_doctor, &leader_token, &stranger] {
        let (status, p) = app
            .patch(&path(ids[1]), token, json!({"starts_at": moved_to}))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
        let (status, p) = app
            .post(
                &format!("{}/cancel", path(ids[1])),
                token,
                json!({"reason": "x"}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
    }
    let (status, p) = app
        .get(
            &format!("/api/v1/ward-rounds?institution_id={county}"),
            &stranger,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "another hospital's rounds: {p}"
    );

    // Bad input names its field and moves nothing.
    for (body, field) in [
        (
            json!({"starts_at": Utc::now() - Duration::hours(1)}),
            "starts_at",
        ),
        (
            json!({"starts_at": moved_to, "duration_minutes": 5}),
            "duration_minutes",
        ),
        (
            json!({"starts_at": moved_to, "duration_minutes": 481}),
            "duration_minutes",
        ),
        (json!({"duration_minutes": 60}), "starts_at"),
        (json!({"starts_at": "明天"}), "starts_at"),
    ] {
        let (status, p) = app.patch(&path(ids[1]), &team_office, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert_eq!(p["field"], field, "{body}: {p}");
    }
    // After the pairing's last day the team is nobody's designated supporter.
    let (status, p) = app
        .patch(
            &path(ids[1]),
            &team_office,
            json!({"starts_at": starts + Duration::days(200)}),
        )
        .await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not-designated-supporter",
    );
    let (_, listed) = app.get("/api/v1/ward-rounds", &ward_office).await;
    assert_eq!(
        starts_of(&listed)[1],
        starts + Duration::weeks(1),
        "a refused move moves nothing"
    );

    // The supporting side's coordinator moves the second round two hours on, for 90 minutes.
    let second = starts + Duration::weeks(1) + Duration::hours(2);
    let (status, moved) = app
        .patch(
            &path(ids[1]),
            &team_office,
            json!({"starts_at": second, "duration_minutes": 90}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(starts_of(&json!([moved.clone()])), [second]);
    assert_eq!(
        moved["ends_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        second + Duration::minutes(90)
    );

    // A cancellation says why: the first round alone, then the third and the rest.
    for body in [json!({"reason": ""}), json!({"rest_of_series": true})] {
        let (status, p) = app
            .post(&format!("{}/cancel", path(ids[0])), &ward_office, body)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(p["field"], "reason");
    }
    let (status, one) = app
        .post(
            &format!("{}/cancel", path(ids[0])),
            &ward_office,
            json!({"reason": "病区停电检修"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["cancel_reason"], "病区停电检修");
    let (status, rest) = app
        .post(
            &format!("{}/cancel", path(ids[2])),
            admin,
            json!({"reason": "专家组赴外地支援", "rest_of_series": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    let cancelled: Vec<&Value> = rest.as_array().unwrap().iter().map(|r| &r["id"]).collect();
    assert_eq!(cancelled, [ids[2], ids[3]]);

    // Both sides and an administrator list the four, three cancelled with their reasons.
    for (token, query) in [
        (&ward_office, String::new()),
        (&team_office, String::new()),
        (admin, format!("?institution_id={county}")),
    ] {
        let (status, listed) = app.get(&format!("/api/v1/ward-rounds{query}"), token).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        let reasons: Vec<Value> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["cancel_reason"].clone())
            .collect();
        assert_eq!(
            reasons,
            [
                json!("病区停电检修"),
                Value::Null,
                json!("专家组赴外地支援"),
                json!("专家组赴外地支援")
            ]
        );
    }

    // A cancelled round's room does not open; the moved one's does.
    let join = |id: i64| {
        let (app, token) = (&app, leader_token.clone());
        async move {
            app.post(
                &format!("/api/v1/sessions/ward-round-{id}/join"),
                &token,
                json!({}),
            )
            .await
        }
    };
    let (status, p) = join(ids[0]).await;
    assert_refused(status, &p, StatusCode::CONFLICT, "session-not-open");
    let (status, admitted) = join(ids[1]).await;
    assert_eq!(status, StatusCode::OK, "{admitted}");
    assert_eq!(admitted["role"], "team_leader");

    // A cancelled round is neither moved nor cancelled again.
    let (status, p) = app
        .patch(&path(ids[0]), &ward_office, json!({"starts_at": moved_to}))
        .await;
    assert_refused(status, &p, StatusCode::CONFLICT, "session-cancelled");
    let (status, p) = app
        .post(
            &format!("{}/cancel", path(ids[3])),
            &ward_office,
            json!({"reason": "x"}),
        )
        .await;
    assert_refused(status, &p, StatusCode::CONFLICT, "session-cancelled");

    // Nor is a round that is over.
    let (status, past) = app
        .post(
            "/api/v1/ward-rounds",
            &ward_office,
            json!({"team_id": team["id"], "supported_institution_id": county, "ward": "内科病区",
              "starts_at": Utc::now() - Duration::hours(3), "duration_minutes": 60}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{past}");
    let over = past[0]["id"].as_i64().unwrap();
    let (status, p) = app
        .patch(&path(over), &ward_office, json!({"starts_at": moved_to}))
        .await;
    assert_refused(status, &p, StatusCode::CONFLICT, "session-ended");
    let (status, p) = app
        .post(
            &format!("{}/cancel", path(over)),
            &ward_office,
            json!({"reason": "补登"}),
        )
        .await;
    assert_refused(status, &p, StatusCode::CONFLICT, "session-ended");
    app.stop().await;
}
