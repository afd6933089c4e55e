//! DICOMweb for reading: QIDO-RS searches with the matching viewers use, WADO-RS
//! retrieval and metadata with bulk data behind URIs, and access for the two paired
//! institutions only (issue 5).

use duikou_tests::dcmtk::{self, data_set, pydicom_files};
use duikou_tests::{Backend, TestApp, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::requests::{cast, content, ok_step, pair};

on_both_backends!(
    the_paired_institutions_search_and_read_their_studies_and_nobody_else,
    the_worklist_links_read_requests_and_shows_what_awaits_a_read,
);

async fn dicomweb(app: &TestApp, path: &str, token: &str) -> (StatusCode, String, Vec<u8>) {
    let response = app
        .client
        .get(format!("{}/dicomweb{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.bytes().await.unwrap().to_vec())
}

async fn found(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let (status, kind, body) = dicomweb(app, path, token).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(kind, "application/dicom+json");
    serde_json::from_slice::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn value<'a>(object: &'a Value, tag: &str) -> &'a Value {
    &object[tag]["Value"][0]
}

async fn the_paired_institutions_search_and_read_their_studies_and_nobody_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let relay = app.dicom.expect("DICOM listens");
    let county = app.institution_id("台山市人民医院").await;
    let tertiary = app.institution_id("江门市中心医院").await;
    pair(&app, tertiary, county, json!(["imaging_read"])).await;
    let (status, node) = app
        .post(
            &format!("/api/v1/institutions/{county}/dicom-nodes"),
            &app.admin_token,
            json!({"ae_title": "TAISHAN_CT", "host": "*"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    let dir = pydicom_files();
    let files = [
        dir.join("CT_small.dcm"),
        dir.join("MR_small.dcm"),
        dir.join("test-SR.dcm"),
    ];
    for file in &files {
        let (ts, _) = dcmtk::describe(file);
        let sent = dcmtk::store(
            relay,
            "TAISHAN_CT",
            "DUIKOU",
            &ts,
            std::slice::from_ref(file),
        );
        assert!(
            sent.status.success(),
            "{}",
            String::from_utf8_lossy(&sent.stderr)
        );
    }
    let (_, radiologist) = app.user("jm.radiology", tertiary, &["radiologist"]).await;
    let (_, county_doctor) = app.user("ts.doctor", county, &["clinician"]).await;

    // Both sides find the three studies.
    for token in [&radiologist, &county_doctor] {
        assert_eq!(found(&app, "/studies", token).await.len(), 3);
    }
    let ct = found(&app, "/studies?ModalitiesInStudy=CT", &radiologist).await;
    assert_eq!(ct.len(), 1);
    let study = value(&ct[0], "0020000D").as_str().unwrap().to_owned();
    assert_eq!(
        value(&ct[0], "00201208"),
        1,
        "NumberOfStudyRelatedInstances"
    );
    assert!(
        ct[0]["00081190"]["Value"][0]
            .as_str()
            .unwrap()
            .ends_with(&study)
    );
    let name = value(&ct[0], "00100010")["Alphabetic"]
        .as_str()
        .unwrap()
        .to_owned();
    let prefix = format!("{}*", &name[..4].to_lowercase());
    assert!(
        found(
            &app,
            &format!("/studies?PatientName={prefix}"),
            &radiologist
        )
        .await
        .iter()
        .any(|s| value(s, "0020000D") == study.as_str())
    );
    assert!(
        found(&app, "/studies?PatientName=nobody*", &radiologist)
            .await
            .is_empty()
    );
    let date = value(&ct[0], "00080020").as_str().unwrap().to_owned();
    let in_range = found(
        &app,
        &format!("/studies?StudyDate={date}-{date}"),
        &radiologist,
    )
    .await;
    assert!(
        in_range
            .iter()
            .any(|s| value(s, "0020000D") == study.as_str())
    );
    let before = found(&app, "/studies?StudyDate=-19000101", &radiologist).await;
    assert!(before.is_empty());
    assert_eq!(found(&app, "/studies?limit=2", &radiologist).await.len(), 2);
    assert_eq!(
        found(&app, "/studies?limit=2&offset=2", &radiologist)
            .await
            .len(),
        1
    );

    let series = found(&app, &format!("/studies/{study}/series"), &radiologist).await;
    assert_eq!(series.len(), 1);
    let series_uid = value(&series[0], "0020000E").as_str().unwrap().to_owned();
    assert_eq!(
        value(&series[0], "00201209"),
        1,
        "NumberOfSeriesRelatedInstances"
    );
    let instances = found(
        &app,
        &format!("/studies/{study}/series/{series_uid}/instances"),
        &radiologist,
    )
    .await;
    let sop = value(&instances[0], "00080018")
        .as_str()
        .unwrap()
        .to_owned();

    // WADO-RS: the instance as stored, in a multipart answer.
    let (status, kind, body) = dicomweb(
        &app,
        &format!("/studies/{study}/series/{series_uid}/instances/{sop}"),
        &radiologist,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        kind.starts_with("multipart/related; type=\"application/dicom\""),
        "{kind}"
    );
    let original = std::fs::read(&files[0]).unwrap();
    let original_data = data_set(&original);
    assert!(
        body.windows(original_data.len().min(2000))
            .any(|w| w == &original_data[..original_data.len().min(2000)]),
        "the data set is in the answer"
    );
    let (status, _, whole) = dicomweb(&app, &format!("/studies/{study}"), &radiologist).await;
    assert_eq!(status, StatusCode::OK);
    assert!(whole.len() >= body.len(), "the study holds the instance");

    // Metadata: every attribute, bulk data by URI only.
    let metadata = found(
        &app,
        &format!("/studies/{study}/series/{series_uid}/metadata"),
        &radiologist,
    )
    .await;
    assert_eq!(metadata.len(), 1);
    let text = metadata[0].to_string();
    assert!(!text.contains("InlineBinary"), "no bulk data inline");
    let uri = metadata[0]["7FE00010"]["BulkDataURI"]
        .as_str()
        .expect("pixel data by URI")
        .to_owned();
    assert_eq!(value(&metadata[0], "00080018"), sop.as_str());
    let path = uri.split("/dicomweb").nth(1).unwrap().to_owned();
    let (status, kind, pixels) = dicomweb(&app, &path, &radiologist).await;
    assert_eq!(status, StatusCode::OK, "{uri}");
    assert!(kind.contains("application/octet-stream"));
    let rows = value(&metadata[0], "00280010").as_u64().unwrap() as usize;
    let columns = value(&metadata[0], "00280011").as_u64().unwrap() as usize;
    assert!(pixels.len() >= rows * columns * 2, "the pixel data itself");

    // Nobody else: another hospital's radiologist, a trainee of the county.
    let other = app.institution_id("开平市中心医院").await;
    let (_, stranger) = app.user("kp.radiology", other, &["radiologist"]).await;
    assert!(found(&app, "/studies", &stranger).await.is_empty());
    for path in [
        format!("/studies/{study}/series"),
        format!("/studies/{study}"),
        format!("/studies/{study}/series/{series_uid}/metadata"),
        format!("/studies/{study}/series/{series_uid}/instances/{sop}"),
    ] {
        let (status, _, _) = dicomweb(&app, &path, &stranger).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (_, trainee) = app.user("ts.trainee", county, &["trainee"]).await;
    let (status, _, _) = dicomweb(&app, "/studies", &trainee).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = dicomweb(&app, "/studies/1.2.3.4/series", &radiologist).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Bad queries name the parameter.
    for (query, key) in [
        ("Colour=red", "Colour"),
        ("StudyDate=yesterday", "StudyDate"),
        ("limit=many", "limit"),
    ] {
        let (status, _, body) = dicomweb(&app, &format!("/studies?{query}"), &radiologist).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let problem: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["field"], key);
    }
    app.stop().await;
}

async fn the_worklist_links_read_requests_and_shows_what_awaits_a_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let relay = app.dicom.expect("DICOM listens");
    // Taishan People's Hospital and Jiangmen Central Hospital, paired for consultations
    // and imaging reads; 林主任 reads.
    let c = cast(&app).await;
    let (status, node) = app
        .post(
            &format!("/api/v1/institutions/{}/dicom-nodes", c.county),
            &app.admin_token,
            json!({"ae_title": "TAISHAN_CT", "host": "*"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    let dir = pydicom_files();
    for file in [dir.join("CT_small.dcm"), dir.join("MR_small.dcm")] {
        let (ts, _) = dcmtk::describe(&file);
        let sent = dcmtk::store(
            relay,
            "TAISHAN_CT",
            "DUIKOU",
            &ts,
            std::slice::from_ref(&file),
        );
        assert!(sent.status.success());
    }
    let worklist = |token: String, query: &'static str| {
        let app = &app;
        async move {
            let (status, list) = app
                .get(&format!("/api/v1/imaging/worklist{query}"), &token)
                .await;
            assert_eq!(status, StatusCode::OK, "{list}");
            list.as_array().unwrap().clone()
        }
    };
    let list = worklist(c.consultant.clone(), "").await;
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|s| s["awaiting_read"] == true && s["request_id"].is_null())
    );
    let ct = list
        .iter()
        .find(|s| s["modalities"] == json!(["CT"]))
        .unwrap();
    let study = ct["study_instance_uid"].as_str().unwrap().to_owned();
    assert_eq!(ct["source_institution_id"], c.county);

    // The county asks for a read of the CT by its Study Instance UID.
    let mut body = content();
    body["study_instance_uid"] = json!(study);
    let (status, r) = app
        .post(
            "/api/v1/requests",
            &c.doctor,
            json!({"kind": "imaging_read", "content": body}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    let id = r["id"].clone();
    ok_step(&app, &c.doctor, &id, "submit", json!({})).await;
    let list = worklist(c.consultant.clone(), "").await;
    let ct = list
        .iter()
        .find(|s| s["study_instance_uid"] == study.as_str())
        .unwrap();
    assert_eq!(ct["request_id"], id);
    assert_eq!(ct["request_state"], "submitted");
    assert_eq!(ct["awaiting_read"], true);

    // The radiologist reads it; the signed report is the request's opinion.
    ok_step(
        &app,
        &c.coordinator,
        &id,
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    let (status, opinion) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/requests/{id}/opinions"),
            Some(&c.consultant),
            Some(json!({"body": "头颅 CT 平扫未见明显出血及占位性病变。"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{opinion}");
    ok_step(&app, &c.consultant, &id, "sign", json!({})).await;
    let awaiting = worklist(c.consultant.clone(), "?awaiting=true").await;
    assert_eq!(awaiting.len(), 1, "only the MR still awaits a read");
    assert_ne!(awaiting[0]["study_instance_uid"], study.as_str());
    let (_, opinions) = app
        .get(&format!("/api/v1/requests/{id}/opinions"), &c.doctor)
        .await;
    assert_eq!(
        opinions[0]["status"], "signed",
        "the county sees the signed read"
    );

    // A malformed study reference stops submission, naming the field.
    let mut bad = content();
    bad["study_instance_uid"] = json!("not a uid");
    let (_, r) = app
        .post(
            "/api/v1/requests",
            &c.doctor,
            json!({"kind": "imaging_read", "content": bad}),
        )
        .await;
    let (status, problem) = app
        .post(
            &format!("/api/v1/requests/{}/submit", r["id"]),
            &c.doctor,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem.to_string().contains("study_instance_uid"),
        "{problem}"
    );

    // The worklist is the reading side's; a trainee gets none.
    let (_, trainee) = app.user("jm.trainee", c.tertiary, &["trainee"]).await;
    let (status, _) = app.get("/api/v1/imaging/worklist", &trainee).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let county_side = worklist(c.doctor.clone(), "").await;
    assert!(
        county_side.is_empty(),
        "nothing was forwarded to the county"
    );
    app.stop().await;
}
