//! Retention (医疗机构病历管理规定: outpatient records at least 15 years, inpatient 30):
//! the database refuses to delete a record, or what is kept with it, before its period
//! ends; `duikou purge` deletes it after, with its files, and the audit chain says so.

use chrono::{Duration, Utc};
use duikou::store::{AuditFilter, Db, Store};
use duikou_tests::{Backend, TestApp, duikou_binary, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::requests::{Cast, cast, content, draft, in_session};

on_both_backends!(
    a_request_is_kept_for_its_period_then_purged_with_what_is_kept_with_it,
    a_ward_round_is_kept_thirty_years_and_teaching_fifteen,
    a_retention_period_below_the_legal_minimum_is_refused_naming_its_key,
);

/// `duikou purge …` on the test's database: its exit code and what it printed.
fn purge_cli(
    app_db: &duikou_tests::TestDb,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String) {
    let mut command = std::process::Command::new(duikou_binary());
    command
        .arg("purge")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DUIKOU_DATA_DIR", app_db.dir.path())
        .env("DUIKOU_DATABASE_URL", &app_db.url);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs `sql` on the test's database as its owner.
async fn run(store: &Store, sql: &str) -> Result<(), sqlx::Error> {
    match store.db() {
        Db::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        Db::Sqlite { pool, .. } => sqlx::raw_sql(sql).execute(pool).await.map(drop),
    }
}

/// The number `sql` counts.
async fn count(store: &Store, sql: &str) -> i64 {
    match store.db() {
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Db::Sqlite { pool, .. } => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The rows kept with request `id`, table by table.
async fn rows_of_request(store: &Store, id: i64) -> Vec<(&'static str, i64)> {
    let mut rows = Vec::new();
    for table in [
        "request_event",
        "opinion",
        "attachment",
        "slot_booking",
        "notification",
    ] {
        let n = count(
            store,
            &format!("select count(*) from {table} where request_id = {id}"),
        )
        .await;
        rows.push((table, n));
    }
    let room = format!("consultation-{id}");
    for table in ["room_message"] {
        let n = count(
            store,
            &format!("select count(*) from {table} where room = '{room}'"),
        )
        .await;
        rows.push((table, n));
    }
    let n = count(
        store,
        &format!("select count(*) from consult_request where id = {id}"),
    )
    .await;
    rows.push(("consult_request", n));
    rows
}

/// Attaches `bytes` to request `id` as a PDF; returns the file's SHA-256 name.
async fn attach(app: &TestApp, token: &str, id: i64, bytes: &[u8]) -> String {
    let response = app
        .client
        .post(format!("{}/api/v1/requests/{id}/attachments", app.base))
        .bearer_auth(token)
        .header("content-type", "application/pdf")
        .header(
            "content-disposition",
            "attachment; filename=\"consent.pdf\"",
        )
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let (status, a) = duikou_tests::read(response).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    a["sha256"].as_str().unwrap().to_owned()
}

/// A request in session with a draft opinion, an attachment and a chat message.
async fn full_request(app: &TestApp, c: &Cast, pdf: &[u8]) -> (i64, String) {
    let id = in_session(app, c).await;
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/requests/{id}/opinions"),
            Some(&c.consultant),
            Some(json!({"body": "建议规律降压治疗，一周后复诊。"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = id.as_i64().unwrap();
    let sha256 = attach(app, &c.doctor, id, pdf).await;
    (id, sha256)
}

fn refused_for_retention(result: Result<(), sqlx::Error>, what: &str) {
    let refused = result.expect_err(what).to_string();
    assert!(refused.contains("retention period"), "{what}: {refused}");
}

async fn a_request_is_kept_for_its_period_then_purged_with_what_is_kept_with_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let store = Store::connect(&app.db.config().database_url(), 2)
        .await
        .unwrap();
    let (old, old_file) = full_request(&app, &c, b"%PDF-1.4\n% old consent\n%%EOF\n").await;
    let recent = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let recent_file = attach(
        &app,
        &c.doctor,
        recent,
        b"%PDF-1.4\n% recent consent\n%%EOF\n",
    )
    .await;
    // The same file on both: named by its content, it stays while the recent one holds it.
    let shared = b"%PDF-1.4\n% shared referral letter\n%%EOF\n";
    let shared_file = attach(&app, &c.doctor, old, shared).await;
    assert_eq!(attach(&app, &c.doctor, recent, shared).await, shared_file);
    run(
        &store,
        &format!(
            "insert into room_message (room, user_id, body, created_at)
             values ('consultation-{old}', (select min(id) from app_user), '血压已复测', '2000-01-01 00:00:00+00:00')"
        ),
    )
    .await
    .unwrap();
    let kept_with_old = rows_of_request(&store, old).await;
    assert!(
        kept_with_old.iter().all(|(_, n)| *n > 0),
        "every kind of row is there: {kept_with_old:?}"
    );

    // Fresh, nobody deletes it or what is kept with it, not even through the database.
    for sql in [
        format!("delete from opinion where request_id = {old}"),
        format!("delete from attachment where request_id = {old}"),
        format!("delete from room_message where room = 'consultation-{old}'"),
        format!("delete from request_event where request_id = {old}"),
        format!("delete from consult_request where id = {old}"),
    ] {
        refused_for_retention(run(&store, &sql).await, &sql);
    }
    assert_eq!(rows_of_request(&store, old).await, kept_with_old);
    let file = |sha256: &str| app.db.dir.path().join("attachments").join(sha256);
    assert!(file(&old_file).exists());

    // Its last change set back beyond its 15 years, as only the owner could.
    run(
        &store,
        &format!(
            "update consult_request set updated_at = '2000-01-01 00:00:00+00:00' where id = {old};
             update attachment set created_at = '2000-01-01 00:00:00+00:00' where request_id = {old}"
        ),
    )
    .await
    .unwrap();

    // A dry run lists it and changes nothing.
    let (code, said) = purge_cli(&app.db, &["--dry-run"], &[]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains(&format!("would purge request {old}\n")),
        "{said}"
    );
    assert!(!said.contains(&format!("request {recent}\n")), "{said}");
    assert_eq!(rows_of_request(&store, old).await, kept_with_old);
    assert!(file(&old_file).exists());

    let (code, said) = purge_cli(&app.db, &[], &[]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains(&format!("purged request {old}\n")), "{said}");
    assert!(said.contains("purged 1 requests, 0 ward rounds"), "{said}");
    assert!(
        rows_of_request(&store, old)
            .await
            .iter()
            .all(|(_, n)| *n == 0),
        "{:?}",
        rows_of_request(&store, old).await
    );
    assert!(!file(&old_file).exists(), "the attachment file is removed");
    assert!(
        file(&shared_file).exists(),
        "a file another request holds stays"
    );
    // The recent one is kept, with its file.
    assert_eq!(
        count(
            &store,
            &format!("select count(*) from consult_request where id = {recent}")
        )
        .await,
        1
    );
    assert!(file(&recent_file).exists());

    // The purge is in the audit chain, with its patient, and the chain is whole.
    let purges = store
        .audit_entries(&AuditFilter {
            object_kind: Some("request".into()),
            action: Some("purge".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(purges.len(), 1, "{purges:?}");
    assert_eq!(purges[0].1.object_id, Some(old));
    assert_eq!(purges[0].1.patient.as_deref(), Some("王某某"));
    assert!(matches!(
        duikou::audit::verify(&store).await.unwrap(),
        duikou::audit::Verdict::Whole { .. }
    ));
    // Nothing more is due.
    let (code, said) = purge_cli(&app.db, &[], &[]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("purged 0 requests"), "{said}");
    store.close().await;
    app.stop().await;
}

/// A time `years` years ago, as both databases read it.
fn years_ago(years: i64) -> String {
    (Utc::now() - Duration::days(365 * years + years / 4 + 2)).to_rfc3339()
}

async fn a_ward_round_is_kept_thirty_years_and_teaching_fifteen(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = &app.admin_token;
    let tertiary = app.institution_id("江门市中心医院").await;
    let county = app.institution_id("台山市人民医院").await;
    let (_, leader) = app
        .post("/api/v1/clinicians", admin, json!({"name": "周主任", "institution_id": tertiary, "title": "主任医师", "specialty": "内科"}))
        .await;
    let (status, team) = app
        .post(
            "/api/v1/teams",
            admin,
            json!({"name": "内科查房组", "institution_id": tertiary, "leader_id": leader["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let store = Store::connect(&app.db.config().database_url(), 2)
        .await
        .unwrap();
    // Rounds and sessions as they were written years ago.
    let round = |years: i64, patient: &str| {
        let at = years_ago(years);
        format!(
            "insert into ward_round (team_id, supported_institution_id, ward, starts_at, ends_at, created_by, created_at)
             values ({}, {county}, '内科病区', '{at}', '{at}', (select min(id) from app_user), '{at}');
             insert into ward_round_patient (round_id, bed, patient_name, question)
             values ((select max(id) from ward_round), '3床', '{patient}', '血压控制');",
            team["id"]
        )
    };
    let session = |years: i64| {
        let at = years_ago(years);
        format!(
            "insert into teaching_session (presenter_clinician_id, presenter_institution_id, topic, starts_at, ends_at, capacity, created_by, created_at)
             values ({}, {tertiary}, '高血压基层规范化管理', '{at}', '{at}', 10, (select min(id) from app_user), '{at}');
             insert into enrolment (session_id, user_id, institution_id, status, created_at)
             values ((select max(id) from teaching_session), (select min(id) from app_user), {county}, 'enrolled', '{at}');",
            leader["id"]
        )
    };
    for sql in [
        round(20, "李某"),
        round(31, "张某"),
        session(10),
        session(16),
    ] {
        run(&store, &sql).await.unwrap();
    }
    let ids = |table: &'static str| {
        let store = &store;
        async move {
            match store.db() {
                Db::Postgres(pool) => {
                    sqlx::query_scalar::<_, i64>(&format!("select id from {table} order by id"))
                        .fetch_all(pool)
                        .await
                }
                Db::Sqlite { pool, .. } => {
                    sqlx::query_scalar::<_, i64>(&format!("select id from {table} order by id"))
                        .fetch_all(pool)
                        .await
                }
            }
            .unwrap()
        }
    };
    let rounds = ids("ward_round").await;
    let sessions = ids("teaching_session").await;
    // Twenty years on, a round (an inpatient record) cannot be deleted.
    refused_for_retention(
        run(
            &store,
            &format!(
                "delete from ward_round_patient where round_id = {}",
                rounds[0]
            ),
        )
        .await,
        "a 20-year-old round's patients",
    );
    refused_for_retention(
        run(
            &store,
            &format!("delete from enrolment where session_id = {}", sessions[0]),
        )
        .await,
        "a 10-year-old session's enrolments",
    );

    let (code, said) = purge_cli(&app.db, &[], &[]);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("purged 0 requests, 1 ward rounds, 1 teaching sessions"),
        "{said}"
    );
    assert_eq!(ids("ward_round").await, vec![rounds[0]]);
    assert_eq!(ids("teaching_session").await, vec![sessions[0]]);
    assert_eq!(
        count(
            &store,
            &format!(
                "select count(*) from ward_round_patient where round_id = {}",
                rounds[1]
            )
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &store,
            &format!(
                "select count(*) from enrolment where session_id = {}",
                sessions[1]
            )
        )
        .await,
        0
    );
    let purged = |kind: &'static str| {
        let store = &store;
        async move {
            store
                .audit_entries(&AuditFilter {
                    object_kind: Some(kind.into()),
                    action: Some("purge".into()),
                    limit: 100,
                    ..AuditFilter::default()
                })
                .await
                .unwrap()
        }
    };
    let round_purges = purged("ward_round").await;
    assert_eq!(round_purges.len(), 1);
    assert_eq!(round_purges[0].1.object_id, Some(rounds[1]));
    assert_eq!(round_purges[0].1.patient.as_deref(), Some("张某"));
    let session_purges = purged("teaching_session").await;
    assert_eq!(session_purges.len(), 1);
    assert_eq!(session_purges[0].1.object_id, Some(sessions[1]));
    store.close().await;
    app.stop().await;
}

async fn a_retention_period_below_the_legal_minimum_is_refused_naming_its_key(backend: Backend) {
    let db = duikou_tests::TestDb::new(backend).await.unwrap();
    let mut config = db.config();
    config.seeds.import = false;
    config.retention.ward_round_years = 29;
    let err = duikou::startup::prepare(config.clone())
        .await
        .err()
        .expect("a round kept 29 years is refused")
        .to_string();
    assert!(err.contains("retention.ward_round_years"), "{err}");
    let (code, said) = purge_cli(
        &db,
        &["--dry-run"],
        &[("DUIKOU_RETENTION_CONSULTATION_YEARS", "10")],
    );
    assert_ne!(code, Some(0), "{said}");
    assert!(said.contains("retention.consultation_years"), "{said}");
    // Longer periods are taken, and written for the database to enforce.
    config.retention.ward_round_years = 35;
    let prepared = duikou::startup::prepare(config).await.unwrap();
    let store = &prepared.store;
    assert_eq!(
        count(
            store,
            "select cast(years as bigint) from retention_policy where kind = 'ward_round'"
        )
        .await,
        35
    );
    assert_eq!(
        count(store, "select count(*) from retention_policy").await,
        5
    );
    // The database itself refuses a period below the minimum, whoever writes it.
    let refused = run(
        store,
        "update retention_policy set years = 10 where kind = 'consultation'",
    )
    .await
    .expect_err("below the minimum");
    assert!(
        refused.to_string().to_lowercase().contains("check"),
        "{refused}"
    );
    store.close().await;
}

/// With `database.owner_url`, the owner writes the periods and the gateway's role may
/// only read them: it can neither change, add, delete nor truncate them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_periods_cannot_be_changed_by_a_gateway_role_that_is_not_the_owner() {
    let db = duikou_tests::TestDb::new(Backend::Postgres).await.unwrap();
    let role = format!("duikou_app_{}", rand::random::<u32>());
    let owner_url = db.url.clone();
    {
        use sqlx::Connection as _;
        let mut owner = sqlx::PgConnection::connect(&owner_url).await.unwrap();
        sqlx::raw_sql(&format!("create role {role} login"))
            .execute(&mut owner)
            .await
            .unwrap();
    }
    let mut app_url = reqwest::Url::parse(&owner_url).unwrap();
    app_url.set_username(&role).unwrap();
    let app_url = app_url.to_string();
    let mut config = db.config();
    config.seeds.import = false;
    config.database.url = Some(duikou::config::Secret::new(app_url.clone()));
    config.database.owner_url = Some(duikou::config::Secret::new(owner_url.clone()));
    config.retention.consultation_years = 20;
    let prepared = duikou::startup::prepare(config).await.unwrap();
    prepared.store.close().await;
    let store = Store::connect(&app_url, 2).await.unwrap();
    assert_eq!(
        count(
            &store,
            "select cast(years as bigint) from retention_policy where kind = 'consultation'"
        )
        .await,
        20
    );
    for sql in [
        "update retention_policy set years = 100",
        "delete from retention_policy where kind = 'teaching'",
        "insert into retention_policy (kind, years) values ('x', 1)",
        "truncate retention_policy",
        "alter table consult_request disable trigger user",
        "drop trigger consult_request_retained on consult_request",
    ] {
        let refused = run(&store, sql).await.expect_err(sql).to_string();
        assert!(
            refused.contains("permission denied") || refused.contains("must be owner"),
            "{sql}: {refused}"
        );
    }
    // It still purges what is due, and audits it.
    let owner = Store::connect(&owner_url, 1).await.unwrap();
    let at = years_ago(16);
    run(
        &owner,
        &format!(
            "insert into clinician (name, institution_id, title, title_rank, specialty, created_at)
             values ('周主任', (select min(id) from institution), '主任医师', 'senior', '内科', now());
             insert into teaching_session (presenter_clinician_id, presenter_institution_id, topic, starts_at, ends_at, capacity, created_by, created_at)
             values ((select max(id) from clinician), (select min(id) from institution), '高血压基层规范化管理',
                     '{at}', '{at}', 10, (select min(id) from app_user), '{at}')"
        ),
    )
    .await
    .unwrap();
    owner.close().await;
    let summary = duikou::retention::purge(&store, db.dir.path(), false, |_, _| {})
        .await
        .unwrap();
    assert_eq!(summary.teaching_sessions, 1, "{summary}");
    assert_eq!(
        count(&store, "select count(*) from teaching_session").await,
        0
    );
    store.close().await;
    {
        use sqlx::Connection as _;
        let mut owner = sqlx::PgConnection::connect(&owner_url).await.unwrap();
        sqlx::raw_sql(&format!("drop owned by {role}; drop role {role}"))
            .execute(&mut owner)
            .await
            .ok();
    }
}
