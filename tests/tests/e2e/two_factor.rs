//! Two-factor sign-in (TOTP, RFC 6238): enrolment, the second step of a login, recovery
//! codes, throttling, administrators held to it by default (`auth.two_factor_roles`), and
//! the audit of sign-in and account events. The codes come from oathtool, an
//! implementation independent of the gateway's.

use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends, password_for};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

on_both_backends!(
    an_administrator_enrols_from_the_page_and_signs_in_with_the_code,
    a_lost_second_factor_is_removed_by_an_administrator_or_at_the_command_line,
    an_administrator_can_do_nothing_but_enrol_until_signing_in_with_a_code,
    a_clinician_signs_in_without_a_second_factor_until_she_enrols,
);

/// Administrators need the second factor, as by default (the harness turns it off).
fn administrators_need_it(config: &mut duikou_tests::duikou::config::Config) {
    config.auth.two_factor_roles = vec![duikou_tests::duikou::domain::Role::Admin];
}

/// oathtool's codes of `secret` (base32): this step's and the next `ahead` ones.
fn oathtool(secret: &str, ahead: u32) -> Vec<String> {
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-w", &ahead.to_string(), "-b", secret])
        .output()
        .expect("oathtool runs (tests/run installs it)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Begins enrolment as `token` and checks what it answers; the secret.
async fn begin(app: &TestApp, token: &str, username: &str) -> String {
    let (status, enrolment) = app.post("/api/v1/me/two-factor", token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{enrolment}");
    assert!(enrolment["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let uri = reqwest::Url::parse(enrolment["otpauth_uri"].as_str().unwrap()).unwrap();
    assert_eq!(uri.scheme(), "otpauth");
    assert_eq!(uri.host_str(), Some("totp"));
    assert_eq!(uri.path(), format!("/duikou:{username}"));
    let q: std::collections::HashMap<_, _> = uri.query_pairs().into_owned().collect();
    assert_eq!(q["secret"], secret);
    assert_eq!(q["issuer"], "duikou");
    assert_eq!(q["digits"], "6");
    assert_eq!(q["period"], "30");
    assert_eq!(q["algorithm"], "SHA1");
    secret
}

/// The first step of a login: its answer.
async fn password_step(app: &TestApp, username: &str) -> Value {
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": username, "password": password_for(username)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The second step of a login with `code`.
async fn code_step(app: &TestApp, pending: &Value, code: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/auth/login/second-factor", app.base))
        .json(&json!({"pending_token": pending["pending_token"], "code": code}))
        .send()
        .await
        .unwrap()
}

/// A wrong or used code is refused naming `code`, as a problem.
async fn refused_naming_code(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["field"], "code", "{problem}");
}

async fn an_administrator_can_do_nothing_but_enrol_until_signing_in_with_a_code(backend: Backend) {
    let app = TestApp::spawn_with(backend, administrators_need_it).await;
    let admin = app.first_admin.0.clone();
    // The harness replaced the one-time password; the session may only enrol.
    let token = app.admin_token.clone();
    let (status, me) = app.get("/api/v1/me", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["two_factor_required"], true, "{me}");
    assert_eq!(me["two_factor"], false, "{me}");
    let (status, problem) = app.get("/api/v1/audit", &token).await;
    assert_refused(
        status,
        &problem,
        StatusCode::FORBIDDEN,
        "two-factor-required",
    );
    let (status, problem) = app
        .post(
            "/api/v1/institutions",
            &token,
            json!({"name": "新医院", "level": "county", "kind": "general", "region": ["广东省"]}),
        )
        .await;
    assert_refused(
        status,
        &problem,
        StatusCode::FORBIDDEN,
        "two-factor-required",
    );

    let secret = begin(&app, &token, &admin).await;
    let (status, problem) = app
        .post(
            "/api/v1/me/two-factor/confirm",
            &token,
            json!({"code": "000000x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "code");
    let codes = oathtool(&secret, 1);
    let (status, confirmed) = app
        .post(
            "/api/v1/me/two-factor/confirm",
            &token,
            json!({"code": codes[0]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let recovery: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    // Enrolled, the same session acts.
    let (status, _) = app.get("/api/v1/audit", &token).await;
    assert_eq!(status, StatusCode::OK);

    // The password alone is no session now.
    let pending = password_step(&app, &admin).await;
    assert_eq!(pending["step"], "second_factor", "{pending}");
    assert!(pending.get("token").is_none(), "{pending}");
    let (status, _) = app
        .get("/api/v1/me", pending["pending_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    refused_naming_code(code_step(&app, &pending, "123").await).await;
    // The code that confirmed the enrolment was used: not again.
    refused_naming_code(code_step(&app, &pending, &codes[0]).await).await;
    let signed_in = code_step(&app, &pending, &codes[1]).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let signed_in: Value = signed_in.json().await.unwrap();
    let second = signed_in["token"].as_str().unwrap().to_owned();
    let (status, _) = app.get("/api/v1/audit", &second).await;
    assert_eq!(status, StatusCode::OK);
    // Each code once: the one just used is refused to the next login.
    let pending = password_step(&app, &admin).await;
    refused_naming_code(code_step(&app, &pending, &codes[1]).await).await;
    // A recovery code works once, typed loosely.
    let loosely = recovery[0].to_uppercase();
    assert_eq!(
        code_step(&app, &pending, &loosely).await.status(),
        StatusCode::OK
    );
    let pending = password_step(&app, &admin).await;
    refused_naming_code(code_step(&app, &pending, &recovery[0]).await).await;
    // Wrong codes are throttled, then 429 with Retry-After.
    let mut throttled = None;
    for _ in 0..10 {
        let response = code_step(&app, &pending, "000000").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(response);
            break;
        }
        refused_naming_code(response).await;
    }
    let throttled = throttled.expect("wrong codes are held back");
    assert!(throttled.headers().contains_key(header::RETRY_AFTER));

    // Account events, for the audit.
    let taishan = app.institution_id("台山市人民医院").await;
    let (doctor, _) = app.user("ts.doc", taishan, &["clinician"]).await;
    let (status, _) = app
        .post(
            &format!("/api/v1/users/{doctor}/password-reset"),
            &second,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .patch(
            &format!("/api/v1/users/{doctor}"),
            &second,
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for (username, password) in [
        ("nobody", "whatever it is"),
        (admin.as_str(), "hunter2 guessed"),
    ] {
        let (status, _) = app
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = app
        .call(Method::POST, "/api/v1/auth/logout", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, entries) = app
        .get("/api/v1/audit?object_kind=account&limit=200", &second)
        .await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    let entries = entries.as_array().unwrap();
    let admin_id = me["id"].as_i64().unwrap();
    let has = |action: &str, outcome: &str, object: i64, detail: Option<&str>| {
        entries.iter().any(|e| {
            e["action"] == action
                && e["outcome"] == outcome
                && e["object_id"].as_i64() == Some(object)
                && detail.is_none_or(|d| e["detail"].as_str().is_some_and(|x| x.contains(d)))
        })
    };
    for (action, outcome, object, detail) in [
        (
            "password_change",
            "allowed",
            admin_id,
            Some("one-time password replaced"),
        ),
        ("enrol_two_factor", "allowed", admin_id, None),
        ("confirm_two_factor", "denied", admin_id, Some("wrong code")),
        ("confirm_two_factor", "allowed", admin_id, None),
        ("login", "allowed", admin_id, Some("second factor is asked")),
        ("second_factor", "allowed", admin_id, None),
        ("second_factor", "denied", admin_id, Some("wrong code")),
        ("second_factor", "denied", admin_id, Some("used already")),
        ("second_factor", "denied", admin_id, Some("held back")),
        (
            "recovery_code",
            "allowed",
            admin_id,
            Some("9 recovery codes left"),
        ),
        (
            "second_factor",
            "denied",
            admin_id,
            Some("wrong or used recovery code"),
        ),
        ("create", "allowed", doctor, Some("ts.doc")),
        ("login", "allowed", doctor, None),
        ("password_reset", "allowed", doctor, None),
        ("update", "allowed", doctor, Some("disabled")),
        ("login", "denied", admin_id, Some("wrong password")),
        ("logout", "allowed", admin_id, None),
    ] {
        assert!(
            has(action, outcome, object, detail),
            "no {action} {outcome} of {object} ({detail:?}) in {entries:#?}"
        );
    }
    assert!(entries.iter().any(|e| e["action"] == "login"
        && e["outcome"] == "denied"
        && e["user_id"].is_null()
        && e["detail"] == "unknown username \"nobody\""));
    // No secret, code or password reaches the audit.
    let text = serde_json::to_string(entries).unwrap();
    for never in [
        secret.as_str(),
        &codes[1],
        &recovery[1],
        "hunter2 guessed",
        "whatever it is",
    ] {
        assert!(!text.contains(never), "{never} in the audit");
    }
    app.stop().await;
}

async fn a_clinician_signs_in_without_a_second_factor_until_she_enrols(backend: Backend) {
    let app = TestApp::spawn_with(backend, administrators_need_it).await;
    // The administrator's session may create nobody before enrolling.
    let (status, problem) = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            json!({"username": "x.y", "display_name": "x", "institution_id": 1, "roles": ["clinician"]}),
        )
        .await;
    assert_refused(
        status,
        &problem,
        StatusCode::FORBIDDEN,
        "two-factor-required",
    );
    // With it, the administrator creates her account.
    let secret = begin(&app, &app.admin_token, &app.first_admin.0).await;
    let (status, _) = app
        .post(
            "/api/v1/me/two-factor/confirm",
            &app.admin_token,
            json!({"code": oathtool(&secret, 0)[0]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let taishan = app.institution_id("台山市人民医院").await;
    let (_, token) = app.user("ts.li", taishan, &["clinician"]).await;
    let (status, me) = app.get("/api/v1/me", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["two_factor_required"], false, "{me}");
    let (status, _) = app.get("/api/v1/requests", &token).await;
    assert_eq!(status, StatusCode::OK);

    let mine = begin(&app, &token, "ts.li").await;
    let codes = oathtool(&mine, 1);
    let (status, confirmed) = app
        .post(
            "/api/v1/me/two-factor/confirm",
            &token,
            json!({"code": codes[0]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let (status, problem) = app.post("/api/v1/me/two-factor", &token, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let pending = password_step(&app, "ts.li").await;
    assert_eq!(pending["step"], "second_factor");
    let done = code_step(&app, &pending, &codes[1]).await;
    assert_eq!(done.status(), StatusCode::OK);

    // She turns it off with her password (a wrong one is refused naming it), and signs
    // in with the password alone again.
    let remove = |body: Value| {
        app.call(
            Method::DELETE,
            "/api/v1/me/two-factor",
            Some(&token),
            Some(body),
        )
    };
    let (status, problem) = remove(json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "code");
    let (status, problem) = remove(json!({"password": "not her password"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["field"], "password");
    let (status, _) = remove(json!({"password": password_for("ts.li")})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let again = password_step(&app, "ts.li").await;
    assert_eq!(again["step"], "done", "{again}");
    assert!(again["token"].is_string());
    app.stop().await;
}

async fn a_lost_second_factor_is_removed_by_an_administrator_or_at_the_command_line(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, administrators_need_it).await;
    let admin = app.first_admin.0.clone();
    let secret = begin(&app, &app.admin_token, &admin).await;
    let (status, _) = app
        .post(
            "/api/v1/me/two-factor/confirm",
            &app.admin_token,
            json!({"code": oathtool(&secret, 0)[0]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A clinician enrols, then loses her phone and her recovery codes.
    let taishan = app.institution_id("台山市人民医院").await;
    let (id, token) = app.user("ts.wu", taishan, &["clinician"]).await;
    let mine = begin(&app, &token, "ts.wu").await;
    let (status, _) = app
        .post(
            "/api/v1/me/two-factor/confirm",
            &token,
            json!({"code": oathtool(&mine, 0)[0]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let reset = |token: String| {
        let app = &app;
        async move {
            app.call(
                Method::DELETE,
                &format!("/api/v1/users/{id}/two-factor"),
                Some(&token),
                None,
            )
            .await
        }
    };
    // Another county's coordinator may not; the refusal is audited.
    let kaiping = app.institution_id("开平市中心医院").await;
    let (_, stranger) = app.user("kp.office", kaiping, &["coordinator"]).await;
    let (status, _) = reset(stranger).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = reset(app.admin_token.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, problem) = reset(app.admin_token.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(password_step(&app, "ts.wu").await["step"], "done");
    let (_, audit) = app
        .get(
            &format!("/api/v1/audit?object_kind=account&action=reset_two_factor&object_id={id}"),
            &app.admin_token,
        )
        .await;
    let outcomes: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["allowed", "denied"], "{audit}");

    // The only administrator loses hers: the command line removes it, audited; she signs
    // in with her password and must enrol again before anything else.
    let out = std::process::Command::new(duikou_tests::duikou_binary())
        .args(["user", "reset-two-factor", "--username", &admin])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DUIKOU_DATA_DIR", app.db.dir.path())
        .env("DUIKOU_DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let signed_in = password_step(&app, &admin).await;
    assert_eq!(signed_in["step"], "done", "{signed_in}");
    let token = signed_in["token"].as_str().unwrap();
    let (status, problem) = app.get("/api/v1/audit", token).await;
    assert_refused(
        status,
        &problem,
        StatusCode::FORBIDDEN,
        "two-factor-required",
    );
    let store = duikou_tests::duikou::store::Store::connect(&app.db.url, 1)
        .await
        .unwrap();
    let entries = store
        .audit_entries(&duikou_tests::duikou::store::AuditFilter {
            action: Some("reset_two_factor".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(entries[0].1.detail.as_deref(), Some("by the command line"));
    store.close().await;
    app.stop().await;
}

async fn an_administrator_enrols_from_the_page_and_signs_in_with_the_code(backend: Backend) {
    let app = TestApp::spawn_with(backend, administrators_need_it).await;
    let admin = app.first_admin.0.clone();
    let out = duikou_tests::browser::run_scenario(
        "two_factor",
        &duikou_tests::browser::on_backend("two_factor", backend),
        &app.base,
        json!({"admin": {"username": admin, "password": password_for(&admin)}}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    // The recovery codes the page showed are the account's: one signs in, once.
    let codes = out["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let code = codes[3].as_str().unwrap();
    let pending = password_step(&app, &admin).await;
    assert_eq!(
        code_step(&app, &pending, code).await.status(),
        StatusCode::OK
    );
    let pending = password_step(&app, &admin).await;
    refused_naming_code(code_step(&app, &pending, code).await).await;
    app.stop().await;
}
