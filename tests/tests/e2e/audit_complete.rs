//! Every access and change leaves its audit entry with who, role, institution, client
//! address, what (by id or UID, with the patient), and whether it was allowed; and the
//! administrators' audit log is filtered and exported as CSV, the export itself audited.

use duikou_tests::{Backend, TestApp, on_both_backends, urlencode};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dicomweb::{county_sends, dicomweb};
use crate::requests::{cast, content, draft};

on_both_backends!(
    reads_searches_and_changes_are_audited_with_object_patient_and_address,
    the_audit_log_is_filtered_and_exported_for_supervisors,
);

/// The audit entries `query` chooses, newest first.
async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/api/v1/audit?{query}"), &app.admin_token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

async fn reads_searches_and_changes_are_audited_with_object_patient_and_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;

    // A request read: by id, with its patient, from the doctor's address.
    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    let (status, _) = app
        .get(&format!("/api/v1/requests/{}", r["id"]), &c.doctor)
        .await;
    assert_eq!(status, StatusCode::OK);
    let read = audit(
        &app,
        &format!("object_kind=request&object_id={}&action=read", r["id"]),
    )
    .await;
    let entry = &read[0];
    assert_eq!(entry["patient"], "王某某", "{entry}");
    assert_eq!(entry["client"], "127.0.0.1", "{entry}");
    assert_eq!(entry["institution_id"], c.county, "{entry}");
    assert_eq!(entry["roles"], "clinician", "{entry}");
    assert_eq!(entry["outcome"], "allowed");

    // A study read over DICOMweb names the study by UID and its patient; a search names
    // its query and how many it answered.
    county_sends(&app, &c, &["CT_small.dcm"]).await;
    let (_, coordinator) = app.user("ts.office", c.county, &["coordinator"]).await;
    let (status, _, body) = dicomweb(&app, "/studies?PatientName=Compressed*", &coordinator).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let studies: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(studies.len(), 1);
    let uid = studies[0]["0020000D"]["Value"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let searched = audit(&app, "object_kind=study&action=search").await;
    assert_eq!(searched.len(), 1, "{searched:?}");
    let detail = searched[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("PatientName=Compressed*") && detail.ends_with("1 answered"),
        "{detail}"
    );
    assert_eq!(searched[0]["patient"], "Compressed*");
    assert_eq!(searched[0]["client"], "127.0.0.1");

    let (status, _, _) = dicomweb(&app, &format!("/studies/{uid}/metadata"), &coordinator).await;
    assert_eq!(status, StatusCode::OK);
    let read = audit(&app, "object_kind=study&action=read").await;
    assert_eq!(read[0]["object_ref"], uid.as_str(), "{:?}", read[0]);
    assert_eq!(read[0]["patient"], "CompressedSamples^CT1");
    assert_eq!(read[0]["outcome"], "allowed");
    // Another county asks for it: refused, and recorded with the UID asked for and
    // nothing of the patient.
    let other = app.institution_id("开平市中心医院").await;
    let (_, stranger) = app.user("kp.office", other, &["coordinator"]).await;
    let (status, _, _) = dicomweb(&app, &format!("/studies/{uid}/metadata"), &stranger).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let refused = audit(&app, "object_kind=study&action=read&outcome=denied").await;
    assert_eq!(refused[0]["object_ref"], uid.as_str());
    assert_eq!(refused[0]["institution_id"], other);
    assert!(refused[0]["patient"].is_null(), "{:?}", refused[0]);

    // Changes of configuration: a DICOM node (named in the answer of its creation), its
    // removal, the webhook, an institution's change and a refused one.
    let (status, node) = app
        .post(
            &format!("/api/v1/institutions/{}/dicom-nodes", c.county),
            &app.admin_token,
            json!({"ae_title": "TAISHAN_MR", "host": "*"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    let created = audit(&app, "object_kind=dicom_node&action=create").await;
    assert_eq!(created.len(), 2, "both nodes: {created:?}");
    assert_eq!(created[0]["object_id"], node["id"]);
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!(
                "/api/v1/institutions/{}/dicom-nodes/{}",
                c.county, node["id"]
            ),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    let deleted = audit(&app, "object_kind=dicom_node&action=delete").await;
    assert_eq!(deleted[0]["object_id"], node["id"]);
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/institutions/{}/webhook", c.county),
            Some(&app.admin_token),
            Some(
                json!({"url": "https://hooks.example.cn/duikou", "secret": "s3cret-s3cret-s3cret"}),
            ),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let webhook = audit(&app, "object_kind=webhook").await;
    assert_eq!(webhook[0]["object_id"], c.county);
    assert_eq!(webhook[0]["outcome"], "allowed");
    let (status, _) = app
        .patch(
            &format!("/api/v1/institutions/{}", c.county),
            &c.doctor,
            json!({"name": "台山市人民医院（新院区）"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let refused = audit(&app, "object_kind=institution&outcome=denied").await;
    assert_eq!(refused[0]["object_id"], c.county);
    assert_eq!(refused[0]["detail"], "answered 403");
    assert_eq!(refused[0]["roles"], "clinician");

    // An export of a report is audited as one.
    let (_, pairings) = app.get("/api/v1/pairings", &app.admin_token).await;
    let pairing = pairings[0]["id"].as_i64().unwrap();
    let csv = app
        .client
        .get(format!(
            "{}/api/v1/reports/pairings/{pairing}?period={year}&format=csv",
            app.base,
            year = chrono::Utc::now().format("%Y")
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let exported = audit(&app, "object_kind=report&action=export").await;
    assert_eq!(exported[0]["object_id"], pairing);

    // Someone not an administrator is refused the log, and that is audited too.
    let (status, _) = app.get("/api/v1/audit", &coordinator).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let refused = audit(&app, "object_kind=audit&outcome=denied").await;
    assert_eq!(refused[0]["institution_id"], c.county);
}

async fn the_audit_log_is_filtered_and_exported_for_supervisors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    let r = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    let path = format!("/api/v1/requests/{}", r["id"]);
    let (status, _) = app.get(&path, &c.doctor).await;
    assert_eq!(status, StatusCode::OK);
    let other = app.institution_id("开平市中心医院").await;
    let (stranger_id, stranger) = app.user("kp.zhou", other, &["clinician"]).await;
    let (status, _) = app.get(&path, &stranger).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // By patient (part of the name), by outcome, user and institution together.
    let about = audit(&app, &format!("patient={}", urlencode("某某"))).await;
    assert!(about.len() >= 3, "create, read, refused read: {about:?}");
    assert!(about.iter().all(|e| e["patient"] == "王某某"));
    let refused = audit(
        &app,
        &format!("outcome=denied&user_id={stranger_id}&institution_id={other}"),
    )
    .await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["object_id"], r["id"]);
    assert_eq!(refused[0]["user_name"], "kp.zhou");
    assert!(
        audit(&app, &format!("patient={}", urlencode("李某")))
            .await
            .is_empty()
    );
    // A literal percent sign matches only itself.
    assert!(audit(&app, "patient=%25").await.is_empty());

    // By dates, China days: today holds them all, yesterday none.
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let yesterday = today.pred_opt().unwrap();
    let all = audit(&app, "limit=1000").await;
    assert_eq!(
        audit(&app, &format!("since={today}&until={today}&limit=1000"))
            .await
            .len(),
        all.len()
    );
    assert!(audit(&app, &format!("until={yesterday}")).await.is_empty());
    // By action.
    let reads = audit(&app, "action=read&object_kind=request").await;
    assert_eq!(reads.len(), 2, "{reads:?}");

    // Bad filters are refused naming the field.
    for (query, field) in [
        ("since=yesterday", "since"),
        (&format!("since={today}&until={yesterday}") as &str, "until"),
        ("format=xml", "format"),
        ("format=csv&limit=10", "limit"),
        ("outcome=maybe", "outcome"),
        ("colour=red", "colour"),
    ] {
        let (status, problem) = app
            .get(&format!("/api/v1/audit?{query}"), &app.admin_token)
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {problem}"
        );
        assert!(problem.to_string().contains(field), "{query}: {problem}");
    }

    // The CSV export holds exactly what the filter chooses, and is itself audited.
    let response = app
        .client
        .get(format!(
            "{}/api/v1/audit?format=csv&patient={}",
            app.base,
            urlencode("王某某")
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    let patient = headers.iter().position(|h| h == "patient").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), about.len());
    assert!(rows.iter().all(|r| &r[patient] == "王某某"));
    let exports = audit(&app, "object_kind=audit&action=export").await;
    assert_eq!(exports.len(), 1);
    let detail = exports[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(&format!("{} entries; patient=王某某", rows.len())),
        "{detail}"
    );
}
