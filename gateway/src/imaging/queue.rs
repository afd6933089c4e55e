//! What the people of the imaging program see of the relay's work: the forward queue, with
//! retry and cancel for its operators, and each reading institution's worklist of the
//! studies forwarded to it, matched with the read requests that name them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::access;
use crate::booking::{RequestKind, RequestState};
use crate::domain::User;
use crate::rules::{Error, Rule};
use crate::store::{ForwardFilter, ForwardState, ForwardView, RequestFilter, Store};

/// The forwards `by` may see matching `filter`: coordinators their institution's (sent
/// or received), administrators any institution's or all.
pub async fn forwards(
    store: &Store,
    by: &User,
    mut filter: ForwardFilter,
) -> Result<Vec<ForwardView>, Error> {
    filter.institution_id = access::forwards_listed(by, filter.institution_id)?;
    let mut forwards = store.forwards(&filter).await?;
    for f in &mut forwards {
        access::shown_to(by, f);
    }
    Ok(forwards)
}

/// Sends a failed, pending or cancelled forward again now, to the destination the
/// registry names today.
pub async fn retry(store: &Store, by: &User, id: i64) -> Result<ForwardView, Error> {
    let f = access::forward(store, by, id).await?;
    let target = super::forward_target(store, f.source_institution_id).await;
    if let Some(why) = target.error {
        return Err(Error::refused(Rule::NoDestination, None, why));
    }
    if !store.retry_forward(id, Some(&target.target)).await? {
        return Err(Error::Conflict(
            format!("forward {id} is {}", f.state).into(),
        ));
    }
    access::forward(store, by, id).await
}

/// Cancels a pending or failed forward.
pub async fn cancel(store: &Store, by: &User, id: i64) -> Result<ForwardView, Error> {
    let f = access::forward(store, by, id).await?;
    if !store.cancel_forward(id).await? {
        return Err(Error::Conflict(
            format!("forward {id} is {}", f.state).into(),
        ));
    }
    access::forward(store, by, id).await
}

/// A study on the reading institution's worklist (visible to the paired institutions).
#[derive(Debug, Serialize, ToSchema)]
pub struct WorklistStudy {
    /// Study Instance UID.
    pub study_instance_uid: String,
    /// Accession Number.
    pub accession_number: String,
    /// Modalities in the study.
    pub modalities: Vec<String>,
    /// Study Date (DA).
    pub study_date: String,
    /// Patient's Name.
    pub patient_name: String,
    /// The sending institution.
    pub source_institution_id: i64,
    /// Instances forwarded here.
    pub instances: usize,
    /// Of which delivered to the institution's PACS.
    pub delivered: usize,
    /// When the relay received the first.
    pub received_at: DateTime<Utc>,
    /// The read request that names this study, if any.
    pub request_id: Option<i64>,
    /// Its state.
    pub request_state: Option<RequestState>,
    /// No signed read yet.
    pub awaiting_read: bool,
}

/// The worklist of `by`'s institution: the studies forwarded to it for reading, each with
/// the read request that names it (by Study Instance UID or accession number) and whether
/// it still awaits a signed read; only those awaiting one when `awaiting`. For its
/// radiologists, clinicians and coordinators; every look is audited.
pub async fn worklist(
    store: &Store,
    by: &User,
    awaiting: bool,
) -> Result<Vec<WorklistStudy>, Error> {
    let institution = access::reader(by)?;
    let rows = store.forwarded_to(institution).await?;
    let requests = store
        .requests(&RequestFilter {
            supporter_institution_id: Some(institution),
            limit: 10_000,
            ..RequestFilter::default()
        })
        .await?;
    let mut studies: Vec<WorklistStudy> = Vec::new();
    for r in rows {
        let delivered = usize::from(r.state == ForwardState::Delivered);
        if let Some(s) = studies
            .iter_mut()
            .find(|s| s.study_instance_uid == r.study_instance_uid)
        {
            s.instances += 1;
            s.delivered += delivered;
            if !r.modality.is_empty() && !s.modalities.contains(&r.modality) {
                s.modalities.push(r.modality);
            }
            continue;
        }
        let request = requests.iter().find(|q| {
            q.kind == RequestKind::ImagingRead
                && (q.content.study_instance_uid.as_deref() == Some(r.study_instance_uid.as_str())
                    || (!r.accession_number.is_empty()
                        && q.content.accession_number.as_deref()
                            == Some(r.accession_number.as_str())))
        });
        let signed = request.is_some_and(|q| {
            matches!(
                q.state,
                RequestState::OpinionSigned | RequestState::Acknowledged | RequestState::Closed
            )
        });
        studies.push(WorklistStudy {
            study_instance_uid: r.study_instance_uid,
            accession_number: r.accession_number,
            modalities: if r.modality.is_empty() {
                vec![]
            } else {
                vec![r.modality]
            },
            study_date: r.study_date,
            patient_name: r.patient_name,
            source_institution_id: r.source_institution_id,
            instances: 1,
            delivered,
            received_at: r.received_at,
            request_id: request.map(|q| q.id),
            request_state: request.map(|q| q.state),
            awaiting_read: !signed,
        });
    }
    if awaiting {
        studies.retain(|s| s.awaiting_read);
    }
    crate::audit::record(store, by, "worklist", "read", None, true, None).await?;
    Ok(studies)
}
