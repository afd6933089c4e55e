//! The imaging relay's registry and queue: each institution's DICOM destination, and the
//! forwards to the paired hospitals with their errors, which an operator can retry or
//! cancel.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use super::{AppState, page};
use crate::error::{Error, Problem};
use crate::imaging::queue::{self, WorklistStudy};
use crate::imaging::setup::{self, DestinationInput};
use crate::store::{ForwardFilter, ForwardState, ForwardView, ImagingDestination};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_destination, set_destination))
        .routes(routes!(list_forwards))
        .routes(routes!(retry_forward))
        .routes(routes!(cancel_forward))
        .routes(routes!(worklist))
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
    responses((status = 200, body = ImagingDestination), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn set_destination(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<DestinationInput>,
) -> Result<Json<ImagingDestination>, Error> {
    let policy = state.config.outbound_policy();
    let d = setup::set_destination(&state.store, &policy, &caller.0, id, input).await?;
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
    Ok(Json(setup::destination(&state.store, &caller.0, id).await?))
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
    let (limit, offset) = page(q.limit, q.offset)?;
    let filter = ForwardFilter {
        institution_id: q.institution_id,
        state: q.state,
        id: None,
        limit,
        offset,
    };
    Ok(Json(
        queue::forwards(&state.store, &caller.0, filter).await?,
    ))
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
    Ok(Json(queue::retry(&state.store, &caller.0, id).await?))
}

/// Cancels a pending or failed forward.
#[utoipa::path(post, path = "/forwards/{id}/cancel", tag = "imaging", params(("id" = i64, Path)),
    responses((status = 200, body = ForwardView), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn cancel_forward(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<ForwardView>, Error> {
    Ok(Json(queue::cancel(&state.store, &caller.0, id).await?))
}
