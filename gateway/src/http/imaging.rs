//! The imaging relay's registry and queue: each institution's DICOM destination and its
//! test (a C-ECHO), and the forwards to the paired hospitals with their errors, which an operator can retry or
//! cancel.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use duikou_imaging::forward::ErrorKind;

use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use super::{AppState, page};
use crate::error::{Error, Problem};
use crate::imaging::echo::{self, EchoReport};
use crate::imaging::queue::{self, WorklistStudy};
use crate::imaging::setup::{self, DestinationInput};
use crate::store::{ForwardFilter, ForwardState, ForwardView, ImagingDestination};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_destination, set_destination))
        .routes(routes!(echo_destination))
        .routes(routes!(list_forwards))
        .routes(routes!(retry_forward))
        .routes(routes!(cancel_forward))
        .routes(routes!(worklist))
}

/// Where an institution receives the studies it reads (its storage SCP).
#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationOut {
    /// The institution.
    institution_id: i64,
    /// Called AE title.
    ae_title: String,
    /// Host name or address.
    host: String,
    /// Port.
    port: i32,
    /// Over DICOM TLS.
    tls: bool,
}

impl From<ImagingDestination> for DestinationOut {
    fn from(d: ImagingDestination) -> Self {
        Self {
            institution_id: d.institution_id,
            ae_title: d.ae_title.into(),
            host: d.host,
            port: d.port,
            tls: d.tls,
        }
    }
}

/// A forward in the queue, without patient data; the last error is shown in full to
/// administrators and by its kind to coordinators.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForwardOut {
    /// Queue id.
    id: i64,
    /// The instance.
    sop_instance_uid: String,
    /// Its study.
    study_instance_uid: String,
    /// The sending institution.
    source_institution_id: i64,
    /// The receiving institution.
    destination_institution_id: Option<i64>,
    /// Called AE title.
    ae_title: String,
    /// Host.
    host: String,
    /// Port.
    port: i32,
    /// Over DICOM TLS.
    tls: bool,
    /// Where it stands.
    state: ForwardState,
    /// Attempts so far.
    attempts: i32,
    /// When it is due (while sending: when the claim runs out).
    next_attempt_at: DateTime<Utc>,
    /// The last failure.
    last_error: Option<String>,
    /// Its kind, for the pages to say in the reader's language: `not-allowed`,
    /// `unreachable`, `instance-refused`, `unsupported`, `unreadable`, `tls`,
    /// `no-destination` or `broken`.
    last_error_kind: Option<&'static str>,
    /// Queued.
    created_at: DateTime<Utc>,
    /// Delivered.
    delivered_at: Option<DateTime<Utc>>,
}

impl From<ForwardView> for ForwardOut {
    fn from(f: ForwardView) -> Self {
        Self {
            id: f.id,
            sop_instance_uid: f.sop_instance_uid,
            study_instance_uid: f.study_instance_uid,
            source_institution_id: f.source_institution_id,
            destination_institution_id: f.destination_institution_id,
            ae_title: f.ae_title,
            host: f.host,
            port: f.port,
            tls: f.tls,
            state: f.state,
            attempts: f.attempts,
            next_attempt_at: f.next_attempt_at,
            last_error_kind: f.last_error.as_deref().map(|e| ErrorKind::of(e).code()),
            last_error: f.last_error,
            created_at: f.created_at,
            delivered_at: f.delivered_at,
        }
    }
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
    let awaiting = q.awaiting == Some(true);
    Ok(Json(
        queue::worklist(&state.store, &caller.0, awaiting).await?,
    ))
}

/// Sets where studies for this institution (as an imaging supporter) are delivered: its
/// coordinators or an administrator.
#[utoipa::path(put, path = "/institutions/{id}/imaging-destination", tag = "imaging",
    params(("id" = i64, Path)), request_body = DestinationInput,
    responses((status = 200, body = DestinationOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn set_destination(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<DestinationInput>,
) -> Result<Json<DestinationOut>, Error> {
    let policy = state.config.outbound_policy();
    let d = setup::set_destination(&state.store, &policy, &caller.0, id, input).await?;
    Ok(Json(d.into()))
}

/// Tests the institution's DICOM destination: the relay opens an association to it with
/// its own AE title and sends a C-ECHO (Verification, 1.2.840.10008.1.1), waiting ten
/// seconds at most. Answered 200 however the test went (`ok`, `outcome`); who may set the
/// destination may test it.
#[utoipa::path(post, path = "/institutions/{id}/imaging-destination/echo", tag = "imaging",
    params(("id" = i64, Path)),
    responses((status = 200, body = EchoReport), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn echo_destination(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<EchoReport>, Error> {
    let forwarding = &state.relay.forwarding;
    Ok(Json(
        echo::echo_destination(&state.store, forwarding, &caller.0, id).await?,
    ))
}

/// The institution's DICOM destination: its coordinators or an administrator.
#[utoipa::path(get, path = "/institutions/{id}/imaging-destination", tag = "imaging",
    params(("id" = i64, Path)),
    responses((status = 200, body = DestinationOut), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_destination(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<DestinationOut>, Error> {
    Ok(Json(
        setup::destination(&state.store, &caller.0, id)
            .await?
            .into(),
    ))
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
    responses((status = 200, body = Vec<ForwardOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_forwards(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ForwardQuery>,
) -> Result<Json<Vec<ForwardOut>>, Error> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let filter = ForwardFilter {
        institution_id: q.institution_id,
        state: q.state,
        id: None,
        limit,
        offset,
    };
    let forwards = queue::forwards(&state.store, &caller.0, filter).await?;
    Ok(Json(forwards.into_iter().map(ForwardOut::from).collect()))
}

/// Sends a failed, pending or cancelled forward again now, to the destination the
/// registry names today.
#[utoipa::path(post, path = "/forwards/{id}/retry", tag = "imaging", params(("id" = i64, Path)),
    responses((status = 200, body = ForwardOut), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn retry_forward(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<ForwardOut>, Error> {
    Ok(Json(
        queue::retry(&state.store, &caller.0, id).await?.into(),
    ))
}

/// Cancels a pending or failed forward.
#[utoipa::path(post, path = "/forwards/{id}/cancel", tag = "imaging", params(("id" = i64, Path)),
    responses((status = 200, body = ForwardOut), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn cancel_forward(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<ForwardOut>, Error> {
    Ok(Json(
        queue::cancel(&state.store, &caller.0, id).await?.into(),
    ))
}
