//! The patient's copy: everything duikou holds about one patient, as one zip with a
//! manifest (PIPL gives a person the right to a copy of their personal information).
//!
//! ## Who the patient is
//! A patient is named by name and date of birth, and, when known, the resident identity
//! card number. A request is theirs when its patient has that name and date of birth and
//! no other identity number; a study is theirs when an instance's Patient's Birth Date is
//! that date and its Patient's Name is that name (in any of its DICOM component groups,
//! with or without the `^` separators) or its Patient ID is that identity number. Ward
//! round entries hold a name and a bed only: they cannot be told apart from another
//! patient of the same name, so they are left out, and the manifest says so.
//!
//! ## What the copy holds
//! `manifest.json` (the patient as asked, when and by whom it was made, every file with
//! its size and SHA-256, and what was left out); for each request `requests/<id>/`
//! `request.json` (as stored: content, state, consultant), `events.json` (its steps),
//! `opinions.json` (every version, signed ones with their signer) and `attachments/`
//! (the files as uploaded); `studies.json` (the index of their studies: series and
//! instances, as the modalities described them; the images themselves are retrieved
//! over DICOMweb); and `audit.json`, every audit entry on those requests and studies:
//! who read them, when, from where, allowed or refused.
//!
//! Both ways of making it (`duikou export patient` and `GET /api/v1/patients/export`)
//! are audited, with the patient.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::rules::Error;
use crate::store::patients::PatientInstance;
use crate::store::{AuditFilter, Store};

/// The patient a copy is of.
#[derive(Clone, Serialize)]
pub struct Patient {
    /// Name, as the records hold it.
    pub name: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Resident identity card number, when known.
    pub id_number: Option<String>,
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Patient data never reaches logs.
        f.write_str("Patient([redacted])")
    }
}

/// A made copy and what it holds.
pub struct Copy {
    /// The zip.
    pub zip: Vec<u8>,
    /// Requests in it.
    pub requests: usize,
    /// Studies in it.
    pub studies: usize,
    /// Attachment files in it.
    pub attachments: usize,
    /// Audit entries in it.
    pub audit_entries: usize,
}

impl Copy {
    /// What it holds, for its audit entry.
    pub fn summary(&self) -> String {
        format!(
            "{} requests, {} studies, {} attachments, {} audit entries",
            self.requests, self.studies, self.attachments, self.audit_entries
        )
    }
}

#[derive(Serialize)]
struct FileEntry {
    path: String,
    size: usize,
    sha256: String,
}

#[derive(Serialize)]
struct Manifest<'a> {
    patient: &'a Patient,
    made_at: String,
    made_by: &'a str,
    requests: Vec<i64>,
    studies: Vec<&'a str>,
    files: Vec<FileEntry>,
    left_out: &'a str,
}

/// The most audit entries read per object.
const AUDIT_PER_OBJECT: i64 = 100_000;

/// Whether a DICOM Patient's Name names `name`: any component group, with or without
/// the `^` separators.
fn names(dicom: &str, name: &str) -> bool {
    dicom.split('=').any(|group| {
        let joined: String = group.split('^').collect();
        let spaced = group
            .split('^')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>();
        group == name || joined == name || spaced.join(" ") == name
    })
}

/// Everything held about `who`, as a zip; `by` names who asked, for the manifest.
pub async fn copy(store: &Store, data_dir: &Path, who: &Patient, by: &str) -> Result<Copy, Error> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();

    // Requests: those whose patient is this one.
    let mut requests = Vec::new();
    for id in store.requests_mentioning(&who.name).await? {
        let Some(r) = store.request(id).await? else {
            continue;
        };
        let Some(p) = &r.content.patient else {
            continue;
        };
        let other_number = match (&who.id_number, &p.id_number) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        };
        if p.name != who.name || p.birth_date != who.birth_date || other_number {
            continue;
        }
        let dir = format!("requests/{id}");
        files.push((format!("{dir}/request.json"), json(&r)?));
        files.push((
            format!("{dir}/events.json"),
            json(&store.request_events(id).await?)?,
        ));
        files.push((
            format!("{dir}/opinions.json"),
            json(&store.opinions(id).await?)?,
        ));
        for a in store.attachments(id).await? {
            let bytes = tokio::fs::read(crate::booking::path_of(data_dir, &a.sha256))
                .await
                .map_err(|e| {
                    Error::Internal(anyhow::Error::from(e).context("reading an attachment"))
                })?;
            // The name it was uploaded under, kept to its last component.
            let base = a.filename.rsplit(['/', '\\']).next().unwrap_or("file");
            files.push((format!("{dir}/attachments/{}-{base}", a.id), bytes));
        }
        requests.push(id);
    }
    let attachments = files
        .iter()
        .filter(|(p, _)| p.contains("/attachments/"))
        .count();

    // Studies: the instances of this patient, grouped by study and series.
    let born = who.birth_date.format("%Y%m%d").to_string();
    let instances: Vec<PatientInstance> = store
        .instances_born(&born)
        .await?
        .into_iter()
        .filter(|i| {
            names(&i.patient_name, &who.name)
                || who.id_number.as_deref().is_some_and(|n| n == i.patient_id)
        })
        .collect();
    let mut studies: BTreeMap<&str, BTreeMap<&str, Vec<&PatientInstance>>> = BTreeMap::new();
    for i in &instances {
        studies
            .entry(&i.study_instance_uid)
            .or_default()
            .entry(&i.series_instance_uid)
            .or_default()
            .push(i);
    }
    files.push(("studies.json".into(), json(&studies)?));

    // Who read them.
    let mut audit = Vec::new();
    let filters = requests
        .iter()
        .map(|id| AuditFilter {
            object_kind: Some("request".into()),
            object_id: Some(*id),
            ..AuditFilter::default()
        })
        .chain(studies.keys().map(|uid| AuditFilter {
            object_kind: Some("study".into()),
            reference: Some((*uid).to_owned()),
            ..AuditFilter::default()
        }));
    for f in filters {
        let f = AuditFilter {
            limit: AUDIT_PER_OBJECT,
            ..f
        };
        audit.extend(store.audit_entries(&f).await?);
    }
    audit.sort_by_key(|(id, _)| *id);
    let audit_entries = audit.len();
    let audit: Vec<serde_json::Value> = audit
        .into_iter()
        .map(|(id, e)| {
            serde_json::json!({
                "id": id,
                "at": e.at,
                "user_id": e.user_id,
                "roles": e.roles,
                "institution_id": e.institution_id,
                "action": e.action,
                "object_kind": e.object_kind,
                "object_id": e.object_id,
                "object_ref": e.object_ref,
                "outcome": e.outcome.as_str(),
                "client": e.client,
                "detail": e.detail,
            })
        })
        .collect();
    files.push(("audit.json".into(), json(&audit)?));

    let manifest = Manifest {
        patient: who,
        made_at: store.now().to_rfc3339(),
        made_by: by,
        requests: requests.clone(),
        studies: studies.keys().copied().collect(),
        files: files
            .iter()
            .map(|(path, bytes)| FileEntry {
                path: path.clone(),
                size: bytes.len(),
                sha256: hex::encode(Sha256::digest(bytes)),
            })
            .collect(),
        left_out: "ward round entries, which hold a name and a bed only and cannot be told \
                   apart from another patient's; the images themselves, retrieved over DICOMweb",
    };
    let manifest = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.into()))?;
    let zip = tokio::task::spawn_blocking(move || zipped(&manifest, &files))
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(Error::Internal)?;
    Ok(Copy {
        zip,
        requests: requests.len(),
        studies: studies.len(),
        attachments,
        audit_entries,
    })
}

/// The zip of the manifest and the files.
fn zipped(manifest: &[u8], files: &[(String, Vec<u8>)]) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("manifest.json", options)?;
    zip.write_all(manifest)?;
    for (path, bytes) in files {
        zip.start_file(path.as_str(), options)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Pretty JSON of something the copy holds.
fn json<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec_pretty(v).map_err(|e| Error::Internal(e.into()))
}
