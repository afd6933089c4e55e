//! Forwarding to the paired hospital: every instance goes on to the DICOM destination of
//! the sending institution's designated imaging supporter, byte for byte; an unreachable
//! destination is retried with the attempts visible; a relay killed with SIGKILL delivers
//! everything after its restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use duikou_tests::dcmtk::{self, Storescp, data_set, free_port, pydicom_files};
use duikou_tests::process::Served;
use duikou_tests::{Backend, TestApp, eventually, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::imaging_setup::node;
use crate::requests::pair;

on_both_backends!(
    instances_reach_the_supporters_destination_byte_for_byte,
    a_study_is_forwarded_while_it_still_arrives,
    an_unreachable_destination_is_retried_until_it_answers,
    a_destination_that_refuses_the_relay_is_retried_until_it_accepts,
    forwarding_survives_a_kill_9_of_the_relay,
    what_a_machine_crash_takes_from_the_index_is_found_again_in_the_spool,
    what_a_machine_crash_takes_from_the_spool_is_taken_from_the_index,
    a_destination_that_takes_no_transfer_syntax_of_an_instance_gets_a_clear_error,
    new_instances_beyond_the_handoff_wait_in_the_queue_and_are_claimed_from_it,
);

/// Taishan People's Hospital paired with Jiangmen Central Hospital for imaging reads, its
/// CT registered as the calling AE title `TAISHAN_CT` from any host. Returns (county,
/// tertiary).
pub(crate) async fn county_sends_for_reading(app: &TestApp) -> (i64, i64) {
    let county = app.institution_id("台山市人民医院").await;
    let tertiary = app.institution_id("江门市中心医院").await;
    pair(app, tertiary, county, json!(["imaging_read"])).await;
    node(app, county, "TAISHAN_CT", "*").await;
    (county, tertiary)
}

/// 台山市人民医院 sends as `TAISHAN_CT`; 江门市中心医院 reads its images and receives them
/// at `destination`. Returns (county, tertiary).
pub(crate) async fn wire(app: &TestApp, destination: SocketAddr) -> (i64, i64) {
    let (county, tertiary) = county_sends_for_reading(app).await;
    let (status, d) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/institutions/{tertiary}/imaging-destination"),
            Some(&app.admin_token),
            Some(json!({"ae_title": "JMZX_PACS", "host": "127.0.0.1", "port": destination.port()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    (county, tertiary)
}

async fn forwards(app: &TestApp) -> Vec<Value> {
    let (status, list) = app
        .get("/api/v1/forwards?limit=1000", &app.admin_token)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

/// Waits until `n` forwards have been tried twice or more and wait for another try, each
/// with a last error that says `why`.
async fn retried(app: &TestApp, n: usize, why: &str) {
    let list = eventually(Duration::from_secs(30), "retries", async || {
        let list = forwards(app).await;
        if list.len() == n && list.iter().all(|f| f["attempts"].as_i64().unwrap() >= 2) {
            Ok(list)
        } else {
            Err(format!("{list:#?}"))
        }
    })
    .await;
    for f in &list {
        assert_eq!(f["state"], "pending", "{f}");
        assert!(f["last_error"].as_str().unwrap().contains(why), "{f}");
    }
}

/// Waits until `n` forwards are delivered; returns them.
pub(crate) async fn all_delivered(app: &TestApp, n: usize, patience: Duration) -> Vec<Value> {
    eventually(patience, "all delivered", async || {
        let list = forwards(app).await;
        if list.len() == n && list.iter().all(|f| f["state"] == "delivered") {
            Ok(list)
        } else {
            Err(format!("{list:#?}"))
        }
    })
    .await
}

/// Waits until `destination` has received at least `n` files.
async fn until_received(destination: &Storescp, n: usize, patience: Duration) {
    let what = format!("{n} files at the destination");
    eventually(patience, &what, async || {
        match std::fs::read_dir(destination.dir.path()).unwrap().count() {
            got if got >= n => Ok(()),
            got => Err(format!("{got} arrived")),
        }
    })
    .await;
}

/// Sends each of `files` as `TAISHAN_CT` in its own transfer syntax; each must succeed.
pub(crate) fn send_all(addr: SocketAddr, files: &[PathBuf]) {
    for file in files {
        let (ts, _) = dcmtk::describe(file);
        let sent = dcmtk::store(
            addr,
            "TAISHAN_CT",
            "DUIKOU",
            &ts,
            std::slice::from_ref(file),
        );
        assert!(
            sent.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&sent.stderr)
        );
    }
}

async fn instances_reach_the_supporters_destination_byte_for_byte(backend: Backend) {
    let destination = Storescp::start("JMZX_PACS");
    let app = TestApp::spawn(backend).await;
    let relay = app.dicom.expect("DICOM listens");
    let (county, tertiary) = wire(&app, destination.addr).await;
    let dir = pydicom_files();
    let files: Vec<PathBuf> = [
        "CT_small.dcm",
        "MR_small_bigendian.dcm",
        "image_dfl.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "JPGExtended.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "JPEG2000.dcm",
        "SC_rgb_rle.dcm",
        "rtdose.dcm",
        "test-SR.dcm",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect();
    send_all(relay, &files);
    // Some samples share a SOP Instance UID; each instance is forwarded once.
    let distinct: std::collections::BTreeSet<String> =
        files.iter().map(|f| dcmtk::describe(f).1).collect();
    let delivered = all_delivered(&app, distinct.len(), Duration::from_secs(60)).await;
    for f in &delivered {
        assert_eq!(f["source_institution_id"], county);
        assert_eq!(f["destination_institution_id"], tertiary);
        assert_eq!(f["ae_title"], "JMZX_PACS");
    }
    let spool = app.db.dir.path().join("dicom");
    for file in &files {
        let (ts, uid) = dcmtk::describe(file);
        let got = destination
            .received(&uid)
            .unwrap_or_else(|| panic!("{} reached the destination", file.display()));
        let relayed = std::fs::read(&got).unwrap();
        let stored = duikou_tests::stored_bytes(&app.db, &spool, &uid).await;
        assert!(
            data_set(&relayed) == data_set(&stored),
            "{} ({ts}) reached the destination byte for byte",
            file.display()
        );
    }

    // A coordinator of an unrelated institution sees none of it.
    let other = app.institution_id("开平市中心医院").await;
    let (_, office) = app.user("kp.office", other, &["coordinator"]).await;
    let (status, list) = app.get("/api/v1/forwards", &office).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([]));
    let id = delivered[0]["id"].as_i64().unwrap();
    let (status, _) = app
        .post(&format!("/api/v1/forwards/{id}/retry"), &office, json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The queue is filtered by state; a state it does not have is a problem naming it.
    let (status, list) = app
        .get("/api/v1/forwards?state=delivered", &app.admin_token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), delivered.len());
    let (status, list) = app
        .get("/api/v1/forwards?state=pending", &app.admin_token)
        .await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    let (status, problem) = app
        .get("/api/v1/forwards?state=stuck", &app.admin_token)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "state", "{problem}");
    app.stop().await;
}

/// The first images of a study reach the reading hospital while the county's modality
/// still holds its association open to send the rest: the relay does not wait for the
/// study to end.
async fn a_study_is_forwarded_while_it_still_arrives(backend: Backend) {
    use duikou_tests::scu::{CT, EXPLICIT_LE, Outcome, RawScu};
    let destination = Storescp::start("JMZX_PACS");
    let app = TestApp::spawn(backend).await;
    let relay = app.dicom.expect("DICOM listens");
    wire(&app, destination.addr).await;
    let dir = tempfile::tempdir().unwrap();
    let series =
        duikou_imaging::testing::series::ct_series(dir.path(), 6, 64, "TS-FWD-0001").unwrap();
    let received = || std::fs::read_dir(destination.dir.path()).unwrap().count();
    let mut scu = RawScu::connect(relay, "TAISHAN_CT", "DUIKOU", CT, EXPLICIT_LE).await;
    let mut send = async |files: &[PathBuf]| {
        for file in files {
            let bytes = std::fs::read(file).unwrap();
            let (_, sop) = dcmtk::describe(file);
            let outcome = scu.store(CT, &sop, data_set(&bytes)).await;
            assert_eq!(outcome, Outcome::Status(0), "{}", file.display());
        }
    };
    send(&series.files[..3]).await;
    // The association stays open, the study half sent: the first three arrive.
    until_received(&destination, 3, Duration::from_secs(30)).await;
    send(&series.files[3..]).await;
    scu.release().await;
    let delivered = all_delivered(&app, 6, Duration::from_secs(30)).await;
    assert_eq!(delivered.len(), 6);
    assert_eq!(received(), 6);
    app.stop().await;
}

/// The reading hospital's PACS is another duikou relay that does not know this one yet:
/// it refuses the association (calling AE title not recognized). The forwards wait,
/// retried, with the refusal as their error; once the PACS registers the relay, they
/// arrive.
async fn a_destination_that_refuses_the_relay_is_retried_until_it_accepts(backend: Backend) {
    let pacs = TestApp::spawn_with(backend, |c| {
        c.imaging.ae_title = "JMZX_PACS".parse().unwrap()
    })
    .await;
    let app = TestApp::spawn_with(backend, |c| {
        c.imaging.forward_retry_base_ms = 200;
        c.imaging.forward_retry_max_seconds = 1;
    })
    .await;
    let relay = app.dicom.expect("DICOM listens");
    wire(&app, pacs.dicom.expect("the PACS listens")).await;
    let files = vec![
        pydicom_files().join("CT_small.dcm"),
        pydicom_files().join("MR_small.dcm"),
    ];
    send_all(relay, &files);

    retried(&app, 2, "calling AE title not recognized").await;

    // The PACS registers the relay (it calls as DUIKOU): everything arrives there.
    let jmzx = pacs.institution_id("江门市中心医院").await;
    let (status, node) = pacs
        .post(
            &format!("/api/v1/institutions/{jmzx}/dicom-nodes"),
            &pacs.admin_token,
            json!({"ae_title": "DUIKOU", "host": "*"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    let delivered = all_delivered(&app, 2, Duration::from_secs(30)).await;
    assert!(
        delivered
            .iter()
            .all(|f| f["attempts"].as_i64().unwrap() >= 3)
    );
    let kept: Vec<(String,)> = duikou_tests::on_db!(pacs.db, |conn| sqlx::query_as(
        "select sop_instance_uid from dicom_instance order by sop_instance_uid"
    )
    .fetch_all(&mut conn)
    .await
    .unwrap());
    let mut want: Vec<(String,)> = files.iter().map(|f| (dcmtk::describe(f).1,)).collect();
    want.sort();
    assert_eq!(kept, want);
    app.stop().await;
    pacs.stop().await;
}

async fn an_unreachable_destination_is_retried_until_it_answers(backend: Backend) {
    let port = free_port();
    let app = TestApp::spawn_with(backend, |c| {
        c.imaging.forward_retry_base_ms = 200;
        c.imaging.forward_retry_max_seconds = 1;
    })
    .await;
    let relay = app.dicom.expect("DICOM listens");
    wire(&app, SocketAddr::from(([127, 0, 0, 1], port))).await;
    let dir = pydicom_files();
    let files = vec![
        dir.join("CT_small.dcm"),
        dir.join("rtplan.dcm"),
        dir.join("MR_small.dcm"),
    ];
    send_all(relay, &files);

    // Nobody listens: the queue shows the attempts and why.
    retried(&app, 3, "cannot associate").await;

    // The destination comes up: everything arrives.
    let destination = Storescp::start_on("JMZX_PACS", port);
    let delivered = all_delivered(&app, 3, Duration::from_secs(30)).await;
    assert!(
        delivered
            .iter()
            .all(|f| f["attempts"].as_i64().unwrap() >= 3)
    );
    for file in &files {
        let (_, uid) = dcmtk::describe(file);
        assert!(destination.received(&uid).is_some(), "{}", file.display());
    }
    app.stop().await;
}

async fn forwarding_survives_a_kill_9_of_the_relay(backend: Backend) {
    let destination = Storescp::start("JMZX_PACS");
    // This gateway only sets things up; the relay is a separate `duikou serve`.
    let app = TestApp::spawn_with(backend, |c| c.imaging.listen = None).await;
    wire(&app, destination.addr).await;
    let images = tempfile::tempdir().unwrap();
    let (files, uids) = dcmtk::ct_images(images.path(), 120);
    let env = [
        ("DUIKOU_IMAGING_FORWARD_LEASE_SECONDS", "2"),
        ("DUIKOU_IMAGING_FORWARD_RETRY_BASE_MS", "200"),
        ("DUIKOU_IMAGING_FORWARD_ASSOCIATIONS", "1"),
        ("DUIKOU_IMAGING_FORWARD_BATCH", "4"),
        // The instances go into a prepared segment: zeros follow the last record.
        ("DUIKOU_IMAGING_SPOOL_PREPARED_BYTES", "4194304"),
    ];
    let relay = Served::start(&app.db, &[], &env);
    let addr = relay.dicom.expect("the relay speaks DICOM");
    duikou_tests::until_spool_prepared(&relay.base, duikou_tests::SPOOL_SEGMENT_BYTES).await;
    let sender = {
        let files = files.clone();
        std::thread::spawn(move || {
            let sent = dcmtk::store(addr, "TAISHAN_CT", "DUIKOU", "1.2.840.10008.1.2.1", &files);
            sent.status.success()
        })
    };
    // Kill it once forwarding is under way.
    until_received(&destination, 3, Duration::from_secs(60)).await;
    relay.kill();
    let sent_before_kill = sender.join().unwrap();
    let arrived_at_kill = std::fs::read_dir(destination.dir.path()).unwrap().count();

    // Back up: whatever the sender was told was stored, arrives; the rest is sent again.
    let relay = Served::start(&app.db, &[], &env);
    let addr = relay.dicom.expect("the relay speaks DICOM");
    if !sent_before_kill {
        let again = dcmtk::store(addr, "TAISHAN_CT", "DUIKOU", "1.2.840.10008.1.2.1", &files);
        assert!(
            again.status.success(),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
    }
    let delivered = all_delivered(&app, files.len(), Duration::from_secs(90)).await;
    assert!(
        arrived_at_kill < files.len(),
        "the kill came during forwarding"
    );
    assert_eq!(delivered.len(), files.len());
    for uid in &uids {
        assert!(destination.received(uid).is_some(), "{uid} arrived");
    }
    drop(relay);
    app.stop().await;
}

/// The index commits of SQLite are not synced (the instance's spool record is): a crash of
/// the machine may take the last rows. Here they are taken by hand while the relay is
/// down; at its next start it finds those instances in the spool, indexes and forwards
/// them.
async fn what_a_machine_crash_takes_from_the_index_is_found_again_in_the_spool(backend: Backend) {
    let destination = Storescp::start("JMZX_PACS");
    let app = TestApp::spawn_with(backend, |c| c.imaging.listen = None).await;
    wire(&app, destination.addr).await;
    let images = tempfile::tempdir().unwrap();
    let (files, uids) = dcmtk::ct_images(images.path(), 20);
    let relay = Served::start(&app.db, &[], &[]);
    let addr = relay.dicom.expect("the relay speaks DICOM");
    let sent = dcmtk::store(addr, "TAISHAN_CT", "DUIKOU", "1.2.840.10008.1.2.1", &files);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    all_delivered(&app, files.len(), Duration::from_secs(60)).await;
    relay.kill();

    // The last eight rows are gone, as if their commits never reached the disk.
    let lost: Vec<String> = duikou_tests::on_db!(app.db, |conn| {
        let lost: Vec<(i64, String)> = sqlx::query_as(
            "select id, sop_instance_uid from dicom_instance order by id desc limit 8",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for (id, _) in &lost {
            for sql in [
                "delete from forward_job where instance_id = $1",
                "delete from dicom_instance where id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut conn).await.unwrap();
            }
        }
        lost.into_iter().map(|(_, uid)| uid).collect()
    });
    assert_eq!(lost.len(), 8);
    // What the destination got of them before, kept aside to compare.
    let before: Vec<Vec<u8>> = lost
        .iter()
        .map(|uid| {
            let path = destination.received(uid).expect("delivered before");
            let bytes = std::fs::read(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            bytes
        })
        .collect();

    let relay = Served::start(&app.db, &[], &[]);
    let delivered = all_delivered(&app, files.len(), Duration::from_secs(60)).await;
    assert_eq!(delivered.len(), files.len());
    for uid in &uids {
        assert!(destination.received(uid).is_some(), "{uid} arrived");
    }
    for (uid, before) in lost.iter().zip(&before) {
        let again = std::fs::read(destination.received(uid).unwrap()).unwrap();
        assert!(
            data_set(&again) == data_set(before),
            "{uid} found again whole"
        );
    }
    let spool = app.db.dir.path().join("dicom");
    assert_eq!(duikou_tests::spool_records(&spool), files.len());
    drop(relay);
    app.stop().await;
}

async fn what_a_machine_crash_takes_from_the_spool_is_taken_from_the_index(backend: Backend) {
    use std::os::unix::fs::FileExt as _;
    let destination = Storescp::start("JMZX_PACS");
    let app = TestApp::spawn_with(backend, |c| c.imaging.listen = None).await;
    wire(&app, destination.addr).await;
    let images = tempfile::tempdir().unwrap();
    let (files, uids) = dcmtk::ct_images(images.path(), 6);
    let relay = Served::start(&app.db, &[], &[]);
    let addr = relay.dicom.expect("the relay speaks DICOM");
    send_all(addr, &files);
    all_delivered(&app, files.len(), Duration::from_secs(60)).await;
    relay.kill();

    // The index commits while the record's sync runs. Say the machine crashed then: the
    // index kept the last record of its segment, and the disk did not (its header never
    // got there; nor did its success reach the sender).
    let (path, offset, lost): (String, i64, String) = duikou_tests::on_db!(app.db, |conn| {
        sqlx::query_as(
            "select path, byte_offset, sop_instance_uid from dicom_instance
             order by byte_offset desc limit 1",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    });
    let spool = app.db.dir.path().join("dicom");
    let segment = std::fs::File::options()
        .write(true)
        .open(spool.join(&path))
        .unwrap();
    let header = u64::try_from(offset).unwrap() - 64;
    segment.write_all_at(&[0; 64], header).unwrap();
    segment.sync_all().unwrap();
    std::fs::remove_file(destination.received(&lost).expect("delivered before")).unwrap();

    // At start it is taken out of the index, with its forward; the rest stay.
    let relay = Served::start(&app.db, &[], &[]);
    let indexed: Vec<String> = duikou_tests::on_db!(app.db, |conn| {
        sqlx::query_scalar("select sop_instance_uid from dicom_instance")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(indexed.len(), files.len() - 1);
    assert!(!indexed.contains(&lost));
    assert_eq!(forwards(&app).await.len(), files.len() - 1);
    assert_eq!(duikou_tests::spool_records(&spool), files.len() - 1);

    // The sender, never answered, sends it again: stored over the lost record, indexed
    // and forwarded.
    let file = &files[uids.iter().position(|u| *u == lost).unwrap()];
    send_all(relay.dicom.unwrap(), std::slice::from_ref(file));
    all_delivered(&app, files.len(), Duration::from_secs(60)).await;
    assert!(destination.received(&lost).is_some());
    assert_eq!(duikou_tests::spool_records(&spool), files.len());
    drop(relay);
    app.stop().await;
}

async fn a_destination_that_takes_no_transfer_syntax_of_an_instance_gets_a_clear_error(
    backend: Backend,
) {
    // This PACS takes only uncompressed images; the relay never transcodes.
    let destination = Storescp::start_uncompressed("JMZX_PACS");
    let app = TestApp::spawn(backend).await;
    let relay = app.dicom.expect("DICOM listens");
    let (_, tertiary) = wire(&app, destination.addr).await;
    let dir = pydicom_files();
    let jpeg = dir.join("SC_rgb_jpeg_dcmtk.dcm");
    let lossy = dir.join("JPEG-lossy.dcm");
    send_all(
        relay,
        &[jpeg.clone(), lossy.clone(), dir.join("CT_small.dcm")],
    );
    let list = eventually(
        Duration::from_secs(30),
        "every forward settled",
        async || {
            let list = forwards(&app).await;
            let settled = list.len() == 3
                && list
                    .iter()
                    .all(|f| f["state"] == "delivered" || f["state"] == "failed");
            if settled {
                Ok(list)
            } else {
                Err(format!("{list:#?}"))
            }
        },
    )
    .await;
    let of = |file: &Path| {
        let uid = dcmtk::describe(file).1;
        list.iter()
            .find(|f| f["sop_instance_uid"] == uid.as_str())
            .unwrap()
            .clone()
    };
    let (failed, other_failed) = (of(&jpeg), of(&lossy));
    for (f, ts) in [
        (&failed, "1.2.840.10008.1.2.4.50"),
        (&other_failed, "1.2.840.10008.1.2.4.51"),
    ] {
        assert_eq!(f["state"], "failed", "{f}");
        let error = f["last_error"].as_str().unwrap();
        assert!(error.contains(ts), "names the transfer syntax: {error}");
    }
    let delivered = of(&dir.join("CT_small.dcm"));
    assert_eq!(delivered["state"], "delivered", "the CT went through");

    // The operator of the reading hospital cancels one failed forward, points the hospital
    // at a PACS that takes JPEG and retries the other: it arrives; the cancelled one does
    // not. A delivered forward can be neither cancelled nor retried.
    let (_, office) = app.user("jm.office", tertiary, &["coordinator"]).await;
    let act = |id: &Value, step: &'static str| {
        let (app, office) = (&app, office.clone());
        let path = format!("/api/v1/forwards/{id}/{step}");
        async move { app.post(&path, &office, json!({})).await }
    };
    let (status, cancelled) = act(&other_failed["id"], "cancel").await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    for step in ["cancel", "retry"] {
        let (status, problem) = act(&delivered["id"], step).await;
        assert_eq!(status, StatusCode::CONFLICT, "{step}: {problem}");
    }
    let jpeg_pacs = Storescp::start("JMZX_PACS");
    let (status, d) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/institutions/{tertiary}/imaging-destination"),
            Some(&office),
            Some(json!({"ae_title": "JMZX_PACS", "host": "127.0.0.1", "port": jpeg_pacs.addr.port()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let (status, retried) = act(&failed["id"], "retry").await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["port"], jpeg_pacs.addr.port());
    // The queue's claim that takes the retried forward comes after the cancel: had the
    // cancelled one still been due, it would have gone with it. Once the retried one is
    // delivered and nothing is left pending or sending, the cancelled one has not gone.
    let list = eventually(
        Duration::from_secs(30),
        "the retried forward delivered",
        async || {
            let list = forwards(&app).await;
            let settled = list
                .iter()
                .all(|f| f["state"] == "delivered" || f["state"] == "cancelled");
            if settled
                && list.iter().find(|f| f["id"] == failed["id"]).unwrap()["state"] == "delivered"
            {
                Ok(list)
            } else {
                Err(format!("{list:#?}"))
            }
        },
    )
    .await;
    assert!(jpeg_pacs.received(&dcmtk::describe(&jpeg).1).is_some());
    let cancelled = list.iter().find(|f| f["id"] == other_failed["id"]).unwrap();
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert_eq!(
        cancelled["attempts"], other_failed["attempts"],
        "{cancelled}"
    );
    assert!(
        jpeg_pacs.received(&dcmtk::describe(&lossy).1).is_none(),
        "the cancelled forward stays cancelled"
    );
    app.stop().await;
}

/// A new instance's forward is claimed in its index transaction and handed straight to the
/// forward worker while there is room for it; when the worker is behind (the handoff is
/// full), the forward is queued as pending, the worker is woken, and the queue's claim
/// gives it. A duplicate queues nothing. (The archive and the store as the relay has them,
/// with a handoff of one and no worker draining it.)
async fn new_instances_beyond_the_handoff_wait_in_the_queue_and_are_claimed_from_it(
    backend: Backend,
) {
    use duikou_imaging::scp::{Archive as _, Indexed, InstanceRecord};
    use duikou_tests::duikou::imaging::StoreArchive;
    use duikou_tests::duikou::store::{ForwardFilter, ForwardTarget, NewForward};

    let db = duikou_tests::TestDb::new(backend).await.unwrap();
    let prepared = duikou_tests::duikou::startup::prepare(db.config())
        .await
        .unwrap();
    let store = prepared.store.clone();
    let named = |name: &'static str| {
        let store = store.clone();
        async move { store.institutions_named(name).await.unwrap()[0].id }
    };
    let (county, tertiary) = (named("台山市人民医院").await, named("江门市中心医院").await);
    let spool = duikou_imaging::spool::Spool::open(
        &db.dir.path().join("spool"),
        duikou_imaging::spool::Layout::default(),
    )
    .unwrap();
    let lease = Duration::from_secs(60);
    let (archive, mut handed, wake) = StoreArchive::new(store.clone(), spool, 1, lease);
    let route = duikou_tests::duikou::imaging::Route::new(
        NewForward {
            target: ForwardTarget {
                institution_id: Some(tertiary),
                ae_title: "JMZX_PACS".into(),
                host: "127.0.0.1".into(),
                port: 11112,
                tls: false,
            },
            error: None,
        },
        county,
    );
    let record = |n: u32| InstanceRecord {
        sop_instance_uid: format!("2.25.{n}"),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        study_instance_uid: "2.25.100".into(),
        series_instance_uid: "2.25.101".into(),
        transfer_syntax: "1.2.840.10008.1.2.1".into(),
        size: 1000,
        path: "segments/00000001.seg".into(),
        offset: 64 + i64::from(n) * 1064,
        calling_ae: "TAISHAN_CT".into(),
        institution_id: county,
        instance_number: Some(i32::try_from(n).unwrap()),
        ..InstanceRecord::default()
    };
    for n in 1..=3 {
        let indexed = archive
            .index(
                std::future::ready(Some(record(n))),
                &route,
                std::future::ready(true),
            )
            .await
            .unwrap();
        assert_eq!(indexed, Some(Indexed::New), "instance {n}");
    }
    // The first went to the worker, claimed; the handoff then was full.
    let first = handed.try_recv().expect("the first forward is handed over");
    assert_eq!(first.stored.length, 1000);
    assert!(handed.try_recv().is_err(), "only one fits the handoff");
    tokio::time::timeout(Duration::from_secs(1), wake.notified())
        .await
        .expect("the worker is woken for the rest");
    let all = ForwardFilter {
        limit: 10,
        ..ForwardFilter::default()
    };
    let forwards = store.forwards(&all).await.unwrap();
    let mut states: Vec<(String, String)> = forwards
        .iter()
        .map(|f| (f.sop_instance_uid.clone(), f.state.to_string()))
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("2.25.1".into(), "sending".into()),
            ("2.25.2".into(), "pending".into()),
            ("2.25.3".into(), "pending".into()),
        ]
    );
    // The queue gives the two pending ones, not the one already handed over (its lease
    // holds).
    let claimed = store.claim_forwards(10, lease).await.unwrap();
    let mut uids: Vec<&str> = claimed
        .iter()
        .map(|c| c.sop_instance_uid.as_str())
        .collect();
    uids.sort_unstable();
    assert_eq!(uids, ["2.25.2", "2.25.3"]);
    assert!(
        claimed
            .iter()
            .all(|c| c.ae_title == "JMZX_PACS" && c.size == 1000)
    );
    assert!(store.claim_forwards(10, lease).await.unwrap().is_empty());
    // The same SOP Instance UID again: success, and nothing queued.
    let again = archive
        .index(
            std::future::ready(Some(record(2))),
            &route,
            std::future::ready(true),
        )
        .await
        .unwrap();
    assert_eq!(again, Some(Indexed::Duplicate));
    assert_eq!(store.forwards(&all).await.unwrap().len(), 3);
}
