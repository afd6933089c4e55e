//! Logins, sessions and the slowing down of repeated failures.

use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends};
use reqwest::{Method, StatusCode, header};
use serde_json::json;

on_both_backends!(
    repeated_failed_logins_are_slowed_down,
    logout_ends_the_session_and_cookies_work_like_bearer_tokens,
    a_changed_password_ends_old_sessions,
    a_one_time_password_must_be_replaced_before_anything_else,
    accounts_created_at_the_same_time_are_all_created,
    concurrent_guesses_all_count_and_password_checks_keep_memory_bounded,
);

async fn repeated_failed_logins_are_slowed_down(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.auth.failed_logins_before_delay = 3).await;
    let taishan = app.institution_id("台山市人民医院").await;
    let (status, created) = app
        .post("/api/v1/users", &app.admin_token, json!({"username": "slow", "display_name": "s", "institution_id": taishan, "roles": ["clinician"], "password": "a good long password"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // Guesses come from 127.0.0.2, the user logs in from 127.0.0.1.
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let (guesser, user) = (from("127.0.0.2"), from("127.0.0.1"));
    let attempt = |client: &reqwest::Client, password: &'static str| {
        let request = client
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&json!({"username": "slow", "password": password}));
        async move { request.send().await.unwrap() }
    };
    for _ in 0..2 {
        assert_eq!(
            attempt(&guesser, "wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // The third failure sets a delay; during it even the right password is held back
    // from that address, but not from another.
    assert_eq!(
        attempt(&guesser, "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let held = attempt(&guesser, "a good long password").await;
    assert_eq!(held.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(held.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(
        attempt(&user, "a good long password").await.status(),
        StatusCode::OK,
        "the guesses from 127.0.0.2 do not stop the user at 127.0.0.1"
    );
    // The delay passes: the gateway's clock moves on rather than the test waiting.
    app.clock.advance(std::time::Duration::from_millis(1100));
    assert_eq!(
        attempt(&guesser, "a good long password").await.status(),
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
    let elsewhere = app.login("mover", "first password 1").await;
    let (status, problem) = app
        .post(
            "/api/v1/me/password",
            &token,
            json!({"current": "wrong", "new": "second password 2"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "current");
    // Guesses of the current password are held back like logins: after five, even the
    // right one waits.
    let change = |current: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            app.post(
                "/api/v1/me/password",
                &token,
                json!({"current": current, "new": "second password 2"}),
            )
            .await
            .0
        }
    };
    for _ in 0..4 {
        assert_eq!(change("wrong").await, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(
        change("first password 1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The delay passes: the gateway's clock moves on rather than the test waiting.
    app.clock.advance(std::time::Duration::from_millis(1100));
    let (status, problem) = app
        .post(
            "/api/v1/me/password",
            &token,
            json!({"current": "first password 1", "new": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "new");
    let (status, problem) = app
        .post(
            "/api/v1/me/password",
            &token,
            json!({"current": "first password 1", "new": "first password 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the same again");
    assert_eq!(problem["field"], "new");
    let (status, _) = app
        .post(
            "/api/v1/me/password",
            &token,
            json!({"current": "first password 1", "new": "second password 2"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The session that changed it goes on; every other one has ended.
    let (status, me) = app.get("/api/v1/me", &token).await;
    assert_eq!(
        (status, me["must_change_password"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let (status, _) = app.get("/api/v1/me", &elsewhere).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.login("mover", "second password 2").await;
    app.stop().await;
}

/// The first administrator's printed password, a generated one and a reset one are
/// one-time: with one, only `/me`, `/me/password` and logout answer, and the last login
/// is recorded.
async fn a_one_time_password_must_be_replaced_before_anything_else(backend: Backend) {
    let mut app = TestApp::spawn_first_run(backend).await;
    let (admin, one_time) = app.first_admin.clone();
    let token = app.login(&admin, &one_time).await;
    let (status, me) = app.get("/api/v1/me", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["must_change_password"], true);
    assert!(me["last_login_at"].is_string(), "{me}");
    let (status, problem) = app.get("/api/v1/institutions?limit=1", &token).await;
    assert_refused(
        status,
        &problem,
        StatusCode::FORBIDDEN,
        "password-change-required",
    );
    let (status, _) = app
        .post(
            "/api/v1/me/password",
            &token,
            json!({"current": one_time, "new": "the administrator's own"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get("/api/v1/institutions?limit=1", &token).await;
    assert_eq!(status, StatusCode::OK);
    app.admin_token = token.clone();

    // A generated password is one-time too; so is a reset one, and a reset ends the
    // account's sessions.
    let taishan = app.institution_id("台山市人民医院").await;
    let (status, created) = app
        .post("/api/v1/users", &token, json!({"username": "ts.new", "display_name": "新", "institution_id": taishan, "roles": ["clinician"]}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["user"]["must_change_password"], true);
    assert!(created["user"]["last_login_at"].is_null());
    let id = created["user"]["id"].as_i64().unwrap();
    let generated = created["initial_password"].as_str().unwrap();
    let user = app.login("ts.new", generated).await;
    let (status, _) = app.get("/api/v1/requests", &user).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(
            "/api/v1/me/password",
            &user,
            json!({"current": generated, "new": "ts.new's own password"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get("/api/v1/requests", &user).await;
    assert_eq!(status, StatusCode::OK);
    let (status, listed) = app.get(&format!("/api/v1/users/{id}"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        listed["last_login_at"].is_string(),
        "the last login shows: {listed}"
    );

    let (status, reset) = app
        .post(
            &format!("/api/v1/users/{id}/password-reset"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!(reset["user"]["must_change_password"], true);
    let (status, _) = app.get("/api/v1/me", &user).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the reset ended the account's session"
    );
    let again = app
        .login("ts.new", reset["one_time_password"].as_str().unwrap())
        .await;
    let (status, problem) = app.get("/api/v1/requests", &again).await;
    assert_refused(
        status,
        &problem,
        StatusCode::FORBIDDEN,
        "password-change-required",
    );
    // Nobody resets their own password, and a coordinator not another institution's.
    let me = me["id"].as_i64().unwrap();
    let (status, _) = app
        .post(
            &format!("/api/v1/users/{me}/password-reset"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let enping = app.institution_id("恩平市人民医院").await;
    let (status, coordinator) = app
        .post("/api/v1/users", &token, json!({"username": "ep.office", "display_name": "医务科", "institution_id": enping, "roles": ["coordinator"], "password": "enping office password"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{coordinator}");
    let office = app.login("ep.office", "enping office password").await;
    let (status, _) = app
        .post(
            &format!("/api/v1/users/{id}/password-reset"),
            &office,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
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

/// 40 wrong guesses at once for one account from one address: each is counted before its
/// password is checked, so only the free ones are checked and the rest are 429. Then 96
/// logins at once with unknown names: two password checks run at a time, in two work
/// areas kept from one login to the next, so the process grows by less than 100 MiB
/// (each check takes 19 MiB; 96 at once took 1.8 GiB before) and is back within 40 MiB
/// of its resting size after. With no wait allowed, logins that find both checks busy
/// are answered 503 with `Retry-After`.
async fn concurrent_guesses_all_count_and_password_checks_keep_memory_bounded(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.auth.failed_logins_before_delay = 5;
        c.auth.attempts_per_address_before_delay = 10_000;
        c.auth.concurrent_password_checks = 2;
        c.auth.password_check_wait_seconds = 60;
    })
    .await;
    let login = |username: String, password: &'static str| {
        let request = app
            .client
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&json!({"username": username, "password": password}));
        async move { request.send().await.unwrap() }
    };
    let guesses: Vec<_> = (0..40)
        .map(|_| login("admin".into(), "a wrong guess"))
        .collect();
    let statuses: Vec<StatusCode> = futures_status(guesses).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let held = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, held), (5, 35), "{statuses:?}");

    // Resting: after one check, so that a work area exists.
    assert_eq!(
        login("warm-up".into(), "x").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let rest = duikou_tests::resident_bytes();
    let burst: Vec<_> = (0..96).map(|i| login(format!("nobody-{i}"), "x")).collect();
    let (statuses, peak) = duikou_tests::peak_resident_while(futures_status(burst)).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    const MIB: u64 = 1 << 20;
    println!(
        "resident: {} MiB at rest, {} MiB at the peak of 96 logins, {} MiB after",
        rest / MIB,
        peak / MIB,
        duikou_tests::resident_bytes() / MIB
    );
    assert!(
        peak < rest + 100 * MIB,
        "{} MiB over rest",
        (peak - rest) / MIB
    );
    assert!(
        duikou_tests::resident_bytes() < rest + 40 * MIB,
        "{} MiB over rest after the burst",
        (duikou_tests::resident_bytes().saturating_sub(rest)) / MIB
    );
    app.stop().await;

    let app = TestApp::spawn_with(backend, |c| {
        c.auth.attempts_per_address_before_delay = 10_000;
        c.auth.concurrent_password_checks = 1;
        c.auth.password_check_wait_seconds = 0;
    })
    .await;
    let burst: Vec<_> = (0..8)
        .map(|i| {
            app.client
                .post(format!("{}/api/v1/auth/login", app.base))
                .json(&json!({"username": format!("nobody-{i}"), "password": "x"}))
                .send()
        })
        .collect();
    let mut busy = 0;
    for response in futures_join(burst).await {
        let response = response.unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert!(response.headers().contains_key(header::RETRY_AFTER));
            busy += 1;
        } else {
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
    }
    assert!(
        busy > 0,
        "with one check and no wait, some logins find it busy"
    );
    app.stop().await;
}

async fn futures_join<F: std::future::Future + Send + 'static>(all: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = all.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

async fn futures_status<F>(all: Vec<F>) -> Vec<StatusCode>
where
    F: std::future::Future<Output = reqwest::Response> + Send + 'static,
{
    futures_join(all)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect()
}
