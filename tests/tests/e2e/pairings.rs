//! Changing and ending pairings (`004`: fixed for the period; a change needs an
//! administrator and a stated reason; the old version stays in history).

use chrono::{Days, NaiveDate};
use duikou_tests::duikou::registry::today_in_china;
use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    a_change_without_a_reason_is_refused_and_one_with_a_reason_keeps_history,
    ending_a_pairing_needs_a_reason_and_stops_its_support,
    a_change_based_on_an_old_version_is_refused,
    a_pairing_whose_period_is_over_does_not_change,
    general_hospitals_support_general_and_tcm_supports_tcm,
    a_side_has_one_supporter_for_a_service_at_a_time,
);

async fn a_side_has_one_supporter_for_a_service_at_a_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (p, village) = current_pairing(&app).await;
    let other = app.institution_id("江门市中心医院").await;
    let before = app.db.snapshot().await.unwrap();
    let (status, problem) = post_pairing(&app, other, village, json!(["consult"]), (0, 365)).await;
    assert_refused(status, &problem, StatusCode::CONFLICT, "already-paired");
    assert_eq!(problem["field"], "supported");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("pairing {}", p["id"])),
        "{problem}"
    );
    assert_eq!(
        app.db.snapshot().await.unwrap(),
        before,
        "a refused pairing writes nothing"
    );
    app.stop().await;
}

async fn general_hospitals_support_general_and_tcm_supports_tcm(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let wuyi_tcm = app.institution_id("江门市五邑中医院").await;
    let pairing = |supported: i64| {
        json!({"supporter": {"kind": "institution", "id": wuyi_tcm},
               "supported": {"kind": "institution", "value": supported},
               "services": ["consult"], "valid_from": day(0), "valid_to": day(365)})
    };
    let general = app.institution_id("台山市人民医院").await;
    let (status, p) = app
        .post("/api/v1/pairings", &app.admin_token, pairing(general))
        .await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "kind-mismatch",
    );
    assert!(p["detail"].as_str().unwrap().contains("004"));
    let tcm = app.institution_id("台山市中医院").await;
    let (status, created) = app
        .post("/api/v1/pairings", &app.admin_token, pairing(tcm))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // Changing it to a general hospital is refused the same way.
    let (status, p) = app
        .patch(
            &format!("/api/v1/pairings/{}", created["id"]),
            &app.admin_token,
            json!({"supported": {"kind": "institution", "value": general}, "reason": "reassignment"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    app.stop().await;
}

/// Today in China, shifted by `days`.
fn day(days: i64) -> NaiveDate {
    let today = today_in_china();
    if days >= 0 {
        today + Days::new(days as u64)
    } else {
        today - Days::new(days.unsigned_abs())
    }
}

/// Asks for a pairing of institution `supporter` with institution `supported` for
/// `services`, from and to the given days counted from today.
async fn post_pairing(
    app: &TestApp,
    supporter: i64,
    supported: i64,
    services: Value,
    (from, to): (i64, i64),
) -> (StatusCode, Value) {
    app.post(
        "/api/v1/pairings",
        &app.admin_token,
        json!({
            "supporter": {"kind": "institution", "id": supporter},
            "supported": {"kind": "institution", "value": supported},
            "services": services,
            "valid_from": day(from), "valid_to": day(to)
        }),
    )
    .await
}

/// Creates a pairing of Jiangmen People's Hospital with a village station, from a year
/// ago to four years ahead.
async fn current_pairing(app: &TestApp) -> (Value, i64) {
    let village = app.institution_id("北陡镇那琴村卫生站").await;
    let hospital = app.institution_id("江门市人民医院").await;
    let (status, p) = post_pairing(
        app,
        hospital,
        village,
        json!(["consult", "teaching"]),
        (-365, 4 * 365),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["standing"], "in_force", "{p}");
    (p, village)
}

async fn a_change_without_a_reason_is_refused_and_one_with_a_reason_keeps_history(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (p, _) = current_pairing(&app).await;
    let path = format!("/api/v1/pairings/{}", p["id"]);
    let before = app.db.snapshot().await.unwrap();

    let (status, problem) = app
        .patch(&path, &app.admin_token, json!({"services": ["consult"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "reason");
    let (status, problem) = app
        .patch(
            &path,
            &app.admin_token,
            json!({"services": ["consult"], "reason": "   "}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a blank reason is no reason: {problem}"
    );
    for (field, value) in [
        ("valid_from", json!(day(-10))),
        ("valid_to", json!(day(-1))),
    ] {
        let (status, problem) = app
            .patch(
                &path,
                &app.admin_token,
                json!({field: value, "reason": "rewrite the past"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["field"], field, "what was covered stays as it was");
    }
    assert_eq!(
        app.db.snapshot().await.unwrap(),
        before,
        "a refused change changes nothing"
    );

    let (status, changed) = app
        .patch(
            &path,
            &app.admin_token,
            json!({"services": ["consult"], "reason": "teaching moves to the county hospital"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["version"], 2);
    assert_eq!(changed["services"], json!(["consult"]));

    let (status, history) = app.get(&format!("{path}/history"), &app.admin_token).await;
    assert_eq!(status, StatusCode::OK);
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["version"], 1);
    assert_eq!(history[0]["services"], json!(["consult", "teaching"]));
    assert_eq!(history[0]["action"], "created");
    assert_eq!(history[1]["version"], 2);
    assert_eq!(history[1]["action"], "changed");
    assert_eq!(
        history[1]["reason"],
        "teaching moves to the county hospital"
    );
    let (_, me) = app.get("/api/v1/me", &app.admin_token).await;
    assert_eq!(history[1]["changed_by"], me["id"]);
    assert!(history[1]["changed_at"].is_string());
    app.stop().await;
}

async fn ending_a_pairing_needs_a_reason_and_stops_its_support(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (p, village) = current_pairing(&app).await;
    let end = format!("/api/v1/pairings/{}/end", p["id"]);
    let (status, problem) = app
        .post(&end, &app.admin_token, json!({"last_day": day(30)}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "reason");
    for bad in [day(5 * 365), day(-1)] {
        let (status, problem) = app
            .post(
                &end,
                &app.admin_token,
                json!({"last_day": bad, "reason": "x"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {problem}");
        assert_eq!(problem["field"], "last_day");
    }

    let (status, ended) = app
        .post(
            &end,
            &app.admin_token,
            json!({"last_day": day(30), "reason": "the station merged with the township centre"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
    assert_eq!(ended["status"], "ended");
    assert_eq!(
        ended["standing"], "ended",
        "ended early, though its last day is ahead"
    );
    assert_eq!(ended["valid_to"], json!(day(30)));
    let lookup = |date: NaiveDate| {
        let app = &app;
        async move {
            let (_, body) = app
                .get(
                    &format!(
                        "/api/v1/supporters?institution_id={village}&service=teaching&date={date}"
                    ),
                    &app.admin_token,
                )
                .await;
            body["chain"].as_array().unwrap().len()
        }
    };
    assert_eq!(lookup(day(30)).await, 1, "covered up to its last day");
    assert_eq!(lookup(day(31)).await, 0, "and not after");
    let (status, _) = app
        .post(&end, &app.admin_token, json!({"reason": "again"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, history) = app
        .get(
            &format!("/api/v1/pairings/{}/history", p["id"]),
            &app.admin_token,
        )
        .await;
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[1]["action"], "ended");
    app.stop().await;
}

async fn a_change_based_on_an_old_version_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (p, _) = current_pairing(&app).await;
    let path = format!("/api/v1/pairings/{}", p["id"]);
    let (status, _) = app
        .patch(
            &path,
            &app.admin_token,
            json!({"version": 1, "valid_to": day(1000), "reason": "a"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = app
        .patch(
            &path,
            &app.admin_token,
            json!({"version": 1, "valid_to": day(900), "reason": "b"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (_, now) = app.get(&path, &app.admin_token).await;
    assert_eq!(now["valid_to"], json!(day(1000)));
    app.stop().await;
}

async fn a_pairing_whose_period_is_over_does_not_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, seeded) = app.get("/api/v1/pairings?limit=1", &app.admin_token).await;
    // The seeded pairings ran in 2016-2020: they stand expired, here and on their own page.
    assert_eq!(seeded[0]["standing"], "expired", "{seeded}");
    let path = format!("/api/v1/pairings/{}", seeded[0]["id"]);
    let (_, one) = app.get(&path, &app.admin_token).await;
    assert_eq!(one["standing"], "expired");
    // A village whose only pairing expired books nothing: the period rule refuses it and
    // names the period.
    let shijiao = app.institution_id("北陡镇石蕉村卫生站").await;
    let (_, doctor) = app.user("sj.doctor", shijiao, &["clinician"]).await;
    let (status, problem) = app
        .post(
            "/api/v1/requests",
            &doctor,
            json!({"kind": "consultation", "content": crate::requests::content()}),
        )
        .await;
    assert_refused(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "outside-pairing-period",
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("2018-12-31"),
        "the refusal names the period: {problem}"
    );
    // One whose period begins next month has not started.
    let village = app.institution_id("北陡镇那琴村卫生站").await;
    let hospital = app.institution_id("江门市人民医院").await;
    let (status, later) =
        post_pairing(&app, hospital, village, json!(["consult"]), (30, 400)).await;
    assert_eq!(status, StatusCode::CREATED, "{later}");
    assert_eq!(later["standing"], "not_started");
    let (status, problem) = app
        .patch(
            &path,
            &app.admin_token,
            json!({"services": ["consult"], "reason": "late"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    app.stop().await;
}
