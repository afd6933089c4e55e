//! Only the right people: no session is 401; the wrong role or institution is 403.

use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    without_a_session_every_endpoint_answers_401,
    a_clinician_cannot_change_pairings_or_see_another_institutions_users,
    a_coordinator_adds_accounts_only_for_their_own_institution,
    disabling_an_account_ends_its_sessions_until_it_is_enabled,
);

async fn disabling_an_account_ends_its_sessions_until_it_is_enabled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let county = app.institution_id("台山市人民医院").await;
    let other = app.institution_id("开平市中心医院").await;
    const PASSWORD: &str = "a password of some length";
    let (status, made) = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            json!({"username": "ts.wu", "display_name": "吴医生", "institution_id": county,
                   "roles": ["clinician"], "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let path = format!("/api/v1/users/{}", made["user"]["id"]);
    let token = app.login("ts.wu", PASSWORD).await;
    let (status, _) = app.get("/api/v1/me", &token).await;
    assert_eq!(status, StatusCode::OK);

    // Neither the user themself nor another institution's coordinator disables it.
    let (_, elsewhere) = app.user("kp.office", other, &["coordinator"]).await;
    for who in [&token, &elsewhere] {
        let (status, _) = app.patch(&path, who, json!({"disabled": true})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, _) = app.get("/api/v1/me", &token).await;
    assert_eq!(status, StatusCode::OK, "a refused change changes nothing");

    // Its own institution's coordinator does: the session ends at once, and so do logins.
    let (_, office) = app.user("ts.office", county, &["coordinator"]).await;
    let (status, user) = app.patch(&path, &office, json!({"disabled": true})).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["disabled"], true);
    let (status, _) = app.get("/api/v1/me", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let login = json!({"username": "ts.wu", "password": PASSWORD});
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(login.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Enabled again, it logs in again.
    let (status, user) = app.patch(&path, &office, json!({"disabled": false})).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    let token = app.login("ts.wu", PASSWORD).await;
    let (status, _) = app.get("/api/v1/me", &token).await;
    assert_eq!(status, StatusCode::OK);
    // Nobody disables their own account.
    let (_, me) = app.get("/api/v1/me", &app.admin_token).await;
    let own = format!("/api/v1/users/{}", me["id"]);
    let (status, problem) = app
        .patch(&own, &app.admin_token, json!({"disabled": true}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, _) = app.get("/api/v1/me", &app.admin_token).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
}

async fn without_a_session_every_endpoint_answers_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (method, path) in [
        (Method::GET, "/api/v1/institutions"),
        (Method::GET, "/api/v1/clinicians"),
        (Method::GET, "/api/v1/teams"),
        (Method::GET, "/api/v1/pairings"),
        (Method::GET, "/api/v1/pairings/1/history"),
        (
            Method::GET,
            "/api/v1/supporters?institution_id=1&service=consult",
        ),
        (Method::GET, "/api/v1/users"),
        (Method::GET, "/api/v1/me"),
        (Method::POST, "/api/v1/pairings"),
        (Method::POST, "/api/v1/auth/logout"),
    ] {
        let (status, problem) = app.call(method.clone(), path, None, None).await;
        assert_refused(
            status,
            &problem,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
        let (status, _) = app
            .call(method.clone(), path, Some("not-a-session"), None)
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a made-up token"
        );
    }
    app.stop().await;
}

async fn a_clinician_cannot_change_pairings_or_see_another_institutions_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let taishan = app.institution_id("台山市人民医院").await;
    let kaiping = app.institution_id("开平市中心医院").await;
    let (_, doctor) = app.user("ts.doctor", taishan, &["clinician"]).await;
    let (kp_id, _) = app.user("kp.doctor", kaiping, &["clinician"]).await;
    let (_, p) = app.get("/api/v1/pairings?limit=1", &doctor).await;
    let pairing = p[0]["id"].as_i64().unwrap();
    let before = app.db.snapshot().await.unwrap();

    let body = json!({
        "supporter": {"kind": "institution", "id": taishan},
        "supported": {"kind": "institution", "value": kaiping},
        "services": ["consult"], "valid_from": "2026-01-01", "valid_to": "2026-12-31"
    });
    let (status, problem) = app.post("/api/v1/pairings", &doctor, body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(problem["type"].as_str().unwrap().ends_with("/forbidden"));
    let (status, _) = app
        .patch(
            &format!("/api/v1/pairings/{pairing}"),
            &doctor,
            json!({"reason": "mine now"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(
            &format!("/api/v1/pairings/{pairing}/end"),
            &doctor,
            json!({"reason": "no"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(
            "/api/v1/institutions",
            &doctor,
            json!({"name": "x", "level": "county", "kind": "general", "region": "广东省"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post("/api/v1/clinicians", &doctor, json!({"name": "x", "institution_id": kaiping, "title": "主治医师", "specialty": "内科"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = app
        .get(&format!("/api/v1/users?institution_id={kaiping}"), &doctor)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get(&format!("/api/v1/users/{kp_id}"), &doctor).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, own) = app.get("/api/v1/users", &doctor).await;
    assert_eq!(status, StatusCode::OK);
    let own = own.as_array().unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["username"], "ts.doctor");
    let (status, _) = app.post("/api/v1/users", &doctor, json!({"username": "intruder", "display_name": "x", "institution_id": taishan, "roles": ["admin"]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.db.snapshot().await.unwrap(),
        before,
        "refusals change nothing"
    );

    // The administrator can do each of these.
    let (status, _) = app
        .get(
            &format!("/api/v1/users?institution_id={kaiping}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .get(&format!("/api/v1/users/{kp_id}"), &app.admin_token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, created) = app.post("/api/v1/pairings", &app.admin_token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    app.stop().await;
}

async fn a_coordinator_adds_accounts_only_for_their_own_institution(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let enping = app.institution_id("恩平市人民医院").await;
    let heshan = app.institution_id("鹤山市人民医院").await;
    let (_, coordinator) = app.user("ep.office", enping, &["coordinator"]).await;
    let user = |institution: i64, roles: serde_json::Value| json!({"username": format!("u{institution}{}", roles[0].as_str().unwrap()), "display_name": "新同事", "institution_id": institution, "roles": roles});
    let (status, created) = app
        .post(
            "/api/v1/users",
            &coordinator,
            user(enping, json!(["trainee"])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["initial_password"].as_str().unwrap().len() >= 12);
    let (status, _) = app
        .post(
            "/api/v1/users",
            &coordinator,
            user(heshan, json!(["trainee"])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(
            "/api/v1/users",
            &coordinator,
            user(enping, json!(["admin"])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}
