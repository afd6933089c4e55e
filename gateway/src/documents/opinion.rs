//! What the signed-opinion document says, and its hash.
//!
//! The **document hash** is the SHA-256, in lowercase hex, of the compact JSON of an
//! [`OpinionDocument`] (`serde_json`, fields in the order declared here, no white space,
//! times in RFC 3339 UTC, strings as stored). It covers:
//! the request's number and kind; the requesting and supporting institutions' names; the
//! patient's name, sex and date of birth; when the request was created and submitted and
//! the session's start; reason, purpose and specialty; the four parts of the case summary;
//! and every signed version up to the one the document is of, each with its number, the
//! version it amends, its text, when it was signed and its signer's name, title and
//! institution as kept at signing. It covers nothing that changes after signing (the
//! request's later steps, the clinician's later records), so a version's hash never
//! changes; a later amendment is a new document with a hash of its own.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sha2::Digest as _;

use crate::booking::{CaseSummary, RequestKind, Signer};

/// The patient as the request page shows them (not the identity card number).
#[derive(Clone, Serialize)]
pub struct PatientFacts {
    /// Name.
    pub name: String,
    /// `M` or `F`.
    pub sex: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
}

impl std::fmt::Debug for PatientFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Patient data never reaches logs.
        f.write_str("PatientFacts([redacted])")
    }
}

/// One signed version of the opinion.
#[derive(Debug, Clone, Serialize)]
pub struct SignedVersion {
    /// 1 for the first opinion, then one more for each amendment.
    pub version: i32,
    /// The version it amends.
    pub amends: Option<i32>,
    /// The text.
    pub body: String,
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
    /// Who signed it.
    pub signer: Signer,
}

/// The signed opinion of a request as a document to file, as of one version: the
/// versions up to it, the last one being the opinion in force (see the module for what
/// its hash covers).
#[derive(Debug, Clone, Serialize)]
pub struct OpinionDocument {
    /// The request's number.
    pub request_id: i64,
    /// What was asked for.
    pub kind: RequestKind,
    /// The requesting institution.
    pub requester_institution: String,
    /// The supporting institution.
    pub supporter_institution: String,
    /// The patient.
    pub patient: Option<PatientFacts>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Submitted.
    pub submitted_at: Option<DateTime<Utc>>,
    /// The session's start.
    pub scheduled_start: Option<DateTime<Utc>>,
    /// Why a remote service was asked for.
    pub reason: Option<String>,
    /// What for.
    pub purpose: Option<String>,
    /// The specialty asked for.
    pub specialty: Option<String>,
    /// The case summary.
    pub case_summary: CaseSummary,
    /// The signed versions, oldest first, up to the document's.
    pub versions: Vec<SignedVersion>,
}

impl OpinionDocument {
    /// The document as of `version`: the same facts, the versions up to it.
    pub fn as_of(&self, version: i32) -> Option<Self> {
        if !self.versions.iter().any(|v| v.version == version) {
            return None;
        }
        let mut doc = self.clone();
        doc.versions.retain(|v| v.version <= version);
        Some(doc)
    }

    /// The version the document is of: the last.
    pub fn version(&self) -> Option<&SignedVersion> {
        self.versions.last()
    }

    /// The document hash (see the module).
    pub fn sha256(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("a document serialises");
        hex::encode(sha2::Sha256::digest(canonical))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> OpinionDocument {
        let at = "2026-03-02T02:00:00Z".parse().unwrap();
        let signer = Signer {
            name: "林主任".into(),
            title: "主任医师".into(),
            institution: "江门市中心医院".into(),
        };
        let version = |version, body: &str| SignedVersion {
            version,
            amends: (version > 1).then_some(version - 1),
            body: body.into(),
            signed_at: at,
            signer: signer.clone(),
        };
        OpinionDocument {
            request_id: 7,
            kind: RequestKind::Consultation,
            requester_institution: "台山市人民医院".into(),
            supporter_institution: "江门市中心医院".into(),
            patient: None,
            created_at: at,
            submitted_at: Some(at),
            scheduled_start: None,
            reason: None,
            purpose: None,
            specialty: None,
            case_summary: CaseSummary::default(),
            versions: vec![version(1, "第一版"), version(2, "修订")],
        }
    }

    #[test]
    fn each_version_has_a_hash_of_its_own_that_does_not_change() {
        let doc = document();
        let first = doc.as_of(1).unwrap();
        assert_eq!(first.versions.len(), 1);
        assert_eq!(first.sha256(), doc.as_of(1).unwrap().sha256());
        assert_ne!(first.sha256(), doc.sha256());
        assert_eq!(doc.sha256().len(), 64);
        assert!(doc.as_of(3).is_none());
        let mut changed = doc.clone();
        changed.versions[1].signer.title = "副主任医师".into();
        assert_ne!(changed.sha256(), doc.sha256(), "the signer is covered");
    }
}
