//! What an attacker sends: data sets nested to overflow a parser, an instance UID another
//! institution holds. Each is refused with the proper status, the process carries on,
//! and no institution's images are hidden, replaced or shown to another.

use duikou_imaging::testing::{Level, nested_ct, part10};
use duikou_imaging::walk::MAX_SEQUENCE_DEPTH;
use duikou_tests::scu::{CT, EXPLICIT_LE, Outcome, RawScu};
use duikou_tests::{Backend, TestApp, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    deep_nesting_is_refused_over_c_store_and_stow_and_the_process_carries_on,
    an_instance_uid_another_institution_holds_is_refused_and_neither_reads_the_other,
);

/// POSTs `parts` as STOW-RS to `/dicomweb/studies`; the status and the answer.
async fn stow(app: &TestApp, token: &str, parts: &[Vec<u8>]) -> (StatusCode, Value) {
    crate::dicomweb::stow(app, "/studies", token, parts).await
}

/// The failure reasons (0008,1197) of a STOW-RS answer's failed instances.
fn failures(answer: &Value) -> Vec<i64> {
    answer["00081198"]["Value"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["00081197"]["Value"][0].as_i64().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// Registers `ae` (from any host) for the institution `name`; its id.
async fn register(app: &TestApp, name: &str, ae: &str) -> i64 {
    let institution = app.institution_id(name).await;
    let (status, node) = app
        .post(
            &format!("/api/v1/institutions/{institution}/dicom-nodes"),
            &app.admin_token,
            json!({"ae_title": ae, "host": "*"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    institution
}

fn levels(n: usize) -> Vec<Level> {
    (0..n)
        .map(|i| Level {
            defined_sequence: i % 3 == 0,
            defined_item: i % 2 == 0,
            siblings: (i % 4) as u8,
            more_items: 0,
        })
        .collect()
}

/// The SOP Instance UIDs a user finds with QIDO-RS, study by study.
async fn found(app: &TestApp, token: &str) -> Vec<String> {
    let search = |path: String| async move {
        let response = app
            .client
            .get(format!("{}/dicomweb{path}", app.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.bytes().await.unwrap();
        assert!(
            [StatusCode::OK, StatusCode::NO_CONTENT].contains(&status),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        // No match is 204 or an empty array.
        serde_json::from_slice::<Vec<Value>>(&body).unwrap_or_default()
    };
    let text = |v: &Value, tag: &str| v[tag]["Value"][0].as_str().unwrap().to_owned();
    let mut uids = Vec::new();
    for study in search("/studies".into()).await {
        let study = text(&study, "0020000D");
        for instance in search(format!("/studies/{study}/instances")).await {
            uids.push(text(&instance, "00080018"));
        }
    }
    uids.sort();
    uids
}

async fn deep_nesting_is_refused_over_c_store_and_stow_and_the_process_carries_on(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let addr = app.dicom.expect("DICOM listens");
    let county = register(&app, "台山市人民医院", "TAISHAN_CT").await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;

    // 3,000 levels in about 100 KB, and one level beyond the limit: cannot understand,
    // over C-STORE; the association and the process carry on, and the same association
    // then stores an instance at the limit and a plain one.
    let mut scu = RawScu::connect(addr, "TAISHAN_CT", "DUIKOU", CT, EXPLICIT_LE).await;
    let attack = nested_ct("2.25.24001", "2.25.2400", &levels(3000), true);
    assert!(attack.len() < 200_000, "{} bytes", attack.len());
    assert_eq!(
        scu.store(CT, "2.25.24001", &attack).await,
        Outcome::Status(0xC000)
    );
    let beyond = nested_ct(
        "2.25.24002",
        "2.25.2400",
        &levels(MAX_SEQUENCE_DEPTH + 1),
        true,
    );
    assert_eq!(
        scu.store(CT, "2.25.24002", &beyond).await,
        Outcome::Status(0xC000)
    );
    let at_limit = nested_ct("2.25.24003", "2.25.2400", &levels(MAX_SEQUENCE_DEPTH), true);
    assert_eq!(
        scu.store(CT, "2.25.24003", &at_limit).await,
        Outcome::Status(0x0000)
    );
    let plain = nested_ct("2.25.24004", "2.25.2400", &levels(2), true);
    assert_eq!(
        scu.store(CT, "2.25.24004", &plain).await,
        Outcome::Status(0x0000)
    );
    scu.release().await;

    // The same over STOW-RS, in Implicit VR too: the deep parts fail as cannot
    // understand, the others are kept.
    let implicit = "1.2.840.10008.1.2";
    let parts = [
        part10(
            &nested_ct("2.25.24005", "2.25.2400", &levels(3000), false),
            "2.25.24005",
            implicit,
        ),
        part10(
            &nested_ct(
                "2.25.24006",
                "2.25.2400",
                &levels(MAX_SEQUENCE_DEPTH + 1),
                true,
            ),
            "2.25.24006",
            EXPLICIT_LE,
        ),
        part10(
            &nested_ct(
                "2.25.24007",
                "2.25.2400",
                &levels(MAX_SEQUENCE_DEPTH),
                false,
            ),
            "2.25.24007",
            implicit,
        ),
    ];
    let (status, answer) = stow(&app, &doctor, &parts).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(failures(&answer), [0xC000, 0xC000], "{answer}");
    let (status, answer) = stow(&app, &doctor, &parts[..1]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");

    // Still up, with exactly the sound instances.
    let health = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        found(&app, &doctor).await,
        ["2.25.24003", "2.25.24004", "2.25.24007"]
    );
    app.stop().await;
}

async fn an_instance_uid_another_institution_holds_is_refused_and_neither_reads_the_other(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let addr = app.dicom.expect("DICOM listens");
    let county = register(&app, "台山市人民医院", "TAISHAN_CT").await;
    let other = register(&app, "开平市中心医院", "KAIPING_CT").await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    let (_, stranger) = app.user("kp.doctor", other, &["clinician"]).await;
    let plain = |sop: &str, study: &str| nested_ct(sop, study, &levels(1), true);

    // Over C-STORE: the other institution sends UID U first, in a study of its own; the
    // county's instance U (its own study) is refused as not authorized, never answered
    // success and lost.
    let mut theirs = RawScu::connect(addr, "KAIPING_CT", "DUIKOU", CT, EXPLICIT_LE).await;
    assert_eq!(
        theirs
            .store(CT, "2.25.2411", &plain("2.25.2411", "2.25.2410"))
            .await,
        Outcome::Status(0x0000)
    );
    theirs.release().await;
    let mut ours = RawScu::connect(addr, "TAISHAN_CT", "DUIKOU", CT, EXPLICIT_LE).await;
    assert_eq!(
        ours.store(CT, "2.25.2411", &plain("2.25.2411", "2.25.2420"))
            .await,
        Outcome::Status(0x0124)
    );
    // The county's other instances are kept, and a repeat of its own is success.
    for _ in 0..2 {
        assert_eq!(
            ours.store(CT, "2.25.2421", &plain("2.25.2421", "2.25.2420"))
                .await,
            Outcome::Status(0x0000)
        );
    }
    ours.release().await;

    // Over STOW-RS the same: the other's clinician uploads V first.
    let (status, answer) = stow(
        &app,
        &stranger,
        &[part10(
            &plain("2.25.2412", "2.25.2410"),
            "2.25.2412",
            EXPLICIT_LE,
        )],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = stow(
        &app,
        &doctor,
        &[part10(
            &plain("2.25.2412", "2.25.2420"),
            "2.25.2412",
            EXPLICIT_LE,
        )],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(failures(&answer), [0x0124], "{answer}");

    // Neither reads the other's: each finds exactly its own.
    assert_eq!(found(&app, &doctor).await, ["2.25.2421"]);
    assert_eq!(found(&app, &stranger).await, ["2.25.2411", "2.25.2412"]);
    for study in ["2.25.2410", "2.25.2420"] {
        let token = if study == "2.25.2410" {
            &doctor
        } else {
            &stranger
        };
        let response = app
            .client
            .get(format!("{}/dicomweb/studies/{study}/metadata", app.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(
            [StatusCode::FORBIDDEN, StatusCode::NOT_FOUND].contains(&response.status()),
            "{study}: {}",
            response.status()
        );
    }

    // Each refusal is in the audit log, for the county, without the UID.
    let (status, audit) = app
        .get(
            "/api/v1/audit?outcome=denied&object_kind=dicom_instance",
            &app.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    for entry in entries {
        assert_eq!(entry["institution_id"], county, "{entry}");
        assert!(!entry.to_string().contains("2.25.241"), "{entry}");
    }
    app.stop().await;
}
