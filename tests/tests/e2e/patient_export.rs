//! The patient's copy: everything held about one patient (requests with their steps,
//! opinions and attachments, their studies' index, who read them) as a zip with a
//! manifest, from an administrator's API call or `duikou export patient`; nothing of
//! another patient, even one of the same name; audited both ways.

use std::collections::HashMap;
use std::io::Read as _;

use duikou_tests::dcmtk::{self, python};
use duikou_tests::{Backend, TestApp, duikou_binary, on_both_backends, urlencode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::dicomweb::dicomweb;
use crate::requests::{cast, content, draft, upload};

on_both_backends!(a_patients_copy_holds_every_record_of_theirs_and_nothing_of_another);

/// The files of a zip, by path.
fn unzipped(bytes: &[u8]) -> HashMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut files = HashMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        files.insert(f.name().to_owned(), data);
    }
    files
}

/// CT_small.dcm as a study of `name` born `birth` (UTF-8 names), with its own UIDs.
fn study_of(dir: &std::path::Path, n: u32, name: &str, birth: &str) -> std::path::PathBuf {
    let out = dir.join(format!("study-{n}.dcm"));
    python(
        "import sys, pydicom
d = pydicom.dcmread(sys.argv[1])
d.SpecificCharacterSet = 'ISO_IR 192'
d.PatientName = sys.argv[3]
d.PatientBirthDate = sys.argv[4]
d.PatientID = 'TS' + sys.argv[5]
d.StudyInstanceUID = '2.25.8800' + sys.argv[5]
d.SeriesInstanceUID = '2.25.8800' + sys.argv[5] + '.1'
d.SOPInstanceUID = '2.25.8800' + sys.argv[5] + '.1.1'
d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID
d.save_as(sys.argv[2])",
        &[
            dcmtk::pydicom_files()
                .join("CT_small.dcm")
                .display()
                .to_string(),
            out.display().to_string(),
            name.to_owned(),
            birth.to_owned(),
            n.to_string(),
        ],
    );
    out
}

async fn a_patients_copy_holds_every_record_of_theirs_and_nothing_of_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = cast(&app).await;
    // 王某某, born 1958-03-02: a request with a scanned consent.
    let mine = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": content()}),
    )
    .await;
    let scan = b"%PDF-1.4 the consent of the patient";
    let (status, attached) = upload(&app, &c.doctor, &mine["id"], "application/pdf", scan).await;
    assert_eq!(status, StatusCode::CREATED, "{attached}");
    let (status, _) = app
        .get(&format!("/api/v1/requests/{}", mine["id"]), &c.doctor)
        .await;
    assert_eq!(status, StatusCode::OK);
    // Another 王某某, born 1960, with an identity number of his own; and 李某某.
    let mut namesake = content();
    namesake["patient"]["birth_date"] = json!("1960-01-01");
    namesake["patient"]["id_number"] = json!("440781196001010012");
    let theirs = draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": namesake}),
    )
    .await;
    let mut other = content();
    other["patient"]["name"] = json!("李某某");
    draft(
        &app,
        &c.doctor,
        json!({"kind": "consultation", "content": other}),
    )
    .await;

    // Their studies: one of his, one of the namesake's.
    let dir = tempfile::tempdir().unwrap();
    let relay = app.dicom.expect("DICOM listens");
    let (status, node) = app
        .post(
            &format!("/api/v1/institutions/{}/dicom-nodes", c.county),
            &app.admin_token,
            json!({"ae_title": "TAISHAN_CT", "host": "*"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
    for file in [
        study_of(dir.path(), 1, "WANG^MOUMOU=王某某", "19580302"),
        study_of(dir.path(), 2, "王某某", "19600101"),
    ] {
        let (ts, _) = dcmtk::describe(&file);
        let sent = dcmtk::store(relay, "TAISHAN_CT", "DUIKOU", &ts, &[file]);
        assert!(sent.status.success(), "{sent:?}");
    }
    let (_, coordinator) = app.user("ts.office", c.county, &["coordinator"]).await;
    for study in ["2.25.88001", "2.25.88002"] {
        let (status, _, _) =
            dicomweb(&app, &format!("/studies/{study}/metadata"), &coordinator).await;
        assert_eq!(status, StatusCode::OK);
    }

    // The administrator's copy.
    let query = format!(
        "name={}&birth_date=1958-03-02&id_number=440781195803020011",
        urlencode("王某某")
    );
    let response = app
        .client
        .get(format!("{}/api/v1/patients/export?{query}", app.base))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let files = unzipped(&response.bytes().await.unwrap());
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["requests"], json!([mine["id"]]));
    assert_eq!(manifest["studies"], json!(["2.25.88001"]));
    // Every file is listed with its checksum, and is what the manifest says.
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(listed.len() + 1, files.len(), "{:?}", files.keys());
    for f in listed {
        let bytes = &files[f["path"].as_str().unwrap()];
        assert_eq!(f["sha256"], hex::encode(Sha256::digest(bytes)));
    }
    let dir_of = format!("requests/{}", mine["id"]);
    let request: Value = serde_json::from_slice(&files[&format!("{dir_of}/request.json")]).unwrap();
    assert_eq!(request["content"]["patient"]["name"], "王某某");
    let events: Value = serde_json::from_slice(&files[&format!("{dir_of}/events.json")]).unwrap();
    assert!(!events.as_array().unwrap().is_empty());
    assert!(files.contains_key(&format!("{dir_of}/opinions.json")));
    let scan_path = format!("{dir_of}/attachments/{}-consent.pdf", attached["id"]);
    assert_eq!(files[&scan_path], scan);
    let studies: Value = serde_json::from_slice(&files["studies.json"]).unwrap();
    assert_eq!(
        studies["2.25.88001"]["2.25.88001.1"][0]["sop_instance_uid"],
        "2.25.88001.1.1"
    );
    // Who read them: the doctor's read of the request, the coordinator's of the study.
    let audit: Vec<Value> = serde_json::from_slice(&files["audit.json"]).unwrap();
    assert!(audit.iter().any(|e| e["object_kind"] == "request"
        && e["object_id"] == mine["id"]
        && e["action"] == "read"));
    assert!(audit.iter().any(|e| e["object_kind"] == "study"
        && e["object_ref"] == "2.25.88001"
        && e["action"] == "read"));
    assert!(
        audit
            .iter()
            .all(|e| e["object_id"] != theirs["id"] && e["object_ref"] != "2.25.88002")
    );
    // Nothing of another patient anywhere in it.
    for (path, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for foreign in [
            "1960-01-01",
            "19600101",
            "李某某",
            "440781196001010012",
            "2.25.88002",
        ] {
            assert!(!text.contains(foreign), "{path} holds {foreign}");
        }
    }
    // Audited, with the patient.
    let (_, exports) = app
        .get(
            "/api/v1/audit?object_kind=patient&action=export",
            &app.admin_token,
        )
        .await;
    assert_eq!(exports[0]["patient"], "王某某");
    assert_eq!(exports[0]["outcome"], "allowed");
    assert!(
        exports[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("1 requests, 1 studies, 1 attachments"),
        "{}",
        exports[0]
    );

    // Only administrators, and the refusal is audited; the patient must be named whole.
    let (status, _) = app
        .get(&format!("/api/v1/patients/export?{query}"), &coordinator)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, refused) = app
        .get(
            "/api/v1/audit?object_kind=patient&outcome=denied",
            &app.admin_token,
        )
        .await;
    assert_eq!(refused.as_array().unwrap().len(), 1);
    for (bad, field) in [
        (format!("name={}", urlencode("王某某")), "birth_date"),
        (
            format!("name={}&birth_date=1958-02-30", urlencode("王某某")),
            "birth_date",
        ),
        ("name=&birth_date=1958-03-02".to_owned(), "name"),
    ] {
        let (status, problem) = app
            .get(&format!("/api/v1/patients/export?{bad}"), &app.admin_token)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {problem}");
        assert!(problem.to_string().contains(field), "{bad}: {problem}");
    }

    // The same from the command line, into a new file only.
    let out = dir.path().join("wang.zip");
    let export = |out: &std::path::Path| {
        std::process::Command::new(duikou_binary())
            .args([
                "export",
                "patient",
                "--name",
                "王某某",
                "--birth-date",
                "1958-03-02",
                "--out",
            ])
            .arg(out)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DUIKOU_DATA_DIR", app.db.dir.path())
            .env("DUIKOU_DATABASE_URL", &app.db.url)
            .output()
            .unwrap()
    };
    let done = export(&out);
    assert!(done.status.success(), "{done:?}");
    let files = unzipped(&std::fs::read(&out).unwrap());
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["requests"], json!([mine["id"]]));
    assert_eq!(manifest["studies"], json!(["2.25.88001"]));
    assert_eq!(manifest["made_by"], "the command line");
    let again = export(&out);
    assert!(
        !again.status.success(),
        "an existing file is not overwritten"
    );
    let (_, exports) = app
        .get(
            "/api/v1/audit?object_kind=patient&action=export&outcome=allowed",
            &app.admin_token,
        )
        .await;
    assert_eq!(exports.as_array().unwrap().len(), 2);
    app.stop().await;
}
