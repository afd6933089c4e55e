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
    let body = json!({"kind": "consultation", "content": content()});
    let request = draft(&app, &c.doctor, body).await["id"].as_i64().unwrap();
    let (_, pairings) = app
        .get(
            &format!(
                "/api/v1/pairings?supported_institution_id={}&service=consult",
                c.county
            ),
            &admin,
        )
        .await;
    let pairing = pairings
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["standing"] == "in_force")
        .expect("the pairing in force")["id"]
        .as_i64()
        .unwrap();
    let year = chrono::Utc::now().format("%Y");

    // Reads of the registry, pairings, accounts, availability, requests, teaching,
    // reports, the audit and the forward queue: (path, documented path, as whom).
    let reads: Vec<(String, &str, &str)> = vec![
        ("/me".into(), "/me", &c.doctor),
        ("/institutions?name=江门".into(), "/institutions", &admin),
        (
            format!("/institutions/{}", c.tertiary),
            "/institutions/{id}",
            &admin,
        ),
        (
            format!("/clinicians?institution_id={}", c.tertiary),
            "/clinicians",
            &admin,
        ),
        (
            format!("/clinicians/{}", c.consultant_id),
            "/clinicians/{id}",
            &c.doctor,
        ),
        ("/pairings?limit=5".into(), "/pairings", &admin),
        (format!("/pairings/{pairing}"), "/pairings/{id}", &admin),
        (
            format!("/pairings/{pairing}/history"),
            "/pairings/{id}/history",
            &admin,
        ),
        ("/teams".into(), "/teams", &admin),
        (
            format!("/supporters?institution_id={}&service=consult", c.county),
            "/supporters",
            &c.doctor,
        ),
        ("/setup".into(), "/setup", &admin),
        (
            format!("/users?institution_id={}", c.county),
            "/users",
            &admin,
        ),
        (
            format!("/clinicians/{}/availability", c.consultant_id),
            "/clinicians/{id}/availability",
            &c.doctor,
        ),
        (
            format!("/clinicians/{}/slots", c.consultant_id),
            "/clinicians/{id}/slots",
            &c.doctor,
        ),
        (format!("/requests/{request}"), "/requests/{id}", &c.doctor),
        ("/requests?box=outbox".into(), "/requests", &c.doctor),
        ("/teaching".into(), "/teaching", &c.doctor),
        (
            format!("/reports/pairings/{pairing}?period={year}"),
            "/reports/pairings/{id}",
            &admin,
        ),
        (
            format!("/pairings/{pairing}/targets"),
            "/pairings/{id}/targets",
            &admin,
        ),
        ("/audit?limit=5".into(), "/audit", &admin),
        ("/forwards".into(), "/forwards", &admin),
    ];
    for (path, template, token) in &reads {
        doc.check(
            &app,
            Method::GET,
            (path, template),
            Some(token),
            None,
            StatusCode::OK,
        )
        .await;
    }

    // Writes: a clinician's record, an account, and its password reset.
    let clinician = format!("/clinicians/{}", c.consultant_id);
    let clinician = (clinician.as_str(), "/clinicians/{id}");
    let changed = doc
        .check(
            &app,
            Method::PATCH,
            clinician,
            Some(&admin),
            Some(json!({"title": "主任医师", "specialty": "神经内科"})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(changed["title_rank"], "senior");
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
    let path = (reset.as_str(), "/users/{id}/password-reset");
    doc.check(&app, Method::POST, path, Some(&admin), None, StatusCode::OK)
        .await;
    let target = format!("/pairings/{pairing}/targets/{year}");
    doc.check(
        &app,
        Method::PUT,
        (target.as_str(), "/pairings/{id}/targets/{year}"),
        Some(&admin),
        Some(json!({"trainees": 4, "hours_each": 20})),
        StatusCode::OK,
    )
    .await;

    // Refusals are problems, as documented.
    let refusals = [
        (("/me", "/me"), None, StatusCode::UNAUTHORIZED),
        (
            ("/audit", "/audit"),
            Some(c.doctor.as_str()),
            StatusCode::FORBIDDEN,
        ),
        (
            ("/pairings/999999", "/pairings/{id}"),
            Some(admin.as_str()),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, token, status) in refusals {
        doc.check(&app, Method::GET, path, token, None, status)
            .await;
    }
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
    let bad = doc
        .check(
            &app,
            Method::PATCH,
            clinician,
            Some(&admin),
            Some(json!({"title": "院长"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    assert_eq!(bad["field"], "title");
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
