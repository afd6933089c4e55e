//! Lists of requests: in priority order (the inbox's, `000`: urgent first, then remote
//! stations) or newest first (by submission, or creation for drafts), filtered by one
//! state or several, a page at a time; bad values are refused naming the query field. The
//! inbox page shows its two lists a page at a time each, in the browser.

use duikou_tests::browser::{on_backend, run_scenario};
use duikou_tests::{Backend, TestApp, assert_refused, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::requests::{cast, content, draft, free_slot, ok_step};

on_both_backends!(
    lists_come_newest_first_or_by_priority_filtered_by_several_states,
    a_bad_state_or_order_is_refused_naming_the_field,
    a_coordinator_pages_through_both_lists_of_the_inbox,
);

/// The ids of a list of requests, in the order given.
fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

async fn lists_come_newest_first_or_by_priority_filtered_by_several_states(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    // Four requests, made in this order: submitted, urgent and submitted, a draft, and one
    // the supporter accepted; the last made is submitted first.
    let mut made = Vec::new();
    for urgency in ["normal", "urgent", "normal", "normal"] {
        let r = draft(
            &app,
            &c.doctor,
            json!({"kind": "consultation", "urgency": urgency, "content": content()}),
        )
        .await;
        made.push(r["id"].clone());
    }
    for id in [&made[3], &made[0], &made[1]] {
        ok_step(&app, &c.doctor, id, "submit", json!({})).await;
    }
    ok_step(
        &app,
        &c.coordinator,
        &made[3],
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    let made: Vec<i64> = made.iter().map(|v| v.as_i64().unwrap()).collect();
    // By submission, latest first, then the draft (by its creation, before any submission).
    let newest_first = vec![made[1], made[0], made[3], made[2]];
    let list = |query: &str| {
        let (app, path, token) = (&app, format!("/api/v1/requests?{query}"), &c.doctor);
        async move {
            let (status, list) = app.get(&path, token).await;
            assert_eq!(status, StatusCode::OK, "{path}: {list}");
            ids(&list)
        }
    };

    assert_eq!(list("box=outbox&order=newest").await, newest_first);
    // Priority, the default: the urgent one first, then first come (submitted, or for the
    // draft made before those were submitted, created).
    let by_priority = vec![made[1], made[2], made[3], made[0]];
    assert_eq!(list("box=outbox").await, by_priority);
    assert_eq!(list("box=outbox&order=priority").await, by_priority);
    // Pages of the newest first neither repeat nor skip.
    assert_eq!(
        list("box=outbox&order=newest&limit=3").await,
        newest_first[..3]
    );
    assert_eq!(
        list("box=outbox&order=newest&limit=3&offset=3").await,
        newest_first[3..]
    );
    // Several states, comma-separated (spaces around a name are ignored).
    assert_eq!(
        list("box=outbox&state=draft,accepted&order=newest").await,
        [made[3], made[2]]
    );
    assert_eq!(
        list("box=outbox&state=submitted,%20draft").await,
        [made[1], made[2], made[0]]
    );
    // The supporter's inbox, newest first, has what was sent last on top, whenever it was
    // begun; it never shows drafts, even when asked for them.
    let (status, inbox) = app
        .get(
            "/api/v1/requests?box=inbox&state=draft,submitted,accepted&order=newest",
            &c.coordinator,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{inbox}");
    assert_eq!(ids(&inbox), [made[1], made[0], made[3]]);
    app.stop().await;
}

async fn a_bad_state_or_order_is_refused_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    for (query, field, names) in [
        ("state=submitted,finished", "state", "finished"),
        ("state=", "state", "\"\""),
        ("state=submitted,", "state", "\"\""),
        ("state=Submitted", "state", "Submitted"),
        ("order=oldest", "order", "oldest"),
        ("order=newest,priority", "order", "newest,priority"),
        ("box=inbox&order=", "order", "priority"),
    ] {
        let (status, p) = app
            .get(&format!("/api/v1/requests?{query}"), &c.doctor)
            .await;
        assert_refused(
            status,
            &p,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
        );
        assert_eq!(p["field"], field, "{query}: {p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains(names), "{query}: {detail}");
    }
    app.stop().await;
}

/// An account of `institution` with `roles` and a password, for a browser to log in with.
async fn account(app: &TestApp, username: &str, institution: i64, roles: &[&str]) -> Value {
    let body = app
        .account(
            json!({"username": username, "display_name": username, "institution_id": institution,
                        "roles": roles}),
        )
        .await;
    json!({"username": username, "password": body["password"]})
}

async fn a_coordinator_pages_through_both_lists_of_the_inbox(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    // 108 requests, every seventh of those left waiting urgent, sent in the reverse order
    // of their drafting (so that sent last and begun last differ); the 53 begun first
    // accepted.
    let (under_way, waiting) = (53, 55);
    let mut made = Vec::new();
    for n in 0..under_way + waiting {
        let urgency = if n >= under_way && n % 7 == 3 {
            "urgent"
        } else {
            "normal"
        };
        let r = draft(
            &app,
            &c.doctor,
            json!({"kind": "consultation", "urgency": urgency, "content": content()}),
        )
        .await;
        made.push((r["id"].clone(), urgency));
    }
    for (id, _) in made.iter().rev() {
        ok_step(&app, &c.doctor, id, "submit", json!({})).await;
    }
    for (id, _) in &made[..under_way] {
        ok_step(
            &app,
            &c.coordinator,
            id,
            "accept",
            json!({"consultant_id": c.consultant_id}),
        )
        .await;
    }
    // One of them booked: under way still, and coming up on the coordinator's home page.
    let booked = &made[0].0;
    let start = free_slot(&app, &c, 0).await;
    ok_step(
        &app,
        &c.coordinator,
        booked,
        "schedule",
        json!({"start": start}),
    )
    .await;
    let id = |(id, _): &(Value, &str)| id.as_i64().unwrap();
    // Those under way, sent last first: the one begun first.
    let open: Vec<i64> = made[..under_way].iter().map(id).collect();
    // Those waiting: the urgent ones first, each kind first come (begun last).
    let (urgent, normal): (Vec<_>, Vec<_>) = made[under_way..]
        .iter()
        .rev()
        .partition(|(_, urgency)| *urgency == "urgent");
    let waiting: Vec<i64> = urgent.into_iter().chain(normal).map(id).collect();

    let coordinator = account(&app, "jm.desk", c.tertiary, &["coordinator"]).await;
    let out = run_scenario(
        "inbox_list",
        &on_backend("inbox_list", backend),
        &app.base,
        json!({"coordinator": coordinator, "waiting": waiting, "open": open, "booked": booked}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(out, json!({"waiting": 55, "open": 53}));
    app.stop().await;
}
