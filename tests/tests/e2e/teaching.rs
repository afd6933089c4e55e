//! Teaching sessions (远程继续教育), visits and the program report against its targets.

use chrono::{Datelike as _, Duration, FixedOffset, SubsecRound as _, Utc};
use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends, password_for};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    trainees_of_paired_institutions_enrol_with_a_waiting_list_and_earn_hours,
    a_trainee_counts_once_their_year_of_training_reaches_the_pairings_target,
    the_quarterly_report_of_a_jiangmen_pairing_shows_its_numbers_and_targets,
    an_expert_team_visits_its_village_at_least_every_two_months,
    organisers_change_a_session_and_cancel_it_which_then_takes_nobody_in,
    a_session_that_is_over_is_neither_changed_nor_cancelled,
    visits_are_listed_for_the_unit_that_made_them_and_the_village_that_had_them,
);

/// The report's target from document `source`.
fn target(report: &Value, source: &str) -> Value {
    let targets = report["targets"].as_array().expect("targets");
    targets
        .iter()
        .find(|t| t["source"] == source)
        .expect("the target is reported")
        .clone()
}

async fn an_expert_team_visits_its_village_at_least_every_two_months(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = &app.admin_token;
    let hospital = app.institution_id("威海卫人民医院").await;
    // A village of Yangting the seeds do not pair already (their pairings are one-to-one).
    let seeded_id = app.institution_id("羊亭镇王家夼村卫生室").await;
    let (_, seeded) = app
        .get(&format!("/api/v1/institutions/{seeded_id}"), admin)
        .await;
    let (status, village) = app
        .post("/api/v1/institutions", admin, json!({"name": "羊亭镇王家夼新村卫生室", "level": "village_station", "kind": "village_station", "region": seeded["region"], "remote": true}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{village}");
    let village = village["id"].clone();
    // 003: a team of five to ten, one of them its leader.
    let mut members = Vec::new();
    for name in ["孙主任", "于医生", "丛医生", "姜医生", "谷医生"] {
        let (status, c) = app
            .post("/api/v1/clinicians", admin, json!({"name": name, "institution_id": hospital, "title": "主任医师", "specialty": "心血管内科"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
        members.push(c["id"].clone());
    }
    let (status, team) = app
        .post("/api/v1/teams", admin, json!({"name": "王家夼巡诊团队", "institution_id": hospital, "leader_id": members[0], "member_ids": members}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let (status, p) = app
        .post(
            "/api/v1/pairings",
            admin,
            json!({"supporter": {"kind": "team", "id": team["id"]}, "supported": {"kind": "institution", "value": village},
                   "services": ["consult"], "valid_from": "2020-01-01", "valid_to": "2020-12-31"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let (_, office) = app.user("wh.office", hospital, &["coordinator"]).await;
    for day in ["2020-01-10", "2020-02-20"] {
        let (status, v) = app
            .post("/api/v1/visits", &office, json!({"village_id": village, "visit_date": day, "team_id": team["id"], "services": ["consult"]}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let path = format!("/api/v1/reports/pairings/{}", p["id"]);
    let (_, q1) = app.get(&format!("{path}?period=2020-Q1"), &office).await;
    let two_months = target(&q1, "003");
    assert_eq!(two_months["met"], true, "{q1}");
    let (_, year) = app.get(&format!("{path}?period=2020"), &office).await;
    let two_months = target(&year, "003");
    assert_eq!(two_months["met"], false, "nothing after February: {year}");
    assert!(two_months["actual"].as_str().unwrap().contains("王家夼"));

    // In Huancui the rule binds the unit the seeds pair with each village too: Weihai
    // People's Hospital, which visited 王家夼村 not once in 2020.
    let (_, seeded_pairings) = app
        .get(
            &format!("/api/v1/pairings?supported_institution_id={seeded_id}"),
            admin,
        )
        .await;
    let seeded_pairing = seeded_pairings
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["supported"]["value"] == seeded_id)
        .expect("the seeded Huancui pairing");
    let (_, year) = app
        .get(
            &format!(
                "/api/v1/reports/pairings/{}?period=2020",
                seeded_pairing["id"]
            ),
            &office,
        )
        .await;
    let two_months = target(&year, "003");
    assert_eq!(two_months["met"], false, "{year}");
    assert!(
        two_months["actual"].as_str().unwrap().contains("王家夼村"),
        "{year}"
    );
    app.stop().await;
}

async fn pairing(app: &TestApp, supporter: i64, supported: i64, services: Value) -> i64 {
    let today = Utc::now().date_naive();
    let (status, p) = app
        .post(
            "/api/v1/pairings",
            &app.admin_token,
            json!({"supporter": {"kind": "institution", "id": supporter}, "supported": {"kind": "institution", "value": supported},
                   "services": services, "valid_from": today - Duration::days(400), "valid_to": today + Duration::days(400)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    p["id"].as_i64().unwrap()
}

async fn trainees_of_paired_institutions_enrol_with_a_waiting_list_and_earn_hours(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let tertiary = app.institution_id("江门市中心医院").await;
    let county = app.institution_id("台山市人民医院").await;
    let pairing_id = pairing(&app, tertiary, county, json!(["teaching"])).await;
    let (status, presenter) = app
        .post("/api/v1/clinicians", &app.admin_token, json!({"name": "黄教授", "institution_id": tertiary, "title": "主任医师", "specialty": "心内科"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, office) = app.user("jm.edu", tertiary, &["coordinator"]).await;
    let starts = Utc::now() + Duration::days(2);
    let body = json!({"presenter_clinician_id": presenter["id"], "topic": "高血压基层规范化管理", "starts_at": starts, "ends_at": starts + Duration::hours(2), "capacity": 2});
    let (_, county_office) = app.user("ts.office", county, &["coordinator"]).await;
    let (status, _) = app
        .post("/api/v1/teaching", &county_office, body.clone())
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only the presenter's unit schedules its sessions"
    );
    let (status, session) = app.post("/api/v1/teaching", &office, body).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let id = session["id"].clone();

    let mut trainees = Vec::new();
    for name in ["ts.t1", "ts.t2", "ts.t3"] {
        trainees.push(app.user(name, county, &["trainee"]).await);
    }
    let mut statuses = Vec::new();
    for (_, token) in &trainees {
        let (status, r) = app
            .call(
                Method::POST,
                &format!("/api/v1/teaching/{id}/enrol"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
        statuses.push(r["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(statuses, ["enrolled", "enrolled", "waiting"]);
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/teaching/{id}/enrol"),
            Some(&trainees[0].1),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "twice is once");
    // Each trainee sees their own enrolments, and only theirs.
    for ((user, token), expected) in trainees.iter().zip(["enrolled", "enrolled", "waiting"]) {
        let (status, mine) = app.get("/api/v1/teaching/enrolments", token).await;
        assert_eq!(status, StatusCode::OK, "{mine}");
        let mine = mine.as_array().unwrap();
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0]["session_id"], id);
        assert_eq!(mine[0]["status"], expected);
        assert_eq!(mine[0]["user_id"], *user);
    }

    let kaiping = app.institution_id("开平市中心医院").await;
    let (_, outsider) = app.user("kp.trainee", kaiping, &["trainee"]).await;
    let (status, p) = app
        .call(
            Method::POST,
            &format!("/api/v1/teaching/{id}/enrol"),
            Some(&outsider),
            None,
        )
        .await;
    assert_refused(status, &p, StatusCode::FORBIDDEN, "not-paired-for-teaching");

    // The second trainee withdraws; the waiting one takes the place.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/teaching/{id}/withdraw"),
            Some(&trainees[1].1),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, enrolments) = app
        .get(&format!("/api/v1/teaching/{id}/enrolments"), &office)
        .await;
    let of = |user: i64| {
        enrolments
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["user_id"] == user)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(of(trainees[1].0), "withdrawn");
    assert_eq!(of(trainees[2].0), "enrolled");

    // Presence is recorded once it happened, not ahead of time.
    let (status, p) = app
        .post(
            &format!("/api/v1/teaching/{id}/attendance"),
            &office,
            json!({"user_id": trainees[0].0, "joined_at": starts, "left_at": starts + Duration::minutes(30)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["field"], "joined_at");
    // The session is over (the gateway's clock moves on; everyone logs in again).
    app.clock
        .advance(std::time::Duration::from_secs((2 * 24 + 3) * 3600));
    let again = |name: &'static str| {
        let app = &app;
        async move { app.login(name, &password_for(name)).await }
    };
    let office = again("jm.edu").await;
    let county_office = again("ts.office").await;
    let mut trainees_again = Vec::new();
    for ((user, _), name) in trainees.iter().zip(["ts.t1", "ts.t2", "ts.t3"]) {
        trainees_again.push((*user, again(name).await));
    }
    let trainees = trainees_again;

    // Attendance: joined late, dropped, came back; hours count presence inside the session.
    let record = |user: i64, joined: chrono::DateTime<Utc>, left: chrono::DateTime<Utc>| {
        let app = &app;
        let office = office.clone();
        let id = id.clone();
        async move {
            app.post(
                &format!("/api/v1/teaching/{id}/attendance"),
                &office,
                json!({"user_id": user, "joined_at": joined, "left_at": left}),
            )
            .await
        }
    };
    let (status, p) = record(
        trainees[0].0,
        starts + Duration::minutes(15),
        starts + Duration::minutes(60),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{p}");
    record(
        trainees[0].0,
        starts + Duration::minutes(70),
        starts + Duration::minutes(150),
    )
    .await;
    let (status, p) = record(trainees[1].0, starts, starts + Duration::minutes(30)).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a withdrawn trainee did not attend: {p}"
    );
    let (status, p) = record(trainees[2].0, starts + Duration::minutes(30), starts).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["field"], "left_at");

    let year = starts
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .format("%Y")
        .to_string();
    let (status, hours) = app
        .get(
            &format!("/api/v1/teaching/hours?year={year}"),
            &trainees[0].1,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hours}");
    // 15 to 60 and 70 to 120 minutes (the session ends at 120): 95 minutes.
    assert!(
        (hours["hours"].as_f64().unwrap() - 95.0 / 60.0).abs() < 1e-6,
        "{hours}"
    );
    assert_eq!(hours["sessions"][0]["topic"], "高血压基层规范化管理");
    let (status, _) = app
        .get(
            &format!("/api/v1/teaching/hours?user_id={}", trainees[0].0),
            &trainees[2].1,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a trainee sees only their own hours"
    );
    let (status, _) = app
        .get(
            &format!("/api/v1/teaching/hours?user_id={}", trainees[0].0),
            &county_office,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, report) = app
        .get(
            &format!("/api/v1/reports/pairings/{pairing_id}?period={year}"),
            &office,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["trainees_attended"], 1);
    assert_eq!(report["teaching_hours"], 2.0);
    assert_eq!(
        report["targets"][1]["met"], false,
        "one trained clinician is not three: {report}"
    );
    app.stop().await;
}

async fn the_quarterly_report_of_a_jiangmen_pairing_shows_its_numbers_and_targets(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let village = app.institution_id("北陡镇石蕉村卫生站").await;
    let (_, pairings) = app.get(&format!("/api/v1/pairings?supported_institution_id={village}&service=consult&date=2017-05-10"), &app.admin_token).await;
    let village_pairing = pairings
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["supporter"]["kind"] == "clinician")
        .unwrap()
        .clone();
    let region_pairing = pairings
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["supported"]["kind"] == "region")
        .unwrap()
        .clone();
    let clinician = village_pairing["supporter"]["id"].clone();
    let unit = app.institution_id("台山市妇幼保健院").await;
    let (_, office) = app.user("ts.mch.office", unit, &["coordinator"]).await;
    let (status, visit) = app
        .post("/api/v1/visits", &office, json!({"village_id": village, "visit_date": "2017-05-10", "clinician_id": clinician, "services": ["consult", "teaching"], "notes": "坐诊半天，带教村医"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{visit}");
    let (status, p) = app
        .post("/api/v1/visits", &office, json!({"village_id": unit, "visit_date": "2017-05-10", "clinician_id": clinician, "services": ["consult"]}))
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "only village stations are visited: {p}"
    );

    let path = format!("/api/v1/reports/pairings/{}", village_pairing["id"]);
    let (status, q2) = app.get(&format!("{path}?period=2017-Q2"), &office).await;
    assert_eq!(status, StatusCode::OK, "{q2}");
    assert_eq!(q2["from"], "2017-04-01");
    assert_eq!(q2["to"], "2017-06-30");
    assert_eq!(q2["villages"][0]["name"], "北陡镇石蕉村卫生站");
    assert_eq!(q2["villages"][0]["quarters"][0]["visits"], 1);
    assert_eq!(q2["targets"][0]["met"], true, "{q2}");
    assert_eq!(q2["targets"][0]["source"], "000");
    assert_eq!(q2["targets"][1]["met"], false);
    assert_eq!(q2["requests_by_state"], json!({}));

    let (_, year) = app.get(&format!("{path}?period=2017"), &office).await;
    assert_eq!(year["villages"][0]["quarters"].as_array().unwrap().len(), 4);
    assert_eq!(
        year["targets"][0]["met"], false,
        "Q1, Q3 and Q4 had no service: {year}"
    );
    assert!(
        year["targets"][0]["actual"]
            .as_str()
            .unwrap()
            .contains("2017-Q3")
    );
    // The shortfall comes as data too, for pages to word: the village, quarter by quarter.
    let short: Vec<(&str, &str)> = year["targets"][0]["short"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["quarter"].as_str().unwrap()))
        .collect();
    assert_eq!(
        short,
        [
            ("北陡镇石蕉村卫生站", "2017-Q1"),
            ("北陡镇石蕉村卫生站", "2017-Q3"),
            ("北陡镇石蕉村卫生站", "2017-Q4")
        ],
        "{year}"
    );

    let csv = app
        .client
        .get(format!("{}{path}?period=2017-Q2&format=csv", app.base))
        .bearer_auth(&office)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("metric,value,met\n"), "{csv}");
    assert!(csv.contains("target: every village is served at least once a quarter (000),all 1 villages served in every quarter,yes"), "{csv}");

    // The Taishan system's pairing with Jiangmen Central Hospital: 37 villages, one served.
    let (_, region) = app
        .get(
            &format!(
                "/api/v1/reports/pairings/{}?period=2017-Q2",
                region_pairing["id"]
            ),
            &app.admin_token,
        )
        .await;
    assert_eq!(region["villages"].as_array().unwrap().len(), 37);
    assert_eq!(region["targets"][0]["met"], false);

    for (query, field) in [
        ("period=2017-Q5", "period"),
        ("period=2017&format=xml", "format"),
        ("", "period"),
    ] {
        let (status, p) = app.get(&format!("{path}?{query}"), &office).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {p}");
        assert_eq!(p["field"], field);
    }
    let kaiping = app.institution_id("开平市中心医院").await;
    let (_, other_office) = app.user("kp.office", kaiping, &["coordinator"]).await;
    let (status, _) = app
        .get(&format!("{path}?period=2017-Q2"), &other_office)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "coordinators see their own pairings' reports"
    );
    let (_, doctor) = app.user("ts.mch.doctor", unit, &["clinician"]).await;
    let (status, _) = app.get(&format!("{path}?period=2017-Q2"), &doctor).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

/// Jiangmen Central Hospital paired with Taishan People's Hospital for teaching, its
/// presenter 黄教授 (with an account) and its education office, and a session of theirs
/// from `starts` for two hours with `capacity` places.
struct Classroom {
    tertiary: i64,
    county: i64,
    presenter_id: i64,
    presenter: String,
    office: String,
    session: Value,
}

async fn classroom(app: &TestApp, starts: chrono::DateTime<Utc>, capacity: i64) -> Classroom {
    let tertiary = app.institution_id("江门市中心医院").await;
    let county = app.institution_id("台山市人民医院").await;
    pairing(app, tertiary, county, json!(["teaching"])).await;
    let (status, presenter) = app
        .post("/api/v1/clinicians", &app.admin_token, json!({"name": "黄教授", "institution_id": tertiary, "title": "主任医师", "specialty": "心内科"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{presenter}");
    let presenter_id = presenter["id"].as_i64().unwrap();
    let account = app
        .account(
            json!({"username": "jm.huang", "display_name": "黄教授", "institution_id": tertiary,
                        "clinician_id": presenter_id, "roles": ["clinician"]}),
        )
        .await;
    let presenter = app
        .login("jm.huang", account["password"].as_str().unwrap())
        .await;
    let (_, office) = app.user("jm.edu", tertiary, &["coordinator"]).await;
    let (status, session) = app
        .post(
            "/api/v1/teaching",
            &office,
            json!({"presenter_clinician_id": presenter_id, "topic": "高血压基层规范化管理",
              "starts_at": starts, "ends_at": starts + Duration::hours(2), "capacity": capacity}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    Classroom {
        tertiary,
        county,
        presenter_id,
        presenter,
        office,
        session,
    }
}

async fn organisers_change_a_session_and_cancel_it_which_then_takes_nobody_in(backend: Backend) {
    // Rooms open two days ahead, so that tomorrow's session would be open now.
    let app = TestApp::spawn_with(backend, |c| c.signaling.lead_minutes = 2 * 24 * 60).await;
    // Whole seconds: PostgreSQL keeps microseconds.
    let starts = (Utc::now() + Duration::days(1)).trunc_subsecs(0);
    let c = classroom(&app, starts, 1).await;
    let id = c.session["id"].as_i64().unwrap();
    let path = format!("/api/v1/teaching/{id}");
    let mut trainees = Vec::new();
    for name in ["ts.t1", "ts.t2", "ts.t3"] {
        trainees.push(app.user(name, c.county, &["trainee"]).await.1);
    }
    for token in &trainees[..2] {
        let (status, r) = app.post(&format!("{path}/enrol"), token, json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
    }

    // Neither a clinician, nor the coordinator of another institution, nor one of the
    // county whose trainees enrol, organises the session.
    let (_, doctor) = app.user("jm.doctor", c.tertiary, &["clinician"]).await;
    let (_, county_office) = app.user("ts.office", c.county, &["coordinator"]).await;
    let kaiping = app.institution_id("开平市中心医院").await;
    let (_, other_office) = app.user("kp.office", kaiping, &["coordinator"]).await;
    for token in [&doctor, &county_office, &other_office, &c.presenter] {
        let (status, p) = app.patch(&path, token, json!({"topic": "改题"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
        let (status, p) = app
            .post(&format!("{path}/cancel"), token, json!({"reason": "改期"}))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
    }

    // Bad input names its field and changes nothing.
    let (_, before) = app.get(&path, &c.office).await;
    let (_, county_doctor) = app
        .post("/api/v1/clinicians", &app.admin_token, json!({"name": "陈医生", "institution_id": c.county, "title": "主治医师", "specialty": "内科"}))
        .await;
    for (body, field) in [
        (json!({"topic": "  "}), "topic"),
        (json!({"capacity": 0}), "capacity"),
        (json!({"capacity": 1001}), "capacity"),
        (
            json!({"starts_at": Utc::now() - Duration::hours(1)}),
            "starts_at",
        ),
        (json!({"ends_at": starts - Duration::minutes(5)}), "ends_at"),
        (
            json!({"presenter_clinician_id": county_doctor["id"]}),
            "presenter_clinician_id",
        ),
        (
            json!({"presenter_clinician_id": 999_999}),
            "presenter_clinician_id",
        ),
    ] {
        let (status, p) = app.patch(&path, &c.office, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert_eq!(p["field"], field, "{body}: {p}");
    }
    let (_, unchanged) = app.get(&path, &c.office).await;
    assert_eq!(unchanged, before, "a refused change changes nothing");

    // A week later, for three hours, with a second place: the waiting trainee takes it.
    let later = starts + Duration::days(7);
    let (status, changed) = app
        .patch(&path, &c.office, json!({"starts_at": later, "ends_at": later + Duration::hours(3), "capacity": 2, "topic": "高血压与糖尿病基层管理"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["topic"], "高血压与糖尿病基层管理");
    assert_eq!(
        (changed["enrolled"].clone(), changed["waiting"].clone()),
        (json!(2), json!(0))
    );
    assert_eq!(
        changed["starts_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        later
    );
    let (status, p) = app.patch(&path, &c.office, json!({"capacity": 1})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "places held are kept: {p}"
    );
    assert_eq!(p["field"], "capacity");
    // An administrator organises any session.
    let (status, changed) = app
        .patch(
            &path,
            &app.admin_token,
            json!({"presenter_clinician_id": c.presenter_id, "capacity": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");

    // A cancellation says why.
    for body in [
        json!({"reason": " "}),
        json!({"reason": "因".repeat(501)}),
        json!({}),
    ] {
        let (status, p) = app.post(&format!("{path}/cancel"), &c.office, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(p["field"], "reason", "{p}");
    }
    let (_, still) = app.get(&path, &c.office).await;
    assert_eq!(
        still["cancelled_at"],
        Value::Null,
        "a refused cancellation cancels nothing"
    );
    let (status, cancelled) = app
        .post(
            &format!("{path}/cancel"),
            &c.office,
            json!({"reason": "主讲专家临时承担抢救任务，另行安排"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(
        cancelled["cancel_reason"],
        "主讲专家临时承担抢救任务，另行安排"
    );
    assert!(cancelled["cancelled_at"].is_string());

    // It takes no enrolment and opens no room; the trainees enrolled stay listed.
    let (status, p) = app
        .post(&format!("{path}/enrol"), &trainees[2], json!({}))
        .await;
    assert_refused(status, &p, StatusCode::CONFLICT, "session-cancelled");
    for token in [&c.presenter, &trainees[0]] {
        let (status, p) = app
            .post(
                &format!("/api/v1/sessions/teaching-{id}/join"),
                token,
                json!({}),
            )
            .await;
        assert_refused(status, &p, StatusCode::CONFLICT, "session-not-open");
    }
    let (_, enrolments) = app.get(&format!("{path}/enrolments"), &c.office).await;
    let statuses: Vec<&Value> = enrolments
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["status"])
        .collect();
    assert_eq!(statuses, ["enrolled", "enrolled"], "{enrolments}");
    // The catalogue lists it as cancelled, with the reason; the presenting institution's
    // own list has it, the county's none.
    let from = duikou_tests::urlencode(&(Utc::now() - Duration::hours(1)).to_rfc3339());
    let (_, listed) = app
        .get(
            &format!("/api/v1/teaching?institution_id={}&from={from}", c.tertiary),
            &trainees[0],
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        listed[0]["cancel_reason"],
        "主讲专家临时承担抢救任务，另行安排"
    );
    let (_, none) = app
        .get(
            &format!("/api/v1/teaching?institution_id={}&from={from}", c.county),
            &trainees[0],
        )
        .await;
    assert_eq!(none, json!([]));

    // Once cancelled, it is neither changed nor cancelled again.
    let (status, p) = app.patch(&path, &c.office, json!({"topic": "x"})).await;
    assert_refused(status, &p, StatusCode::CONFLICT, "session-cancelled");
    let (status, p) = app
        .post(
            &format!("{path}/cancel"),
            &app.admin_token,
            json!({"reason": "x"}),
        )
        .await;
    assert_refused(status, &p, StatusCode::CONFLICT, "session-cancelled");
    let (status, _) = app
        .patch("/api/v1/teaching/999999", &c.office, json!({"topic": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn a_session_that_is_over_is_neither_changed_nor_cancelled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = classroom(&app, Utc::now() - Duration::hours(3), 10).await;
    let path = format!("/api/v1/teaching/{}", c.session["id"]);
    let later = Utc::now() + Duration::days(1);
    let (status, p) = app
        .patch(
            &path,
            &c.office,
            json!({"starts_at": later, "ends_at": later + Duration::hours(1)}),
        )
        .await;
    assert_refused(status, &p, StatusCode::CONFLICT, "session-ended");
    let (status, p) = app
        .post(
            &format!("{path}/cancel"),
            &c.office,
            json!({"reason": "补登"}),
        )
        .await;
    assert_refused(status, &p, StatusCode::CONFLICT, "session-ended");
    app.stop().await;
}

async fn visits_are_listed_for_the_unit_that_made_them_and_the_village_that_had_them(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let unit = app.institution_id("台山市妇幼保健院").await;
    let village = app.institution_id("北陡镇石蕉村卫生站").await;
    let (status, doctor) = app
        .post("/api/v1/clinicians", &app.admin_token, json!({"name": "梁医生", "institution_id": unit, "title": "主治医师", "specialty": "儿科"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{doctor}");
    let (_, office) = app.user("ts.mch.office", unit, &["coordinator"]).await;
    let (status, visit) = app
        .post("/api/v1/visits", &office, json!({"village_id": village, "visit_date": "2024-05-10", "clinician_id": doctor["id"], "services": ["consult"], "notes": "儿童保健坐诊"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{visit}");
    let range = "from=2024-01-01&to=2024-12-31";
    for who in [unit, village] {
        let (status, listed) = app
            .get(
                &format!("/api/v1/visits?institution_id={who}&{range}"),
                &office,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed[0]["notes"], "儿童保健坐诊");
    }
    let other = app.institution_id("开平市中心医院").await;
    let (_, none) = app
        .get(
            &format!("/api/v1/visits?institution_id={other}&{range}"),
            &office,
        )
        .await;
    assert_eq!(none, json!([]));
    for query in [
        String::new(),
        format!("village_id={village}&institution_id={unit}"),
    ] {
        let (status, p) = app.get(&format!("/api/v1/visits?{query}"), &office).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {p}");
        assert_eq!(p["field"], "village_id");
    }
    let (status, p) = app
        .get(
            &format!("/api/v1/visits?institution_id={unit}&from=2024-12-31&to=2024-01-01"),
            &office,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["field"], "from");
    app.stop().await;
}

async fn a_trainee_counts_once_their_year_of_training_reaches_the_pairings_target(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let admin = &app.admin_token;
    let tertiary = app.institution_id("江门市中心医院").await;
    let county = app.institution_id("台山市人民医院").await;
    let pairing_id = pairing(&app, tertiary, county, json!(["teaching"])).await;
    let (_, presenter) = app
        .post("/api/v1/clinicians", admin, json!({"name": "梁教授", "institution_id": tertiary, "title": "主任医师", "specialty": "儿科"}))
        .await;
    let (_, office) = app.user("jm.training", tertiary, &["coordinator"]).await;

    // Two sessions on one day in China, two days from now: 09:00–11:00 and 14:00–16:00.
    let china = FixedOffset::east_opt(8 * 3600).unwrap();
    let day = (Utc::now() + Duration::days(2))
        .with_timezone(&china)
        .date_naive();
    let year = day.year();
    let at = |hour: u32, minute: u32| {
        day.and_hms_opt(hour, minute, 0)
            .unwrap()
            .and_local_timezone(china)
            .unwrap()
            .with_timezone(&Utc)
    };
    let mut sessions = Vec::new();
    for (topic, from, to) in [("小儿肺炎的诊治", 9, 11), ("小儿腹泻的补液", 14, 16)] {
        let (status, s) = app
            .post("/api/v1/teaching", &office, json!({"presenter_clinician_id": presenter["id"], "topic": topic, "starts_at": at(from, 0), "ends_at": at(to, 0), "capacity": 10}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{s}");
        sessions.push(s["id"].as_i64().unwrap());
    }
    let mut trainees = Vec::new();
    for name in ["ts.peds1", "ts.peds2"] {
        let (user, token) = app.user(name, county, &["trainee"]).await;
        for s in &sessions {
            let (status, r) = app
                .call(
                    Method::POST,
                    &format!("/api/v1/teaching/{s}/enrol"),
                    Some(&token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{r}");
        }
        trainees.push(user);
    }

    // Without a target of its own, each year of the period takes the program's defaults.
    let targets_path = format!("/api/v1/pairings/{pairing_id}/targets");
    let (status, targets) = app.get(&targets_path, &office).await;
    assert_eq!(status, StatusCode::OK, "{targets}");
    let years: Vec<i64> = targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["year"].as_i64().unwrap())
        .collect();
    let this = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["year"] == year)
        .expect("the sessions' year is in the period");
    assert_eq!(this["source"], "program", "{targets}");
    assert_eq!(this["trainees"], 3);
    assert_eq!(this["hours_each"], 12);

    // The responsibility letter sets two trainees of three hours each for the year; only an
    // administrator enters it, for a year of the period, with figures in their bounds.
    let set = |token: &str, year: String, body: Value| {
        let path = format!("{targets_path}/{year}");
        let token = token.to_owned();
        let app = &app;
        async move { app.call(Method::PUT, &path, Some(&token), Some(body)).await }
    };
    let letter = json!({"trainees": 2, "hours_each": 3});
    let (status, p) = set(&office, year.to_string(), letter.clone()).await;
    assert_refused(status, &p, StatusCode::FORBIDDEN, "forbidden");
    let after = years.last().unwrap() + 1;
    let (status, p) = set(admin, after.to_string(), letter.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["field"], "year");
    for (body, field) in [
        (json!({"trainees": 0, "hours_each": 3}), "trainees"),
        (json!({"trainees": 2, "hours_each": 5000}), "hours_each"),
        (json!({"trainees": 2, "hours_each": -1}), "hours_each"),
        (
            json!({"trainees": 2, "hours_each": 3, "credits": 1}),
            "credits",
        ),
    ] {
        let (status, p) = set(admin, year.to_string(), body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert_eq!(p["field"], field, "{body}: {p}");
    }
    let (status, p) = set(admin, "this-year".into(), letter.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
    let (_, unchanged) = app.get(&targets_path, &office).await;
    assert_eq!(unchanged, targets, "refused targets change nothing");
    let (status, saved) = set(admin, year.to_string(), letter).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["source"], "pairing");
    assert_eq!(saved["trainees"], 2);
    assert_eq!(saved["hours_each"], 3);
    assert!(saved["set_by"].is_i64(), "{saved}");

    // The day of the sessions is over (the gateway's clock moves on; the organiser and
    // the administrator log in again). The first trainee attended the morning and an hour
    // of the afternoon: three hours. The second attended an hour and a half.
    app.clock
        .advance(std::time::Duration::from_secs(3 * 24 * 3600));
    let office = app.login("jm.training", &password_for("jm.training")).await;
    let admin = &app.login("admin", &password_for("admin")).await;
    let attend = |user: i64, session: i64, from: (u32, u32), to: (u32, u32)| {
        let app = &app;
        let office = office.clone();
        async move {
            let (status, p) = app
                .post(
                    &format!("/api/v1/teaching/{session}/attendance"),
                    &office,
                    json!({"user_id": user, "joined_at": at(from.0, from.1), "left_at": at(to.0, to.1)}),
                )
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{p}");
        }
    };
    attend(trainees[0], sessions[0], (9, 0), (11, 0)).await;
    attend(trainees[0], sessions[1], (14, 0), (15, 0)).await;
    attend(trainees[1], sessions[0], (9, 0), (10, 30)).await;
    let report_path = format!("/api/v1/reports/pairings/{pairing_id}?period={year}");
    let (status, report) = app.get(&report_path, &office).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let training = &report["training"];
    assert_eq!(training["target"]["source"], "pairing", "{report}");
    assert_eq!(training["trained"], 1, "{report}");
    assert_eq!(training["trainees"][0]["user_id"], trainees[0]);
    assert_eq!(training["trainees"][0]["trained"], true);
    assert_eq!(training["trainees"][0]["hours"], 3.0);
    assert_eq!(training["trainees"][1]["user_id"], trainees[1]);
    assert_eq!(training["trainees"][1]["trained"], false, "1.5 of 3 hours");
    assert_eq!(report["trainees_attended"], 2);
    let goal = target(&report, "004");
    assert_eq!(goal["code"], "training_yearly");
    assert_eq!(goal["met"], false, "one of two: {report}");

    // An hour and a half of the afternoon brings the second to three hours: both count.
    attend(trainees[1], sessions[1], (14, 0), (15, 30)).await;
    let (_, report) = app.get(&report_path, &office).await;
    assert_eq!(report["training"]["trained"], 2, "{report}");
    assert_eq!(target(&report, "004")["met"], true, "{report}");
    let (status, csv) = app
        .call(
            Method::GET,
            &format!("{report_path}&format=csv"),
            Some(&office),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.to_string().contains("training hours"), "{csv}");

    // A year the letter sets nothing for is counted against the program's defaults.
    let (_, other_year) = app
        .get(
            &format!("/api/v1/reports/pairings/{pairing_id}?period={}", years[0]),
            &office,
        )
        .await;
    assert_eq!(
        other_year["training"]["target"]["source"], "program",
        "{other_year}"
    );
    assert_eq!(other_year["training"]["target"]["hours_each"], 12);

    // An ended pairing's targets are a record.
    let (status, ended) = app
        .post(
            &format!("/api/v1/pairings/{pairing_id}/end"),
            admin,
            json!({"reason": "受援医院并入医共体"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    let (status, p) = set(
        admin,
        year.to_string(),
        json!({"trainees": 5, "hours_each": 3}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{p}");
    app.stop().await;
}
