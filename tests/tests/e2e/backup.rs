//! `duikou backup`, `duikou backup verify` and `duikou restore`: a backup of a gateway that
//! keeps receiving images and changes while it is taken restores, into an empty data
//! directory and database, into a gateway that serves what the backup's moment held; a
//! damaged backup is named and restores nothing; nothing is written over data.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use duikou_tests::dcmtk;
use duikou_tests::scu::EXPLICIT_LE;
use duikou_tests::{
    Backend, TestApp, TestDb, duikou_binary, on_both_backends, on_db, until_spool_prepared,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dicomweb::dicomweb;
use crate::imaging_setup::node;
use crate::requests::{cast, content, draft};

on_both_backends!(
    a_backup_taken_while_images_arrive_and_requests_change_restores_that_moment,
    a_damaged_backup_is_named_and_nothing_is_written_over_data,
);

/// Runs `duikou ARGS` on the data directory and database of `db`: its exit code, stdout
/// and stderr.
async fn duikou(db: &TestDb, args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(duikou_binary())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DUIKOU_DATA_DIR", db.dir.path())
        .env("DUIKOU_DATABASE_URL", &db.url)
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn backup(db: &TestDb, dir: &Path) -> (Option<i32>, String, String) {
    duikou(db, &["backup".as_ref(), dir.as_os_str()]).await
}

async fn verify(db: &TestDb, dir: &Path) -> (Option<i32>, String, String) {
    duikou(db, &["backup".as_ref(), "verify".as_ref(), dir.as_os_str()]).await
}

async fn restore(db: &TestDb, dir: &Path) -> (Option<i32>, String, String) {
    duikou(db, &["restore".as_ref(), dir.as_os_str()]).await
}

/// Attaches `bytes` (a PDF) to request `id`.
async fn attach(app: &TestApp, token: &str, id: &Value, bytes: &[u8]) -> Value {
    let response = app
        .client
        .post(format!("{}/api/v1/requests/{id}/attachments", app.base))
        .bearer_auth(token)
        .header("content-type", "application/pdf")
        .header("content-disposition", "attachment; filename=\"report.pdf\"")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let (status, body) = duikou_tests::read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// The bytes the gateway at `app` serves for attachment `attachment` of request `id`.
async fn attachment(app: &TestApp, token: &str, id: &Value, attachment: &Value) -> Vec<u8> {
    let response = app
        .client
        .get(format!(
            "{}/api/v1/requests/{id}/attachments/{attachment}",
            app.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap().to_vec()
}

/// An indexed instance: SOP Instance UID, study, series, and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Instance {
    sop_instance_uid: String,
    study_instance_uid: String,
    series_instance_uid: String,
    path: String,
    byte_offset: i64,
    size: i64,
}

impl Instance {
    /// Where its record ends in its segment.
    fn end(&self) -> i64 {
        self.byte_offset + self.size
    }

    /// Its bytes, in the spool under `spool`.
    fn bytes(&self, spool: &Path) -> Vec<u8> {
        duikou_imaging::spool::Stored {
            path: spool.join(&self.path),
            offset: u64::try_from(self.byte_offset).unwrap(),
            length: u64::try_from(self.size).unwrap(),
        }
        .read()
        .unwrap_or_else(|e| panic!("{} reads: {e}", self.sop_instance_uid))
    }
}

/// Every instance `db` indexes.
async fn indexed(db: &TestDb) -> Vec<Instance> {
    let query =
        "select sop_instance_uid, study_instance_uid, series_instance_uid, path, byte_offset, size
                 from dicom_instance order by id";
    let rows: Vec<(String, String, String, String, i64, i64)> =
        on_db!(db, |conn| sqlx::query_as(query)
            .fetch_all(&mut conn)
            .await
            .unwrap());
    rows.into_iter()
        .map(
            |(
                sop_instance_uid,
                study_instance_uid,
                series_instance_uid,
                path,
                byte_offset,
                size,
            )| {
                Instance {
                    sop_instance_uid,
                    study_instance_uid,
                    series_instance_uid,
                    path,
                    byte_offset,
                    size,
                }
            },
        )
        .collect()
}

/// The ids of the requests `db` holds.
async fn request_ids(db: &TestDb) -> std::collections::BTreeSet<i64> {
    let ids: Vec<i64> = on_db!(db, |conn| sqlx::query_scalar(
        "select id from consult_request"
    )
    .fetch_all(&mut conn)
    .await
    .unwrap());
    ids.into_iter().collect()
}

/// The spool segment of the backup test: room for both its series (about 8 MB).
const SEGMENT: u64 = 16 * 1024 * 1024;

/// One change made in the background, and when it was under way.
struct Change {
    /// The request created, or the revision written into the changing request.
    what: Changed,
    started: Instant,
    done: Instant,
}

enum Changed {
    Created(i64),
    Revised(u64),
}

/// Changes requests until `stop`: revises `changing`'s purpose to "修改 1", "修改 2" …
/// and creates a draft, in turn; returns what it did and when.
async fn keep_changing(
    client: reqwest::Client,
    base: String,
    token: String,
    changing: i64,
    stop: Arc<AtomicBool>,
) -> Vec<Change> {
    let mut log = Vec::new();
    let mut revision = 0;
    while !stop.load(Ordering::SeqCst) {
        revision += 1;
        let started = Instant::now();
        let response = client
            .patch(format!("{base}/api/v1/requests/{changing}"))
            .bearer_auth(&token)
            .json(&json!({"content": {"purpose": format!("修改 {revision}")}}))
            .send()
            .await
            .unwrap();
        let (status, body) = duikou_tests::read(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        log.push(Change {
            what: Changed::Revised(revision),
            started,
            done: Instant::now(),
        });
        let started = Instant::now();
        let response = client
            .post(format!("{base}/api/v1/requests"))
            .bearer_auth(&token)
            .json(&json!({"kind": "consultation", "content": content()}))
            .send()
            .await
            .unwrap();
        let (status, body) = duikou_tests::read(response).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        log.push(Change {
            what: Changed::Created(body["id"].as_i64().unwrap()),
            started,
            done: Instant::now(),
        });
        // Steady, not flat out: the machine is shared with the relay and the backup.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    log
}

/// The spool segments under `dir` and their lengths.
fn segments(dir: &Path) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .flatten()
        .map(|e| {
            (
                format!("segments/{}", e.file_name().to_string_lossy()),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    all.sort();
    all
}

async fn a_backup_taken_while_images_arrive_and_requests_change_restores_that_moment(
    backend: Backend,
) {
    // A spool that prepares a segment of zeros ahead while quiet, large enough that both
    // series go into it: the backup copies what is used of it, not the zeros.
    let app = TestApp::spawn_with(backend, |c| {
        c.imaging.spool_segment_bytes = SEGMENT;
        c.imaging.spool_prepared_bytes = SEGMENT;
    })
    .await;
    let c = cast(&app).await;
    let addr = app.dicom.expect("DICOM listens");
    node(&app, c.county, "TAISHAN_CT", "*").await;
    let spool = app.db.dir.path().join("dicom");

    // Requests with attachments, kept as they are.
    let mut kept = Vec::new();
    for i in 0..3 {
        let r = draft(
            &app,
            &c.doctor,
            json!({"kind": "consultation", "content": content()}),
        )
        .await;
        let bytes = format!("%PDF-1.4 检查报告 {i}").into_bytes();
        let a = attach(&app, &c.doctor, &r["id"], &bytes).await;
        kept.push((r["id"].clone(), a["id"].clone(), bytes));
    }
    let changing = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await["id"]
        .as_i64()
        .unwrap();

    // A series acknowledged before the backup begins, into the prepared segment.
    until_spool_prepared(&app.base, SEGMENT).await;
    let images = tempfile::tempdir().unwrap();
    let first_dir = images.path().join("first");
    std::fs::create_dir(&first_dir).unwrap();
    let (first, first_uids) = dcmtk::ct_images(&first_dir, 10);
    let sent = dcmtk::store(addr, "TAISHAN_CT", "DUIKOU", EXPLICIT_LE, &first);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let acknowledged = indexed(&app.db).await.len();
    assert_eq!(acknowledged, first_uids.len());

    // The command is built now, if it must be, not while the backup's moment is timed.
    duikou_binary();
    // Another series arriving, and requests changing, while the backup is taken.
    let second_dir = images.path().join("second");
    std::fs::create_dir(&second_dir).unwrap();
    let (second, _) = dcmtk::ct_images(&second_dir, 200);
    let sender = std::thread::spawn(move || {
        dcmtk::store(addr, "TAISHAN_CT", "DUIKOU", EXPLICIT_LE, &second)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let changes = tokio::spawn(keep_changing(
        app.client.clone(),
        app.base.clone(),
        c.doctor.clone(),
        changing,
        stop.clone(),
    ));
    duikou_tests::eventually(
        Duration::from_secs(30),
        "the second series arriving",
        async || match indexed(&app.db).await.len() {
            n if n > acknowledged => Ok(()),
            n => Err(format!("{n} indexed")),
        },
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("backup");
    assert!(
        !sender.is_finished(),
        "the second series still arrives when the backup begins"
    );
    let began = Instant::now();
    let (code, said, complained) = backup(&app.db, &dir).await;
    let ended = Instant::now();
    assert_eq!(code, Some(0), "{said}{complained}");
    assert!(said.contains("backed up into"), "{said}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    let log = changes.await.unwrap();
    let sent = sender.join().unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(
        log.iter().any(|c| c.started < ended && c.done > began),
        "requests changed while the backup was taken"
    );

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["backend"],
        json!(match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    );
    let (code, said, _) = verify(&app.db, &dir).await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.starts_with("the backup is whole:"), "{said}");

    // Restored into an empty data directory and database.
    let target = TestDb::new(backend).await.unwrap();
    let (code, said, complained) = restore(&target, &dir).await;
    assert_eq!(code, Some(0), "{said}{complained}");

    // The audit chain is whole, with the manifest's head (checked before the restored
    // gateway writes entries of its own).
    let (code, said, _) = duikou(&target, &["audit".as_ref(), "verify".as_ref()]).await;
    assert_eq!(code, Some(0), "{said}");
    let head = format!(
        "the audit chain is whole: {} entries; head #{} {}",
        manifest["audit"]["entries"],
        manifest["audit"]["head_id"],
        manifest["audit"]["head_link"].as_str().unwrap()
    );
    assert!(said.contains(&head), "{said} is not {head}");

    // Each copied segment ends at its last indexed record; prepared zeros stayed behind.
    let restored_index = indexed(&target).await;
    let copied = segments(&dir.join("dicom"));
    let source = segments(&spool);
    for (segment, length) in &copied {
        let end = restored_index
            .iter()
            .filter(|i| &i.path == segment)
            .map(Instance::end)
            .max()
            .unwrap_or_else(|| panic!("{segment} holds indexed records"));
        assert_eq!(
            *length as i64, end,
            "{segment} is copied up to its last record"
        );
    }
    assert!(
        copied
            .iter()
            .any(|(s, l)| source.iter().any(|(t, m)| s == t && m > l)),
        "a prepared segment is copied without its zeros: {copied:?} of {source:?}"
    );

    let mut config = target.config();
    config.imaging.spool_segment_bytes = SEGMENT;
    let prepared = duikou::startup::prepare(config).await.unwrap();
    let restored = TestApp::serve(target, prepared, None);

    // The same requests: those left alone are as they were, attachments byte for byte.
    for (id, a, bytes) in &kept {
        let path = format!("/api/v1/requests/{id}");
        let (status, there) = app.get(&path, &c.doctor).await;
        assert_eq!(status, StatusCode::OK);
        let (status, here) = restored.get(&path, &c.doctor).await;
        assert_eq!(status, StatusCode::OK, "{here}");
        assert_eq!(here, there);
        assert_eq!(&attachment(&restored, &c.doctor, id, a).await, bytes);
    }
    // The changing request holds a revision written before the backup ended, and none
    // finished before it began is missing; so with the requests created.
    let (status, r) = restored
        .get(&format!("/api/v1/requests/{changing}"), &c.doctor)
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let purpose = r["content"]["purpose"].as_str().unwrap();
    let revision: u64 = purpose
        .strip_prefix("修改 ")
        .map_or(0, |n| n.parse().unwrap());
    let ids = request_ids(&restored.db).await;
    for change in &log {
        match change.what {
            Changed::Revised(n) if change.done < began => {
                assert!(revision >= n, "revision {n} was done before: {purpose}");
            }
            Changed::Revised(n) if change.started > ended => {
                assert!(revision < n, "revision {n} began after: {purpose}");
            }
            Changed::Created(id) if change.done < began => {
                assert!(ids.contains(&id), "request {id} was created before");
            }
            Changed::Created(id) if change.started > ended => {
                assert!(!ids.contains(&id), "request {id} came after");
            }
            Changed::Created(_) => {}
            Changed::Revised(_) => {}
        }
    }
    // The restored gateway goes on: a new request gets an id of its own.
    let fresh = draft(
        &restored,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    assert!(
        fresh["id"].as_i64().unwrap() > *ids.last().unwrap(),
        "ids go on from the restored ones"
    );

    // The same studies; every instance acknowledged before the backup is served by
    // WADO-RS, and every one the restored index names is whole.
    let original_index = indexed(&app.db).await;
    let restored_index = indexed(&restored.db).await;
    let restored_spool = restored.db.dir.path().join("dicom");
    for here in &restored_index {
        let there = original_index
            .iter()
            .find(|o| o.sop_instance_uid == here.sop_instance_uid)
            .expect("an instance the original holds");
        assert_eq!(here, there, "indexed where it was");
        assert!(
            here.bytes(&restored_spool) == there.bytes(&spool),
            "{} is restored byte for byte",
            here.sop_instance_uid
        );
    }
    for uid in &first_uids {
        let i = restored_index
            .iter()
            .find(|i| &i.sop_instance_uid == uid)
            .unwrap_or_else(|| panic!("{uid} was acknowledged before"));
        let (status, kind, body) = dicomweb(
            &restored,
            &format!(
                "/studies/{}/series/{}/instances/{uid}",
                i.study_instance_uid, i.series_instance_uid
            ),
            &c.doctor,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "WADO-RS of {uid}");
        assert!(kind.starts_with("multipart/related"), "{kind}");
        let stored = i.bytes(&restored_spool);
        let data = dcmtk::data_set(&stored);
        assert!(
            body.windows(data.len()).any(|w| w == data),
            "WADO-RS serves {uid} whole"
        );
    }
    let studies = |index: &[Instance]| {
        let mut s: Vec<String> = index.iter().map(|i| i.study_instance_uid.clone()).collect();
        s.sort();
        s.dedup();
        s
    };
    assert_eq!(studies(&restored_index), studies(&original_index));
    let (status, _, body) = dicomweb(&restored, "/studies", &c.doctor).await;
    assert_eq!(status, StatusCode::OK);
    let found: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        found.len(),
        studies(&original_index).len(),
        "QIDO-RS finds the studies"
    );

    restored.stop().await;
    app.stop().await;
}

/// Flips one byte of `file` in the middle.
fn flip(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(file, bytes).unwrap();
}

async fn a_damaged_backup_is_named_and_nothing_is_written_over_data(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let addr = app.dicom.expect("DICOM listens");
    node(&app, c.county, "TAISHAN_CT", "*").await;
    let images = tempfile::tempdir().unwrap();
    let (files, _) = dcmtk::ct_images(images.path(), 3);
    let sent = dcmtk::store(addr, "TAISHAN_CT", "DUIKOU", EXPLICIT_LE, &files);
    assert!(sent.status.success());
    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    let a = attach(&app, &c.doctor, &r["id"], b"%PDF-1.4 consent").await;

    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("backup");
    let (code, said, complained) = backup(&app.db, &dir).await;
    assert_eq!(code, Some(0), "{said}{complained}");
    // A backup holds everyone's records: it is audited like an export.
    let (_, audited) = app
        .get(
            "/api/v1/audit?object_kind=backup&action=export",
            &app.admin_token,
        )
        .await;
    assert_eq!(audited.as_array().unwrap().len(), 1, "{audited}");
    assert!(
        audited[0]["detail"]
            .as_str()
            .unwrap()
            .contains(&dir.display().to_string()),
        "{audited}"
    );
    // Not into a directory that holds something: this backup, here.
    let (code, _, complained) = backup(&app.db, &dir).await;
    assert_eq!(code, Some(1));
    assert!(complained.contains("is not empty"), "{complained}");
    let (code, said, _) = verify(&app.db, &dir).await;
    assert_eq!(code, Some(0), "{said}");

    // Not over the gateway's own data directory and database.
    let before = app.db.snapshot().await.unwrap();
    let (code, _, complained) = restore(&app.db, &dir).await;
    assert_eq!(code, Some(1));
    assert!(
        complained.contains("nothing was restored") && complained.contains("is not empty"),
        "{complained}"
    );
    assert_eq!(app.db.snapshot().await.unwrap(), before);
    // Nor into a data directory holding a file of someone's.
    let occupied = TestDb::new(backend).await.unwrap();
    std::fs::write(occupied.dir.path().join("notes.txt"), "mine").unwrap();
    let (code, _, complained) = restore(&occupied, &dir).await;
    assert_eq!(code, Some(1));
    assert!(complained.contains("is not empty"), "{complained}");
    let names: Vec<_> = std::fs::read_dir(occupied.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")]);
    if backend == Backend::Postgres {
        // Nor into a database that holds tables, even with an empty data directory.
        let mut into_used = TestDb::new(backend).await.unwrap();
        into_used.url = app.db.url.clone();
        let (code, _, complained) = restore(&into_used, &dir).await;
        assert_eq!(code, Some(1));
        assert!(
            complained.contains("PostgreSQL database") && complained.contains("not empty"),
            "{complained}"
        );
        assert_eq!(std::fs::read_dir(into_used.dir.path()).unwrap().count(), 0);
    }

    // A byte flipped anywhere is named; put back, the backup is whole again.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let listed: Vec<String> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    let attachment = format!("attachments/{}", a["sha256"].as_str().unwrap());
    let segment = listed
        .iter()
        .find(|p| p.starts_with("dicom/segments/"))
        .expect("a segment in the backup")
        .clone();
    let database = manifest["database"].as_str().unwrap().to_owned();
    assert!(listed.contains(&attachment), "{listed:?}");
    for damaged in [&database, &segment, &attachment] {
        let file: PathBuf = dir.join(damaged);
        flip(&file);
        let (code, said, _) = verify(&app.db, &dir).await;
        assert_eq!(code, Some(1), "{said}");
        assert!(
            said.contains(damaged.as_str()) && said.contains("SHA-256"),
            "{damaged}: {said}"
        );
        // A restore checks first, and writes nothing.
        let empty = TestDb::new(backend).await.unwrap();
        let (code, _, complained) = restore(&empty, &dir).await;
        assert_eq!(code, Some(1));
        assert!(complained.contains(damaged.as_str()), "{complained}");
        assert_eq!(std::fs::read_dir(empty.dir.path()).unwrap().count(), 0);
        flip(&file);
        let (code, said, _) = verify(&app.db, &dir).await;
        assert_eq!(code, Some(0), "{said}");
    }
    // A file missing, and a backup without its manifest (one that did not finish).
    let held = std::fs::read(dir.join(&attachment)).unwrap();
    std::fs::remove_file(dir.join(&attachment)).unwrap();
    let (code, said, _) = verify(&app.db, &dir).await;
    assert_eq!(code, Some(1));
    assert!(said.contains(&format!("{attachment} is missing")), "{said}");
    std::fs::write(dir.join(&attachment), held).unwrap();
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    let (code, said, _) = verify(&app.db, &dir).await;
    assert_eq!(code, Some(1));
    assert!(said.contains("manifest.json is missing"), "{said}");
    app.stop().await;
}

/// With `database.owner_url` the gateway's PostgreSQL role may only read and append the
/// audit log: the dump and the restore go through the owner, and the restored gateway's
/// first start grants its role again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_backup_goes_through_the_owner_and_the_restored_role_is_granted_again() {
    use sqlx::Connection as _;
    let role = format!("duikou_app_{}", rand::random::<u32>());
    let as_role = |owner_url: &str| {
        let mut url = reqwest::Url::parse(owner_url).unwrap();
        url.set_username(&role).unwrap();
        url.to_string()
    };
    let source = TestDb::new(Backend::Postgres).await.unwrap();
    let mut owner = sqlx::PgConnection::connect(&source.url).await.unwrap();
    sqlx::raw_sql(&format!("create role {role} login"))
        .execute(&mut owner)
        .await
        .unwrap();
    owner.close().await.unwrap();
    let configure = |db: &TestDb| {
        let mut config = db.config();
        config.database.url = Some(duikou::config::Secret::new(as_role(&db.url)));
        config.database.owner_url = Some(duikou::config::Secret::new(db.url.clone()));
        config
    };
    let prepared = duikou::startup::prepare(configure(&source)).await.unwrap();
    duikou::audit::Event::unauthenticated("backup", "test")
        .record(&prepared.store)
        .await
        .unwrap();
    prepared.store.close().await;

    let run = async |db: &TestDb, args: &[&std::ffi::OsStr]| {
        let out = tokio::process::Command::new(duikou_binary())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DUIKOU_DATA_DIR", db.dir.path())
            .env("DUIKOU_DATABASE_URL", as_role(&db.url))
            .env("DUIKOU_DATABASE_OWNER_URL", &db.url)
            .output()
            .await
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), said)
    };
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("backup");
    let (code, said) = run(&source, &["backup".as_ref(), dir.as_os_str()]).await;
    assert_eq!(code, Some(0), "{said}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();

    let target = TestDb::new(Backend::Postgres).await.unwrap();
    let (code, said) = run(&target, &["restore".as_ref(), dir.as_os_str()]).await;
    assert_eq!(code, Some(0), "{said}");
    // The chain restored ends at the manifest's head; the restored gateway starts as its
    // role, which is granted again and reads it.
    let head = Some((
        manifest["audit"]["head_id"].as_i64().unwrap(),
        manifest["audit"]["head_link"].as_str().unwrap().to_owned(),
    ));
    let by_owner = duikou::store::Store::connect(&target.url, 1).await.unwrap();
    assert_eq!(
        duikou::audit::verify(&by_owner).await.unwrap(),
        duikou::audit::Verdict::Whole {
            entries: manifest["audit"]["entries"].as_u64().unwrap(),
            head: head.clone(),
        }
    );
    by_owner.close().await;
    let prepared = duikou::startup::prepare(configure(&target)).await.unwrap();
    assert_eq!(
        prepared.store.role().await.unwrap().as_deref(),
        Some(role.as_str())
    );
    assert!(matches!(
        duikou::audit::verify(&prepared.store).await.unwrap(),
        duikou::audit::Verdict::Whole { .. }
    ));
    prepared.store.close().await;

    for db in [&source, &target] {
        let mut owner = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(&format!("drop owned by {role}"))
            .execute(&mut owner)
            .await
            .ok();
    }
    let mut owner = sqlx::PgConnection::connect(&source.url).await.unwrap();
    sqlx::raw_sql(&format!("drop role {role}"))
        .execute(&mut owner)
        .await
        .ok();
}
