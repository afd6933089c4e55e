//! An institution's imaging set-up over the API: the test of its DICOM destination (a
//! C-ECHO from the relay to a real DCMTK `storescp`), and the change and removal of its
//! DICOM nodes, which the relay's storage SCP obeys at the next association.

use std::net::SocketAddr;

use duikou_tests::dcmtk::{self, Storescp, free_port};
use duikou_tests::{Backend, TestApp, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_backends!(
    a_destination_that_answers_the_echo_is_reported_with_its_round_trip,
    an_echo_says_when_nobody_listens_or_the_destination_refuses,
    a_changed_or_removed_dicom_node_is_answered_so_at_its_next_association,
    dicom_node_changes_refuse_bad_input_strangers_and_taken_titles,
);

/// Sets institution `id`'s destination to `ae_title` at `addr` as the administrator.
async fn destination(app: &TestApp, id: i64, ae_title: &str, addr: SocketAddr) {
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/institutions/{id}/imaging-destination"),
            Some(&app.admin_token),
            Some(json!({"ae_title": ae_title, "host": addr.ip().to_string(), "port": addr.port()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Tests institution `id`'s destination as `token`.
async fn echo(app: &TestApp, id: i64, token: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/v1/institutions/{id}/imaging-destination/echo"),
        token,
        json!({}),
    )
    .await
}

async fn a_destination_that_answers_the_echo_is_reported_with_its_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tertiary = app.institution_id("江门市中心医院").await;
    let (_, office) = app.user("jm.office", tertiary, &["coordinator"]).await;

    // Nothing set yet: the answer says so, and is no error.
    let (status, report) = echo(&app, tertiary, &office).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], false);
    assert_eq!(report["outcome"], "no-destination");

    let pacs = Storescp::start("JMZX_PACS");
    destination(&app, tertiary, "JMZX_PACS", pacs.addr).await;
    for token in [&office, &app.admin_token] {
        let (status, report) = echo(&app, tertiary, token).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(report["outcome"], "success");
        assert_eq!(report["status"], 0);
        assert_eq!(report["calling_ae_title"], "DUIKOU");
        let ms = report["round_trip_ms"].as_u64().expect("a round trip");
        assert!(ms < 10_000, "{report}");
        assert!(
            report["message"].as_str().unwrap().contains("JMZX_PACS"),
            "{report}"
        );
    }

    // Those who may not set the destination may not test it either.
    let kaiping = app.institution_id("开平市中心医院").await;
    let (_, stranger) = app.user("kp.office", kaiping, &["coordinator"]).await;
    let (_, doctor) = app.user("jm.doctor", tertiary, &["clinician"]).await;
    for token in [&stranger, &doctor] {
        let (status, problem) = echo(&app, tertiary, token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    }
    let (status, problem) = echo(&app, 999_999, &app.admin_token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    app.stop().await;
}

async fn an_echo_says_when_nobody_listens_or_the_destination_refuses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tertiary = app.institution_id("江门市中心医院").await;
    let (_, office) = app.user("jm.office", tertiary, &["coordinator"]).await;

    let closed = SocketAddr::from(([127, 0, 0, 1], free_port()));
    destination(&app, tertiary, "JMZX_PACS", closed).await;
    let (status, report) = echo(&app, tertiary, &office).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["outcome"], "unreachable", "{report}");
    assert_eq!(report["round_trip_ms"], Value::Null);

    // A PACS that refuses the gateway's association (DCMTK's `storescp --refuse`).
    let refusing = Storescp::start_refusing("JMZX_PACS");
    destination(&app, tertiary, "JMZX_PACS", refusing.addr).await;
    let (status, report) = echo(&app, tertiary, &office).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["outcome"], "refused", "{report}");
    assert_eq!(report["reason"], "other", "{report}");
    // The coordinator reads what to check; the administrator also what answered.
    let said = report["message"].as_str().unwrap();
    assert!(said.contains("DUIKOU"), "{report}");
    assert!(!said.contains("association rejected"), "{report}");
    let (_, report) = echo(&app, tertiary, &app.admin_token).await;
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("association rejected"),
        "{report}"
    );

    // Another duikou relay as the PACS, which answers to JMZX_PACS and does not know
    // this gateway: it rejects the calling AE title, and the answer says so.
    let other = TestApp::spawn_with(backend, |c| {
        c.imaging.ae_title = "JMZX_PACS".parse().unwrap();
    })
    .await;
    destination(&app, tertiary, "JMZX_PACS", other.dicom.expect("DICOM")).await;
    let (_, report) = echo(&app, tertiary, &office).await;
    assert_eq!(report["outcome"], "refused", "{report}");
    assert_eq!(report["reason"], "calling-ae-title", "{report}");
    destination(&app, tertiary, "NOT_JMZX", other.dicom.expect("DICOM")).await;
    let (_, report) = echo(&app, tertiary, &office).await;
    assert_eq!(report["reason"], "called-ae-title", "{report}");
    other.stop().await;
    app.stop().await;
}

/// Registers `ae_title` calling from `host` for institution `id`; returns the node.
pub(crate) async fn node(app: &TestApp, id: i64, ae_title: &str, host: &str) -> Value {
    let (status, node) = app
        .post(
            &format!("/api/v1/institutions/{id}/dicom-nodes"),
            &app.admin_token,
            json!({"ae_title": ae_title, "host": host}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    node
}

/// Whether the relay at `relay` takes an association from `calling`.
fn associates(relay: SocketAddr, calling: &str) -> bool {
    dcmtk::echo(relay, calling, "DUIKOU").status.success()
}

async fn nodes(app: &TestApp, id: i64) -> Value {
    let (status, list) = app
        .get(
            &format!("/api/v1/institutions/{id}/dicom-nodes"),
            &app.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list
}

async fn a_changed_or_removed_dicom_node_is_answered_so_at_its_next_association(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let relay = app.dicom.expect("DICOM listens");
    let county = app.institution_id("台山市人民医院").await;
    let (_, office) = app.user("ts.office", county, &["coordinator"]).await;
    let ct = node(&app, county, "TAISHAN_CT", "127.0.0.1").await;
    let path = format!("/api/v1/institutions/{county}/dicom-nodes/{}", ct["id"]);
    assert!(associates(relay, "TAISHAN_CT"));

    // The CT moves to another address: from here it is refused.
    let (status, changed) = app
        .patch(&path, &office, json!({"host": "10.20.30.40"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["host"], "10.20.30.40");
    assert_eq!(changed["ae_title"], "TAISHAN_CT");
    assert!(!associates(relay, "TAISHAN_CT"));

    // Renamed, from any address, and described: the new title is taken, the old one
    // refused.
    let (status, changed) = app
        .patch(
            &path,
            &office,
            json!({"ae_title": "TAISHAN_MR", "host": "*", "description": " 磁共振室 联影 uMR 570 "}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert!(associates(relay, "TAISHAN_MR"));
    assert!(!associates(relay, "TAISHAN_CT"));
    assert_eq!(
        nodes(&app, county).await,
        json!([{"id": ct["id"], "institution_id": county, "ae_title": "TAISHAN_MR", "host": "*", "description": "磁共振室 联影 uMR 570"}])
    );
    // A change that leaves the description out keeps it; an empty one clears it.
    let (_, kept) = app.patch(&path, &office, json!({"host": "*"})).await;
    assert_eq!(kept["description"], "磁共振室 联影 uMR 570");
    let (_, cleared) = app.patch(&path, &office, json!({"description": ""})).await;
    assert_eq!(cleared["description"], "");

    // Removed: refused, and no longer listed.
    let (status, body) = app.call(Method::DELETE, &path, Some(&office), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!associates(relay, "TAISHAN_MR"));
    assert_eq!(nodes(&app, county).await, json!([]));
    let (status, _) = app.call(Method::DELETE, &path, Some(&office), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn dicom_node_changes_refuse_bad_input_strangers_and_taken_titles(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let county = app.institution_id("台山市人民医院").await;
    let kaiping = app.institution_id("开平市中心医院").await;
    let ct = node(&app, county, "TAISHAN_CT", "127.0.0.1").await;
    node(&app, county, "TAISHAN_DR", "*").await;
    let theirs = node(&app, kaiping, "KAIPING_CT", "*").await;
    let path = format!("/api/v1/institutions/{county}/dicom-nodes/{}", ct["id"]);
    let before = (nodes(&app, county).await, nodes(&app, kaiping).await);

    for (body, field) in [
        (json!({"ae_title": ""}), "ae_title"),
        (json!({"ae_title": "WAY_TOO_LONG_AE_TITLE"}), "ae_title"),
        (json!({"ae_title": "BAD\\TITLE"}), "ae_title"),
        (json!({"host": "ct.example"}), "host"),
        (json!({"host": ""}), "host"),
        (json!({"port": 104}), "port"),
        (json!({"ae_title": 7}), "ae_title"),
        (json!({"description": "长".repeat(101)}), "description"),
    ] {
        let (status, problem) = app.patch(&path, &app.admin_token, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    // A title another node has, here or elsewhere.
    for taken in ["TAISHAN_DR", "KAIPING_CT"] {
        let (status, problem) = app
            .patch(&path, &app.admin_token, json!({"ae_title": taken}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    }
    // Another institution's node is not this institution's to change or remove.
    let foreign = format!("/api/v1/institutions/{county}/dicom-nodes/{}", theirs["id"]);
    let (status, _) = app
        .patch(&foreign, &app.admin_token, json!({"host": "*"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(Method::DELETE, &foreign, Some(&app.admin_token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let missing = format!("/api/v1/institutions/{county}/dicom-nodes/999999");
    let (status, _) = app
        .patch(&missing, &app.admin_token, json!({"host": "*"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Neither another institution's coordinator nor the county's clinician.
    let (_, stranger) = app.user("kp.office", kaiping, &["coordinator"]).await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    for token in [&stranger, &doctor] {
        let (status, problem) = app.patch(&path, token, json!({"host": "*"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
        let (status, problem) = app.call(Method::DELETE, &path, Some(token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    }
    assert_eq!(
        (nodes(&app, county).await, nodes(&app, kaiping).await),
        before,
        "nothing changed"
    );
    app.stop().await;
}
