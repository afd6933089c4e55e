//! The audit log as a hash chain: the database refuses to change or delete an entry, and
//! `duikou audit verify` finds the first entry where someone who went past the triggers
//! (the database's owner) changed, removed or moved one.

use std::path::Path;

use duikou::audit::{Verdict, verify};
use duikou::store::{Db, Store};
use duikou_tests::{Backend, TestApp, duikou_binary, on_both_backends};
use reqwest::StatusCode;
use serde_json::json;

use crate::requests::{cast, content, draft};

on_both_backends!(
    the_audit_chain_shows_where_an_entry_was_changed_removed_or_moved,
    entries_written_before_the_chain_are_linked_in_order_at_the_next_append,
    anchors_show_a_log_cut_at_its_end_and_a_chain_rewritten_whole,
    the_gateway_anchors_the_chain_while_entries_are_added,
);

/// `duikou audit …` on the test's database: its exit code and what it printed (what it
/// printed to standard output first).
fn audit_cli(app: &TestApp, args: &[&str], anchor_file: Option<&Path>) -> (Option<i32>, String) {
    let mut command = std::process::Command::new(duikou_binary());
    command
        .arg("audit")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DUIKOU_DATA_DIR", app.db.dir.path())
        .env("DUIKOU_DATABASE_URL", &app.db.url);
    if let Some(file) = anchor_file {
        command.env("DUIKOU_AUDIT_ANCHOR_FILE", file);
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

/// `duikou audit verify` on the test's database.
fn audit_verify(app: &TestApp) -> (Option<i32>, String) {
    audit_cli(app, &["verify"], None)
}

/// Runs `sql` on the gateway's database as its owner.
async fn run(store: &Store, sql: &str) -> Result<(), sqlx::Error> {
    match store.db() {
        Db::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        Db::Sqlite { pool, .. } => sqlx::raw_sql(sql).execute(pool).await.map(drop),
    }
}

/// Runs `sql` with the triggers that guard the log out of the way, as only the database's
/// owner can.
async fn past_the_triggers(store: &Store, backend: Backend, sql: &str) {
    let wrapped = match backend {
        Backend::Postgres => format!(
            "alter table audit_log disable trigger user; {sql}; alter table audit_log enable trigger user;"
        ),
        Backend::Sqlite => format!(
            "drop trigger audit_log_no_update; drop trigger audit_log_no_delete; {sql};
             create trigger audit_log_no_update before update on audit_log when old.hash is not null
             begin select raise(abort, 'the audit log is append-only'); end;
             create trigger audit_log_no_delete before delete on audit_log
             begin select raise(abort, 'the audit log is append-only'); end;"
        ),
    };
    run(store, &wrapped).await.expect("the owner goes past");
}

async fn the_audit_chain_shows_where_an_entry_was_changed_removed_or_moved(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    // Audited reads: the doctor's own request, read twice, and a refused look from
    // another county.
    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    let path = format!("/api/v1/requests/{}", r["id"]);
    for _ in 0..2 {
        let (status, _) = app.get(&path, &c.doctor).await;
        assert_eq!(status, StatusCode::OK);
    }
    let other = app.institution_id("开平市中心医院").await;
    let (_, stranger) = app.user("kp.zhou", other, &["clinician"]).await;
    let (status, _) = app.get(&path, &stranger).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let store = Store::connect(&app.db.config().database_url(), 2)
        .await
        .unwrap();
    let Verdict::Whole {
        entries,
        head: Some((head, _)),
    } = verify(&store).await.unwrap()
    else {
        panic!("a clean chain verifies");
    };
    assert!(entries >= 4, "{entries} entries");
    let (code, said) = audit_verify(&app);
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains(&format!("{entries} entries; head #{head}")),
        "{said}"
    );

    // The gateway's own connection cannot change or delete an entry.
    for sql in [
        "update audit_log set detail = 'nothing happened'",
        "delete from audit_log",
    ] {
        let refused = run(&store, sql).await.expect_err(sql);
        assert!(
            refused.to_string().contains("append-only"),
            "{sql}: {refused}"
        );
    }

    // Changed: the second entry's outcome, past the triggers; verify names it. Put back,
    // the chain is whole again.
    let ids: Vec<i64> = store
        .audit_chain(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    let (second, third) = (ids[1], ids[2]);
    let outcome = store.audit_chain(second - 1, 1).await.unwrap()[0]
        .1
        .outcome
        .as_str();
    let flipped = if outcome == "allowed" {
        "denied"
    } else {
        "allowed"
    };
    past_the_triggers(
        &store,
        backend,
        &format!("update audit_log set outcome = '{flipped}' where id = {second}"),
    )
    .await;
    assert_eq!(
        verify(&store).await.unwrap(),
        Verdict::Broken {
            id: second,
            entries: 1
        }
    );
    past_the_triggers(
        &store,
        backend,
        &format!("update audit_log set outcome = '{outcome}' where id = {second}"),
    )
    .await;
    assert!(matches!(
        verify(&store).await.unwrap(),
        Verdict::Whole { .. }
    ));

    // Moved: the second and third entries' contents and links swapped.
    let swap = |a: i64, b: i64| {
        format!(
            "update audit_log set at = (select at from audit_log where id = {b}),
                 action = (select action from audit_log where id = {b}),
                 detail = (select detail from audit_log where id = {b}),
                 outcome = (select outcome from audit_log where id = {b}),
                 object_kind = (select object_kind from audit_log where id = {b}),
                 object_id = (select object_id from audit_log where id = {b}),
                 user_id = (select user_id from audit_log where id = {b}),
                 roles = (select roles from audit_log where id = {b}),
                 institution_id = (select institution_id from audit_log where id = {b}),
                 hash = (select hash from audit_log where id = {b})
             where id = {a}"
        )
    };
    let exchange = format!(
        "create table moved as select * from audit_log where id = {second};
         {};
         update audit_log set at = m.at, action = m.action, detail = m.detail,
             outcome = m.outcome, object_kind = m.object_kind, object_id = m.object_id,
             user_id = m.user_id, roles = m.roles, institution_id = m.institution_id,
             hash = m.hash from moved m where audit_log.id = {third};
         drop table moved",
        swap(second, third)
    );
    past_the_triggers(&store, backend, &exchange).await;
    let Verdict::Broken { id, .. } = verify(&store).await.unwrap() else {
        panic!("moved entries break the chain");
    };
    assert_eq!(id, second);
    // Exchanged back, the chain is whole again.
    past_the_triggers(&store, backend, &exchange).await;
    assert!(matches!(
        verify(&store).await.unwrap(),
        Verdict::Whole { .. }
    ));

    // Removed: the newest entry but one; the chain breaks at the newest.
    let before_head = *ids.iter().rev().find(|i| **i < head).unwrap();
    past_the_triggers(
        &store,
        backend,
        &format!("delete from audit_log where id = {before_head}"),
    )
    .await;
    let Verdict::Broken { id, .. } = verify(&store).await.unwrap() else {
        panic!("a removed entry breaks the chain");
    };
    assert_eq!(id, head, "broken where the removed entry was linked from");
    let (code, said) = audit_verify(&app);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains(&format!("breaks at entry #{head}")), "{said}");
    store.close().await;
    app.stop().await;
}

/// A store on the test's database, as its owner.
async fn owner_store(app: &TestApp) -> Store {
    Store::connect(&app.db.config().database_url(), 2)
        .await
        .unwrap()
}

/// Some audited reads: the doctor's own request, read.
async fn some_reads(app: &TestApp, doctor: &str) {
    let r = draft(
        app,
        doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    let (status, _) = app
        .get(&format!("/api/v1/requests/{}", r["id"]), doctor)
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn entries_written_before_the_chain_are_linked_in_order_at_the_next_append(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let store = owner_store(&app).await;
    // Entries as a gateway from before the chain wrote them: no link.
    run(
        &store,
        "insert into audit_log (at, user_id, roles, institution_id, action, object_kind, object_id, outcome, detail)
         values ('2025-01-02 03:04:05.123456+00:00', null, 'clinician', null, 'read', 'request', 7, 'allowed', null),
                ('2025-01-02 03:04:06+00:00', null, 'coordinator', null, 'list', 'request', null, 'denied', 'role may not see requests')",
    )
    .await
    .unwrap();
    let unlinked = |chain: &[(i64, duikou::store::AuditEntry, Option<String>)]| {
        chain.iter().filter(|(_, _, h)| h.is_none()).count()
    };
    assert_eq!(unlinked(&store.audit_chain(0, 10_000).await.unwrap()), 2);
    // The next append links them, in order, before itself; the chain is whole.
    some_reads(&app, &c.doctor).await;
    let chain = store.audit_chain(0, 10_000).await.unwrap();
    assert_eq!(unlinked(&chain), 0);
    let Verdict::Whole { entries, .. } = verify(&store).await.unwrap() else {
        panic!("the linked chain is whole");
    };
    assert_eq!(entries as usize, chain.len());
    // And a linked old entry is guarded like any other.
    let old = chain
        .iter()
        .find(|(_, e, _)| e.object_id == Some(7))
        .unwrap()
        .0;
    let refused = run(
        &store,
        &format!("update audit_log set hash = null where id = {old}"),
    )
    .await
    .expect_err("a link is set once");
    assert!(refused.to_string().contains("append-only"), "{refused}");
    store.close().await;
    app.stop().await;
}

async fn anchors_show_a_log_cut_at_its_end_and_a_chain_rewritten_whole(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let anchors = app.db.dir.path().join("anchors.jsonl");
    some_reads(&app, &c.doctor).await;
    let (code, first) = audit_cli(&app, &["anchor"], Some(&anchors));
    assert_eq!(code, Some(0), "{first}");
    let first: duikou::audit::Anchor = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    some_reads(&app, &c.doctor).await;
    let (code, second) = audit_cli(&app, &["anchor"], Some(&anchors));
    assert_eq!(code, Some(0), "{second}");
    let second: duikou::audit::Anchor =
        serde_json::from_str(second.lines().next().unwrap()).unwrap();
    assert!(second.id > first.id);
    // Both are in the file, and the chain holds them.
    let file = std::fs::read_to_string(&anchors).unwrap();
    assert_eq!(
        duikou::audit::read_anchors(&file).unwrap(),
        vec![first.clone(), second.clone()]
    );
    let anchors_arg = anchors.to_str().unwrap();
    let (code, said) = audit_cli(&app, &["verify", "--anchors", anchors_arg], None);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("holds all 2 anchors"), "{said}");

    // Cut at the end, past the triggers: the chain alone is still whole, the anchors
    // are not held.
    let store = owner_store(&app).await;
    let kept = store.audit_chain(0, 10_000).await.unwrap();
    past_the_triggers(
        &store,
        backend,
        &format!("delete from audit_log where id >= {}", second.id),
    )
    .await;
    assert!(matches!(
        verify(&store).await.unwrap(),
        Verdict::Whole { .. }
    ));
    let (code, said) = audit_cli(&app, &["verify", "--anchors", anchors_arg], None);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!("entry #{}", second.id)) && said.contains("the log was cut"),
        "{said}"
    );

    // Rewritten whole: an early entry changed and every link after it computed again,
    // so that the chain verifies; the first anchor shows it.
    let changed = kept[1].0;
    past_the_triggers(
        &store,
        backend,
        &format!("update audit_log set outcome = 'denied', hash = null where id >= {changed}"),
    )
    .await;
    let mut prev = kept[0].2.clone().unwrap();
    let mut rewrite = String::new();
    for (id, entry, _) in store.audit_chain(kept[0].0, 10_000).await.unwrap() {
        prev = duikou::audit::link(&prev, &entry);
        rewrite.push_str(&format!(
            "update audit_log set hash = '{prev}' where id = {id};"
        ));
    }
    past_the_triggers(&store, backend, &rewrite).await;
    assert!(
        matches!(verify(&store).await.unwrap(), Verdict::Whole { .. }),
        "a chain rewritten whole verifies alone"
    );
    let (code, said) = audit_cli(&app, &["verify", "--anchors", anchors_arg], None);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!("entry #{}", first.id)) && said.contains("rewritten"),
        "{said}"
    );

    // A file that is not anchors is refused, naming the line.
    std::fs::write(&anchors, "{\"id\": 1}\n").unwrap();
    let (code, said) = audit_cli(&app, &["verify", "--anchors", anchors_arg], None);
    assert_ne!(code, Some(0), "{said}");
    assert!(said.contains("line 1"), "{said}");
    store.close().await;
    app.stop().await;
}

async fn the_gateway_anchors_the_chain_while_entries_are_added(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let anchors = dir.path().join("anchors.jsonl");
    let file = anchors.clone();
    let app = TestApp::spawn_with(backend, move |c| {
        c.audit.anchor_seconds = 1;
        c.audit.anchor_file = Some(file);
    })
    .await;
    let c = cast(&app).await;
    some_reads(&app, &c.doctor).await;
    let lines = || {
        std::fs::read_to_string(&anchors)
            .map(|t| duikou::audit::read_anchors(&t).unwrap())
            .unwrap_or_default()
    };
    let wait_for = |n: usize| {
        let lines = &lines;
        async move {
            for _ in 0..100 {
                if lines().len() >= n {
                    return lines();
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("no anchor {n} within 10 s: {:?}", lines());
        }
    };
    let first = wait_for(1).await;
    // Nothing added since (the anchor's own entry is the head): no new anchor.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(lines().len(), 1, "{:?}", lines());
    some_reads(&app, &c.doctor).await;
    let both = wait_for(2).await;
    assert_eq!(both[0], first[0]);
    assert!(both[1].id > both[0].id);
    let store = owner_store(&app).await;
    assert_eq!(
        duikou::audit::check_anchors(&store, &both).await.unwrap(),
        None
    );
    let anchored = store.audit_chain(both[1].id - 1, 1).await.unwrap();
    assert_eq!(
        (
            anchored[0].1.object_kind.as_str(),
            anchored[0].1.action.as_str()
        ),
        ("audit_chain", "anchor")
    );
    store.close().await;
    app.stop().await;
}

/// With `database.owner_url`, the gateway's own role may read and append to the audit
/// log and nothing more: it can neither change, delete nor truncate entries, nor turn
/// the triggers off, nor alter the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_role_that_is_not_the_owner_cannot_touch_the_audit_log() {
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
    config.database.url = Some(duikou::config::Secret::new(app_url.clone()));
    config.database.owner_url = Some(duikou::config::Secret::new(owner_url.clone()));
    // Gateways run as that role: two starting at once both migrate and grant as the
    // owner, and each starts and appends.
    let (prepared, other) = tokio::join!(
        duikou::startup::prepare(config.clone()),
        duikou::startup::prepare(config.clone()),
    );
    let (prepared, other) = (prepared.unwrap(), other.unwrap());
    other.store.close().await;
    assert_eq!(
        prepared.store.role().await.unwrap().as_deref(),
        Some(role.as_str())
    );
    duikou::audit::Event::unauthenticated("audit_chain", "anchor")
        .record(&prepared.store)
        .await
        .unwrap();
    prepared.store.close().await;
    let store = Store::connect(&app_url, 2).await.unwrap();
    assert!(matches!(
        verify(&store).await.unwrap(),
        Verdict::Whole { entries, .. } if entries >= 1
    ));
    for sql in [
        "update audit_log set detail = 'nothing happened'",
        "delete from audit_log",
        "truncate audit_log",
        "alter table audit_log disable trigger user",
        "drop trigger audit_log_no_update on audit_log",
        "alter table audit_log drop column hash",
    ] {
        let refused = run(&store, sql).await.expect_err(sql);
        let said = refused.to_string();
        assert!(
            said.contains("permission denied") || said.contains("must be owner"),
            "{sql}: {said}"
        );
    }
    // The one column it may write is guarded by the trigger: a link is set once.
    let refused = run(&store, "update audit_log set hash = 'x'")
        .await
        .expect_err("a link is set once");
    assert!(refused.to_string().contains("append-only"), "{refused}");
    // The rest of the database is the gateway's to use.
    run(&store, "select count(*) from consult_request")
        .await
        .unwrap();
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
