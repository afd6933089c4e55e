//! "Who supports institution X for service S on date D", walking village station →
//! clinician or team → their unit → the assisting tertiary hospital (`000`, 任务分解表).

use duikou_tests::{Backend, TestApp, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    a_taishan_village_is_supported_by_its_clinician_then_jiangmen_central_hospital,
    a_heshan_village_chain_ends_at_the_wuyi_tcm_hospital,
    villages_of_the_same_name_in_different_towns_have_their_own_clinicians,
    nobody_supports_a_village_outside_the_pairing_period,
    a_team_supports_through_its_unit,
);

async fn chain(app: &TestApp, institution: i64, service: &str, date: &str) -> Vec<Value> {
    let (status, body) = app
        .get(
            &format!(
                "/api/v1/supporters?institution_id={institution}&service={service}&date={date}"
            ),
            &app.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["chain"].as_array().unwrap().clone()
}

fn names(chain: &[Value]) -> Vec<&str> {
    chain.iter().map(|l| l["name"].as_str().unwrap()).collect()
}

async fn a_taishan_village_is_supported_by_its_clinician_then_jiangmen_central_hospital(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let shijiao = app.institution_id("北陡镇石蕉村卫生站").await;
    let links = chain(&app, shijiao, "consult", "2017-06-01").await;
    assert_eq!(
        names(&links),
        ["郭江斌", "台山市妇幼保健院", "江门市中心医院"]
    );
    assert_eq!(links[0]["kind"], "clinician");
    assert_eq!(links[1]["role"], "unit");
    assert_eq!(links[2]["kind"], "institution");
    // Reads go to the tertiary hospital that assists the whole Taishan system.
    let reads = chain(&app, shijiao, "imaging_read", "2017-06-01").await;
    assert_eq!(names(&reads), ["江门市中心医院"]);
    app.stop().await;
}

async fn a_heshan_village_chain_ends_at_the_wuyi_tcm_hospital(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let yundong = app.institution_id("址山镇云东村卫生站").await;
    let links = chain(&app, yundong, "consult", "2018-12-31").await;
    assert_eq!(
        names(&links),
        ["钟立仁", "鹤山市中医院", "江门市五邑中医院"]
    );
    app.stop().await;
}

async fn villages_of_the_same_name_in_different_towns_have_their_own_clinicians(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let haiyan = app.institution_id("海宴镇联和村卫生站").await;
    let shenjing = app.institution_id("深井镇联和村卫生站").await;
    assert_ne!(haiyan, shenjing);
    assert_eq!(
        names(&chain(&app, haiyan, "consult", "2017-01-01").await)[0],
        "李劲图"
    );
    assert_eq!(
        names(&chain(&app, shenjing, "consult", "2017-01-01").await)[0],
        "王展"
    );
    app.stop().await;
}

async fn nobody_supports_a_village_outside_the_pairing_period(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let shijiao = app.institution_id("北陡镇石蕉村卫生站").await;
    assert!(
        chain(&app, shijiao, "consult", "2016-04-30")
            .await
            .is_empty()
    );
    assert!(
        chain(&app, shijiao, "consult", "2019-01-01")
            .await
            .is_empty()
    );
    // A service the village pairing does not cover goes to the region's supporter only.
    assert_eq!(
        names(&chain(&app, shijiao, "ward_round", "2017-01-01").await),
        ["江门市中心医院"]
    );
    app.stop().await;
}

async fn a_team_supports_through_its_unit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = &app.admin_token;
    let weihai = app.institution_id("威海卫人民医院").await;
    // 003: a team of five to ten, one of them its leader.
    let mut members = Vec::new();
    for (name, title) in [
        ("张医生", "主任医师"),
        ("李医生", "主治医师"),
        ("王医生", "副主任医师"),
        ("于医生", "主治医师"),
        ("丛医生", "主治医师"),
    ] {
        let (status, c) = app
            .post("/api/v1/clinicians", admin, json!({"name": name, "institution_id": weihai, "title": title, "specialty": "心血管内科"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{c}");
        members.push(c["id"].as_i64().unwrap());
    }
    let (status, team) = app
        .post(
            "/api/v1/teams",
            admin,
            json!({"name": "专家巡诊队", "institution_id": weihai, "leader_id": members[0], "member_ids": members[1..]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    assert_eq!(team["member_ids"].as_array().unwrap().len(), 5);
    let village = app.institution_id("羊亭镇王家夼村卫生室").await;
    let (status, p) = app
        .post(
            "/api/v1/pairings",
            admin,
            json!({
                "supporter": {"kind": "team", "id": team["id"]},
                "supported": {"kind": "institution", "value": village},
                "services": ["ward_round"],
                "valid_from": "2025-01-01", "valid_to": "2027-12-31"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let links = chain(&app, village, "ward_round", "2026-03-01").await;
    assert_eq!(names(&links), ["专家巡诊队", "威海卫人民医院"]);
    assert_eq!(links[0]["kind"], "team");
    app.stop().await;
}
