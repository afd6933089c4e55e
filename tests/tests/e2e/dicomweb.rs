//! DICOMweb: QIDO-RS searches with the matching viewers use, WADO-RS retrieval, metadata
//! with bulk data behind URIs and frames in their stored transfer syntax, STOW-RS upload
//! that is kept and forwarded like a C-STORE, CORS for the configured origins, and access
//! for the two paired institutions only.

use std::path::Path;
use std::time::Duration;

use duikou_tests::dcmtk::{self, Storescp, data_set, pydicom_files};
use duikou_tests::{Backend, TestApp, on_both_backends};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::forwarding::{all_delivered, county_sends_for_reading, send_all, wire};
use crate::requests::{Cast, cast, clinician, content, ok_step, signing, step};

on_both_backends!(
    the_paired_institutions_search_and_read_their_studies_and_nobody_else,
    the_worklist_links_read_requests_and_shows_what_awaits_a_read,
    a_radiologist_accepts_and_signs_a_read_from_her_own_inbox,
    stow_keeps_and_forwards_uploads_and_refuses_what_it_must,
    frames_come_in_their_stored_transfer_syntax,
    cors_admits_the_configured_origins_only,
);

pub(crate) async fn dicomweb(
    app: &TestApp,
    path: &str,
    token: &str,
) -> (StatusCode, String, Vec<u8>) {
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
    let (county, tertiary) = county_sends_for_reading(&app).await;
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
    // Its existence is not theirs to learn: the answer is an unknown study's.
    let (status, _, unknown) = dicomweb(&app, "/studies/1.2.3.4/series", &stranger).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let unknown = String::from_utf8(unknown)
        .unwrap()
        .replace("1.2.3.4", "<study>");
    for path in [
        format!("/studies/{study}/series"),
        format!("/studies/{study}"),
        format!("/studies/{study}/series/{series_uid}/metadata"),
        format!("/studies/{study}/series/{series_uid}/instances/{sop}"),
    ] {
        let (status, _, body) = dicomweb(&app, &path, &stranger).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        if path.ends_with("/series") {
            let body = String::from_utf8(body)
                .unwrap()
                .replace(study.as_str(), "<study>");
            assert_eq!(body, unknown, "{path}");
        }
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

/// Drafts a request for an imaging read with `content`, as the holder of `token`.
async fn read_request(app: &TestApp, token: &str, content: Value) -> (StatusCode, Value) {
    app.post(
        "/api/v1/requests",
        token,
        json!({"kind": "imaging_read", "content": content}),
    )
    .await
}

/// The county's CT (AE title `TAISHAN_CT`, registered here) sends pydicom's `files` to
/// the relay.
pub(crate) async fn county_sends(app: &TestApp, c: &crate::requests::Cast, files: &[&str]) {
    let relay = app.dicom.expect("DICOM listens");
    let (status, node) = app
        .post(
            &format!("/api/v1/institutions/{}/dicom-nodes", c.county),
            &app.admin_token,
            json!({"ae_title": "TAISHAN_CT", "host": "*"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    for name in files {
        let file = pydicom_files().join(name);
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
}

async fn the_worklist_links_read_requests_and_shows_what_awaits_a_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let relay = app.dicom.expect("DICOM listens");
    // Taishan People's Hospital and Jiangmen Central Hospital, paired for consultations
    // and imaging reads; the radiologist 李影像 reads.
    let c = cast(&app).await;
    let (li, reader) = radiologist(&app, &c).await;
    county_sends(&app, &c, &["CT_small.dcm", "MR_small.dcm"]).await;
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
    // pydicom's CT is of another (made-up) patient than the request's: confirmed.
    body["study_patient_confirmed"] = json!(true);
    let (status, r) = read_request(&app, &c.doctor, body).await;
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
        json!({"consultant_id": li}),
    )
    .await;
    let (status, opinion) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/requests/{id}/opinions"),
            Some(&reader),
            Some(json!({"body": "头颅 CT 平扫未见明显出血及占位性病变。"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{opinion}");
    ok_step(&app, &reader, &id, "sign", signing("jm.li")).await;
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
    let (_, r) = read_request(&app, &c.doctor, bad).await;
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

    // A study named by its accession number alone: QIDO finds it by that number (and
    // nothing by another), and a read request giving only the number is linked to it.
    let series_dir = tempfile::tempdir().unwrap();
    let series =
        duikou_imaging::testing::series::ct_series(series_dir.path(), 2, 64, "TS-ACC-0007")
            .unwrap();
    send_all(relay, &series.files);
    let by_number = found(&app, "/studies?AccessionNumber=TS-ACC-0007", &c.doctor).await;
    assert_eq!(by_number.len(), 1, "{by_number:?}");
    assert_eq!(value(&by_number[0], "0020000D"), series.study.as_str());
    assert_eq!(value(&by_number[0], "00080050"), "TS-ACC-0007");
    assert!(
        found(&app, "/studies?AccessionNumber=TS-ACC-0008", &c.doctor)
            .await
            .is_empty()
    );
    let mut body = content();
    body["accession_number"] = json!("TS-ACC-0007");
    let (status, r) = read_request(&app, &c.doctor, body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    ok_step(&app, &c.doctor, &r["id"], "submit", json!({})).await;
    let list = worklist(c.consultant.clone(), "").await;
    let linked = list
        .iter()
        .find(|s| s["study_instance_uid"] == series.study.as_str())
        .expect("the study is on the worklist");
    assert_eq!(linked["request_id"], r["id"], "{linked}");
    assert_eq!(linked["accession_number"], "TS-ACC-0007");
    assert_eq!(linked["awaiting_read"], true);

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

const BOUNDARY: &str = "duikou-test-boundary";

fn stow_body(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(part);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// POSTs `parts` as STOW-RS to `path` (under `/dicomweb`).
pub(crate) async fn stow(
    app: &TestApp,
    path: &str,
    token: &str,
    parts: &[Vec<u8>],
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/dicomweb{path}", app.base))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}"),
        )
        .body(stow_body(parts))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&body).unwrap_or_else(|_| json!(String::from_utf8_lossy(&body))),
    )
}

fn sequence<'a>(answer: &'a Value, tag: &str) -> Vec<&'a Value> {
    answer[tag]["Value"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn sop_of(file: &Path) -> String {
    dcmtk::describe(file).1
}

/// The parts of a `multipart/related` answer.
fn parts_of(content_type: &str, body: &[u8]) -> Vec<Vec<u8>> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .expect("a boundary")
        .trim_matches('"');
    let delimiter = format!("\r\n--{boundary}");
    // The body opens with the delimiter without its leading CRLF.
    let mut text = b"\r\n".to_vec();
    text.extend_from_slice(body);
    let mut parts = Vec::new();
    let mut rest = &text[..];
    while let Some(at) = find(rest, delimiter.as_bytes()) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let headers_end = find(rest, b"\r\n\r\n").expect("part headers") + 4;
        let end = find(&rest[headers_end..], delimiter.as_bytes()).expect("a closing delimiter");
        parts.push(rest[headers_end..headers_end + end].to_vec());
        rest = &rest[headers_end + end..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn stow_keeps_and_forwards_uploads_and_refuses_what_it_must(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let destination = Storescp::start("JMZX_PACS");
    let (county, tertiary) = wire(&app, destination.addr).await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    let (_, radiologist) = app.user("jm.radiology", tertiary, &["radiologist"]).await;
    let dir = pydicom_files();
    let files = [
        dir.join("CT_small.dcm"),
        dir.join("MR_small_jp2klossless.dcm"),
        dir.join("rtdose_rle.dcm"),
    ];
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();

    // The county uploads three instances: all stored, each with its retrieve URL.
    let (status, answer) = stow(&app, "/studies", &doctor, &bytes).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let stored = sequence(&answer, "00081199");
    assert_eq!(stored.len(), 3, "{answer}");
    for (file, item) in files.iter().zip(&stored) {
        assert_eq!(value(item, "00081155"), sop_of(file).as_str());
        assert!(
            value(item, "00081190")
                .as_str()
                .unwrap()
                .contains("/instances/")
        );
    }
    assert!(answer.get("00081198").is_none(), "nothing failed: {answer}");

    // Kept as sent: WADO-RS gives the same data set back, QIDO finds it on both sides.
    let url = value(stored[0], "00081190").as_str().unwrap();
    let path = url.split("/dicomweb").nth(1).unwrap();
    let (status, kind, body) = dicomweb(&app, path, &radiologist).await;
    assert_eq!(status, StatusCode::OK);
    let returned = parts_of(&kind, &body);
    assert_eq!(returned.len(), 1);
    assert_eq!(data_set(&returned[0]), data_set(&bytes[0]), "byte for byte");
    assert_eq!(found(&app, "/studies", &doctor).await.len(), 3);

    // ...and forwarded to the supporter's destination like a C-STORE.
    all_delivered(&app, 3, Duration::from_secs(60)).await;
    for (file, original) in files.iter().zip(&bytes) {
        let received = destination
            .received(&sop_of(file))
            .unwrap_or_else(|| panic!("{} forwarded", file.display()));
        assert_eq!(
            data_set(&std::fs::read(received).unwrap()),
            data_set(original)
        );
    }

    // The same instance again is stored once.
    let (status, answer) = stow(&app, "/studies", &doctor, &bytes[..1]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let ct = found(&app, "/studies?ModalitiesInStudy=CT", &doctor).await;
    assert_eq!(value(&ct[0], "00201208"), 1, "one instance in the CT study");
    let ct_study = value(&ct[0], "0020000D").as_str().unwrap().to_owned();

    // Bad parts fail one by one and leave nothing: a truncated data set, a file without
    // meta, an instance of another study than the URL names; a good part is kept.
    let mr = std::fs::read(dir.join("MR_small.dcm")).unwrap();
    let truncated = mr[..mr.len() - 3000].to_vec();
    let good = std::fs::read(dir.join("SC_rgb_small_odd.dcm")).unwrap();
    let (status, answer) = stow(
        &app,
        "/studies",
        &doctor,
        &[truncated, b"not DICOM at all".to_vec(), good],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let failed = sequence(&answer, "00081198");
    assert_eq!(failed.len(), 2, "{answer}");
    assert_eq!(value(failed[0], "00081197"), 0xC000, "cannot understand");
    assert_eq!(
        value(failed[0], "00081155"),
        sop_of(&dir.join("MR_small.dcm")).as_str()
    );
    assert_eq!(value(failed[1], "00081197"), 0xC000);
    assert_eq!(
        sequence(&answer, "00081199").len(),
        1,
        "the good part is kept"
    );
    let (status, answer) = stow(
        &app,
        &format!("/studies/{ct_study}"),
        &doctor,
        &[std::fs::read(dir.join("MR_small_RLE.dcm")).unwrap()],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "nothing stored: {answer}");
    assert_eq!(
        value(sequence(&answer, "00081198")[0], "00081197"),
        0xA900,
        "not of the study in the URL"
    );
    assert_eq!(
        found(&app, "/studies", &doctor).await.len(),
        4,
        "CT, MR, RT dose, SC"
    );
    assert_eq!(
        duikou_tests::spool_records(&app.db.dir.path().join("dicom")),
        4,
        "the spool holds the stored instances and nothing of the refused ones"
    );

    // Not multipart, or no parts: a problem naming the body.
    let response = app
        .client
        .post(format!("{}/dicomweb/studies", app.base))
        .bearer_auth(&doctor)
        .header("content-type", "application/dicom")
        .body(bytes[0].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["field"], "body");
    let (status, problem) = stow(&app, "/studies", &doctor, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "body");

    // Nobody adds to a study they cannot see: another hospital's radiologist is refused
    // the study's URL, and its instances fail as not authorized; a trainee may not upload.
    let other = app.institution_id("开平市中心医院").await;
    let (_, stranger) = app.user("kp.radiology", other, &["radiologist"]).await;
    let (status, _) = stow(
        &app,
        &format!("/studies/{ct_study}"),
        &stranger,
        &bytes[..1],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = stow(&app, "/studies", &stranger, &bytes[..1]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(value(sequence(&answer, "00081198")[0], "00081197"), 0x0124);
    assert!(found(&app, "/studies", &stranger).await.is_empty());
    let (_, trainee) = app.user("ts.trainee", county, &["trainee"]).await;
    let (status, _) = stow(&app, "/studies", &trainee, &bytes[..1]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

/// Frame `n` of `file` as pydicom reads it: a slice of native pixel data, or the n-th
/// encapsulated frame.
fn pydicom_frame(file: &Path, n: u32) -> Vec<u8> {
    let script = "import sys, pydicom
from pydicom.encaps import generate_frames
d = pydicom.dcmread(sys.argv[1]); n = int(sys.argv[2])
count = int(getattr(d, 'NumberOfFrames', 1) or 1)
if d.file_meta.TransferSyntaxUID.is_compressed:
    frame = list(generate_frames(d.PixelData, number_of_frames=count))[n - 1]
else:
    size = d.Rows * d.Columns * d.SamplesPerPixel * d.BitsAllocated // 8
    frame = d.PixelData[(n - 1) * size:n * size]
sys.stdout.write(frame.hex())";
    let out = dcmtk::python(script, &[file.as_os_str(), n.to_string().as_ref()]);
    hex::decode(out.trim()).unwrap()
}

async fn frames_come_in_their_stored_transfer_syntax(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let county = app.institution_id("台山市人民医院").await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    let dir = pydicom_files();
    // pydicom's rtdose.dcm names another instance in its file meta than in its data set:
    // refused as not matching. A copy with both the same is a native 15-frame instance.
    let (status, answer) = stow(
        &app,
        "/studies",
        &doctor,
        &[std::fs::read(dir.join("rtdose.dcm")).unwrap()],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(value(sequence(&answer, "00081198")[0], "00081197"), 0xA900);
    let scratch = tempfile::tempdir().unwrap();
    let native = scratch.path().join("rtdose_native.dcm");
    dcmtk::python(
        "import sys, pydicom
d = pydicom.dcmread(sys.argv[1])
d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID = '2.25.1234567890123'
d.save_as(sys.argv[2], enforce_file_format=True)",
        &[dir.join("rtdose.dcm").as_os_str(), native.as_os_str()],
    );
    let cases = [
        (native.clone(), vec![2, 15], "1.2.840.10008.1.2.1"),
        (
            dir.join("rtdose_rle.dcm"),
            vec![1, 3],
            "1.2.840.10008.1.2.5",
        ),
        (
            dir.join("examples_ybr_color.dcm"),
            vec![30],
            "1.2.840.10008.1.2.4.50",
        ),
        (dir.join("CT_small.dcm"), vec![1], "1.2.840.10008.1.2.1"),
        // Native big endian data is served little endian, and labelled so.
        (
            dir.join("MR_small_bigendian.dcm"),
            vec![1],
            "1.2.840.10008.1.2.1",
        ),
    ];
    for (file, numbers, ts) in &cases {
        let name = file.file_name().unwrap().to_string_lossy();
        let (status, answer) =
            stow(&app, "/studies", &doctor, &[std::fs::read(file).unwrap()]).await;
        assert_eq!(status, StatusCode::OK, "{name}: {answer}");
        let url = value(sequence(&answer, "00081199")[0], "00081190")
            .as_str()
            .unwrap()
            .to_owned();
        let path = url.split("/dicomweb").nth(1).unwrap();
        let list: Vec<String> = numbers.iter().map(u32::to_string).collect();
        let (status, kind, body) =
            dicomweb(&app, &format!("{path}/frames/{}", list.join(",")), &doctor).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{name}: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(
            kind.starts_with("multipart/related; type=\"application/octet-stream\""),
            "{kind}"
        );
        let parts = parts_of(&kind, &body);
        assert_eq!(parts.len(), numbers.len(), "{name}");
        for (n, part) in numbers.iter().zip(&parts) {
            let mut expected = pydicom_frame(file, *n);
            if name.contains("bigendian") {
                for word in expected.chunks_mut(2) {
                    word.swap(0, 1);
                }
            }
            assert_eq!(part, &expected, "{name} frame {n}");
        }
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains(&format!("transfer-syntax={ts}\r\n")),
            "{name}: each part names its transfer syntax"
        );
    }

    // Frame numbers out of range, or not numbers.
    let rtdose = found(&app, "/studies?ModalitiesInStudy=RTDOSE", &doctor).await;
    let study = value(&rtdose[0], "0020000D").as_str().unwrap().to_owned();
    let instances = found(&app, &format!("/studies/{study}/instances"), &doctor).await;
    let url = value(&instances[0], "00081190")
        .as_str()
        .unwrap()
        .to_owned();
    let path = url.split("/dicomweb").nth(1).unwrap();
    let (status, _, _) = dicomweb(&app, &format!("{path}/frames/16"), &doctor).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for bad in ["0", "x", "1,,2"] {
        let (status, _, body) = dicomweb(&app, &format!("{path}/frames/{bad}"), &doctor).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let problem: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["field"], "frames");
    }
    app.stop().await;
}

async fn cors_admits_the_configured_origins_only(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.http.cors_origins = vec!["https://viewer.example.org".into()];
    })
    .await;
    let url = format!("{}/dicomweb/studies", app.base);
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://viewer.example.org").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://viewer.example.org"
    );
    assert!(
        allowed.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let refused = preflight("https://elsewhere.example.com").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let county = app.institution_id("台山市人民医院").await;
    let (_, doctor) = app.user("ts.doctor", county, &["clinician"]).await;
    let response = app
        .client
        .get(&url)
        .bearer_auth(&doctor)
        .header("origin", "https://viewer.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://viewer.example.org"
    );
    app.stop().await;

    // Without the setting, no origin is allowed.
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .get(format!("{}/dicomweb/studies", app.base))
        .header("origin", "https://viewer.example.org")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    app.stop().await;
}

/// 李影像, a chief radiologist of the supporting hospital: her clinician id and the token of
/// her account `jm.li`, which holds the radiologist role only.
async fn radiologist(app: &TestApp, c: &Cast) -> (i64, String) {
    let li = clinician(
        app,
        c.tertiary,
        "李影像",
        "主任医师",
        Some("110440700000321"),
        15,
    )
    .await;
    let account = app
        .account(
            json!({"username": "jm.li", "display_name": "李影像", "institution_id": c.tertiary,
                        "clinician_id": li, "roles": ["radiologist"]}),
        )
        .await;
    let token = app
        .login("jm.li", account["password"].as_str().unwrap())
        .await;
    (li, token)
}

async fn a_radiologist_accepts_and_signs_a_read_from_her_own_inbox(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    county_sends(&app, &c, &["CT_small.dcm"]).await;
    // 李主任 of the radiology department reads; her account holds the radiologist role only.
    let (li, radiologist) = radiologist(&app, &c).await;
    let (_, trainee) = app.user("jm.trainee", c.tertiary, &["trainee"]).await;
    let (_, worklist) = app.get("/api/v1/imaging/worklist", &radiologist).await;
    let study = worklist[0]["study_instance_uid"].clone();

    let mut body = content();
    body["study_instance_uid"] = study;
    // The test series is of another (made-up) patient than the request's: confirmed.
    body["study_patient_confirmed"] = json!(true);
    let (status, r) = read_request(&app, &c.doctor, body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    let id = r["id"].clone();
    ok_step(&app, &c.doctor, &id, "submit", json!({})).await;

    // It waits in her inbox, and she was told.
    let (_, inbox) = app
        .get("/api/v1/requests?box=inbox&state=submitted", &radiologist)
        .await;
    assert!(
        inbox.as_array().unwrap().iter().any(|x| x["id"] == id),
        "{inbox}"
    );
    let (_, summary) = app.get("/api/v1/notifications/summary", &radiologist).await;
    assert_eq!(
        (summary["inbox"].as_i64(), summary["unread"].as_i64()),
        (Some(1), Some(1)),
        "{summary}"
    );

    // A trainee of the hospital is refused for the real reason: the role, not the place.
    let (status, p) = step(&app, &trainee, &id, "accept", json!({"consultant_id": li})).await;
    duikou_tests::assert_refused(status, &p, StatusCode::FORBIDDEN, "wrong-role");
    // A read goes to a radiologist: the cardiologist 林主任 is not assigned one.
    let (status, p) = step(
        &app,
        &c.coordinator,
        &id,
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    duikou_tests::assert_refused(
        status,
        &p,
        StatusCode::UNPROCESSABLE_ENTITY,
        "consultant-not-qualified",
    );
    assert_eq!(p["field"], "consultant_id", "{p}");

    ok_step(
        &app,
        &radiologist,
        &id,
        "accept",
        json!({"consultant_id": li}),
    )
    .await;
    let (status, opinion) = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/requests/{id}/opinions"),
            Some(&radiologist),
            Some(json!({"body": "头颅 CT 平扫未见明显出血及占位性病变。"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{opinion}");
    let signed = ok_step(&app, &radiologist, &id, "sign", signing("jm.li")).await;
    assert_eq!(signed["state"], "opinion_signed");

    // A consultation is not hers to accept.
    let (_, consult) = app
        .post(
            "/api/v1/requests",
            &c.doctor,
            json!({"kind": "consultation", "content": content()}),
        )
        .await;
    ok_step(&app, &c.doctor, &consult["id"], "submit", json!({})).await;
    let (status, p) = step(
        &app,
        &radiologist,
        &consult["id"],
        "accept",
        json!({"consultant_id": c.consultant_id}),
    )
    .await;
    duikou_tests::assert_refused(status, &p, StatusCode::FORBIDDEN, "wrong-role");
    assert!(p["detail"].as_str().unwrap().contains("clinicians"), "{p}");
    app.stop().await;
}
