//! The signed opinion as a document the county files: signing asks for the password
//! again, the opinions carry their signer, and each signed version is a PDF in Chinese
//! with the facts, the opinion, the signer and the document hash (national rules: the
//! opinion is signed by the consultant; both sides keep the records; every access to
//! patient data is audited).

use std::process::Command;

use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::requests::{Cast, cast, in_session, ok_step, signing, step};

on_both_backends!(
    signing_an_opinion_asks_for_the_password_again,
    guesses_of_the_password_when_signing_an_opinion_are_throttled,
    the_signed_opinion_is_a_pdf_with_the_facts_the_opinion_and_its_signer,
    the_opinion_pdf_needs_a_chinese_font,
);

const FIRST: &str = "第一版意见：考虑高血压性头痛，建议规律降压治疗，一周后复诊。";
const AMENDED: &str = "修订意见：复查血压仍高，加用氨氯地平 5mg 每日一次。";

async fn write(app: &TestApp, c: &Cast, id: &Value, body: &str) {
    let (status, all) = app
        .call(
            Method::PUT,
            &format!("/api/v1/requests/{id}/opinions"),
            Some(&c.consultant),
            Some(json!({"body": body})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
}

async fn signing_an_opinion_asks_for_the_password_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let id = in_session(&app, &c).await;
    write(&app, &c, &id, FIRST).await;
    let (_, before) = app.get(&format!("/api/v1/requests/{id}"), &c.doctor).await;

    for (body, why) in [
        (json!({}), "no password"),
        (json!({"password": ""}), "an empty password"),
        (json!({"password": "not-the-password"}), "a wrong password"),
        (signing("ts.doctor"), "another user's password"),
    ] {
        let (status, p) = step(&app, &c.consultant, &id, "sign", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {p}");
        assert_eq!(p["field"], "password", "{why}: {p}");
    }
    let (_, after) = app.get(&format!("/api/v1/requests/{id}"), &c.doctor).await;
    assert_eq!(after["state"], "in_session", "nothing changed: {after}");
    assert_eq!(after["version"], before["version"]);
    let (_, seen) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &c.doctor)
        .await;
    assert_eq!(seen, json!([]), "no signed opinion: {seen}");

    let me = app.get("/api/v1/me", &c.consultant).await.1;
    let (_, log) = app
        .get(
            &format!("/api/v1/audit?user_id={}&outcome=denied", me["id"]),
            &app.admin_token,
        )
        .await;
    let refused = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "sign")
        .count();
    assert_eq!(refused, 4, "each refusal is audited: {log}");
    assert!(
        !log.to_string().contains("not-the-password"),
        "no password in the log"
    );

    let signed = ok_step(&app, &c.consultant, &id, "sign", signing("jm.lin")).await;
    assert_eq!(signed["state"], "opinion_signed");
    let (_, seen) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &c.doctor)
        .await;
    assert_eq!(seen[0]["signer"]["name"], "林主任", "{seen}");
    assert_eq!(seen[0]["signer"]["title"], "主任医师");
    assert_eq!(seen[0]["signer"]["institution"], "江门市中心医院");
    assert_eq!(seen[0]["document_sha256"].as_str().unwrap().len(), 64);
    let local = seen[0]["signed_local"].as_str().unwrap();
    let utc: chrono::DateTime<chrono::Utc> =
        seen[0]["signed_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        local,
        (utc + chrono::Duration::hours(8))
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        "shown in China time"
    );
    app.stop().await;
}

async fn guesses_of_the_password_when_signing_an_opinion_are_throttled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let id = in_session(&app, &c).await;
    write(&app, &c, &id, FIRST).await;
    let free = app.db.config().auth.failed_logins_before_delay;
    let mut wrong = 0;
    let held = loop {
        let (status, p) = step(
            &app,
            &c.consultant,
            &id,
            "sign",
            json!({"password": "guess"}),
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            break p;
        }
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        wrong += 1;
        assert!(wrong <= free + 1, "held back after {free} guesses");
    };
    assert!(
        wrong >= free,
        "{free} guesses are free, {wrong} were allowed"
    );
    assert!(
        held["type"]
            .as_str()
            .unwrap()
            .ends_with("too-many-attempts")
    );
    // Held back, the right password does not sign either.
    let (status, _) = step(&app, &c.consultant, &id, "sign", signing("jm.lin")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (_, r) = app.get(&format!("/api/v1/requests/{id}"), &c.doctor).await;
    assert_eq!(r["state"], "in_session");
    app.stop().await;
}

/// The text of a PDF, as poppler's `pdftotext` reads it.
fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opinion.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils; tests/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Lines may break anywhere between Chinese characters: compare without white space.
    String::from_utf8(out.stdout)
        .unwrap()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

async fn pdf(
    app: &TestApp,
    token: &str,
    id: &Value,
    version: i64,
) -> (StatusCode, String, Vec<u8>) {
    let response = app
        .client
        .get(format!(
            "{}/api/v1/requests/{id}/opinions/{version}/pdf",
            app.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.bytes().await.unwrap().to_vec())
}

fn squeezed(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

async fn the_signed_opinion_is_a_pdf_with_the_facts_the_opinion_and_its_signer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let id = in_session(&app, &c).await;
    let (status, _, _) = pdf(&app, &c.doctor, &id, 1).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing signed yet");
    write(&app, &c, &id, FIRST).await;
    ok_step(&app, &c.consultant, &id, "sign", signing("jm.lin")).await;

    let (status, kind, bytes) = pdf(&app, &c.doctor, &id, 1).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(kind, "application/pdf");
    assert!(bytes.starts_with(b"%PDF-"));
    // The font is embedded as a subset of the glyphs used, not the 20 MB collection.
    assert!(bytes.len() < 1_000_000, "{} bytes", bytes.len());
    eprintln!("the PDF of version 1: {} bytes", bytes.len());
    let text = pdf_text(&bytes);
    let (_, opinions) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &c.doctor)
        .await;
    let hash = opinions[0]["document_sha256"].as_str().unwrap();
    for expected in [
        "远程会诊意见书",
        &format!("申请编号：{id}"),
        "台山市人民医院",
        "江门市中心医院",
        "王某某",
        "1958-03-02",
        "反复头痛三天",
        "是否需要转诊行头颅CT检查？",
        &squeezed(FIRST),
        "林主任",
        "主任医师",
        hash,
    ] {
        assert!(text.contains(expected), "the PDF says {expected}: {text}");
    }
    assert!(
        !text.contains("440781195803020011"),
        "no identity card number"
    );
    let header = app
        .client
        .get(format!("{}/api/v1/requests/{id}/opinions/1/pdf", app.base))
        .bearer_auth(&c.doctor)
        .send()
        .await
        .unwrap();
    assert_eq!(header.headers()["x-document-sha256"], hash);
    assert_eq!(header.headers()["cache-control"], "no-store");

    // An amendment is a second version; the first stays as it was.
    ok_step(&app, &c.doctor, &id, "acknowledge", json!({})).await;
    write(&app, &c, &id, AMENDED).await;
    ok_step(&app, &c.consultant, &id, "sign", signing("jm.lin")).await;
    let (status, _, second) = pdf(&app, &c.doctor, &id, 2).await;
    assert_eq!(status, StatusCode::OK);
    let second = pdf_text(&second);
    assert!(second.contains(&squeezed(AMENDED)), "{second}");
    assert!(
        second.contains(&squeezed(FIRST)),
        "the amended version is shown too"
    );
    assert!(second.contains("修订第1版"), "{second}");
    let (_, first_again, first) = pdf(&app, &c.doctor, &id, 1).await;
    assert_eq!(first_again, "application/pdf");
    let first = pdf_text(&first);
    assert!(
        !first.contains(&squeezed(AMENDED)),
        "version 1 is kept as signed"
    );
    assert!(first.contains(hash), "its hash has not changed");
    let (_, opinions) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &c.doctor)
        .await;
    assert_eq!(opinions[0]["document_sha256"], hash);
    assert_ne!(opinions[1]["document_sha256"], hash);

    // The consultant's side reads it too; another county does not.
    let (status, _, _) = pdf(&app, &c.consultant, &id, 2).await;
    assert_eq!(status, StatusCode::OK);
    let kaiping = app.institution_id("开平市中心医院").await;
    let (intruder_id, intruder) = app.user("kp.doctor", kaiping, &["clinician"]).await;
    let (status, _, body) = pdf(&app, &intruder, &id, 1).await;
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_refused(status, &problem, StatusCode::FORBIDDEN, "wrong-institution");
    assert!(!problem.to_string().contains("王某某"));
    let (status, _, _) = pdf(&app, &c.doctor, &id, 3).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no third version");

    let (_, log) = app
        .get(
            &format!("/api/v1/audit?object_id={id}&object_kind=request"),
            &app.admin_token,
        )
        .await;
    let reads = |user: &Value, outcome: &str| {
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["action"] == "read_opinion_document"
                    && &e["user_id"] == user
                    && e["outcome"] == outcome
            })
            .count()
    };
    let doctor = app.get("/api/v1/me", &c.doctor).await.1["id"].clone();
    assert!(
        reads(&doctor, "allowed") >= 3,
        "each read is audited: {log}"
    );
    assert_eq!(reads(&json!(intruder_id), "denied"), 1, "{log}");
    app.stop().await;
}

async fn the_opinion_pdf_needs_a_chinese_font(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| {
        config.documents.font = Some("/nonexistent/NotoSansCJK-Regular.ttc".into());
    })
    .await;
    let c = cast(&app).await;
    let id = in_session(&app, &c).await;
    write(&app, &c, &id, FIRST).await;
    ok_step(&app, &c.consultant, &id, "sign", signing("jm.lin")).await;
    let (status, kind, body) = pdf(&app, &c.doctor, &id, 1).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(kind, "application/problem+json");
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("fonts-noto-cjk"),
        "names the package: {problem}"
    );
    // The opinion itself, and so the print view, still reads.
    let (status, opinions) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &c.doctor)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(opinions[0]["signer"]["name"], "林主任");

    // Both are in the API's document.
    let (_, doc) = app.get("/api/v1/openapi.json", &c.doctor).await;
    let pdf = &doc["paths"]["/requests/{id}/opinions/{version}/pdf"]["get"];
    assert!(
        pdf["responses"]["200"]["content"]["application/pdf"].is_object(),
        "{pdf}"
    );
    assert!(pdf["responses"]["503"].is_object(), "{pdf}");
    assert!(
        doc["components"]["schemas"]["StepInput"]["properties"]["password"].is_object(),
        "the sign step's password is documented"
    );
    app.stop().await;
}
