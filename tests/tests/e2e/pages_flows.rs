//! Whole tasks in the browser pages, each a scenario in headless Chromium
//! (`tests/browser/<name>.mjs`) against a gateway prepared over the API: the people and
//! pairings, the studies, the requests the task starts from. Screenshots land in
//! `target/browser-artifacts/<scenario>-<backend>/`.

use chrono::{Duration, Utc};
use duikou_imaging::testing::series;
use duikou_tests::browser::{on_backend, run_scenario};
use duikou_tests::coturn::Coturn;
use duikou_tests::{Backend, TestApp, dcmtk, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::forwarding::county_sends_for_reading;
use crate::requests::{available_daily, clinician, content, draft, free_slot_of, ok_step, pair};
use crate::rounds::round_team;

on_both_backends!(
    a_county_doctor_and_a_consultant_hold_a_whole_consultation_in_the_pages,
    a_radiologist_scrolls_a_forwarded_study_and_signs_the_read,
    a_trainee_enrols_joins_the_classroom_and_is_given_the_microphone,
    program_staff_read_pairings_reports_and_the_audit_and_every_page_fits_a_phone,
    a_consultant_declines_with_a_reason_the_doctor_then_reads,
    a_ward_round_is_joined_from_the_home_pages_of_both_sides,
    a_draft_is_kept_and_finished_later,
    a_county_doctor_pages_through_sixty_drafts_newest_first,
    three_people_meet_peer_to_peer_and_one_goes_audio_only_then_leaves,
    two_browsers_meet_through_turn_alone_and_restart_ice_when_it_goes_quiet,
    over_tls_the_pages_are_https_and_the_room_signals_over_wss,
);

/// A user of `institution` with `roles`, tied to `clinician` when given, for a browser to
/// log in with.
async fn account(
    app: &TestApp,
    username: &str,
    institution: i64,
    roles: &[&str],
    clinician: Option<i64>,
) -> Value {
    let body = app
        .account(
            json!({"username": username, "display_name": username, "institution_id": institution,
                        "clinician_id": clinician, "roles": roles}),
        )
        .await;
    json!({"username": username, "password": body["password"], "id": body["user"]["id"]})
}

/// Taishan People's Hospital and Jiangmen Central Hospital, paired for some services, and
/// a doctor of each who logs in through the pages.
pub(crate) struct Paired {
    pub(crate) county: i64,
    pub(crate) tertiary: i64,
    /// 林主任's clinician id: a chief physician of 20 years, qualified to consult.
    pub(crate) lin: i64,
    /// 林主任's account, `jm.lin`.
    pub(crate) consultant: Value,
    /// The county's 王医生, `ts.wang`.
    pub(crate) doctor: Value,
}

pub(crate) async fn paired(app: &TestApp, services: Value) -> Paired {
    let county = app.institution_id("台山市人民医院").await;
    let tertiary = app.institution_id("江门市中心医院").await;
    pair(app, tertiary, county, services).await;
    let lin = clinician(
        app,
        tertiary,
        "林主任",
        "主任医师",
        Some("110440700000001"),
        20,
    )
    .await;
    let consultant = account(app, "jm.lin", tertiary, &["clinician"], Some(lin)).await;
    let doctor = county_doctor(app, county).await;
    Paired {
        county,
        tertiary,
        lin,
        consultant,
        doctor,
    }
}

/// 王医生, an attending doctor of the county hospital `county`, as the browser account
/// `ts.wang`.
async fn county_doctor(app: &TestApp, county: i64) -> Value {
    let wang = clinician(
        app,
        county,
        "王医生",
        "主治医师",
        Some("110440700000003"),
        6,
    )
    .await;
    account(app, "ts.wang", county, &["clinician"], Some(wang)).await
}

/// The bearer token of a browser account, for the test's own calls.
pub(crate) async fn token_of(app: &TestApp, account: &Value) -> String {
    app.login(
        account["username"].as_str().unwrap(),
        account["password"].as_str().unwrap(),
    )
    .await
}

/// The attendance record of `session`, which holds each of `people` (browser accounts).
async fn attended(app: &TestApp, session: &str, people: &[&Value]) -> Value {
    let (status, record) = app
        .get(
            &format!("/api/v1/sessions/{session}/attendance"),
            &app.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{record}");
    let present: Vec<&Value> = record["stretches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["user_id"])
        .collect();
    for who in people {
        assert!(
            present.contains(&&who["id"]),
            "{who} was in the room: {record}"
        );
    }
    record
}

/// A complete consultation request drafted and submitted with `token`; its id.
async fn submitted_consultation(app: &TestApp, token: &str) -> Value {
    let r = draft(
        app,
        token,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    ok_step(app, token, &r["id"], "submit", json!({})).await;
    r["id"].clone()
}

async fn a_radiologist_scrolls_a_forwarded_study_and_signs_the_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let relay = app.dicom.expect("DICOM listens");
    let (county, tertiary) = county_sends_for_reading(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let images = 12;
    let series = series::ct_series(dir.path(), images, 128, "TS20261201").unwrap();
    let sent = dcmtk::store(
        relay,
        "TAISHAN_CT",
        "DUIKOU",
        "1.2.840.10008.1.2.1",
        &series.files,
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );

    let reader = clinician(
        &app,
        tertiary,
        "黄主任",
        "主任医师",
        Some("110440700000007"),
        18,
    )
    .await;
    let radiologist = account(&app, "jm.huang", tertiary, &["radiologist"], Some(reader)).await;
    let doctor = county_doctor(&app, county).await;
    let office = account(&app, "jm.office", tertiary, &["coordinator"], None).await;
    let report = "头颅 CT 平扫：未见明确出血及占位。建议结合临床，必要时 MRI 检查。";
    let mut input = radiologist;
    input["doctor"] = doctor.clone();
    input["office"] = office;
    input["reader"] = json!(reader);
    input["study"] = json!(series.study);
    input["images"] = json!(images);
    input["report"] = json!(report);
    let out = run_scenario("viewer", &on_backend("viewer", backend), &app.base, input)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(out["scrolled"], images);
    let id = out["request"].clone();
    let doctor = app
        .login("ts.wang", doctor["password"].as_str().unwrap())
        .await;

    // The read went back through booking: signed, for the county to see.
    let (status, r) = app.get(&format!("/api/v1/requests/{id}"), &doctor).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["state"], "opinion_signed", "{r}");
    assert_eq!(r["kind"], "imaging_read");
    assert_eq!(r["content"]["study_instance_uid"], series.study.as_str());
    assert_eq!(r["content"]["accession_number"], "TS20261201");
    let (_, opinions) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &doctor)
        .await;
    assert_eq!(opinions[0]["body"], report);
    assert_eq!(opinions[0]["consultant_id"], reader);
    app.stop().await;
}

async fn a_county_doctor_and_a_consultant_hold_a_whole_consultation_in_the_pages(backend: Backend) {
    // Rooms open four days ahead, so that the session can be joined now.
    let app = TestApp::spawn_with(backend, |c| c.signaling.lead_minutes = 4 * 24 * 60).await;
    let Paired {
        lin,
        consultant,
        doctor,
        ..
    } = paired(&app, json!(["consult"])).await;
    let other_county = app.institution_id("开平市中心医院").await;
    let stranger = account(&app, "kp.zhou", other_county, &["clinician"], None).await;
    // The consultant takes consultations at any time of day, in 30-minute slots.
    let token = token_of(&app, &consultant).await;
    available_daily(&app, lin, &token, "00:00", "23:30").await;

    let out = run_scenario(
        "consultation",
        &on_backend("consultation", backend),
        &app.base,
        json!({"doctor": doctor, "consultant": consultant, "stranger": stranger}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));

    // What the pages did is what the API holds: acknowledged, by these two, in one room.
    let id = out["id"].as_i64().expect("the scenario names the request");
    let admin = &app.admin_token;
    let county_token = token_of(&app, &doctor).await;
    let (status, r) = app
        .get(&format!("/api/v1/requests/{id}"), &county_token)
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["state"], "acknowledged", "{r}");
    assert_eq!(r["consultant_id"], lin);
    assert_eq!(r["scheduled_start"], out["slot"]);
    let record = attended(&app, &format!("consultation-{id}"), &[&doctor, &consultant]).await;
    assert!(
        record["together_seconds"].as_i64().unwrap() >= 1,
        "{record}"
    );
    // The other county's look was refused and recorded.
    let (_, audit) = app
        .get("/api/v1/audit?outcome=denied&object_kind=request", admin)
        .await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["object_id"] == id),
        "{audit}"
    );
    // The address typed on the notifications page is kept, e-mail not chosen.
    let (_, choice) = app.get("/api/v1/me/notices", &county_token).await;
    assert_eq!(
        choice,
        json!({"email": "wang@taishan.example", "email_notices": false, "email_available": false})
    );
    app.stop().await;
}

async fn a_trainee_enrols_joins_the_classroom_and_is_given_the_microphone(backend: Backend) {
    // Rooms open four days ahead, so that a session starting tomorrow can be joined now.
    let app = TestApp::spawn_with(backend, |c| c.signaling.lead_minutes = 4 * 24 * 60).await;
    let county = app.institution_id("台山市人民医院").await;
    let tertiary = app.institution_id("江门市中心医院").await;
    pair(&app, tertiary, county, json!(["teaching"])).await;
    let huang = clinician(
        &app,
        tertiary,
        "黄教授",
        "主任医师",
        Some("110440700000005"),
        25,
    )
    .await;
    let presenter = account(&app, "jm.huang", tertiary, &["clinician"], Some(huang)).await;
    let trainee = account(&app, "ts.li", county, &["trainee"], None).await;
    let (_, office) = app.user("jm.edu", tertiary, &["coordinator"]).await;
    let starts = Utc::now() + Duration::days(1);
    let topic = "脑卒中早期识别与转诊";
    let (status, session) = app
        .post(
            "/api/v1/teaching",
            &office,
            json!({"presenter_clinician_id": huang, "topic": topic, "starts_at": starts,
                   "ends_at": starts + Duration::hours(2), "capacity": 30}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let id = session["id"].clone();
    run_scenario(
        "teaching",
        &on_backend("teaching", backend),
        &app.base,
        json!({"presenter": presenter, "trainee": trainee, "session": id, "topic": topic}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    // The enrolment made in the page is the trainee's.
    let (status, enrolments) = app
        .get(&format!("/api/v1/teaching/{id}/enrolments"), &office)
        .await;
    assert_eq!(status, StatusCode::OK, "{enrolments}");
    assert_eq!(enrolments[0]["user_id"], trainee["id"]);
    assert_eq!(enrolments[0]["status"], "enrolled");
    app.stop().await;
}

async fn program_staff_read_pairings_reports_and_the_audit_and_every_page_fits_a_phone(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let Paired {
        county,
        tertiary,
        consultant,
        doctor,
        ..
    } = paired(&app, json!(["consult", "imaging_read", "teaching"])).await;
    let other_county = app.institution_id("开平市中心医院").await;
    let (status, pairings) = app
        .get(
            &format!("/api/v1/pairings?supported_institution_id={county}&service=teaching"),
            &app.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let pairing = pairings
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["supported"]["value"] == county)
        .expect("the new pairing")["id"]
        .clone();
    // A request, and another county's refused look at it, for the report and the audit.
    let id = submitted_consultation(&app, &token_of(&app, &doctor).await).await;
    let (stranger_id, stranger) = app.user("kp.zhou", other_county, &["clinician"]).await;
    let (status, _) = app.get(&format!("/api/v1/requests/{id}"), &stranger).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let radiologist = account(&app, "jm.rad", tertiary, &["radiologist"], None).await;
    let trainee = account(&app, "ts.li", county, &["trainee"], None).await;
    let commission = app.institution_id("江门市卫生计生局").await;
    let admin = account(&app, "hc.zhang", commission, &["admin"], None).await;
    let page = |who: &Value, path: &str, name: &str, ready: &str| json!({"who": who, "path": path, "name": name, "ready": ready});
    let pages = json!([
        page(&doctor, "/home", "home", "main h1"),
        page(&doctor, "/requests", "requests", "table.requests, main p"),
        page(&doctor, "/requests/new", "request-new", "#request-form"),
        page(&doctor, &format!("/requests/{id}"), "request", "#timeline"),
        page(&consultant, "/inbox", "inbox", "table.requests"),
        page(
            &radiologist,
            "/worklist",
            "worklist",
            "main h1 + label + div > *"
        ),
        page(&trainee, "/teaching", "teaching", "#hours"),
        page(&admin, "/program", "program", "#pairings tbody tr"),
        page(&admin, "/audit", "audit", "#audit tbody tr"),
    ]);
    let year = Utc::now().format("%Y").to_string();
    let out = run_scenario(
        "staff",
        &on_backend("staff", backend),
        &app.base,
        json!({"admin": admin, "pairing": pairing, "period": year, "pages": pages,
            "patient": content()["patient"]["name"],
            "stranger": {"id": stranger_id, "institution": "开平市中心医院"}}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(out["drawn"].as_array().unwrap().len(), 9);
    // The target set on the pairing's page is the pairing's.
    let (_, targets) = app
        .get(
            &format!("/api/v1/pairings/{pairing}/targets"),
            &app.admin_token,
        )
        .await;
    let this_year = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["year"] == year.parse::<i64>().unwrap())
        .expect("this year's target");
    assert_eq!(
        (
            &this_year["source"],
            &this_year["trainees"],
            &this_year["hours_each"]
        ),
        (&json!("pairing"), &json!(1), &json!(2)),
        "{targets}"
    );
    app.stop().await;
}

async fn a_consultant_declines_with_a_reason_the_doctor_then_reads(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let Paired {
        consultant, doctor, ..
    } = paired(&app, json!(["consult"])).await;
    let token = token_of(&app, &doctor).await;
    let id = submitted_consultation(&app, &token).await;
    run_scenario(
        "decline",
        &on_backend("decline", backend),
        &app.base,
        json!({"doctor": doctor, "consultant": consultant, "request": id}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let (_, r) = app.get(&format!("/api/v1/requests/{id}"), &token).await;
    assert_eq!(r["state"], "declined");
    assert_eq!(r["decline_code"], "no_specialist");
    app.stop().await;
}

async fn a_ward_round_is_joined_from_the_home_pages_of_both_sides(backend: Backend) {
    // Rooms open four days ahead, so that tomorrow's round can be joined now.
    let app = TestApp::spawn_with(backend, |c| c.signaling.lead_minutes = 4 * 24 * 60).await;
    let county = app.institution_id("台山市人民医院").await;
    let tertiary = app.institution_id("江门市中心医院").await;
    let zhou = clinician(
        &app,
        tertiary,
        "周主任",
        "主任医师",
        Some("110440700000011"),
        22,
    )
    .await;
    let team = round_team(&app, tertiary, county, &json!(zhou), 400).await;
    let leader = account(&app, "jm.zhou", tertiary, &["clinician"], Some(zhou)).await;
    let ward_doctor = county_doctor(&app, county).await;
    let (_, office) = app.user("ts.office", county, &["coordinator"]).await;
    let starts = Utc::now() + Duration::days(1);
    let (status, rounds) = app
        .post(
            "/api/v1/ward-rounds",
            &office,
            json!({"team_id": team["id"], "supported_institution_id": county, "ward": "内科病区",
                   "starts_at": starts, "duration_minutes": 60, "weeks": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rounds}");
    run_scenario(
        "ward_round",
        &on_backend("ward_round", backend),
        &app.base,
        json!({"leader": leader, "ward_doctor": ward_doctor, "round": rounds[0]["id"]}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    app.stop().await;
}

/// A consultation that `p`'s doctor asks for (with `accompanying` at the patient's side,
/// when given) and `p`'s consultant accepts and books into a slot tomorrow; its id.
async fn scheduled_consultation(app: &TestApp, p: &Paired, accompanying: Option<i64>) -> Value {
    let consultant_token = token_of(app, &p.consultant).await;
    available_daily(app, p.lin, &consultant_token, "00:00", "23:30").await;
    let doctor_token = token_of(app, &p.doctor).await;
    let mut body = content();
    if let Some(clinician) = accompanying {
        body["accompanying_clinician_id"] = json!(clinician);
    }
    let r = draft(
        app,
        &doctor_token,
        json!({"kind": "consultation", "content": body}),
    )
    .await;
    let id = r["id"].clone();
    ok_step(app, &doctor_token, &id, "submit", json!({})).await;
    ok_step(
        app,
        &consultant_token,
        &id,
        "accept",
        json!({"consultant_id": p.lin}),
    )
    .await;
    let start = free_slot_of(app, p.lin, &consultant_token, 0).await;
    ok_step(
        app,
        &consultant_token,
        &id,
        "schedule",
        json!({"start": start}),
    )
    .await;
    id
}

async fn three_people_meet_peer_to_peer_and_one_goes_audio_only_then_leaves(backend: Backend) {
    // Rooms open four days ahead, so that tomorrow's session can be joined now.
    let app = TestApp::spawn_with(backend, |c| c.signaling.lead_minutes = 4 * 24 * 60).await;
    let p = paired(&app, json!(["consult"])).await;
    let li = clinician(
        &app,
        p.county,
        "李医生",
        "主治医师",
        Some("110440700000009"),
        5,
    )
    .await;
    let accompanying = account(&app, "ts.li", p.county, &["clinician"], Some(li)).await;
    // 王医生 asks, with 李医生 at the patient's side; 林主任 accepts and books a slot.
    let id = scheduled_consultation(&app, &p, Some(li)).await;
    let Paired {
        doctor, consultant, ..
    } = p;

    run_scenario(
        "mesh",
        &on_backend("mesh", backend),
        &app.base,
        json!({"doctor": doctor, "accompanying": accompanying, "consultant": consultant, "id": id}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));

    // The room's record holds all three.
    attended(
        &app,
        &format!("consultation-{id}"),
        &[&doctor, &accompanying, &consultant],
    )
    .await;
    app.stop().await;
}

/// A hospital network that lets nothing through but the TURN server: both browsers are
/// made to use relayed candidates only, with the credentials the gateway mints at join.
/// The TURN server then stops answering for a while, and the pages restart ICE.
async fn two_browsers_meet_through_turn_alone_and_restart_ice_when_it_goes_quiet(backend: Backend) {
    let secret = "south-of-the-river";
    let coturn = Coturn::start(secret);
    let url = format!("turn:{}?transport=udp", coturn.addr());
    let app = TestApp::spawn_with(backend, move |c| {
        c.signaling.lead_minutes = 4 * 24 * 60;
        c.signaling.turn_urls = vec![url];
        c.signaling.turn_secret = Some(duikou::config::Secret::new(secret));
    })
    .await;
    let p = paired(&app, json!(["consult"])).await;
    let id = scheduled_consultation(&app, &p, None).await;
    run_scenario(
        "relay",
        &on_backend("relay", backend),
        &app.base,
        json!({"doctor": p.doctor, "consultant": p.consultant, "id": id, "turn_pid": coturn.pid()}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    app.stop().await;
}

async fn over_tls_the_pages_are_https_and_the_room_signals_over_wss(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.signaling.lead_minutes = 4 * 24 * 60;
        c.http.self_signed = true;
    })
    .await;
    assert!(app.base.starts_with("https://"));
    let p = paired(&app, json!(["consult"])).await;
    let id = scheduled_consultation(&app, &p, None).await;
    run_scenario(
        "tls",
        &on_backend("tls", backend),
        &app.base,
        json!({"doctor": p.doctor, "consultant": p.consultant, "id": id}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    app.stop().await;
}

async fn a_draft_is_kept_and_finished_later(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let Paired { doctor, .. } = paired(&app, json!(["consult"])).await;
    let out = run_scenario(
        "draft",
        &on_backend("draft", backend),
        &app.base,
        json!({"doctor": doctor}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let token = token_of(&app, &doctor).await;
    let (_, r) = app
        .get(&format!("/api/v1/requests/{}", out["id"]), &token)
        .await;
    assert_eq!(r["state"], "submitted", "{r}");
    assert_eq!(r["content"]["consent"]["given_by"], "patient");
    let (_, attachments) = app
        .get(
            &format!("/api/v1/requests/{}/attachments", out["id"]),
            &token,
        )
        .await;
    assert_eq!(
        attachments[0]["filename"], out["attachment"],
        "{attachments}"
    );
    let (_, all) = app.get("/api/v1/requests?box=outbox", &token).await;
    assert_eq!(
        all.as_array().unwrap().len(),
        1,
        "one request, not a second draft"
    );
    app.stop().await;
}

async fn a_county_doctor_pages_through_sixty_drafts_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let Paired { doctor, .. } = paired(&app, json!(["consult"])).await;
    let token = token_of(&app, &doctor).await;
    // Every seventh urgent: by priority they would come first, newest first they do not.
    let mut ids = Vec::new();
    for n in 0..60 {
        let urgency = if n % 7 == 3 { "urgent" } else { "normal" };
        let r = draft(
            &app,
            &token,
            json!({"kind": "consultation", "urgency": urgency, "content": content()}),
        )
        .await;
        ids.push(r["id"].as_i64().unwrap());
    }
    ids.reverse();
    let out = run_scenario(
        "request_list",
        &on_backend("request_list", backend),
        &app.base,
        json!({"doctor": doctor, "ids": ids}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(out["pages"], 2);
    app.stop().await;
}
