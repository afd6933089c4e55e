//! The registry's administration: changing an institution (`PATCH /institutions/{id}`),
//! a clinician's name, title, specialty and credentials (`PATCH /clinicians/{id}`) with
//! the years and consultant qualification they give, and a team's leader and members
//! (`PATCH /teams/{id}`), over the API, with who may and what is refused; then the whole
//! of it in the pages (`tests/browser/manage_registry.mjs`).

use chrono::{Duration, Months, Utc};
use duikou_tests::browser::{on_backend, run_scenario};
use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::requests::{clinician, pair};

on_both_backends!(
    only_an_administrator_changes_institutions_and_a_change_keeps_the_pairings_in_force,
    clinicians_are_shown_with_their_years_and_whether_they_qualify_as_consultants,
    a_units_coordinator_renames_a_clinician_and_changes_their_title_and_specialty,
    the_supporter_of_a_pairing_in_force_keeps_an_intermediate_title,
    a_units_coordinator_changes_a_teams_leader_and_members_and_huancui_keeps_five_to_ten,
    an_administrator_manages_institutions_clinicians_and_teams_in_the_pages,
);

/// Today in China, where practice dates are days.
fn today_in_china() -> chrono::NaiveDate {
    (Utc::now() + Duration::hours(8)).date_naive()
}

/// `PATCH path` with `body` as the administrator: refused with `status` under `kind`,
/// naming `field`.
async fn refused_naming(
    app: &TestApp,
    path: &str,
    body: Value,
    (status, kind): (StatusCode, &str),
    field: &str,
) -> Value {
    let (got, p) = app.patch(path, &app.admin_token, body.clone()).await;
    assert_refused(got, &p, status, kind);
    assert_eq!(p["field"], field, "{body}: {p}");
    p
}

const INVALID: (StatusCode, &str) = (StatusCode::UNPROCESSABLE_ENTITY, "invalid-field");
const REGISTERED: (StatusCode, &str) = (StatusCode::CONFLICT, "already-registered");

/// A pairing in force, created by the administrator, in which `clinician` supports
/// `village` for consultations.
async fn supports(app: &TestApp, clinician: i64, village: i64) -> Value {
    let today = today_in_china();
    let (status, pairing) = app
        .post(
            "/api/v1/pairings",
            &app.admin_token,
            json!({"supporter": {"kind": "clinician", "id": clinician},
                   "supported": {"kind": "institution", "value": village},
                   "services": ["consult"], "valid_from": today - Duration::days(30),
                   "valid_to": today + Duration::days(365)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pairing}");
    pairing
}

/// `GET path` as the administrator, which must answer 200.
async fn current(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get(path, &app.admin_token).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn only_an_administrator_changes_institutions_and_a_change_keeps_the_pairings_in_force(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let admin = &app.admin_token;
    let station = app.institution_id("羊亭镇大北山村卫生室").await;
    let path = format!("/api/v1/institutions/{station}");
    let before = current(&app, &path).await;
    assert_eq!(before["remote"], false);

    // Nobody but an administrator: not the station's own coordinator (an institution has
    // no contact details of its own to keep), another's, nor a clinician.
    let (_, own) = app.user("dbs.office", station, &["coordinator"]).await;
    let other_unit = app.institution_id("威海口腔医院").await;
    let (_, other) = app.user("wk.office", other_unit, &["coordinator"]).await;
    let (_, doctor) = app.user("dbs.doctor", station, &["clinician"]).await;
    for token in [&own, &other, &doctor] {
        let (status, p) = app.patch(&path, token, json!({"remote": true})).await;
        assert_refused(status, &p, StatusCode::FORBIDDEN, "forbidden");
    }
    // Bad input names its field.
    let taken = current(
        &app,
        &format!(
            "/api/v1/institutions/{}",
            app.institution_id("羊亭镇王家夼村卫生室").await
        ),
    )
    .await;
    for (body, field) in [
        (json!({"name": "  "}), "name"),
        (json!({"level": "hospital"}), "level"),
        (json!({"region": "山东省//环翠区"}), "region"),
        (json!({"remote": "yes"}), "remote"),
        (json!({"webhook": "https://example.org"}), "webhook"),
    ] {
        refused_naming(&app, &path, body, INVALID, field).await;
    }
    let body = json!({"name": taken["name"], "region": taken["region"]});
    refused_naming(&app, &path, body, REGISTERED, "name").await;
    assert_eq!(
        current(&app, &path).await,
        before,
        "nothing refused was written"
    );
    let (status, p) = app
        .patch(
            "/api/v1/institutions/999999",
            admin,
            json!({"remote": true}),
        )
        .await;
    assert_refused(status, &p, StatusCode::NOT_FOUND, "not-found");

    // The administrator marks the station remote and corrects its name.
    let (status, changed) = app
        .patch(
            &path,
            admin,
            json!({"name": "羊亭镇 大北山村 卫生室（新址）", "remote": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], "羊亭镇大北山村卫生室（新址）");
    assert_eq!(changed["remote"], true);
    assert_eq!(changed["level"], before["level"]);
    assert_eq!(current(&app, &path).await, changed);

    // A level or kind a pairing in force depends on does not change (004: tertiary general
    // hospitals support county general hospitals); the refusal names the field.
    let tertiary = app.institution_id("江门市中心医院").await;
    let county = app.institution_id("台山市人民医院").await;
    pair(&app, tertiary, county, json!(["consult"])).await;
    let county_path = format!("/api/v1/institutions/{county}");
    let county_before = current(&app, &county_path).await;
    let contradicts = (StatusCode::CONFLICT, "contradicts-pairing");
    for (body, field) in [
        (json!({"kind": "tcm"}), "kind"),
        (json!({"level": "tertiary"}), "level"),
    ] {
        let p = refused_naming(&app, &county_path, body, contradicts, field).await;
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("江门市中心医院 supports 台山市人民医院"),
            "{p}"
        );
    }
    let tertiary_path = format!("/api/v1/institutions/{tertiary}");
    let p = refused_naming(
        &app,
        &tertiary_path,
        json!({"kind": "tcm"}),
        contradicts,
        "kind",
    )
    .await;
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("原则上三级综合医院支援县医院，三级中医医院支援县级中医医院"),
        "{p}"
    );
    assert_eq!(current(&app, &county_path).await, county_before);
    app.stop().await;
}

async fn clinicians_are_shown_with_their_years_and_whether_they_qualify_as_consultants(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let county = app.institution_id("台山市人民医院").await;
    let other = app.institution_id("开平市中心医院").await;
    let new = clinician(&app, county, "黄医生", "主治医师", None, 2).await;
    let path = format!("/api/v1/clinicians/{new}");
    let before = current(&app, &path).await;
    assert_eq!(before["practice_years"], 2);
    assert_eq!(
        before["consultant_gaps"],
        json!(["no_licence", "under_three_years"])
    );
    let listed = current(&app, &format!("/api/v1/clinicians?institution_id={county}")).await;
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == new)
        .unwrap();
    assert_eq!(row, &before, "the list shows the same");

    let three_years = today_in_china() - Months::new(36);
    let credentials = json!({"licence_number": "110440700000077", "practice_since": three_years});
    let (_, own_doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    let (_, outsider) = app.user("kp.office", other, &["coordinator"]).await;
    for token in [&own_doctor, &outsider] {
        let (status, p) = app.patch(&path, token, credentials.clone()).await;
        assert_refused(status, &p, StatusCode::FORBIDDEN, "forbidden");
    }
    let tomorrow = today_in_china() + Duration::days(1);
    // Another doctor holds the licence number 110440700000078.
    clinician(
        &app,
        county,
        "梁医生",
        "主治医师",
        Some("110440700000078"),
        5,
    )
    .await;
    for since in [json!(tomorrow), json!("2020-02-30")] {
        let body = json!({"licence_number": null, "practice_since": since});
        refused_naming(&app, &path, body, INVALID, "practice_since").await;
    }
    let body = json!({"licence_number": "110440700000078", "practice_since": null});
    refused_naming(&app, &path, body, REGISTERED, "licence_number").await;
    assert_eq!(
        current(&app, &path).await,
        before,
        "nothing refused was written"
    );

    let (_, office) = app.user("ts.office", county, &["coordinator"]).await;
    let (status, after) = app.patch(&path, &office, credentials).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after["practice_years"], 3);
    assert_eq!(
        after["consultant_gaps"],
        json!([]),
        "licensed with three full years"
    );
    app.stop().await;
}

async fn a_units_coordinator_renames_a_clinician_and_changes_their_title_and_specialty(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let county = app.institution_id("台山市人民医院").await;
    let other = app.institution_id("开平市中心医院").await;
    let new = clinician(
        &app,
        county,
        "黄医生",
        "主治医师",
        Some("110440700000081"),
        5,
    )
    .await;
    let path = format!("/api/v1/clinicians/{new}");
    let before = current(&app, &path).await;
    let change = json!({"name": " 黄 志明 ", "title": "副主任中医师", "specialty": "中医内科"});

    // Not another unit's coordinator, nor a clinician of the unit.
    let (_, outsider) = app.user("kp.office", other, &["coordinator"]).await;
    let (_, own_doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    for token in [&outsider, &own_doctor] {
        let (status, p) = app.patch(&path, token, change.clone()).await;
        assert_refused(status, &p, StatusCode::FORBIDDEN, "forbidden");
    }
    // Bad values are refused as when the clinician was added, naming the field; so are
    // fields the roster does not change here.
    for (body, field) in [
        (json!({"name": "  "}), "name"),
        (json!({"name": 7}), "name"),
        (json!({"title": "院长"}), "title"),
        (json!({"title": ""}), "title"),
        (json!({"specialty": ["内科"]}), "specialty"),
        (json!({"practice_since": "2020-02-30"}), "practice_since"),
        (json!({"title_rank": "senior"}), "title_rank"),
        (json!({"institution_id": other}), "institution_id"),
    ] {
        refused_naming(&app, &path, body, INVALID, field).await;
    }
    assert_eq!(
        current(&app, &path).await,
        before,
        "nothing refused was written"
    );
    let (status, p) = app
        .patch(
            "/api/v1/clinicians/999999",
            &app.admin_token,
            change.clone(),
        )
        .await;
    assert_refused(status, &p, StatusCode::NOT_FOUND, "not-found");

    // The unit's coordinator: the rank follows the title, what is left out stays.
    let (_, office) = app.user("ts.office", county, &["coordinator"]).await;
    let (status, changed) = app.patch(&path, &office, change).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["name"], "黄志明");
    assert_eq!(changed["title"], "副主任中医师");
    assert_eq!(changed["title_rank"], "deputy_senior");
    assert_eq!(changed["specialty"], "中医内科");
    for kept in ["sex", "institution_id", "licence_number", "practice_since"] {
        assert_eq!(changed[kept], before[kept], "{kept} is kept");
    }
    assert_eq!(current(&app, &path).await, changed);
    let found = current(
        &app,
        &format!("/api/v1/clinicians?institution_id={county}&name=黄志明&min_rank=deputy_senior"),
    )
    .await;
    assert_eq!(
        found,
        json!([changed]),
        "searches find the new name and rank"
    );
    app.stop().await;
}

async fn the_supporter_of_a_pairing_in_force_keeps_an_intermediate_title(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let county = app.institution_id("台山市人民医院").await;
    let village = app.institution_id("北陡镇石蕉村卫生站").await;
    let supporter = clinician(
        &app,
        county,
        "刘医生",
        "主治医师",
        Some("110440700000082"),
        6,
    )
    .await;
    let pairing = supports(&app, supporter, village).await;
    let path = format!("/api/v1/clinicians/{supporter}");
    let before = current(&app, &path).await;
    let (_, office) = app.user("ts.office", county, &["coordinator"]).await;

    // 000: dispatched clinicians hold an intermediate title or higher; the whole change
    // is refused, the name with it.
    let lowered = json!({"name": "刘双贤", "title": "医师"});
    let (status, p) = app.patch(&path, &office, lowered.clone()).await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "supporter-not-qualified",
    );
    assert_eq!(p["field"], "title");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("已取得中级或以上职称的执业医师"), "{p}");
    assert!(
        detail.contains(&format!("pairing {}", pairing["id"])),
        "{p}"
    );
    assert_eq!(
        current(&app, &path).await,
        before,
        "nothing refused was written"
    );
    // Another intermediate title is no lower.
    let (status, changed) = app
        .patch(&path, &office, json!({"title": "主治中医师"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["title_rank"], "intermediate");

    // Once the pairing has ended, the roster may say what it says.
    let (status, ended) = app
        .post(
            &format!("/api/v1/pairings/{}/end", pairing["id"]),
            &app.admin_token,
            json!({"reason": "刘医生回原单位工作"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    let (status, changed) = app.patch(&path, &office, lowered).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        (&changed["name"], &changed["title_rank"]),
        (&json!("刘双贤"), &json!("junior"))
    );
    app.stop().await;
}

/// `n` clinicians of `unit` created over the API; their ids.
async fn staff(app: &TestApp, unit: i64, prefix: &str, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let licence = format!("{prefix}{i:03}");
        ids.push(
            clinician(
                app,
                unit,
                &format!("医生{prefix}{i}"),
                "主治医师",
                Some(&licence),
                8,
            )
            .await,
        );
    }
    ids
}

async fn a_units_coordinator_changes_a_teams_leader_and_members_and_huancui_keeps_five_to_ten(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let admin = &app.admin_token;
    let county = app.institution_id("台山市人民医院").await;
    let other = app.institution_id("开平市中心医院").await;
    let doctors = staff(&app, county, "1104407100", 4).await;
    let stranger = staff(&app, other, "1104407200", 1).await[0];
    let (status, team) = app
        .post("/api/v1/teams", admin, json!({"name": "心内科医疗队", "institution_id": county, "leader_id": doctors[0], "member_ids": [doctors[1]]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let path = format!("/api/v1/teams/{}", team["id"]);
    let change = json!({"leader_id": doctors[2], "member_ids": [doctors[1], doctors[3]]});

    let (_, outsider) = app.user("kp.office", other, &["coordinator"]).await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    for token in [&outsider, &doctor] {
        let (status, p) = app.patch(&path, token, change.clone()).await;
        assert_refused(status, &p, StatusCode::FORBIDDEN, "forbidden");
    }
    for (body, field) in [
        (json!({"member_ids": [stranger]}), "member_ids"),
        (json!({"leader_id": stranger}), "leader_id"),
        (json!({"leader_id": "陈医生"}), "leader_id"),
        (json!({"name": ""}), "name"),
        (json!({"institution_id": other}), "institution_id"),
    ] {
        refused_naming(&app, &path, body, INVALID, field).await;
    }
    assert_eq!(
        current(&app, &path).await,
        team,
        "nothing refused was written"
    );
    let (status, p) = app
        .patch("/api/v1/teams/999999", admin, change.clone())
        .await;
    assert_refused(status, &p, StatusCode::NOT_FOUND, "not-found");

    let (_, office) = app.user("ts.office", county, &["coordinator"]).await;
    let (status, changed) = app.patch(&path, &office, change).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["leader_id"], doctors[2]);
    assert_eq!(
        changed["member_ids"],
        json!([doctors[1], doctors[2], doctors[3]])
    );
    assert_eq!(current(&app, &path).await, changed);

    // 003: a Huancui team has five to ten members, its leader among them.
    let weihai = app.institution_id("威海卫人民医院").await;
    let experts = staff(&app, weihai, "1104407300", 11).await;
    let body = |members: &[i64]| json!({"name": "大北山村巡诊团队", "institution_id": weihai, "leader_id": experts[0], "member_ids": members});
    for members in [&experts[1..4], &experts[1..]] {
        let (status, p) = app.post("/api/v1/teams", admin, body(members)).await;
        assert_refused(status, &p, StatusCode::UNPROCESSABLE_ENTITY, "team-size");
        assert_eq!(p["field"], "member_ids");
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .contains("每个团队至少由5-10名队员组成"),
            "{p}"
        );
    }
    let (status, huancui) = app.post("/api/v1/teams", admin, body(&experts[1..5])).await;
    assert_eq!(status, StatusCode::CREATED, "{huancui}");
    let huancui_path = format!("/api/v1/teams/{}", huancui["id"]);
    let (status, p) = app
        .patch(&huancui_path, admin, json!({"member_ids": experts[1..3]}))
        .await;
    assert_refused(status, &p, StatusCode::UNPROCESSABLE_ENTITY, "team-size");
    assert_eq!(current(&app, &huancui_path).await, huancui);
    app.stop().await;
}

async fn an_administrator_manages_institutions_clinicians_and_teams_in_the_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let commission = app.institution_id("江门市卫生计生局").await;
    let account = app
        .account(json!({"username": "hc.li", "display_name": "李科长", "institution_id": commission, "roles": ["admin"]}))
        .await;
    let admin = json!({"username": "hc.li", "password": account["password"]});
    let station = app.institution_id("羊亭镇大北山村卫生室").await;
    let county = app.institution_id("台山市人民医院").await;
    // Already on the roll: a new doctor who does not qualify, with an account, and two
    // attending doctors for the team.
    let junior = clinician(&app, county, "伍医生", "医师", None, 1).await;
    app.account(json!({"username": "ts.wu", "display_name": "伍医生", "institution_id": county, "clinician_id": junior, "roles": ["clinician"]}))
        .await;
    let mut others = Vec::new();
    for (name, licence) in [("甄医生", "110440700000061"), ("谭医生", "110440700000062")] {
        others.push(clinician(&app, county, name, "主治医师", Some(licence), 10).await);
    }
    // The second supports a village station, in force.
    let village = app.institution_id("北陡镇石蕉村卫生站").await;
    supports(&app, others[1], village).await;
    let office = app
        .account(json!({"username": "ts.office", "display_name": "医务科", "institution_id": county, "roles": ["coordinator"]}))
        .await;
    let coordinator = json!({"username": "ts.office", "password": office["password"]});
    let since = today_in_china() - Months::new(12 * 4);
    let out = run_scenario(
        "manage_registry",
        &on_backend("manage_registry", backend),
        &app.base,
        json!({"admin": admin, "coordinator": coordinator, "station": station, "county": county, "junior": junior,
               "others": others, "since": since, "years": 4}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));

    // What the pages did is what the API holds.
    let station = current(&app, &format!("/api/v1/institutions/{station}")).await;
    assert_eq!(station["remote"], true);
    let added = current(&app, &format!("/api/v1/clinicians/{}", out["clinician"])).await;
    assert_eq!(added["name"], "陈医生");
    assert_eq!(added["practice_since"], json!(since));
    assert_eq!(added["consultant_gaps"], json!([]));
    let tan = current(&app, &format!("/api/v1/clinicians/{}", others[1])).await;
    assert_eq!(
        (&tan["title"], &tan["title_rank"], &tan["specialty"]),
        (
            &json!("副主任医师"),
            &json!("deputy_senior"),
            &json!("全科")
        )
    );
    let team = current(&app, &format!("/api/v1/teams/{}", out["team"])).await;
    assert_eq!(team["leader_id"], others[0]);
    assert_eq!(team["member_ids"].as_array().unwrap().len(), 3, "{team}");
    app.stop().await;
}
