//! `duikou demo`: on an empty directory it builds a demonstration program for today and
//! prints an account for each role, whose home pages show their demonstration work; it
//! starts again on its own directory and refuses one with real data.

use duikou_tests::browser::{on_backend, run_scenario};
use duikou_tests::{Backend, TestApp, TestDb, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(the_demo_shows_every_role_its_work_and_refuses_a_directory_with_real_data);

async fn the_demo_shows_every_role_its_work_and_refuses_a_directory_with_real_data(
    backend: Backend,
) {
    let db = TestDb::new(backend).await.unwrap();
    let config = db.config();
    let (prepared, built) = duikou::demo::prepare(config.clone()).await.unwrap();
    let built = built.expect("built on an empty directory");
    let store = prepared.store.clone();
    let app = TestApp::serve(db, prepared, None);
    duikou::demo::upload_study(&store, &config.booking, &built, &app.base)
        .await
        .unwrap();
    let accounts: Vec<(&str, &str)> = built
        .accounts
        .iter()
        .map(|a| (a.username.as_str(), a.password.as_str()))
        .collect();
    assert_eq!(accounts.len(), 7, "an account for each role at both ends");
    let password = |name: &str| {
        accounts
            .iter()
            .find(|(u, _)| *u == name)
            .map(|(_, p)| *p)
            .unwrap()
    };
    // What each role's home page shows of the demonstration.
    let home = |username: &str, ready: &str, shows: &str| json!({"username": username, "password": password(username), "ready": ready, "shows": shows});
    let pages: Vec<Value> = vec![
        home("demo.admin", "#setup", "开通检查清单"),
        home("jm.office", "#upcoming li", "会诊申请"),
        home("jm.lin", "#upcoming li[data-room^=teaching]", "急性脑卒中"),
        home("jm.wang", "#reads a", "1 例影像等待您阅片"),
        home("ts.li", "#upcoming li[data-room^=consultation]", "会诊申请"),
        home("ts.office", "#setup", "开通检查清单"),
        home("ts.trainee", "#upcoming li", "急性脑卒中"),
    ];
    let out = run_scenario(
        "demo",
        &on_backend("demo", backend),
        &app.base,
        json!({"accounts": pages}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(out["seen"].as_array().unwrap().len(), 7);
    // Every main page each of them opens is in Chinese, with no English word.
    let everyone: Vec<Value> = accounts
        .iter()
        .map(|(username, password)| json!({"username": username, "password": password}))
        .collect();
    let out = run_scenario(
        "chinese_pages",
        &on_backend("chinese_pages", backend),
        &app.base,
        json!({"accounts": everyone}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let seen = out["seen"].as_array().unwrap();
    for page in [
        "/home",
        "/requests",
        "/inbox",
        "/worklist",
        "/program",
        "/audit",
        "/teaching",
        "/manage/pairings",
    ] {
        assert!(seen.iter().any(|p| p == page), "{page} was checked: {out}");
    }
    assert!(
        seen.iter()
            .any(|p| p.as_str().unwrap().starts_with("/viewer/")),
        "{out}"
    );
    assert!(
        seen.iter()
            .any(|p| p.as_str().unwrap().starts_with("/requests/") && p != "/requests/new"),
        "{out}"
    );
    // The county doctor's requests stand in each main state.
    let doctor = app.login("ts.li", password("ts.li")).await;
    let (status, requests) = app.get("/api/v1/requests?box=outbox", &doctor).await;
    assert_eq!(status, StatusCode::OK);
    let mut states: Vec<&str> = requests
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    states.sort_unstable();
    assert_eq!(
        states,
        [
            "declined",
            "draft",
            "opinion_signed",
            "scheduled",
            "submitted",
            "submitted"
        ]
    );
    let db = app.stop_keeping_data().await;

    // On its own directory it starts again without building twice.
    let (prepared, again) = duikou::demo::prepare(db.config()).await.unwrap();
    assert!(again.is_none(), "the demonstration is built once");
    assert!(prepared.store.is_demo().await.unwrap());
    prepared.store.close().await;

    // A real installation is refused, and its data is untouched.
    let real = TestApp::spawn(backend).await;
    let before = real.db.snapshot().await.unwrap();
    let refused = duikou::demo::prepare(real.db.config()).await;
    let error = format!("{:#}", refused.err().expect("refused"));
    assert!(error.contains("real installation"), "{error}");
    assert_eq!(real.db.snapshot().await.unwrap(), before);
    let (status, _) = real.get("/api/v1/me", &real.admin_token).await;
    assert_eq!(status, StatusCode::OK, "the real gateway still answers");
    real.stop().await;
}
