//! The DICOM relay against DCMTK: association control by registered AE title and host,
//! and C-STORE of the pydicom sample files in every transfer syntax, stored byte for byte,
//! synced and indexed once.

use std::path::PathBuf;
use std::time::Duration;

use duikou_tests::dcmtk::{self, Storescp, data_set, pydicom_files};
use duikou_tests::duikou::store::{ForwardTarget, Indexing, NewForward, Store, StoreError};
use duikou_tests::scu::{CT, EXPLICIT_LE, Outcome, RawScu};
use duikou_tests::{Backend, TestApp, eventually, on_both_backends};
use reqwest::StatusCode;
use serde_json::json;

use crate::imaging_setup::node;

on_both_backends!(
    only_registered_callers_from_their_hosts_are_associated,
    stored_instances_are_kept_byte_for_byte_and_indexed_once,
    the_storage_classes_in_common_use_are_accepted,
    bad_input_gets_the_proper_status_or_an_abort_and_leaves_nothing,
    dicom_over_tls_works_with_a_test_certificate,
    large_instances_are_read_while_they_arrive_and_still_checked_whole,
    the_spool_prepares_room_while_quiet_and_instances_fill_it_without_growing_it,
    an_index_that_fails_half_way_leaves_nothing_and_the_next_is_written,
);

/// One instance of each storage SOP class in common use that the sample files lack (CR,
/// DX, MG, US, NM, PT, XA, RF, encapsulated PDF), made from a CT sample relabelled by
/// DCMTK's `dcmodify`, sent by `storescu` (which proposes each file's class): each is
/// stored and indexed under its class. (The relay checks no IOD, only that the data set
/// is the instance the command names.)
async fn the_storage_classes_in_common_use_are_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let addr = app.dicom.expect("DICOM listens");
    register(&app, "TAISHAN_CT", "*").await;
    let classes = [
        ("CR", "1.2.840.10008.5.1.4.1.1.1"),
        ("DX", "1.2.840.10008.5.1.4.1.1.1.1"),
        ("MG", "1.2.840.10008.5.1.4.1.1.1.2"),
        ("US", "1.2.840.10008.5.1.4.1.1.6.1"),
        ("NM", "1.2.840.10008.5.1.4.1.1.20"),
        ("PT", "1.2.840.10008.5.1.4.1.1.128"),
        ("XA", "1.2.840.10008.5.1.4.1.1.12.1"),
        ("RF", "1.2.840.10008.5.1.4.1.1.12.2"),
        ("PDF", "1.2.840.10008.5.1.4.1.1.104.1"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (n, (name, class)) in classes.iter().enumerate() {
        let file = dir.path().join(format!("{name}.dcm"));
        std::fs::copy(pydicom_files().join("CT_small.dcm"), &file).unwrap();
        let modified = std::process::Command::new("dcmodify")
            .args(["-nb", "-m"])
            .arg(format!("(0008,0016)={class}"))
            .arg("-m")
            .arg(format!("(0008,0018)=2.25.7700{n}"))
            .arg(&file)
            .output()
            .expect("DCMTK's dcmodify (tests/run installs DCMTK)");
        assert!(
            modified.status.success(),
            "{}",
            String::from_utf8_lossy(&modified.stderr)
        );
        let (ts, uid) = dcmtk::describe(&file);
        assert_eq!(uid, format!("2.25.7700{n}"));
        let sent = dcmtk::store(
            addr,
            "TAISHAN_CT",
            "DUIKOU",
            &ts,
            std::slice::from_ref(&file),
        );
        assert!(
            sent.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&sent.stderr)
        );
    }
    let query = "select sop_instance_uid, sop_class_uid from dicom_instance order by id";
    let kept: Vec<(String, String)> = duikou_tests::on_db!(app.db, |conn| sqlx::query_as(query)
        .fetch_all(&mut conn)
        .await
        .unwrap());
    let want: Vec<(String, String)> = classes
        .iter()
        .enumerate()
        .map(|(n, (_, class))| (format!("2.25.7700{n}"), (*class).to_owned()))
        .collect();
    assert_eq!(kept, want);
    app.stop().await;
}

/// Registers `ae` from `host` for 台山市人民医院; returns the institution's id.
async fn register(app: &TestApp, ae: &str, host: &str) -> i64 {
    let county = app.institution_id("台山市人民医院").await;
    node(app, county, ae, host).await;
    county
}

async fn only_registered_callers_from_their_hosts_are_associated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let addr = app.dicom.expect("DICOM listens");
    let county = register(&app, "TAISHAN_CT", "127.0.0.1").await;
    register(&app, "FAR_AWAY", "10.20.30.40").await;

    let ok = dcmtk::echo(addr, "TAISHAN_CT", "DUIKOU");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    for (calling, called, reason) in [
        ("STRANGER", "DUIKOU", "Calling AE Title Not Recognized"),
        ("FAR_AWAY", "DUIKOU", "Calling AE Title Not Recognized"),
        ("TAISHAN_CT", "SOMEONE", "Called AE Title Not Recognized"),
    ] {
        let refused = dcmtk::echo(addr, calling, called);
        let said = String::from_utf8_lossy(&refused.stderr).to_string()
            + &String::from_utf8_lossy(&refused.stdout);
        assert!(!refused.status.success(), "{calling} → {called}: {said}");
        assert!(said.contains(reason), "{calling} → {called}: {said}");
    }

    // Registration is checked: a bad AE title, a bad host, a taken title, a foreign coordinator.
    for (body, field) in [
        (json!({"ae_title": "", "host": "*"}), "ae_title"),
        (
            json!({"ae_title": "WAY_TOO_LONG_AE_TITLE", "host": "*"}),
            "ae_title",
        ),
        (json!({"ae_title": "OK_AE", "host": "ct.example"}), "host"),
    ] {
        let (status, problem) = app
            .post(
                &format!("/api/v1/institutions/{county}/dicom-nodes"),
                &app.admin_token,
                body,
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["field"], field);
    }
    let (status, _) = app
        .post(
            &format!("/api/v1/institutions/{county}/dicom-nodes"),
            &app.admin_token,
            json!({"ae_title": "TAISHAN_CT", "host": "*"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let other = app.institution_id("开平市中心医院").await;
    let (_, office) = app.user("kp.office", other, &["coordinator"]).await;
    let (status, _) = app
        .post(
            &format!("/api/v1/institutions/{county}/dicom-nodes"),
            &office,
            json!({"ae_title": "SNEAKY", "host": "*"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, nodes) = app
        .get(
            &format!("/api/v1/institutions/{county}/dicom-nodes"),
            &app.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(nodes.as_array().unwrap().len(), 2);
    app.stop().await;
}

/// One file per transfer syntax the relay must accept.
fn samples() -> Vec<PathBuf> {
    let dir = pydicom_files();
    [
        "CT_small.dcm",                  // explicit VR little endian
        "MR_small_implicit.dcm",         // implicit VR little endian
        "MR_small_bigendian.dcm",        // explicit VR big endian
        "image_dfl.dcm",                 // deflated explicit VR little endian
        "SC_rgb_jpeg_dcmtk.dcm",         // JPEG baseline
        "JPGExtended.dcm",               // JPEG extended
        "SC_rgb_jpeg_gdcm.dcm",          // JPEG lossless, first-order prediction
        "MR_small_jpeg_ls_lossless.dcm", // JPEG-LS lossless
        "MR_small_jp2klossless.dcm",     // JPEG 2000 lossless
        "JPEG2000.dcm",                  // JPEG 2000
        "MR_small_RLE.dcm",              // RLE lossless
        "test-SR.dcm",                   // a structured report
        "waveform_ecg.dcm",              // a waveform
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect()
}

async fn stored_instances_are_kept_byte_for_byte_and_indexed_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let addr = app.dicom.expect("DICOM listens");
    register(&app, "TAISHAN_CT", "*").await;
    let files = samples();
    // DCMTK's own storescp, bit-preserving, receives the same sends: it shows what was on
    // the wire.
    let reference = Storescp::start("REFERENCE");
    let spool = app.db.dir.path().join("dicom");
    let mut uids = std::collections::BTreeSet::new();
    for file in &files {
        let (ts, uid) = dcmtk::describe(file);
        for (to, called) in [(addr, "DUIKOU"), (reference.addr, "REFERENCE")] {
            let sent = dcmtk::store(to, "TAISHAN_CT", called, &ts, std::slice::from_ref(file));
            let said = String::from_utf8_lossy(&sent.stderr);
            assert!(
                sent.status.success(),
                "{} to {called}: {said}",
                file.display()
            );
        }
        let wire_path = reference.received(&uid).expect("storescp got it");
        let wire = std::fs::read(&wire_path).unwrap();
        std::fs::remove_file(&wire_path).unwrap();
        if !uids.insert(uid.clone()) {
            // Some samples share a SOP Instance UID: the relay keeps the first.
            continue;
        }
        let rows = instances(&app).await;
        let stored_ts = rows
            .iter()
            .find(|(u, _, _)| *u == uid)
            .map(|(_, _, t)| t.clone())
            .unwrap_or_else(|| panic!("{} is indexed", file.display()));
        let stored = duikou_tests::stored_bytes(&app.db, &spool, &uid).await;
        assert!(
            data_set(&stored) == data_set(&wire),
            "{} ({ts}) is stored byte for byte as sent",
            file.display()
        );
        let wire_ts = describe_bytes(&wire);
        assert_eq!(stored_ts, wire_ts, "kept in the transfer syntax it came in");
    }
    let rows = instances(&app).await;
    assert_eq!(rows.len(), uids.len());
    assert_eq!(
        duikou_tests::spool_records(&spool),
        rows.len(),
        "the spool holds each instance once (duplicates are not kept)"
    );

    // The same instances again: accepted, stored once.
    let again = dcmtk::store(
        addr,
        "TAISHAN_CT",
        "DUIKOU",
        "1.2.840.10008.1.2.1",
        &files[..1],
    );
    assert!(again.status.success());
    assert_eq!(instances(&app).await.len(), uids.len());

    // New instances sent on two associations at once: both senders succeed, and each
    // instance is stored once, whole.
    let dir = tempfile::tempdir().unwrap();
    let (twice, twice_uids) = dcmtk::ct_images(dir.path(), 30);
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let twice = twice.clone();
            std::thread::spawn(move || {
                dcmtk::store(addr, "TAISHAN_CT", "DUIKOU", "1.2.840.10008.1.2.1", &twice)
            })
        })
        .collect();
    for sender in senders {
        let sent = sender.join().unwrap();
        let said = String::from_utf8_lossy(&sent.stderr);
        assert!(sent.status.success(), "{said}");
    }
    let rows = instances(&app).await;
    assert_eq!(rows.len(), uids.len() + twice.len());
    let sent = dcmtk::store(
        reference.addr,
        "TAISHAN_CT",
        "REFERENCE",
        "1.2.840.10008.1.2.1",
        &twice,
    );
    assert!(sent.status.success());
    for uid in &twice_uids {
        assert!(rows.iter().any(|(u, _, _)| u == uid), "indexed");
        let stored = duikou_tests::stored_bytes(&app.db, &spool, uid).await;
        let wire = std::fs::read(reference.received(uid).expect("storescp got it")).unwrap();
        assert!(data_set(&stored) == data_set(&wire), "{uid} is whole");
    }
    assert_eq!(duikou_tests::spool_records(&spool), rows.len());
    app.stop().await;
}

/// Instances larger than 64 KiB have their attributes read while the pixel data still
/// arrives; the whole is still walked before the answer, and a mismatch or a cut found
/// only then gets its status.
async fn large_instances_are_read_while_they_arrive_and_still_checked_whole(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let addr = app.dicom.expect("DICOM listens");
    register(&app, "TAISHAN_CT", "*").await;
    let dir = tempfile::tempdir().unwrap();
    let (mut files, mut uids) = dcmtk::ct_images_of_side(dir.path(), 5, 512);
    assert!(std::fs::metadata(&files[0]).unwrap().len() > 500_000);
    // The fifth is only ever sent cut short.
    let (unsent, unsent_uid) = (files.pop().unwrap(), uids.pop().unwrap());
    let reference = store_here_and_at_a_reference(addr, &files);
    let spool = app.db.dir.path().join("dicom");
    stored_as_received(&app, &reference, &uids).await;
    let query = "select patient_name, series_instance_uid from dicom_instance
                 where sop_instance_uid = $1";
    let (name, series): (String, String) = duikou_tests::on_db!(app.db, |conn| {
        sqlx::query_as(query)
            .bind(&uids[0])
            .fetch_one(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(
        name, "CompressedSamples^CT1",
        "indexed from what arrived first"
    );
    assert!(!series.is_empty());

    // A data set of another instance than its command names, and one cut inside its
    // pixel data: both are found out although their start reads well.
    let whole = std::fs::read(&files[1]).unwrap();
    let data = data_set(&whole).to_vec();
    let mut scu = RawScu::connect(addr, "TAISHAN_CT", "DUIKOU", CT, EXPLICIT_LE).await;
    assert_eq!(
        scu.store(CT, "2.25.12345", &data).await,
        Outcome::Status(0xA900)
    );
    let cut = data_set(&std::fs::read(&unsent).unwrap()).to_vec();
    assert_eq!(
        scu.store(CT, &unsent_uid, &cut[..cut.len() - 1000]).await,
        Outcome::Status(0xC000)
    );
    scu.release().await;
    assert_eq!(instances(&app).await.len(), 4);
    assert_eq!(
        duikou_tests::spool_records(&spool),
        4,
        "nothing of the refused kept"
    );
    app.stop().await;
}

/// The spool's segment files and their lengths.
fn segments(spool: &std::path::Path) -> Vec<(PathBuf, u64)> {
    let mut all: Vec<(PathBuf, u64)> = std::fs::read_dir(spool.join("segments"))
        .unwrap()
        .flatten()
        .map(|e| (e.path(), e.metadata().unwrap().len()))
        .collect();
    all.sort();
    all
}

/// While nothing arrives, the relay fills a segment with zeros (its metrics say so); the
/// instances that come next go there, and the file does not grow. Once quiet again, the
/// room used is prepared anew.
async fn the_spool_prepares_room_while_quiet_and_instances_fill_it_without_growing_it(
    backend: Backend,
) {
    use duikou_imaging::spool::HEADER;
    use duikou_tests::SPOOL_SEGMENT_BYTES as SEGMENT;
    use duikou_tests::until_spool_prepared;
    let app = TestApp::spawn_with(backend, |c| c.imaging.spool_prepared_bytes = SEGMENT).await;
    let addr = app.dicom.expect("DICOM listens");
    register(&app, "TAISHAN_CT", "*").await;
    let spool = app.db.dir.path().join("dicom");
    until_spool_prepared(&app.base, SEGMENT).await;
    let prepared = segments(&spool);
    assert_eq!(prepared.len(), 1, "{prepared:?}");
    assert_eq!(
        prepared[0].1,
        HEADER + SEGMENT,
        "written to its full length"
    );

    let dir = tempfile::tempdir().unwrap();
    let (files, uids) = dcmtk::ct_images_of_side(dir.path(), 5, 512);
    let reference = store_here_and_at_a_reference(addr, &files);
    let records = duikou_imaging::spool::Spool::records(&spool).unwrap();
    assert_eq!(records.len(), 5);
    for record in &records {
        assert_eq!(record.path, prepared[0].0, "stored in the prepared segment");
    }
    assert_eq!(
        std::fs::metadata(&prepared[0].0).unwrap().len(),
        HEADER + SEGMENT,
        "which did not grow"
    );
    stored_as_received(&app, &reference, &uids).await;
    // About 2.6 MB of the 4 MiB are used: a second segment is prepared.
    until_spool_prepared(&app.base, SEGMENT).await;
    let now = segments(&spool);
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(
        now.iter().all(|(_, length)| *length == HEADER + SEGMENT),
        "{now:?}"
    );
    app.stop().await;
}

/// Sends `files` from TAISHAN_CT to the relay at `addr` and to a DCMTK `storescp`, which
/// is returned: what it received is what the relay should keep.
fn store_here_and_at_a_reference(addr: std::net::SocketAddr, files: &[PathBuf]) -> Storescp {
    let reference = Storescp::start("REFERENCE");
    for (to, called) in [(addr, "DUIKOU"), (reference.addr, "REFERENCE")] {
        let sent = dcmtk::store(to, "TAISHAN_CT", called, "1.2.840.10008.1.2.1", files);
        assert!(
            sent.status.success(),
            "{}",
            String::from_utf8_lossy(&sent.stderr)
        );
    }
    reference
}

/// Checks that the relay keeps each of `uids` as `reference` received it.
async fn stored_as_received(app: &TestApp, reference: &Storescp, uids: &[String]) {
    let spool = app.db.dir.path().join("dicom");
    for uid in uids {
        let stored = duikou_tests::stored_bytes(&app.db, &spool, uid).await;
        let wire = std::fs::read(reference.received(uid).expect("storescp got it")).unwrap();
        assert!(
            data_set(&stored) == data_set(&wire),
            "{uid} is stored whole"
        );
    }
}

/// (SOP Instance UID, path, transfer syntax) of every indexed instance.
async fn instances(app: &TestApp) -> Vec<(String, String, String)> {
    let query = "select sop_instance_uid, path, transfer_syntax from dicom_instance order by id";
    duikou_tests::on_db!(app.db, |conn| sqlx::query_as(query)
        .fetch_all(&mut conn)
        .await
        .unwrap())
}

/// The transfer syntax in a DICOM file's meta group.
fn describe_bytes(bytes: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    dcmtk::describe(file.path()).0
}

/// Nothing of a refused instance is kept: not in the index, not as a record in the
/// spool (what was written of it is written over by the next instance).
async fn nothing_kept(app: &TestApp) {
    let spool = app.db.dir.path().join("dicom");
    eventually(
        Duration::from_secs(10),
        "the spool holds no record",
        async || match duikou_tests::spool_records(&spool) {
            0 => Ok(()),
            n => Err(format!("{n} in {}", spool.display())),
        },
    )
    .await;
    assert!(instances(app).await.is_empty());
}

async fn bad_input_gets_the_proper_status_or_an_abort_and_leaves_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.imaging.max_instance_bytes = 30_000).await;
    let addr = app.dicom.expect("DICOM listens");
    register(&app, "TAISHAN_CT", "*").await;
    let ct = std::fs::read(pydicom_files().join("CT_small.dcm")).unwrap();
    let (_, uid) = dcmtk::describe(&pydicom_files().join("CT_small.dcm"));
    let data = data_set(&ct).to_vec();
    assert!(data.len() > 30_000);
    let small = std::fs::read(pydicom_files().join("rtplan.dcm")).unwrap();
    let (_, small_uid) = dcmtk::describe(&pydicom_files().join("rtplan.dcm"));
    let rtplan = "1.2.840.10008.5.1.4.1.1.481.5";
    let implicit = "1.2.840.10008.1.2";
    let small_data = data_set(&small).to_vec();

    // Larger than the configured limit: out of resources.
    let mut scu = RawScu::connect(addr, "TAISHAN_CT", "DUIKOU", CT, EXPLICIT_LE).await;
    assert_eq!(scu.store(CT, &uid, &data).await, Outcome::Status(0xA700));
    // On the same association: a truncated data set cannot be understood …
    let mut plan = RawScu::connect(addr, "TAISHAN_CT", "DUIKOU", rtplan, implicit).await;
    let cut = &small_data[..small_data.len() * 2 / 3];
    assert_eq!(
        plan.store(rtplan, &small_uid, cut).await,
        Outcome::Status(0xC000)
    );
    // … nor can garbage …
    let garbage: Vec<u8> = (0..4000_u32).map(|i| (i * 7919 % 251) as u8).collect();
    assert_eq!(
        plan.store(rtplan, &small_uid, &garbage).await,
        Outcome::Status(0xC000)
    );
    // … and a data set whose SOP Instance UID is not the command's does not match.
    assert_eq!(
        plan.store(rtplan, "1.2.826.0.1.3680043.8.498.1", &small_data)
            .await,
        Outcome::Status(0xA900)
    );
    nothing_kept(&app).await;
    // The association is still good: the real thing is stored.
    assert_eq!(
        plan.store(rtplan, &small_uid, &small_data).await,
        Outcome::Status(0x0000)
    );
    plan.release().await;
    assert_eq!(instances(&app).await.len(), 1);

    // An association aborted half-way through an instance leaves nothing of it.
    let app = {
        app.stop().await;
        TestApp::spawn(backend).await
    };
    let addr = app.dicom.expect("DICOM listens");
    register(&app, "TAISHAN_CT", "*").await;
    let mut scu = RawScu::connect(addr, "TAISHAN_CT", "DUIKOU", CT, EXPLICIT_LE).await;
    scu.send_store(CT, &uid, &data, false).await;
    scu.abort().await;
    nothing_kept(&app).await;

    // A PDU larger than the relay accepts: the relay aborts.
    let mut scu = RawScu::connect(addr, "TAISHAN_CT", "DUIKOU", CT, EXPLICIT_LE).await;
    let mut huge = vec![0x04, 0x00];
    huge.extend_from_slice(&(1_000_000_u32).to_be_bytes());
    huge.extend(std::iter::repeat_n(0_u8, 1_000_000));
    scu.write_raw(&huge).await;
    assert!(
        matches!(scu.outcome().await, Outcome::Aborted | Outcome::Closed(_)),
        "the relay gives up on it"
    );
    nothing_kept(&app).await;
    drop(scu);
    app.stop().await;
}

async fn dicom_over_tls_works_with_a_test_certificate(backend: Backend) {
    use duikou_tests::certs::{TestPki, arg};
    let pki = TestPki::new();
    let destination_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    // The tertiary hospital's PACS speaks TLS too: DCMTK's storescp with the test
    // certificate, not asking the relay for one.
    let dest_dir = tempfile::tempdir().unwrap();
    let mut destination = std::process::Command::new("storescp")
        .args([
            "+tls",
            &arg(&pki.path("server.key")),
            &arg(&pki.path("server.pem")),
        ])
        .args(["-pw", "-ic", "+B", "+xa", "-aet", "JMZX_PACS", "-od"])
        .arg(dest_dir.path())
        .arg(destination_port.to_string())
        .env("TCP_NODELAY", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    );
    let app = TestApp::spawn_with(backend, |c| {
        c.imaging.tls_listen = Some("127.0.0.1:0".parse().unwrap());
        c.imaging.tls_cert = Some(cert);
        c.imaging.tls_key = Some(key);
        c.imaging.tls_trust = Some(ca);
    })
    .await;
    let tls = app.dicom_tls.expect("the TLS port listens");
    let county = register(&app, "TAISHAN_CT", "127.0.0.1").await;
    let tertiary = app.institution_id("江门市中心医院").await;
    crate::requests::pair(&app, tertiary, county, json!(["imaging_read"])).await;
    let (status, d) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/institutions/{tertiary}/imaging-destination"),
            Some(&app.admin_token),
            Some(json!({"ae_title": "JMZX_PACS", "host": "127.0.0.1", "port": destination_port, "tls": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");

    let ca = arg(&pki.path("ca.pem"));
    let port = tls.port().to_string();
    let echo = dcmtk::run(
        "echoscu",
        &[
            "+tla",
            "+cf",
            &ca,
            "-aet",
            "TAISHAN_CT",
            "-aec",
            "DUIKOU",
            "127.0.0.1",
            &port,
        ],
    );
    assert!(
        echo.status.success(),
        "{}",
        String::from_utf8_lossy(&echo.stderr)
    );
    let plain = dcmtk::echo(tls, "TAISHAN_CT", "DUIKOU");
    assert!(!plain.status.success(), "the TLS port speaks only TLS");

    let file = pydicom_files().join("CT_small.dcm");
    let (_, uid) = dcmtk::describe(&file);
    let stored = dcmtk::run(
        "storescu",
        &[
            "+tla",
            "+cf",
            &ca,
            "-aet",
            "TAISHAN_CT",
            "-aec",
            "DUIKOU",
            "127.0.0.1",
            &port,
            &arg(&file),
        ],
    );
    assert!(
        stored.status.success(),
        "{}",
        String::from_utf8_lossy(&stored.stderr)
    );
    assert_eq!(instances(&app).await.len(), 1);

    // And on to the destination over TLS.
    eventually(Duration::from_secs(30), "delivered over TLS", async || {
        let (_, list) = app.get("/api/v1/forwards", &app.admin_token).await;
        if list[0]["state"] == "delivered" {
            Ok(())
        } else {
            Err(list)
        }
    })
    .await;
    let arrived = std::fs::read_dir(dest_dir.path())
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(&uid));
    assert!(arrived, "the destination has it");
    let _ = destination.kill();
    let _ = destination.wait();
    app.stop().await;

    // Mutual TLS: with a client CA configured, only callers with a certificate get in.
    let (cert, key, ca_file) = (
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    );
    let app = TestApp::spawn_with(backend, |c| {
        c.imaging.tls_listen = Some("127.0.0.1:0".parse().unwrap());
        c.imaging.tls_cert = Some(cert);
        c.imaging.tls_key = Some(key);
        c.imaging.tls_client_ca = Some(ca_file);
    })
    .await;
    let port = app.dicom_tls.unwrap().port().to_string();
    register(&app, "TAISHAN_CT", "127.0.0.1").await;
    let anonymous = dcmtk::run(
        "echoscu",
        &[
            "+tla",
            "+cf",
            &ca,
            "-aet",
            "TAISHAN_CT",
            "-aec",
            "DUIKOU",
            "127.0.0.1",
            &port,
        ],
    );
    assert!(
        !anonymous.status.success(),
        "no client certificate, no association"
    );
    let (client_key, client_cert) = (arg(&pki.path("client.key")), arg(&pki.path("client.pem")));
    let authenticated = dcmtk::run(
        "echoscu",
        &[
            "+tls",
            &client_key,
            &client_cert,
            "-pw",
            "+cf",
            &ca,
            "-aet",
            "TAISHAN_CT",
            "-aec",
            "DUIKOU",
            "127.0.0.1",
            &port,
        ],
    );
    assert!(
        authenticated.status.success(),
        "{}",
        String::from_utf8_lossy(&authenticated.stderr)
    );
    app.stop().await;
}

/// An instance's index rows and its forward are written together or not at all (in one
/// command to the database, see `store/sql/imaging.rs`): a forward that
/// cannot be written (its destination institution is not there) takes the instance's
/// row with it, and so does a data set found unsound; the database stays writable (the
/// one connection SQLite's index has is not left inside a transaction), and the same
/// instance is then indexed as new, and a third time as a duplicate.
async fn an_index_that_fails_half_way_leaves_nothing_and_the_next_is_written(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let county = app.institution_id("台山市人民医院").await;
    let tertiary = app.institution_id("江门市中心医院").await;
    let store = Store::connect(&app.db.url, 2).await.unwrap();
    let record = duikou_imaging::scp::InstanceRecord {
        sop_instance_uid: "2.25.990001".into(),
        sop_class_uid: CT.into(),
        study_instance_uid: "2.25.990002".into(),
        series_instance_uid: "2.25.990003".into(),
        modality: "CT".into(),
        transfer_syntax: EXPLICIT_LE.into(),
        size: 1024,
        path: "segments/000000000001".into(),
        offset: 64,
        calling_ae: "TAISHAN_CT".into(),
        institution_id: county,
        ..Default::default()
    };
    let forward = |institution_id| NewForward {
        target: ForwardTarget {
            institution_id: Some(institution_id),
            ae_title: "JMZX_PACS".into(),
            host: "127.0.0.1".into(),
            port: 11113,
            tls: false,
        },
        error: None,
    };
    let index = |forward: NewForward, sound: bool| {
        let (store, record) = (&store, record.clone());
        async move {
            store
                .index_instance(async { Some(record) }, &forward, None, async move { sound })
                .await
        }
    };
    let before = app.db.snapshot().await.unwrap();
    let nowhere = index(forward(999_999), true).await;
    assert!(
        matches!(nowhere, Err(StoreError::Db(_))),
        "a forward to no institution fails: {nowhere:?}"
    );
    assert_eq!(app.db.snapshot().await.unwrap(), before, "nothing is left");
    let unsound = index(forward(tertiary), false).await;
    assert!(
        matches!(unsound, Err(StoreError::Abandoned(_))),
        "{unsound:?}"
    );
    assert_eq!(app.db.snapshot().await.unwrap(), before, "nothing is left");
    let indexed = index(forward(tertiary), true).await.unwrap();
    assert!(matches!(indexed, Some(Indexing::New { .. })), "{indexed:?}");
    let after = app.db.snapshot().await.unwrap();
    let count = |snapshot: &[(String, i64)], table: &str| {
        snapshot
            .iter()
            .find(|(t, _)| t == table)
            .map_or(0, |(_, n)| *n)
    };
    for table in ["dicom_instance", "forward_job"] {
        assert_eq!(count(&after, table), count(&before, table) + 1, "{table}");
    }
    let again = index(forward(tertiary), true).await.unwrap();
    assert_eq!(again, Some(Indexing::Duplicate));
    assert_eq!(
        app.db.snapshot().await.unwrap(),
        after,
        "a duplicate adds nothing"
    );
    store.close().await;
    app.stop().await;
}

/// `duikou-bench dicom` on a small series: it times (a) DCMTK to
/// DCMTK, (b) DCMTK to the relay and (c) DCMTK through the relay to a DCMTK destination
/// (it fails unless the destination gets every instance), and prints each round with its
/// ratio to its (a), the stolen CPU, and the median ratios beside the targets. A run of the
/// command, not a measurement: no figure is checked against a target here.
#[test]
fn bench_dicom_times_a_b_and_c_and_prints_each_ratio_to_a() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(duikou_tests::bench_binary())
        .args(["dicom", "--images", "5", "--rounds", "2"])
        .current_dir(dir.path())
        .env("TCP_NODELAY", "1")
        .env_remove("DUIKOU_DATABASE_URL")
        // Room prepared as by default, but little of it.
        .env("DUIKOU_IMAGING_SPOOL_PREPARED_BYTES", "8388608")
        .env("DUIKOU_IMAGING_SPOOL_SEGMENT_BYTES", "4194304")
        .output()
        .expect("duikou-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("5 images,"), "{stdout}");
    assert!(stdout.contains("stolen s"), "{stdout}");
    // Each row: seconds, then (for (b) and (c)) the ratio, then CPU and stolen seconds.
    let numbers = |line: &str| -> Vec<f64> {
        line.rsplit_once("round")
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .skip(1)
            .map(|n| n.parse().expect("a number"))
            .collect()
    };
    for (side, count, fields) in [("(a) ", 4, 3), ("(b) ", 2, 4), ("(c) ", 2, 4)] {
        let rows: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with(side) && l.contains("round"))
            .collect();
        assert_eq!(rows.len(), count, "{side}rows: {stdout}");
        for row in rows {
            let n = numbers(row);
            assert_eq!(n.len(), fields, "{row}");
            assert!(n[0] > 0.0, "a wall time: {row}");
            if fields == 4 {
                assert!(n[1] > 0.0 && n[1].is_finite(), "a ratio: {row}");
            }
        }
    }
    let medians = stdout
        .lines()
        .find_map(|l| l.strip_prefix("median ratios: "))
        .unwrap_or_else(|| panic!("the median ratios: {stdout}"));
    assert!(
        medians.starts_with("(b) ") && medians.contains(", (c) "),
        "{medians}"
    );
    assert!(
        stdout.contains("targets: (b) ≤ 1.2 × (a), (c) ≤ 1.5 × (a)"),
        "{stdout}"
    );
}
