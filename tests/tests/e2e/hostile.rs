//! What an attacker sends: data sets nested to overflow a parser, an instance UID another
//! institution holds. Each is refused with the proper status, the process carries on,
//! and no institution's images are hidden, replaced or shown to another.

use std::time::{Duration, Instant};

use duikou_imaging::testing::{Level, nested_ct, part10};
use duikou_imaging::walk::MAX_SEQUENCE_DEPTH;
use duikou_tests::scu::{CT, EXPLICIT_LE, Outcome, RawScu};
use duikou_tests::{Backend, TestApp, eventually, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    deep_nesting_is_refused_over_c_store_and_stow_and_the_process_carries_on,
    an_instance_uid_another_institution_holds_is_refused_and_neither_reads_the_other,
    outbound_calls_go_only_where_the_policy_allows,
    an_oversized_stow_is_refused_and_keeps_nothing_of_what_is_over,
    a_whole_study_is_retrieved_in_bounded_memory,
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
        let (status, _, body) = crate::dicomweb::dicomweb(app, &path, token).await;
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

    // Nor may the other put an instance into the county's study.
    let mut theirs = RawScu::connect(addr, "KAIPING_CT", "DUIKOU", CT, EXPLICIT_LE).await;
    assert_eq!(
        theirs
            .store(CT, "2.25.2413", &plain("2.25.2413", "2.25.2420"))
            .await,
        Outcome::Status(0x0124)
    );
    theirs.release().await;

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
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{study}");
    }

    // Each refusal is in the audit log, for the institution refused, without the UIDs.
    let (status, audit) = app
        .get(
            "/api/v1/audit?outcome=denied&object_kind=dicom_instance",
            &app.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries = audit.as_array().unwrap();
    let mut refused: Vec<i64> = entries
        .iter()
        .map(|e| e["institution_id"].as_i64().unwrap())
        .collect();
    refused.sort_unstable();
    let mut expected = vec![county, county, other];
    expected.sort_unstable();
    assert_eq!(refused, expected, "{audit}");
    for entry in entries {
        assert!(!entry.to_string().contains("2.25.24"), "{entry}");
    }
    app.stop().await;
}

/// How long `stream` stays open, reading (and dropping) whatever comes, up to `most`.
async fn open_for(stream: &mut tokio::net::TcpStream, most: Duration) -> Duration {
    use tokio::io::AsyncReadExt as _;
    let start = Instant::now();
    let mut buf = [0_u8; 4096];
    while start.elapsed() < most {
        let read = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
        // Closed, or reset; bytes or nothing yet: still open.
        if let Ok(Ok(0) | Err(_)) = read {
            break;
        }
    }
    start.elapsed()
}

/// Slow and silent peers are let go within the configured times (2 s here): an HTTP
/// request whose head never ends (a header line every half second), a kept-alive HTTP
/// connection with no next request, a body that stops arriving, a DICOM connection that
/// never completes its association request, and command fragments without end. The
/// database plays no part: SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_peers_are_let_go_within_the_configured_times() {
    use tokio::io::AsyncWriteExt as _;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.http.request_head_timeout_seconds = 2;
        c.http.body_timeout_seconds = 2;
        c.imaging.timeout_seconds = 2;
    })
    .await;
    let http = app.base.trim_start_matches("http://").to_owned();
    let bound = Duration::from_secs(8);

    // A head that never ends, one header line every half second.
    let mut slow = tokio::net::TcpStream::connect(&http).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let mut closed = false;
    while start.elapsed() < bound {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
            closed = true;
            break;
        }
        if open_for(&mut slow, Duration::from_millis(1)).await < Duration::from_millis(1) {
            closed = true;
            break;
        }
    }
    assert!(closed, "a request head that never ends is cut off");
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );

    // A kept-alive connection that sends nothing after its first request.
    let mut idle = tokio::net::TcpStream::connect(&http).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let held = open_for(&mut idle, bound).await;
    assert!(held < bound, "an idle kept-alive connection is closed");
    assert!(held >= Duration::from_millis(1500), "{held:?}");

    // A body that stops: the request fails instead of waiting for ever.
    let mut body = tokio::net::TcpStream::connect(&http).await.unwrap();
    body.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user",
    )
    .await
    .unwrap();
    let held = open_for(&mut body, bound).await;
    assert!(held < bound, "a body that stops arriving ends its request");

    // DICOM: a connection that never sends its association request, and one that sends
    // half of it, are closed by the ARTIM timer.
    let dicom = app.dicom.expect("DICOM listens");
    let mut silent = tokio::net::TcpStream::connect(dicom).await.unwrap();
    let held = open_for(&mut silent, bound).await;
    assert!(
        held < bound && held >= Duration::from_millis(1500),
        "{held:?}"
    );
    let mut half = tokio::net::TcpStream::connect(dicom).await.unwrap();
    half.write_all(&[0x01, 0x00, 0x00, 0x00, 0x01, 0x00])
        .await
        .unwrap();
    let held = open_for(&mut half, bound).await;
    assert!(held < bound, "{held:?}");

    // Command fragments without a last one: the association is aborted once they pass
    // the bound on a command set, and the relay goes on.
    register(&app, "台山市人民医院", "TAISHAN_CT").await;
    let mut scu = RawScu::connect(dicom, "TAISHAN_CT", "DUIKOU", CT, EXPLICIT_LE).await;
    let fragment = vec![0_u8; 8 * 1024];
    for _ in 0..(duikou_imaging::scp::MAX_COMMAND_BYTES / fragment.len() + 2) {
        let mut pdu = vec![0x04, 0x00];
        pdu.extend_from_slice(&(fragment.len() as u32 + 6).to_be_bytes());
        pdu.extend_from_slice(&(fragment.len() as u32 + 2).to_be_bytes());
        pdu.extend_from_slice(&[1, 0x01]);
        pdu.extend_from_slice(&fragment);
        scu.write_raw(&pdu).await;
    }
    assert!(
        matches!(scu.outcome().await, Outcome::Aborted | Outcome::Closed(_)),
        "the relay gives up on it"
    );
    let mut scu = RawScu::connect(dicom, "TAISHAN_CT", "DUIKOU", CT, EXPLICIT_LE).await;
    let plain = nested_ct("2.25.2431", "2.25.2430", &levels(1), true);
    assert_eq!(
        scu.store(CT, "2.25.2431", &plain).await,
        Outcome::Status(0x0000)
    );
    scu.release().await;
    app.stop().await;
}

/// Webhooks and DICOM destinations on loopback, link-local, metadata and unspecified
/// addresses, and names resolving to loopback, are refused by default with a problem
/// naming the field; a private address is taken, and loopback is taken where the policy
/// allows it. A destination written around the API (as when a name's address changes)
/// still gets no connection, and a coordinator sees the kind of error, not the address.
async fn outbound_calls_go_only_where_the_policy_allows(backend: Backend) {
    use duikou_tests::dcmtk::Storescp;
    let app = TestApp::spawn_with(backend, |c| c.outbound.allow.clear()).await;
    let destination = Storescp::start("JMZX_PACS");
    let (county, tertiary) = crate::forwarding::county_sends_for_reading(&app).await;
    let (_, coordinator) = app.user("jm.office", tertiary, &["coordinator"]).await;
    let put = |path: String, token: String, body: Value| {
        let app = &app;
        async move {
            app.call(reqwest::Method::PUT, &path, Some(&token), Some(body))
                .await
        }
    };
    let destination_path = format!("/api/v1/institutions/{tertiary}/imaging-destination");
    for host in [
        "127.0.0.1",
        "localhost",
        "::1",
        "169.254.169.254",
        "100.100.100.200",
        "0.0.0.0",
        "fe80::1",
    ] {
        let (status, problem) = put(
            destination_path.clone(),
            coordinator.clone(),
            json!({"ae_title": "JMZX_PACS", "host": host, "port": destination.addr.port()}),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{host}: {problem}"
        );
        assert_eq!(problem["field"], "host", "{problem}");
    }
    let (status, d) = put(
        destination_path.clone(),
        coordinator.clone(),
        json!({"ae_title": "JMZX_PACS", "host": "10.20.30.40", "port": 104}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a private address is taken: {d}");
    let webhook_path = format!("/api/v1/institutions/{tertiary}/webhook");
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://localhost:9/hook",
        "http://100.100.100.200/latest/meta-data/",
    ] {
        let (status, problem) = put(
            webhook_path.clone(),
            coordinator.clone(),
            json!({"url": url, "secret": "a shared secret of the hospital"}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {problem}");
        assert_eq!(problem["field"], "url", "{problem}");
    }

    // Written around the API: the relay resolves the name at every association and does
    // not connect; the instance stays queued with the policy's error.
    let update = "update imaging_destination set host = 'localhost', port = $1
        where institution_id = $2";
    let port = i32::from(destination.addr.port());
    duikou_tests::on_db!(app.db, |conn| sqlx::query(update)
        .bind(port)
        .bind(tertiary)
        .execute(&mut conn)
        .await
        .map(|_| ())
        .unwrap());
    let mut scu =
        RawScu::connect(app.dicom.unwrap(), "TAISHAN_CT", "DUIKOU", CT, EXPLICIT_LE).await;
    assert_eq!(
        scu.store(
            CT,
            "2.25.2441",
            &nested_ct("2.25.2441", "2.25.2440", &levels(1), true)
        )
        .await,
        Outcome::Status(0x0000)
    );
    scu.release().await;
    let forward = eventually(Duration::from_secs(30), "an attempt", async || {
        let (_, list) = app.get("/api/v1/forwards", &app.admin_token).await;
        if list[0]["last_error"].is_string() {
            Ok(list[0].clone())
        } else {
            Err(list)
        }
    })
    .await;
    let error = forward["last_error"].as_str().unwrap();
    assert!(error.contains("outbound policy"), "{forward}");
    assert!(destination.received("2.25.2441").is_none());
    // The coordinator sees what kind of failure it is, not the address.
    let (status, list) = app.get("/api/v1/forwards", &coordinator).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let shown = list[0]["last_error"].as_str().unwrap();
    assert!(
        shown.contains("outbound policy")
            && !shown.contains("127.0.0.1")
            && !shown.contains("localhost"),
        "{shown}"
    );
    let _ = county;
    app.stop().await;

    // Where the policy allows loopback (as the tests' configuration does), it is taken.
    let app = TestApp::spawn(backend).await;
    let tertiary = app.institution_id("江门市中心医院").await;
    let (status, d) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/institutions/{tertiary}/imaging-destination"),
            Some(&app.admin_token),
            Some(json!({"ae_title": "JMZX_PACS", "host": "localhost", "port": 104})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let (status, d) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/institutions/{tertiary}/webhook"),
            Some(&app.admin_token),
            Some(json!({"url": "http://127.0.0.1:9/hook", "secret": "a shared secret of the hospital"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{d}");
    app.stop().await;
}

/// STOW-RS requests are bounded (2 parts and 200,000 bytes here): the part beyond the
/// count fails and is not kept; a request whose stated length is over is refused with
/// 413 before anything is kept; one without a stated length is cut off at the limit, and
/// nothing of the part it cut is kept.
async fn an_oversized_stow_is_refused_and_keeps_nothing_of_what_is_over(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.imaging.stow_max_parts = 2;
        c.imaging.stow_max_request_bytes = 200_000;
    })
    .await;
    let county = app.institution_id("台山市人民医院").await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    let part = |sop: &str| {
        part10(
            &nested_ct(sop, "2.25.2450", &levels(1), true),
            sop,
            EXPLICIT_LE,
        )
    };
    let parts = [part("2.25.2451"), part("2.25.2452"), part("2.25.2453")];
    let (status, answer) = stow(&app, &doctor, &parts).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(failures(&answer), [0xA700], "{answer}");
    assert_eq!(found(&app, &doctor).await, ["2.25.2451", "2.25.2452"]);
    let spool = app.db.dir.path().join("dicom");
    let records = duikou_tests::spool_records(&spool);

    // Over the length: a stated one is refused before anything is read or kept …
    let mut padded = part("2.25.2454");
    padded.extend(std::iter::repeat_n(0_u8, 250_000));
    let (status, problem) = stow(&app, &doctor, std::slice::from_ref(&padded)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert_eq!(problem["field"], "body", "{problem}");
    // … and one of no stated length is cut off where it passes the limit.
    let mut body = format!(
        "--{b}\r\nContent-Type: application/dicom\r\n\r\n",
        b = "duikou-test-boundary"
    )
    .into_bytes();
    body.extend_from_slice(&padded);
    body.extend_from_slice(b"\r\n--duikou-test-boundary--\r\n");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    let response = app
        .client
        .post(format!("{}/dicomweb/studies", app.base))
        .bearer_auth(&doctor)
        .header(
            "content-type",
            "multipart/related; type=\"application/dicom\"; boundary=duikou-test-boundary",
        )
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    let (status, answer) = duikou_tests::read(response).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(failures(&answer), [0xA700], "{answer}");
    assert_eq!(found(&app, &doctor).await, ["2.25.2451", "2.25.2452"]);
    assert_eq!(
        duikou_tests::spool_records(&spool),
        records,
        "nothing of it in the spool"
    );
    app.stop().await;

    // A part whose headers never end is refused once 1 MiB has arrived unparsed (the
    // parser would otherwise hold it all, up to the request's limit).
    let app = TestApp::spawn(backend).await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A length the request may have (under 4 GiB), of which 8 MiB are sent: without the
    // bound the gateway would wait for the rest, holding what came.
    let length: u64 = 3 << 30;
    let head = format!(
        "POST /dicomweb/studies HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {doctor}\r\n\
         Content-Type: multipart/related; type=\"application/dicom\"; boundary=b\r\n\
         Content-Length: {length}\r\n\r\n--b\r\nX-Endless: "
    );
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    socket.write_all(head.as_bytes()).await.unwrap();
    let filler = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    while sent < 8 << 20 {
        if socket.write_all(&filler).await.is_err() {
            break;
        }
        sent += filler.len();
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert!(found(&app, &doctor).await.is_empty());
    app.stop().await;
}

/// WADO-RS of a whole study of 8 instances of 16 MiB (128 MiB in all) is streamed
/// instance by instance: the process grows by less than 48 MiB while the client reads it
/// (building it in memory took the study's size twice over), and every byte arrives.
async fn a_whole_study_is_retrieved_in_bounded_memory(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let county = app.institution_id("台山市人民医院").await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    let mut sizes = 0;
    for n in 0..8 {
        let sop = format!("2.25.246{n}");
        let file = duikou_imaging::testing::ct(&sop, 2896, 2896);
        sizes += file.len();
        let (status, answer) = stow(&app, &doctor, &[file]).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    const MIB: u64 = 1 << 20;
    let rest = duikou_tests::resident_bytes();
    let retrieval = async {
        let mut response = app
            .client
            .get(format!("{}/dicomweb/studies/2.25.1", app.base))
            .bearer_auth(&doctor)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut received = 0;
        while let Some(chunk) = response.chunk().await.unwrap() {
            received += chunk.len();
            // A slow reader: the gateway must wait for it, not buffer ahead.
            if received % (32 << 20) < chunk.len() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        received
    };
    let (received, peak) = duikou_tests::peak_resident_while(retrieval).await;
    println!(
        "resident: {} MiB at rest, {} MiB at the peak of a {} MiB retrieval",
        rest / MIB,
        peak / MIB,
        sizes as u64 / MIB
    );
    assert!(
        received > sizes,
        "every instance and the boundaries: {received} of {sizes}"
    );
    assert!(
        peak < rest + 48 * MIB,
        "{} MiB over rest",
        (peak - rest) / MIB
    );
    app.stop().await;
}
