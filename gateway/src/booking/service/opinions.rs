//! The consultant's opinion: drafted, signed, amended as new versions, and read by both
//! sides, also as a document to file.

use serde::Serialize;
use utoipa::ToSchema;

use crate::booking::request::{ConsultRequest, Opinion, OpinionStatus, RequestKind, RequestState};
use crate::documents::{OpinionDocument, PatientFacts, SignedVersion};
use crate::domain::User;
use crate::rules::Error;
use crate::store::{OpinionChange, RequestUpdate, Store};

use super::steps::{out_of_order, signer_of};
use super::{Access, access, audit, load};

/// A version of the opinion as its reader sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpinionView {
    /// The version, with its signer once signed.
    #[serde(flatten)]
    pub opinion: Opinion,
    /// When it was signed, as shown in China (`YYYY-MM-DD HH:MM`, UTC+8).
    pub signed_local: Option<String>,
    /// A signed version: the hash of the document of it (the request's facts and the
    /// versions up to this one; see `GET /requests/{id}/opinions/{version}/pdf`).
    pub document_sha256: Option<String>,
}

/// Writes the consultant's draft opinion (a first opinion, or an amendment of the latest
/// signed one).
pub async fn save_opinion(
    store: &Store,
    caller: &User,
    id: i64,
    body: String,
) -> Result<Vec<OpinionView>, Error> {
    let r = load(store, id).await?;
    access(store, caller, &r, "write_opinion").await?;
    if caller.clinician_id.is_none() || caller.clinician_id != r.consultant_id {
        audit(
            store,
            caller,
            "write_opinion",
            Some(id),
            false,
            Some("not the assigned consultant".into()),
        )
        .await?;
        return Err(Error::forbidden(
            "only the assigned consultant writes the opinion",
        ));
    }
    use RequestState::*;
    let writable = match r.state {
        InSession | OpinionSigned | Acknowledged => true,
        Accepted | Scheduled => r.kind != RequestKind::Consultation,
        _ => false,
    };
    if !writable {
        return Err(out_of_order(format!(
            "no opinion is written while the request is {}",
            r.state
        )));
    }
    if body.trim().chars().count() < 10 {
        return Err(Error::field(
            "body",
            "an opinion says something: at least 10 characters",
        ));
    }
    let amends_id = store
        .opinions(id)
        .await?
        .into_iter()
        .rev()
        .find(|o| o.status == OpinionStatus::Signed)
        .map(|o| o.id);
    let change = OpinionChange::Draft {
        consultant_id: r.consultant_id.unwrap_or_default(),
        author: caller.id,
        body,
        amends_id,
    };
    store
        .update_request(
            id,
            r.version,
            &RequestUpdate {
                at: store.now(),
                ..Default::default()
            },
            None,
            Some(&change),
        )
        .await?;
    audit(store, caller, "write_opinion", Some(id), true, None).await?;
    opinions(store, caller, id).await
}

/// The opinions the caller may see (the requester never sees drafts), each signed one
/// with its signer and its document's hash.
pub async fn opinions(store: &Store, caller: &User, id: i64) -> Result<Vec<OpinionView>, Error> {
    let r = load(store, id).await?;
    let side = access(store, caller, &r, "read_opinions").await?;
    audit(store, caller, "read_opinions", Some(id), true, None).await?;
    let all = with_signers(store, store.opinions(id).await?).await?;
    let doc = document(store, &r, &all).await?;
    Ok(all
        .into_iter()
        .filter(|o| side == Access::Supporter || o.status == OpinionStatus::Signed)
        .map(|opinion| OpinionView {
            signed_local: opinion.signed_at.map(crate::documents::pdf::local),
            document_sha256: doc.as_of(opinion.version).map(|d| d.sha256()),
            opinion,
        })
        .collect())
}

/// The signed opinion of request `id` as a document to file, as of signed version
/// `version`: for those who read the opinions, with the same checks; audited as a read.
pub async fn opinion_document(
    store: &Store,
    caller: &User,
    id: i64,
    version: i32,
) -> Result<OpinionDocument, Error> {
    let r = load(store, id).await?;
    access(store, caller, &r, "read_opinion_document").await?;
    let all = with_signers(store, store.opinions(id).await?).await?;
    let doc = document(store, &r, &all)
        .await?
        .as_of(version)
        .ok_or_else(|| {
            Error::NotFound(format!("signed opinion version {version} of request {id}"))
        })?;
    audit(
        store,
        caller,
        "read_opinion_document",
        Some(id),
        true,
        Some(format!("version {version}")),
    )
    .await?;
    Ok(doc)
}

/// Versions signed before signers were kept get their consultant's current record.
async fn with_signers(store: &Store, mut all: Vec<Opinion>) -> Result<Vec<Opinion>, Error> {
    for o in &mut all {
        if o.status == OpinionStatus::Signed && o.signer.is_none() {
            if let Some(c) = store.clinician(o.consultant_id).await? {
                o.signer = Some(signer_of(store, &c).await?);
            }
        }
    }
    Ok(all)
}

/// The document of request `r` with every signed version of `all`.
async fn document(
    store: &Store,
    r: &ConsultRequest,
    all: &[Opinion],
) -> Result<OpinionDocument, Error> {
    let name = |id| async move {
        Ok::<_, Error>(
            store
                .institution(id)
                .await?
                .map(|i| i.name)
                .unwrap_or_default(),
        )
    };
    let version_of = |id| all.iter().find(|o| Some(o.id) == id).map(|o| o.version);
    let c = &r.content;
    Ok(OpinionDocument {
        request_id: r.id,
        kind: r.kind,
        requester_institution: name(r.requester_institution_id).await?,
        supporter_institution: name(r.supporter_institution_id).await?,
        patient: c.patient.as_ref().map(|p| PatientFacts {
            name: p.name.clone(),
            sex: p.sex.as_str().to_owned(),
            birth_date: p.birth_date,
        }),
        created_at: r.created_at,
        submitted_at: r.submitted_at,
        scheduled_start: r.scheduled_start,
        reason: c.reason.clone(),
        purpose: c.purpose.clone(),
        specialty: c.specialty.clone(),
        case_summary: c.case_summary.clone().unwrap_or_default(),
        versions: all
            .iter()
            .filter(|o| o.status == OpinionStatus::Signed)
            .filter_map(|o| {
                Some(SignedVersion {
                    version: o.version,
                    amends: version_of(o.amends_id),
                    body: o.body.clone(),
                    signed_at: o.signed_at?,
                    signer: o.signer.clone()?,
                })
            })
            .collect(),
    })
}
