//! The browser pages: the shells and files the gateway serves, and scenarios in
//! headless Chromium (`tests/browser/*.mjs`, run by `duikou_tests::browser`). Screenshots
//! land in `target/browser-artifacts/<scenario>-<backend>/`.

use std::collections::BTreeSet;

use duikou_tests::browser::{on_backend, run_scenario};
use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends};
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    pages_and_their_files_are_served,
    the_language_switch_changes_the_page_text,
    a_stranger_is_sent_to_the_login_page,
    a_page_of_another_origin_cannot_act_with_the_session_cookie,
);

/// Every page path, with the module its shell names in `data-page`.
const PAGES: [(&str, &str); 13] = [
    ("/login", "login"),
    ("/home", "home"),
    ("/requests", "requests"),
    ("/requests/new", "request_new"),
    ("/requests/42", "request"),
    ("/requests/42/opinion", "opinion_print"),
    ("/inbox", "inbox"),
    ("/rooms/consultation-42", "room"),
    ("/worklist", "worklist"),
    ("/viewer/1.2.840.113619.2.55.3", "viewer"),
    ("/teaching", "teaching"),
    ("/program", "program"),
    ("/audit", "audit"),
];

/// An account of the county hospital for a browser to log in with: its username,
/// password and display name.
async fn browser_user(app: &TestApp, username: &str, display_name: &str) -> Value {
    let county = app.institution_id("台山市人民医院").await;
    let body = app
        .account(json!({"username": username, "display_name": display_name,
                        "institution_id": county, "roles": ["clinician"]}))
        .await;
    json!({
        "username": username,
        "password": body["password"],
        "display_name": display_name,
    })
}

/// The keys of a catalogue served at `path`, all of them non-empty texts.
async fn catalogue_keys(app: &TestApp, path: &str) -> BTreeSet<String> {
    let (status, body) = app.call(Method::GET, path, None, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    let messages = body.as_object().expect("a catalogue is an object");
    for (key, text) in messages {
        assert!(
            text.as_str().is_some_and(|t| !t.trim().is_empty()),
            "{path}: {key} is not a text: {text}"
        );
    }
    messages.keys().cloned().collect()
}

async fn pages_and_their_files_are_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (path, module) in PAGES {
        for (cookie, html_lang) in [(None, "zh-CN"), (Some("duikou_lang=en"), "en")] {
            let mut request = app.client.get(format!("{}{path}", app.base));
            if let Some(cookie) = cookie {
                request = request.header(COOKIE, cookie);
            }
            let response = request.send().await.expect("the gateway answers");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let headers = response.headers().clone();
            let content_type = headers[CONTENT_TYPE].to_str().unwrap();
            assert!(
                content_type.starts_with("text/html"),
                "{path}: {content_type}"
            );
            let csp = headers
                .get(CONTENT_SECURITY_POLICY)
                .unwrap_or_else(|| panic!("{path} has no Content-Security-Policy"))
                .to_str()
                .unwrap();
            assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            let html = response.text().await.unwrap();
            assert!(
                html.contains(&format!(r#"data-page="{module}""#)),
                "{path} names the module {module}: {html}"
            );
            assert!(
                html.contains(&format!(r#"<html lang="{html_lang}">"#)),
                "{path} with cookie {cookie:?} is in {html_lang}: {html}"
            );
            assert!(html.contains(r#"src="/static/js/app.js""#), "{html}");
        }
    }

    let zh = catalogue_keys(&app, "/static/i18n/zh.json").await;
    let en = catalogue_keys(&app, "/static/i18n/en.json").await;
    assert!(zh.contains("login.title"), "{zh:?}");
    assert_eq!(
        zh.symmetric_difference(&en).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "the Chinese and English catalogues have the same keys"
    );
    let (status, _) = app
        .call(Method::GET, "/static/i18n/fr.json", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let response = app
        .client
        .get(format!("{}/static/js/app.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.contains("javascript"),
        "app.js is served as JavaScript: {content_type}"
    );
    assert!(response.text().await.unwrap().contains("import"));

    let response = app
        .client
        .get(format!("{}/static/x.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/problem+json",
        "an unknown file is a problem, not a page"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 404, "{problem}");
    app.stop().await;
}

async fn the_language_switch_changes_the_page_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = browser_user(&app, "ts.doctor", "李医生").await;
    let result = run_scenario(
        "language",
        &on_backend("language", backend),
        &app.base,
        user,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        result["screenshots"].as_array().map(Vec::len),
        Some(5),
        "{result}"
    );
    app.stop().await;
}

async fn a_stranger_is_sent_to_the_login_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = browser_user(&app, "ts.doctor", "李医生").await;
    let result = run_scenario(
        "stranger",
        &on_backend("stranger", backend),
        &app.base,
        user,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(result["landed"], "/login?next=%2Fhome", "{result}");
    app.stop().await;
}

/// The viewer's decoding, function by function (`tests/browser/dicom.test.mjs`, in Node).
#[test]
fn the_viewer_decodes_what_it_draws_and_refuses_the_rest() {
    duikou_tests::browser::check_installed().unwrap_or_else(|e| panic!("{e:#}"));
    let out = std::process::Command::new("node")
        .args(["--test", "tests/browser/dicom.test.mjs"])
        .current_dir(duikou_tests::workspace_root())
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// In Chromium, a page of another origin on the same machine (the same site, so the Lax
/// cookie goes along) posts a form and a bodyless fetch to the logout endpoint: both are
/// refused and the session lives on; the gateway's own page logs out
/// (`tests/browser/cross_site.mjs`). The same with headers set by hand: a foreign
/// `Origin` or `Sec-Fetch-Site` with the cookie is refused, with the bearer token it is not.
async fn a_page_of_another_origin_cannot_act_with_the_session_cookie(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = browser_user(&app, "ts.doctor", "李医生").await;
    let result = run_scenario(
        "cross_site",
        &on_backend("cross_site", backend),
        &app.base,
        user.clone(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(result["refused"], 403, "{result}");
    assert_eq!(result["own"], 204, "{result}");

    let host = app.base.trim_start_matches("http://").to_owned();
    let cookie = format!("duikou_session={}", app.admin_token);
    let post = |headers: Vec<(&'static str, String)>| {
        let mut request = app.client.post(format!("{}/api/v1/auth/logout", app.base));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    for foreign in [
        vec![("origin", "http://evil.example".to_owned())],
        vec![("sec-fetch-site", "cross-site".to_owned())],
        vec![
            ("sec-fetch-site", "same-site".to_owned()),
            ("origin", app.base.clone()),
        ],
        vec![],
    ] {
        let mut headers = foreign.clone();
        headers.push(("cookie", cookie.clone()));
        let response = post(headers).await.unwrap();
        let status = response.status();
        let problem: Value = response.json().await.unwrap();
        assert_refused(
            status,
            &problem,
            StatusCode::FORBIDDEN,
            "cross-site-request",
        );
    }
    let (status, me) = app.get("/api/v1/me", &app.admin_token).await;
    assert_eq!(status, StatusCode::OK, "still logged in: {me}");
    // A foreign Origin on a bearer call does not matter; the own origin with the cookie
    // is carried out.
    let response = app
        .client
        .post(format!("{}/api/v1/auth/logout", app.base))
        .header("origin", "http://evil.example")
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let token = app
        .login("ts.doctor", user["password"].as_str().unwrap())
        .await;
    let response = post(vec![
        ("origin", format!("http://{host}")),
        ("cookie", format!("duikou_session={token}")),
    ])
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    app.stop().await;
}
