//! The imaging relay's registry and queue: each institution's DICOM destination, and the
//! forwards to the paired hospitals with their errors, which an operator can retry or
//! cancel.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use super::{AppState, page};
use crate::booking::{RequestKind, RequestState};
use crate::domain::User;
use crate::error::{Error, Problem};
use crate::imaging::access;
use crate::rules::Rule;
use crate::store::{
    ForwardFilter, ForwardState, ForwardTarget, ForwardView, ImagingDestination, RequestFilter,
};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_destination, set_destination))
        .routes(routes!(list_forwards))
        .routes(routes!(retry_forward))
        .routes(routes!(cancel_forward))
        .routes(routes!(worklist))
}

/// A study on the reading institution's worklist (visible to the paired institutions).
#[derive(Debug, Serialize, ToSchema)]
pub struct WorklistStudy {
    /// Study Instance UID.
    study_instance_uid: String,
    /// Accession Number.
    accession_number: String,
    /// Modalities in the study.
    modalities: Vec<String>,
    /// Study Date (DA).
    study_date: String,
    /// Patient's Name.
    patient_name: String,
    /// The sending institution.
    source_institution_id: i64,
    /// Instances forwarded here.
    instances: usize,
    /// Of which delivered to the institution's PACS.
    delivered: usize,
    /// When the relay received the first.
    received_at: chrono::DateTime<chrono::Utc>,
    /// The read request that names this study, if any.
    request_id: Option<i64>,
    /// Its state.
    request_state: Option<RequestState>,
    /// No signed read yet.
    awaiting_read: bool,
}

/// Which worklist entries.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorklistQuery {
    /// Only studies without a signed read.
    awaiting: Option<bool>,
}

/// The worklist of the caller's institution: the studies forwarded to it for reading,
/// each with the read request that names it (by Study Instance UID or accession number)
/// and whether it still awaits a signed read. For its radiologists, clinicians and
/// coordinators.
#[utoipa::path(get, path = "/imaging/worklist", tag = "imaging", params(WorklistQuery),
    responses((status = 200, body = Vec<WorklistStudy>), (status = 403, body = Problem)))]
async fn worklist(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<WorklistQuery>,
) -> Result<Json<Vec<WorklistStudy>>, Error> {
    let user = &caller.0;
    let institution = access::reader(user)?;
    let rows = state.store.forwarded_to(institution).await?;
    let requests = state
        .store
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
    if q.awaiting == Some(true) {
        studies.retain(|s| s.awaiting_read);
    }
    crate::audit::record(&state.store, user, "worklist", "read", None, true, None).await?;
    Ok(Json(studies))
}

/// An institution's DICOM destination.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationInput {
    /// Called AE title of its storage SCP.
    ae_title: String,
    /// Host name or address.
    host: String,
    /// TCP port.
    port: i32,
    /// Whether it speaks DICOM over TLS.
    #[serde(default)]
    tls: bool,
}

/// Sets where studies for this institution (as an imaging supporter) are delivered: its
/// coordinators or an administrator.
#[utoipa::path(put, path = "/institutions/{id}/imaging-destination", tag = "imaging",
    params(("id" = i64, Path)), request_body = DestinationInput,
    responses((status = 200, body = ImagingDestination), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn set_destination(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<DestinationInput>,
) -> Result<Json<ImagingDestination>, Error> {
    if !access::manages(&caller.0, id) {
        return Err(Error::forbidden(
            "the institution's coordinators or an administrator set its DICOM destination",
        ));
    }
    state
        .store
        .institution(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("institution {id}")))?;
    let ae = duikou_imaging::AeTitle::parse(&input.ae_title)
        .map_err(|e| Error::field("ae_title", e.to_string()))?;
    let host = input.host.trim();
    if host.is_empty() || host.len() > 253 || host.contains(char::is_whitespace) {
        return Err(Error::field("host", "a host name or address"));
    }
    if !(1..=65535).contains(&input.port) {
        return Err(Error::field("port", "a port from 1 to 65535"));
    }
    // Where it leads is checked now, to tell the coordinator, and again at every
    // association; a name that does not resolve yet is taken (hospital DNS may come later).
    let port = u16::try_from(input.port).unwrap_or_default();
    match state.config.outbound_policy().resolve(host, port).await {
        Ok(_) | Err(duikou_imaging::outbound::Refused::Unresolved(_)) => {}
        Err(e) => return Err(Error::field("host", e.to_string())),
    }
    let d = ImagingDestination {
        institution_id: id,
        ae_title: ae.as_str().to_owned(),
        host: host.to_owned(),
        port: input.port,
        tls: input.tls,
    };
    state.store.set_destination(&d).await?;
    Ok(Json(d))
}

/// The institution's DICOM destination: its coordinators or an administrator.
#[utoipa::path(get, path = "/institutions/{id}/imaging-destination", tag = "imaging",
    params(("id" = i64, Path)),
    responses((status = 200, body = ImagingDestination), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_destination(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<ImagingDestination>, Error> {
    if !access::manages(&caller.0, id) {
        return Err(Error::forbidden(
            "the institution's coordinators or an administrator see its DICOM destination",
        ));
    }
    state
        .store
        .destination(id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("a DICOM destination of institution {id}")))
}

/// Which forwards.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForwardQuery {
    /// Only forwards in this state.
    state: Option<ForwardState>,
    /// Sent by or to this institution (administrators; coordinators see their own).
    institution_id: Option<i64>,
    /// Page size, 1 to 1000.
    limit: Option<i64>,
    /// Rows to skip.
    offset: Option<i64>,
}

/// The forward queue, newest first: coordinators see their institution's (sent or
/// received), administrators all.
#[utoipa::path(get, path = "/forwards", tag = "imaging", params(ForwardQuery),
    responses((status = 200, body = Vec<ForwardView>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_forwards(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ForwardQuery>,
) -> Result<Json<Vec<ForwardView>>, Error> {
    let user = &caller.0;
    let institution_id = access::forwards_listed(user, q.institution_id)?;
    let (limit, offset) = page(q.limit, q.offset)?;
    let filter = ForwardFilter {
        institution_id,
        state: q.state,
        id: None,
        limit,
        offset,
    };
    let mut forwards = state.store.forwards(&filter).await?;
    for f in &mut forwards {
        access::shown_to(user, f);
    }
    Ok(Json(forwards))
}

/// Loads a forward the caller may act on (see [`access::forward`]).
async fn forward_of(state: &AppState, caller: &User, id: i64) -> Result<ForwardView, Error> {
    Ok(access::forward(&state.store, caller, id).await?)
}

/// Sends a failed, pending or cancelled forward again now, to the destination the
/// registry names today.
#[utoipa::path(post, path = "/forwards/{id}/retry", tag = "imaging", params(("id" = i64, Path)),
    responses((status = 200, body = ForwardView), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn retry_forward(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<ForwardView>, Error> {
    let f = forward_of(&state, &caller.0, id).await?;
    let target = crate::imaging::forward_target(&state.store, f.source_institution_id).await;
    if let Some(why) = target.error {
        return Err(Error::refused(Rule::NoDestination, None, why));
    }
    let t: &ForwardTarget = &target.target;
    if !state.store.retry_forward(id, Some(t)).await? {
        return Err(Error::Conflict(format!("forward {id} is {}", f.state)));
    }
    forward_of(&state, &caller.0, id).await.map(Json)
}

/// Cancels a pending or failed forward.
#[utoipa::path(post, path = "/forwards/{id}/cancel", tag = "imaging", params(("id" = i64, Path)),
    responses((status = 200, body = ForwardView), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn cancel_forward(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<ForwardView>, Error> {
    let f = forward_of(&state, &caller.0, id).await?;
    if !state.store.cancel_forward(id).await? {
        return Err(Error::Conflict(format!("forward {id} is {}", f.state)));
    }
    forward_of(&state, &caller.0, id).await.map(Json)
}
