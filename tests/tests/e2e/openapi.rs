//! The OpenAPI document describes what the server sends: real responses of the main
//! endpoints, successes and refusals, are validated against the schema the document
//! gives for their path, method and status, under the media type they came with.

use duikou_tests::{Backend, TestApp, on_both_backends};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::requests::{cast, content, draft};

on_both_backends!(responses_of_the_main_endpoints_validate_against_the_document);

/// The served document.
struct Document {
    doc: Value,
}

impl Document {
    async fn fetch(app: &TestApp) -> Self {
        let doc = app
            .client
            .get(format!("{}/api/v1/openapi.json", app.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self { doc }
    }

    /// Calls `method path` (documented as `template`) as `token` with `body`, expects
    /// `status`, and validates the response against the document.
    async fn check(
        &self,
        app: &TestApp,
        method: Method,
        (path, template): (&str, &str),
        token: Option<&str>,
        body: Option<Value>,
        status: StatusCode,
    ) -> Value {
        let mut request = app
            .client
            .request(method.clone(), format!("{}/api/v1{path}", app.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let media = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let (got, value) = duikou_tests::read(response).await;
        assert_eq!(got, status, "{method} {path}: {value}");
        let what = format!("{method} {template} {}", status.as_u16());
        let operation = &self.doc["paths"][template][method.as_str().to_lowercase()];
        assert!(operation.is_object(), "{what}: the path is not documented");
        let documented = &operation["responses"][status.as_str()];
        assert!(
            documented.is_object(),
            "{what}: the status is not documented"
        );
        let Some(media) = media else {
            assert!(
                documented.get("content").is_none(),
                "{what}: no body came, the document promises one"
            );
            return value;
        };
        let media = media.split(';').next().unwrap().trim();
        let schema = documented["content"][media]["schema"].clone();
        assert!(
            schema.is_object(),
            "{what}: sent as {media}, documented as {}",
            documented["content"]
        );
        let mut root = schema;
        root["components"] = self.doc["components"].clone();
        let validator = jsonschema::validator_for(&root)
            .unwrap_or_else(|e| panic!("{what}: the schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{what}: {errors:#?}\n{value:#}");
        value
    }
}

async fn responses_of_the_main_endpoints_validate_against_the_document(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let admin = app.admin_token.clone();
    let doc = Document::fetch(&app).await;
    let ok = StatusCode::OK;
    let get = Method::GET;

    // Who one is, the registry and the pairings.
    doc.check(&app, get.clone(), ("/me", "/me"), Some(&c.doctor), None, ok)
        .await;
    let list = format!("/institutions?name={}", "江门");
    doc.check(
        &app,
        get.clone(),
        (&list, "/institutions"),
        Some(&admin),
        None,
        ok,
    )
    .await;
    let one = format!("/institutions/{}", c.tertiary);
    doc.check(
        &app,
        get.clone(),
        (&one, "/institutions/{id}"),
        Some(&admin),
        None,
        ok,
    )
    .await;
    let staff = format!("/clinicians?institution_id={}", c.tertiary);
    doc.check(
        &app,
        get.clone(),
        (&staff, "/clinicians"),
        Some(&admin),
        None,
        ok,
    )
    .await;
    let consultant = format!("/clinicians/{}", c.consultant_id);
    doc.check(
        &app,
        get.clone(),
        (&consultant, "/clinicians/{id}"),
        Some(&c.doctor),
        None,
        ok,
    )
    .await;
    let pairings = doc
        .check(
            &app,
            get.clone(),
            ("/pairings?limit=5", "/pairings"),
            Some(&admin),
            None,
            ok,
        )
        .await;
    let pairing = pairings[0]["id"].as_i64().unwrap();
    let path = format!("/pairings/{pairing}");
    doc.check(
        &app,
        get.clone(),
        (&path, "/pairings/{id}"),
        Some(&admin),
        None,
        ok,
    )
    .await;
    let history = format!("/pairings/{pairing}/history");
    doc.check(
        &app,
        get.clone(),
        (&history, "/pairings/{id}/history"),
        Some(&admin),
        None,
        ok,
    )
    .await;
    doc.check(
        &app,
        get.clone(),
        ("/teams", "/teams"),
        Some(&admin),
        None,
        ok,
    )
    .await;
    let supporters = format!("/supporters?institution_id={}&service=consult", c.county);
    doc.check(
        &app,
        get.clone(),
        (&supporters, "/supporters"),
        Some(&c.doctor),
        None,
        ok,
    )
    .await;
    doc.check(
        &app,
        get.clone(),
        ("/setup", "/setup"),
        Some(&admin),
        None,
        ok,
    )
    .await;

    // Accounts.
    let users = format!("/users?institution_id={}", c.county);
    doc.check(
        &app,
        get.clone(),
        (&users, "/users"),
        Some(&admin),
        None,
        ok,
    )
    .await;
    let created = doc
        .check(
            &app,
            Method::POST,
            ("/users", "/users"),
            Some(&admin),
            Some(json!({"username": "ts.nurse", "display_name": "护士", "institution_id": c.county, "roles": ["clinician"]})),
            StatusCode::CREATED,
        )
        .await;
    let reset = format!("/users/{}/password-reset", created["user"]["id"]);
    doc.check(
        &app,
        Method::POST,
        (&reset, "/users/{id}/password-reset"),
        Some(&admin),
        None,
        ok,
    )
    .await;

    // Availability and a request.
    let rules = format!("/clinicians/{}/availability", c.consultant_id);
    doc.check(
        &app,
        get.clone(),
        (&rules, "/clinicians/{id}/availability"),
        Some(&c.doctor),
        None,
        ok,
    )
    .await;
    let slots = format!("/clinicians/{}/slots", c.consultant_id);
    doc.check(
        &app,
        get.clone(),
        (&slots, "/clinicians/{id}/slots"),
        Some(&c.doctor),
        None,
        ok,
    )
    .await;
    let body = json!({"kind": "consultation", "content": content()});
    let id = draft(&app, &c.doctor, body).await["id"].as_i64().unwrap();
    let request = format!("/requests/{id}");
    doc.check(
        &app,
        get.clone(),
        (&request, "/requests/{id}"),
        Some(&c.doctor),
        None,
        ok,
    )
    .await;
    doc.check(
        &app,
        get.clone(),
        ("/requests?box=outbox", "/requests"),
        Some(&c.doctor),
        None,
        ok,
    )
    .await;
    doc.check(
        &app,
        get.clone(),
        ("/teaching", "/teaching"),
        Some(&c.doctor),
        None,
        ok,
    )
    .await;
    let year = chrono::Utc::now().format("%Y").to_string();
    let pairings = format!(
        "/pairings?supported_institution_id={}&service=consult",
        c.county
    );
    let (_, in_force) = app.get(&format!("/api/v1{pairings}"), &admin).await;
    let report = format!("/reports/pairings/{}?period={year}", in_force[0]["id"]);
    doc.check(
        &app,
        get.clone(),
        (&report, "/reports/pairings/{id}"),
        Some(&admin),
        None,
        ok,
    )
    .await;
    doc.check(
        &app,
        get.clone(),
        ("/audit?limit=5", "/audit"),
        Some(&admin),
        None,
        ok,
    )
    .await;
    doc.check(
        &app,
        get.clone(),
        ("/forwards", "/forwards"),
        Some(&admin),
        None,
        ok,
    )
    .await;

    // Refusals are problems, as documented.
    doc.check(
        &app,
        get.clone(),
        ("/me", "/me"),
        None,
        None,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    doc.check(
        &app,
        get.clone(),
        ("/audit", "/audit"),
        Some(&c.doctor),
        None,
        StatusCode::FORBIDDEN,
    )
    .await;
    doc.check(
        &app,
        get.clone(),
        ("/pairings/999999", "/pairings/{id}"),
        Some(&admin),
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    let bad = doc
        .check(
            &app,
            Method::POST,
            ("/users", "/users"),
            Some(&admin),
            Some(json!({"username": "a b", "display_name": "x", "institution_id": c.county, "roles": ["clinician"]})),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(bad["field"], "username");
    let today = chrono::Utc::now().date_naive();
    doc.check(
        &app,
        Method::POST,
        ("/pairings", "/pairings"),
        Some(&admin),
        Some(json!({"supporter": {"kind": "institution", "id": c.tertiary},
                    "supported": {"kind": "institution", "value": c.county},
                    "services": ["consult"], "valid_from": today, "valid_to": today + chrono::Duration::days(30)})),
        StatusCode::CONFLICT,
    )
    .await;
    app.stop().await;
}
