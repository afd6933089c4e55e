//! `/clinicians/{id}/availability` and `/clinicians/{id}/slots`: consultants publish weekly
//! availability with exceptions; anyone logged in sees the free slots.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id, Ids};
use crate::booking::availability::{self, AvailabilityInput, ExceptionInput};
use crate::booking::{Availability, AvailabilityException, Slot};
use crate::error::{Error, Problem};
use crate::store::Removable;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_availability, add_availability))
        .routes(routes!(list_exceptions, add_exception))
        .routes(routes!(remove_rule))
        .routes(routes!(remove_exception))
        .routes(routes!(list_slots))
}

/// A consultant's weekly availability.
#[utoipa::path(get, path = "/clinicians/{id}/availability", tag = "availability", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Availability>), (status = 404, body = Problem)))]
async fn list_availability(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<Vec<Availability>>, Error> {
    Ok(Json(availability::availability(&state.store, id).await?))
}

/// Publishes a weekly availability rule.
#[utoipa::path(post, path = "/clinicians/{id}/availability", tag = "availability", params(("id" = i64, Path)),
    request_body = AvailabilityInput,
    responses((status = 201, body = Availability), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn add_availability(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<AvailabilityInput>,
) -> Result<(StatusCode, Json<Availability>), Error> {
    let rule = availability::add_availability(&state.store, &caller.0, id, input).await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// Records an exception to a consultant's availability.
#[utoipa::path(post, path = "/clinicians/{id}/availability/exceptions", tag = "availability", params(("id" = i64, Path)),
    request_body = ExceptionInput,
    responses((status = 201, body = AvailabilityException), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn add_exception(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<ExceptionInput>,
) -> Result<(StatusCode, Json<AvailabilityException>), Error> {
    let e = availability::add_exception(&state.store, &caller.0, id, input).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

/// The days whose exceptions to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExceptionQuery {
    /// First day (China); today when left out.
    from: Option<NaiveDate>,
    /// Last day; 90 days after `from` when left out, at most 366.
    to: Option<NaiveDate>,
}

/// A consultant's exceptions (days or hours off) in a range of days.
#[utoipa::path(get, path = "/clinicians/{id}/availability/exceptions", tag = "availability",
    params(("id" = i64, Path), ExceptionQuery),
    responses((status = 200, body = Vec<AvailabilityException>), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_exceptions(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
    ApiQuery(q): ApiQuery<ExceptionQuery>,
) -> Result<Json<Vec<AvailabilityException>>, Error> {
    Ok(Json(
        availability::exceptions(&state.store, id, q.from, q.to).await?,
    ))
}

/// Removes a weekly rule; slots already booked stay booked.
#[utoipa::path(delete, path = "/clinicians/{id}/availability/{rule}", tag = "availability",
    params(("id" = i64, Path), ("rule" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn remove_rule(
    State(state): State<AppState>,
    caller: Caller,
    Ids(id, rule): Ids,
) -> Result<StatusCode, Error> {
    availability::remove(&state.store, &caller.0, id, Removable::Rule, rule).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes an exception; the hours it took away are bookable again.
#[utoipa::path(delete, path = "/clinicians/{id}/availability/exceptions/{exception}", tag = "availability",
    params(("id" = i64, Path), ("exception" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn remove_exception(
    State(state): State<AppState>,
    caller: Caller,
    Ids(id, exception): Ids,
) -> Result<StatusCode, Error> {
    availability::remove(&state.store, &caller.0, id, Removable::Exception, exception).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The range of days to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SlotQuery {
    /// First day (China); today when left out.
    from: Option<NaiveDate>,
    /// Last day; at most 31 days after `from` (default: 14 days after).
    to: Option<NaiveDate>,
}

/// A consultant's free slots.
#[utoipa::path(get, path = "/clinicians/{id}/slots", tag = "availability", params(("id" = i64, Path), SlotQuery),
    responses((status = 200, body = Vec<Slot>), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list_slots(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
    ApiQuery(q): ApiQuery<SlotQuery>,
) -> Result<Json<Vec<Slot>>, Error> {
    Ok(Json(
        availability::slots(&state.store, id, q.from, q.to).await?,
    ))
}
