//! The audit log as a hash chain: the database refuses to change or delete an entry, and
//! `duikou audit verify` finds the first entry where someone who went past the triggers
//! (the database's owner) changed, removed or moved one.

use duikou::audit::{Verdict, verify};
use duikou::store::{Db, Store};
use duikou_tests::{Backend, TestApp, duikou_binary, on_both_backends};
use reqwest::StatusCode;
use serde_json::json;

use crate::requests::{cast, content, draft};

on_both_backends!(the_audit_chain_shows_where_an_entry_was_changed_removed_or_moved);

/// `duikou audit verify` on the test's database: its exit code and what it printed.
fn audit_verify(app: &TestApp) -> (Option<i32>, String) {
    let out = std::process::Command::new(duikou_binary())
        .args(["audit", "verify"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DUIKOU_DATA_DIR", app.db.dir.path())
        .env("DUIKOU_DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
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
