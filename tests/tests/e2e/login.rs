//! Logins, sessions and the slowing down of repeated failures.

use duikou_tests::{Backend, TestApp, on_both_backends};
use reqwest::{Method, StatusCode, header};
use serde_json::json;

on_both_backends!(
    repeated_failed_logins_are_slowed_down,
    logout_ends_the_session_and_cookies_work_like_bearer_tokens,
    a_changed_password_ends_old_sessions,
    accounts_created_at_the_same_time_are_all_created,
);

async fn repeated_failed_logins_are_slowed_down(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.auth.failed_logins_before_delay = 3).await;
    let taishan = app.institution_id("台山市人民医院").await;
    let (status, created) = app
        .post("/api/v1/users", &app.admin_token, json!({"username": "slow", "display_name": "s", "institution_id": taishan, "roles": ["clinician"], "password": "a good long password"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let attempt = |password: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(format!("{}/api/v1/auth/login", app.base))
                .json(&json!({"username": "slow", "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..2 {
        assert_eq!(attempt("wrong").await.status(), StatusCode::UNAUTHORIZED);
    }
    // The third failure sets a delay; during it even the right password is held back.
    assert_eq!(attempt("wrong").await.status(), StatusCode::UNAUTHORIZED);
    let held = attempt("a good long password").await;
    assert_eq!(held.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(held.headers().contains_key(header::RETRY_AFTER));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        attempt("a good long password").await.status(),
        StatusCode::OK
    );
    // Unknown usernames are throttled the same way, so that throttling tells nothing.
    let unknown = |app: &TestApp| {
        app.client
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&json!({"username": "nobody", "password": "x"}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            unknown(&app).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        unknown(&app).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    app.stop().await;
}

async fn logout_ends_the_session_and_cookies_work_like_bearer_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"username": "admin", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (_, me) = app.get("/api/v1/me", &app.admin_token).await;
    assert_eq!(me["username"], "admin");
    // The same token as a cookie.
    let cookie = format!("duikou_session={}", app.admin_token);
    let by_cookie = app
        .client
        .get(format!("{}/api/v1/me", app.base))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::OK);
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get("/api/v1/me", &app.admin_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let by_cookie = app
        .client
        .get(format!("{}/api/v1/me", app.base))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn a_changed_password_ends_old_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let taishan = app.institution_id("台山市人民医院").await;
    let (status, _) = app
        .post("/api/v1/users", &app.admin_token, json!({"username": "mover", "display_name": "m", "institution_id": taishan, "roles": ["clinician"], "password": "first password 1"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = app.login("mover", "first password 1").await;
    let (status, problem) = app
        .post(
            "/api/v1/me/password",
            &token,
            json!({"current": "wrong", "new": "second password 2"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "current");
    let (status, problem) = app
        .post(
            "/api/v1/me/password",
            &token,
            json!({"current": "first password 1", "new": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "new");
    let (status, _) = app
        .post(
            "/api/v1/me/password",
            &token,
            json!({"current": "first password 1", "new": "second password 2"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get("/api/v1/me", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.login("mover", "second password 2").await;
    app.stop().await;
}

/// Transactions that read, then write (an account checks its institution, then is
/// inserted), forty at once: on SQLite each waits for the write lock instead of failing
/// with `SQLITE_BUSY` when another commits between its read and its write (as happened
/// under load in CI). Fails with a 500 when such transactions begin deferred.
async fn accounts_created_at_the_same_time_are_all_created(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let county = app.institution_id("台山市人民医院").await;
    let mut tasks = Vec::new();
    for n in 0..40 {
        let (base, client, admin) = (
            app.base.clone(),
            app.client.clone(),
            app.admin_token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let created = client
                .post(format!("{base}/api/v1/users"))
                .bearer_auth(&admin)
                .json(
                    &json!({"username": format!("ts.u{n}"), "display_name": format!("u{n}"),
                              "institution_id": county, "roles": ["clinician"]}),
                )
                .send()
                .await
                .unwrap();
            let status = created.status();
            let body: serde_json::Value = created.json().await.unwrap();
            (status, body)
        }));
    }
    let results = futures_util::future::join_all(tasks).await;
    for r in results {
        let (status, body) = r.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    app.stop().await;
}
