//! Bad input gets a 4xx problem body naming the field, and changes nothing.

use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

on_both_backends!(bad_bodies_and_queries_get_problems_naming_the_field);

fn valid_pairing(village: i64, hospital: i64) -> Value {
    json!({
        "supporter": {"kind": "institution", "id": hospital},
        "supported": {"kind": "institution", "value": village},
        "services": ["consult"], "valid_from": "2026-01-01", "valid_to": "2026-12-31"
    })
}

/// A way to spoil a valid body.
type Breakage = Box<dyn Fn(&mut Value)>;

async fn raw_post(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(&app.admin_token)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json",
        "errors are RFC 9457 problems"
    );
    duikou_tests::read(response).await
}

async fn bad_bodies_and_queries_get_problems_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let village = app.institution_id("北陡镇石蕉村卫生站").await;
    let hospital = app.institution_id("江门市中心医院").await;
    let before = app.db.snapshot().await.unwrap();

    let (status, p) = raw_post(
        &app,
        "/api/v1/pairings",
        "application/json",
        r#"{"supporter": {"kind": "#,
    )
    .await;
    assert_refused(status, &p, StatusCode::BAD_REQUEST, "malformed-json");
    assert_eq!(p["status"], 400);

    let (status, p) = raw_post(&app, "/api/v1/pairings", "text/plain", "hello").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{p}");

    let huge = format!(r#"{{"padding": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let (status, p) = raw_post(&app, "/api/v1/pairings", "application/json", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{p}");

    let cases: Vec<(&str, Breakage)> = vec![
        ("colour", Box::new(|b| b["colour"] = json!("red"))),
        (
            "valid_from",
            Box::new(|b| b["valid_from"] = json!(20260101)),
        ),
        (
            "valid_from",
            Box::new(|b| b["valid_from"] = json!("2026-02-30")),
        ),
        (
            "valid_to",
            Box::new(|b| b["valid_to"] = json!("2025-12-31")),
        ),
        ("services", Box::new(|b| b["services"] = json!([]))),
        (
            "services[0]",
            Box::new(|b| b["services"] = json!(["surgery"])),
        ),
        (
            "supporter",
            Box::new(|b| b["supporter"] = json!({"kind": "clinician", "id": 999_999})),
        ),
        (
            "supported",
            Box::new(|b| b["supported"] = json!({"kind": "institution", "value": 999_999})),
        ),
        (
            "supported.value",
            Box::new(|b| b["supported"] = json!({"kind": "region", "value": "广东省//台山市"})),
        ),
        (
            "valid_to",
            Box::new(|b| {
                b.as_object_mut()
                    .unwrap()
                    .remove("valid_to")
                    .map(drop)
                    .unwrap_or(())
            }),
        ),
    ];
    for (field, break_it) in cases {
        let mut body = valid_pairing(village, hospital);
        break_it(&mut body);
        let (status, p) = raw_post(
            &app,
            "/api/v1/pairings",
            "application/json",
            body.to_string(),
        )
        .await;
        assert!(status.is_client_error(), "{field}: {status} {p}");
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {p}");
        assert_eq!(p["field"], field, "{p}");
        assert!(!p["detail"].as_str().unwrap().is_empty());
    }

    for (query, field) in [
        ("/api/v1/pairings?date=yesterday", "date"),
        ("/api/v1/pairings?service=surgery", "service"),
        ("/api/v1/pairings?limit=0", "limit"),
        ("/api/v1/pairings?colour=red", "colour"),
        (
            "/api/v1/pairings?supported_institution_id=999999",
            "supported_institution_id",
        ),
        ("/api/v1/institutions?level=hospital", "level"),
        ("/api/v1/institutions?remote=maybe", "remote"),
        ("/api/v1/supporters?service=consult", "institution_id"),
        (
            "/api/v1/supporters?institution_id=999999&service=consult",
            "institution_id",
        ),
        ("/api/v1/clinicians?min_rank=chief", "min_rank"),
    ] {
        let (status, p) = app.get(query, &app.admin_token).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {p}");
        assert_eq!(p["field"], field, "{query}: {p}");
    }

    for path in [
        "/api/v1/pairings/999999",
        "/api/v1/pairings/abc",
        "/api/v1/institutions/999999",
        "/api/v1/nothing-here",
    ] {
        let (status, p) = app.get(path, &app.admin_token).await;
        assert_refused(status, &p, StatusCode::NOT_FOUND, "not-found");
    }

    let (status, p) = app
        .post("/api/v1/users", &app.admin_token, json!({"username": "admin", "display_name": "again", "institution_id": hospital, "roles": ["clinician"]}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "an existing username: {p}");
    let (status, p) = app
        .post("/api/v1/users", &app.admin_token, json!({"username": "new.user", "display_name": "x", "institution_id": hospital, "roles": ["root"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["field"], "roles[0]");

    // Text fields: over-long (900 KB in a name fits the body limit), control and
    // text-direction characters; each refused naming the field.
    let long = "院".repeat(300_000);
    for (body, field) in [
        (
            json!({"name": long, "level": "township", "kind": "health_centre", "region": "广东省/阳江市"}),
            "name",
        ),
        (
            json!({"name": "新建\u{202E}卫生院", "level": "township", "kind": "health_centre", "region": "广东省/阳江市"}),
            "name",
        ),
        (
            json!({"name": "新建\u{0}卫生院", "level": "township", "kind": "health_centre", "region": "广东省/阳江市"}),
            "name",
        ),
        (
            json!({"name": "新建卫生院", "level": "township", "kind": "health_centre", "region": "广东省/阳江\u{2066}市"}),
            "region",
        ),
    ] {
        let (status, p) = app
            .post("/api/v1/institutions", &app.admin_token, body)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {p}");
        assert_eq!(p["field"], field, "{p}");
    }
    let (status, p) = app
        .post("/api/v1/users", &app.admin_token, json!({"username": "new.user", "display_name": "李\u{202E}医生", "institution_id": hospital, "roles": ["clinician"]}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["field"], "display_name");

    assert_eq!(
        app.db.snapshot().await.unwrap(),
        before,
        "no bad request changed the database"
    );
    app.stop().await;
}
