//! What the request and accept forms stand on: every gap told at once in the caller's
//! language, the designated supporter known before anything is typed, a first submission
//! that leaves no draft when refused, a study of another patient confirmed before it is
//! sent, and the clinicians offered as consultant those who qualify, best suited first.

use chrono::{Duration, Utc};
use duikou_tests::browser::{on_backend, run_scenario};
use duikou_tests::dcmtk::pydicom_files;
use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends, password_for, read};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::dicomweb::stow;
use crate::requests::{available_daily, cast, clinician, content, draft, ok_step, pair, step};

on_both_backends!(
    every_gap_of_a_request_is_told_at_once_beside_its_field,
    problems_are_told_in_chinese_without_english_words_and_in_english_as_before,
    the_designated_supporter_is_known_before_a_request_is_written,
    a_refused_first_submission_leaves_no_draft,
    a_study_of_another_patient_is_sent_only_once_confirmed,
    only_qualified_clinicians_are_offered_as_consultant_best_suited_first,
    the_forms_help_a_new_user_in_the_pages,
);

/// Sends `method path` as `token` with `Accept-Language: lang` (none when empty) and a
/// raw body; returns the status and the body as JSON.
async fn said(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    lang: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, format!("{}{path}", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if !lang.is_empty() {
        request = request.header("accept-language", lang);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    read(request.send().await.unwrap()).await
}

/// A clinician of a township health centre that no pairing names; returns the
/// institution and the clinician's token.
async fn lone_doctor(app: &TestApp) -> (i64, String) {
    let (status, lone) = app
        .post(
            "/api/v1/institutions",
            &app.admin_token,
            json!({"name": "新建卫生院", "level": "township", "kind": "health_centre",
                   "region": "广东省/阳江市/阳春市"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{lone}");
    let lone = lone["id"].as_i64().unwrap();
    let (_, doctor) = app.user("yc.doctor", lone, &["clinician"]).await;
    (lone, doctor)
}

/// The words of Latin letters in `text` that are not names of formats or codes every
/// reader of the program knows.
fn latin_words(text: &str) -> Vec<String> {
    const ALLOWED: [&str; 7] = ["PDF", "JPEG", "PNG", "CT", "UID", "ID", "DICOM"];
    text.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty() && !ALLOWED.contains(w))
        .map(str::to_owned)
        .collect()
}

/// A bad input: method, path, token, body, the status and the problem type expected.
type BadInput<'a> = (
    Method,
    String,
    Option<&'a str>,
    Option<String>,
    u16,
    &'static str,
);

/// Every detail of a problem: its own, and each field's.
fn details(problem: &Value) -> Vec<String> {
    let mut all = vec![problem["detail"].as_str().unwrap_or_default().to_owned()];
    for e in problem["errors"].as_array().into_iter().flatten() {
        all.push(e["detail"].as_str().unwrap_or_default().to_owned());
    }
    all
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

async fn every_gap_of_a_request_is_told_at_once_beside_its_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let r = draft(&app, &c.doctor, json!({"kind": "consultation"})).await;
    let (status, p) = step(&app, &c.doctor, &r["id"], "submit", json!({})).await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "incomplete-request",
    );
    let named = fields(&p);
    for field in [
        "reason",
        "purpose",
        "window",
        "specialty",
        "patient",
        "case_summary.chief_complaint",
        "case_summary.history",
        "case_summary.findings",
        "case_summary.question",
        "consent",
    ] {
        assert!(named.iter().any(|f| f == field), "{field} in {p}");
    }
    assert_eq!(p["field"], "reason", "the first is also `field`: {p}");

    // A thin summary and a relative's consent without relation: each part is named.
    let mut body = content();
    body["case_summary"] = json!({"chief_complaint": "头痛", "history": "三天", "findings": "", "question": "怎么办？"});
    body["consent"] =
        json!({"given_by": "relative", "name": "王某", "at": Utc::now(), "method": "e_consent"});
    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": body}),
    )
    .await;
    let (status, p) = step(&app, &c.doctor, &r["id"], "submit", json!({})).await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "thin-case-summary",
    );
    assert_eq!(
        fields(&p),
        [
            "case_summary.chief_complaint",
            "case_summary.history",
            "case_summary.findings",
            "case_summary.question",
            "consent.relation",
            "consent.reason"
        ],
        "{p}"
    );
    // In English each says what the part needs, as before.
    let errors = p["errors"].as_array().unwrap();
    assert!(
        errors[1]["detail"]
            .as_str()
            .unwrap()
            .contains("history has 2 characters, at least 15"),
        "{p}"
    );
    app.stop().await;
}

async fn problems_are_told_in_chinese_without_english_words_and_in_english_as_before(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |config| config.http.max_body_bytes = 256 * 1024).await;
    let c = cast(&app).await;
    let (_, unpaired) = lone_doctor(&app).await;
    let submitted = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    ok_step(&app, &c.doctor, &submitted["id"], "submit", json!({})).await;
    let id = submitted["id"].as_i64().unwrap();
    let accepted = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    ok_step(&app, &c.doctor, &accepted["id"], "submit", json!({})).await;
    ok_step(
        &app,
        &c.coordinator,
        &accepted["id"],
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    let accepted_id = accepted["id"].as_i64().unwrap();
    let big = format!(
        r#"{{"kind": "consultation", "content": {{"reason": "{}"}}}}"#,
        "x".repeat(300 * 1024)
    );
    let doctor = Some(c.doctor.as_str());
    let coordinator = Some(c.coordinator.as_str());
    let bad: Vec<BadInput> = vec![
        (
            Method::POST,
            "/api/v1/requests".into(),
            doctor,
            Some(r#"{"kind": "consultation", "submit": true}"#.into()),
            422,
            "incomplete-request",
        ),
        (
            Method::POST,
            "/api/v1/requests".into(),
            doctor,
            Some("{".into()),
            400,
            "malformed-json",
        ),
        (
            Method::POST,
            "/api/v1/requests".into(),
            doctor,
            Some(r#"{"kind": "consultation", "bogus": 1}"#.into()),
            422,
            "invalid-field",
        ),
        (
            Method::POST,
            "/api/v1/requests".into(),
            doctor,
            Some(r#"{"kind": "teleportation"}"#.into()),
            422,
            "invalid-field",
        ),
        (
            Method::POST,
            "/api/v1/requests".into(),
            doctor,
            Some(big),
            413,
            "payload-too-large",
        ),
        (
            Method::POST,
            "/api/v1/requests".into(),
            Some(unpaired.as_str()),
            Some(r#"{"kind": "consultation"}"#.into()),
            422,
            "unpaired-supporter",
        ),
        (
            Method::GET,
            "/api/v1/requests/999999".into(),
            doctor,
            None,
            404,
            "not-found",
        ),
        (
            Method::GET,
            "/api/v1/requests".into(),
            None,
            None,
            401,
            "unauthenticated",
        ),
        (
            Method::POST,
            "/api/v1/auth/login".into(),
            None,
            Some(r#"{"username": "ts.doctor", "password": "not the password"}"#.into()),
            401,
            "bad-credentials",
        ),
        (
            Method::POST,
            "/api/v1/me/password".into(),
            doctor,
            Some(r#"{"current": "whatever it is", "new": "short"}"#.into()),
            422,
            "invalid-field",
        ),
        (
            Method::POST,
            format!("/api/v1/requests/{id}/accept"),
            coordinator,
            Some("{}".into()),
            422,
            "invalid-field",
        ),
        (
            Method::POST,
            format!("/api/v1/requests/{id}/accept"),
            coordinator,
            Some(json!({"consultant_id": c.junior_id}).to_string()),
            422,
            "consultant-not-qualified",
        ),
        (
            Method::POST,
            format!("/api/v1/requests/{id}/accept"),
            doctor,
            Some(json!({"consultant_id": c.consultant_id}).to_string()),
            403,
            "wrong-institution",
        ),
        (
            Method::POST,
            format!("/api/v1/requests/{id}/decline"),
            coordinator,
            Some(r#"{"reason_code": "no_specialist"}"#.into()),
            422,
            "invalid-field",
        ),
        (
            Method::POST,
            format!("/api/v1/requests/{id}/submit"),
            doctor,
            Some("{}".into()),
            409,
            "step-out-of-order",
        ),
        (
            Method::POST,
            format!("/api/v1/requests/{accepted_id}/schedule"),
            coordinator,
            Some(
                json!({"start": Utc::now() + Duration::days(2) + Duration::minutes(7)}).to_string(),
            ),
            409,
            "slot-not-free",
        ),
        (
            Method::POST,
            format!("/api/v1/requests/{accepted_id}/schedule"),
            coordinator,
            Some("{}".into()),
            422,
            "invalid-field",
        ),
    ];
    for (method, path, token, body, status, rule) in bad {
        let (zh_status, zh) = said(
            &app,
            method.clone(),
            &path,
            token,
            "zh-CN,zh;q=0.9",
            body.as_deref(),
        )
        .await;
        assert_refused(zh_status, &zh, StatusCode::from_u16(status).unwrap(), rule);
        for detail in details(&zh) {
            assert!(!detail.is_empty(), "{path}: {zh}");
            let words = latin_words(&detail);
            assert!(words.is_empty(), "{path}: {words:?} in {detail:?}");
        }
        let (_, en) = said(&app, method.clone(), &path, token, "en", body.as_deref()).await;
        let (_, plain) = said(&app, method, &path, token, "", body.as_deref()).await;
        assert_eq!(
            en["detail"], plain["detail"],
            "English unless asked: {path}"
        );
        assert_ne!(en["detail"], zh["detail"], "{path}");
        assert_eq!(fields(&en), fields(&zh), "{path}");
        assert!(
            en["detail"]
                .as_str()
                .unwrap()
                .chars()
                .any(|c| c.is_ascii_alphabetic()),
            "{path}: {en}"
        );
    }
    // The pages' language cookie is the caller's choice, above the browser's languages.
    let response = app
        .client
        .get(format!("{}/api/v1/requests/999999", app.base))
        .bearer_auth(&c.doctor)
        .header("accept-language", "en")
        .header("cookie", "duikou_lang=zh")
        .send()
        .await
        .unwrap();
    let (_, p) = read(response).await;
    assert!(latin_words(p["detail"].as_str().unwrap()).is_empty(), "{p}");
    app.stop().await;
}

async fn the_designated_supporter_is_known_before_a_request_is_written(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let (status, s) = app
        .get("/api/v1/me/supporter?kind=consultation", &c.doctor)
        .await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["institution_id"], c.tertiary);
    assert_eq!(s["institution_name"], "江门市中心医院");
    assert_eq!(s["supporter"]["kind"], "institution");
    assert!(s["pairing_id"].is_i64() && s["valid_to"].is_string(), "{s}");

    // A hospital without pairing is told so, in the page's language.
    let (lone, unpaired) = lone_doctor(&app).await;
    let (status, p) = said(
        &app,
        Method::GET,
        "/api/v1/me/supporter?kind=consultation",
        Some(&unpaired),
        "zh-CN",
        None,
    )
    .await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unpaired-supporter",
    );
    assert!(p["detail"].as_str().unwrap().contains("新建卫生院"), "{p}");

    // Paired for imaging reads only: a consultation is a service not covered.
    pair(&app, c.tertiary, lone, json!(["imaging_read"])).await;
    let (status, p) = app
        .get("/api/v1/me/supporter?kind=consultation", &unpaired)
        .await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "service-not-covered",
    );
    assert_eq!(p["field"], "kind");
    let (status, _) = app
        .get("/api/v1/me/supporter?kind=imaging_read", &unpaired)
        .await;
    assert_eq!(status, StatusCode::OK);

    // A pairing that has ended (恩平's of the seeds ran 2016 to 2018) leaves none either.
    let (_, ended) = app
        .user(
            "ep.doctor",
            app.institution_id("恩平市人民医院").await,
            &["clinician"],
        )
        .await;
    let (status, p) = app
        .get("/api/v1/me/supporter?kind=consultation", &ended)
        .await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "outside-pairing-period",
    );

    // Only clinicians write requests; an unknown kind names the parameter.
    let (status, _) = app
        .get("/api/v1/me/supporter?kind=consultation", &c.coordinator)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, p) = app.get("/api/v1/me/supporter?kind=x", &c.doctor).await;
    assert_eq!(
        (status, p["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("kind"))
    );
    app.stop().await;
}

async fn requests_of(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, list) = app
        .get("/api/v1/requests?state=draft,submitted", token)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

async fn a_refused_first_submission_leaves_no_draft(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let before = requests_of(&app, &c.doctor).await;
    let mut thin = content();
    thin["reason"] = json!("");
    for body in [
        json!({"kind": "consultation", "submit": true, "content": thin}),
        json!({"kind": "consultation", "submit": true}),
    ] {
        let (status, p) = app.post("/api/v1/requests", &c.doctor, body).await;
        assert_refused(
            status,
            &p,
            StatusCode::UNPROCESSABLE_ENTITY,
            "incomplete-request",
        );
        assert_eq!(
            requests_of(&app, &c.doctor).await,
            before,
            "no draft is left"
        );
    }
    // Complete, it is created submitted: one call, both steps on record, the supporter told.
    let (status, r) = app
        .post(
            "/api/v1/requests",
            &c.doctor,
            json!({"kind": "consultation", "submit": true, "content": content()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["state"], "submitted");
    assert!(r["decision_due_at"].is_string(), "{r}");
    let steps: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_state"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["draft", "submitted"]);
    let (status, inbox) = app.get("/api/v1/requests?box=inbox", &c.coordinator).await;
    assert_eq!(status, StatusCode::OK);
    assert!(inbox.as_array().unwrap().iter().any(|x| x["id"] == r["id"]));
    app.stop().await;
}

/// Uploads CT_small (patient `CompressedSamples^CT1`, ID `1CT1`) as the county; returns
/// its Study Instance UID.
async fn county_study(app: &TestApp, doctor: &str) -> String {
    let bytes = std::fs::read(pydicom_files().join("CT_small.dcm")).unwrap();
    let (status, answer) = stow(app, "/studies", doctor, &[bytes]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, found) = app.get("/dicomweb/studies", doctor).await;
    found[0]["0020000D"]["Value"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_study_of_another_patient_is_sent_only_once_confirmed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let uid = county_study(&app, &c.doctor).await;
    let mut body = content();
    body["study_instance_uid"] = json!(uid);
    let (status, p) = app
        .post(
            "/api/v1/requests",
            &c.doctor,
            json!({"kind": "consultation", "submit": true, "content": body}),
        )
        .await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "study-patient-mismatch",
    );
    assert_eq!(p["field"], "study_instance_uid");
    let shown = p.to_string();
    assert!(
        !shown.contains("王某某") && !shown.contains("CompressedSamples"),
        "no patient in a problem: {shown}"
    );
    // A draft with the same study is refused when submitted, until the doctor confirms.
    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": body}),
    )
    .await;
    let (status, p) = step(&app, &c.doctor, &r["id"], "submit", json!({})).await;
    assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "study-patient-mismatch",
    );
    let (status, changed) = app
        .patch(
            &format!("/api/v1/requests/{}", r["id"]),
            &c.doctor,
            json!({"content": {"study_patient_confirmed": true}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    ok_step(&app, &c.doctor, &r["id"], "submit", json!({})).await;

    // The study's own patient, written otherwise, is the same one.
    let mut same = content();
    same["study_instance_uid"] = json!(uid);
    same["patient"] =
        json!({"name": "compressedsamples ct1", "sex": "M", "birth_date": "1958-03-02"});
    let (status, r) = app
        .post(
            "/api/v1/requests",
            &c.doctor,
            json!({"kind": "consultation", "submit": true, "content": same}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.stop().await;
}

async fn only_qualified_clinicians_are_offered_as_consultant_best_suited_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    // 林主任 (senior, 20 years, 神经内科) and 陈医生 (intermediate, 2 years) come with the cast.
    let deputy = clinician(
        &app,
        c.tertiary,
        "周副主任",
        "副主任医师",
        Some("110440700000003"),
        10,
    )
    .await;
    let unlicensed = clinician(&app, c.tertiary, "吴主任", "主任医师", None, 15).await;
    let (status, cardio) = app
        .post(
            "/api/v1/clinicians",
            &app.admin_token,
            json!({"name": "郑主任", "institution_id": c.tertiary, "title": "主任医师", "specialty": "心内科",
                   "licence_number": "110440700000004", "practice_since": "2000-01-01"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cardio}");
    let radiologist = clinician(
        &app,
        c.tertiary,
        "黄主任",
        "主任医师",
        Some("110440700000005"),
        12,
    )
    .await;
    let body = app
        .account(
            json!({"username": "jm.huang", "display_name": "黄主任", "institution_id": c.tertiary,
                        "clinician_id": radiologist, "roles": ["radiologist"]}),
        )
        .await;
    let radiology = app
        .login("jm.huang", body["password"].as_str().unwrap())
        .await;

    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    ok_step(&app, &c.doctor, &r["id"], "submit", json!({})).await;
    let path = format!("/api/v1/requests/{}/consultants", r["id"]);
    let (status, list) = app.get(&path, &c.coordinator).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    // Neurology first (senior before deputy), then the cardiologist; not the junior, not
    // the unlicensed, not the radiologist.
    assert_eq!(
        ids,
        [c.consultant_id, deputy, cardio["id"].as_i64().unwrap()],
        "{list}"
    );
    assert!(
        !ids.contains(&unlicensed) && !ids.contains(&c.junior_id) && !ids.contains(&radiologist)
    );
    assert_eq!(list[0]["specialty_matches"], true);
    assert_eq!(list[2]["specialty_matches"], false);

    // An imaging read is offered to radiologists only.
    let mut read_content = content();
    read_content["specialty"] = json!("放射科");
    let read = draft(
        &app,
        &c.doctor,
        json!({"kind": "imaging_read", "content": read_content}),
    )
    .await;
    ok_step(&app, &c.doctor, &read["id"], "submit", json!({})).await;
    let (status, list) = app
        .get(
            &format!("/api/v1/requests/{}/consultants", read["id"]),
            &radiology,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [radiologist]);

    // The requesting side does not choose.
    let (status, p) = app.get(&path, &c.doctor).await;
    assert_refused(status, &p, StatusCode::FORBIDDEN, "wrong-institution");
    app.stop().await;
}

/// A browser account: `username` of `institution` with `roles`, tied to `clinician`.
async fn browser_account(
    app: &TestApp,
    username: &str,
    institution: i64,
    roles: &[&str],
    clinician: Option<i64>,
) -> Value {
    app.account(json!({"username": username, "display_name": username,
                       "institution_id": institution, "clinician_id": clinician, "roles": roles}))
        .await;
    json!({"username": username, "password": password_for(username)})
}

async fn the_forms_help_a_new_user_in_the_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let county = app.institution_id("台山市人民医院").await;
    let tertiary = app.institution_id("江门市中心医院").await;
    pair(&app, tertiary, county, json!(["consult"])).await;
    let lin = clinician(
        &app,
        tertiary,
        "林主任",
        "主任医师",
        Some("110440700000001"),
        20,
    )
    .await;
    let zhou = clinician(
        &app,
        tertiary,
        "周副主任",
        "副主任医师",
        Some("110440700000002"),
        10,
    )
    .await;
    clinician(
        &app,
        tertiary,
        "陈医生",
        "主治医师",
        Some("110440700000003"),
        2,
    )
    .await;
    let (status, zheng) = app
        .post(
            "/api/v1/clinicians",
            &app.admin_token,
            json!({"name": "郑主任", "institution_id": tertiary, "title": "主任医师", "specialty": "心内科",
                   "licence_number": "110440700000004", "practice_since": "2000-01-01"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{zheng}");
    let huang = clinician(
        &app,
        tertiary,
        "黄主任",
        "主任医师",
        Some("110440700000005"),
        12,
    )
    .await;
    browser_account(&app, "jm.huang", tertiary, &["radiologist"], Some(huang)).await;
    let lin_account = browser_account(&app, "jm.lin", tertiary, &["clinician"], Some(lin)).await;
    let lin_token = app
        .login("jm.lin", lin_account["password"].as_str().unwrap())
        .await;
    available_daily(&app, lin, &lin_token, "08:00", "20:00").await;
    let coordinator = browser_account(&app, "jm.office", tertiary, &["coordinator"], None).await;
    let wang = clinician(
        &app,
        county,
        "王医生",
        "主治医师",
        Some("110440700000006"),
        6,
    )
    .await;
    let doctor = browser_account(&app, "ts.wang", county, &["clinician"], Some(wang)).await;
    let (lone, _) = lone_doctor(&app).await;
    let unpaired = browser_account(&app, "yc.li", lone, &["clinician"], None).await;
    let doctor_token = app
        .login("ts.wang", doctor["password"].as_str().unwrap())
        .await;
    let study = county_study(&app, &doctor_token).await;

    let out = run_scenario(
        "forms",
        &on_backend("forms", backend),
        &app.base,
        json!({"unpaired": unpaired, "doctor": doctor, "coordinator": coordinator,
               "study": study, "study_patient": "CompressedSamples"}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));

    assert_eq!(
        out["offered"],
        json!([lin, zhou, zheng["id"]]),
        "neurology first, by rank; not the junior, not the radiologist"
    );
    let id = out["id"].as_i64().unwrap();
    let (_, r) = app
        .get(&format!("/api/v1/requests/{id}"), &doctor_token)
        .await;
    assert_eq!(r["state"], "scheduled", "{r}");
    assert_eq!(r["consultant_id"], lin);
    assert_eq!(r["scheduled_start"], out["slot"]);
    assert_eq!(r["content"]["study_patient_confirmed"], true);
    let (_, mine) = app.get("/api/v1/requests", &doctor_token).await;
    assert_eq!(
        mine.as_array().unwrap().len(),
        1,
        "the refused submissions left no draft: {mine}"
    );
    app.stop().await;
}
