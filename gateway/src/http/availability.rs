//! `/clinicians/{id}/availability` and `/clinicians/{id}/slots`: consultants publish weekly
//! availability with exceptions; anyone logged in sees the free slots.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{NaiveDate, NaiveTime, TimeDelta};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use crate::booking::{Availability, AvailabilityException, Slot, free_slots_of};
use crate::domain::{Clinician, Role};
use crate::error::{Error, Problem};
use crate::registry::today_in_china;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_availability, add_availability))
        .routes(routes!(add_exception))
        .routes(routes!(list_slots))
}

async fn clinician(state: &AppState, id: i64) -> Result<Clinician, Error> {
    state
        .store
        .clinician(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("clinician {id}")))
}

/// The clinician themselves, a coordinator of their unit, or an administrator.
fn may_manage(caller: &Caller, c: &Clinician) -> Result<(), Error> {
    let own = caller.0.clinician_id == Some(c.id);
    let coordinator = caller.0.is(Role::Coordinator) && caller.0.institution_id == c.institution_id;
    if own || coordinator || caller.0.is(Role::Admin) {
        Ok(())
    } else {
        Err(Error::forbidden(
            "only the consultant, their unit's coordinator or an administrator manages availability",
        ))
    }
}

/// A weekly availability rule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityInput {
    /// ISO weekday, 1 = Monday … 7 = Sunday.
    weekday: u32,
    /// Start, China time, `HH:MM`.
    #[schema(value_type = String, example = "09:00")]
    start_time: NaiveTime,
    /// End, China time.
    #[schema(value_type = String, example = "11:30")]
    end_time: NaiveTime,
    /// Slot length in minutes, 5 to 240.
    slot_minutes: i32,
    /// First day; today when left out.
    valid_from: Option<NaiveDate>,
    /// Last day, if it ends.
    valid_to: Option<NaiveDate>,
}

/// A consultant's weekly availability.
#[utoipa::path(get, path = "/clinicians/{id}/availability", tag = "availability", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Availability>), (status = 404, body = Problem)))]
async fn list_availability(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<Vec<Availability>>, Error> {
    clinician(&state, id).await?;
    Ok(Json(state.store.availability(id).await?))
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
    let c = clinician(&state, id).await?;
    may_manage(&caller, &c)?;
    if !(1..=7).contains(&input.weekday) {
        return Err(Error::field("weekday", "1 (Monday) to 7 (Sunday)"));
    }
    if input.end_time <= input.start_time {
        return Err(Error::field("end_time", "the end comes after the start"));
    }
    if !(5..=240).contains(&input.slot_minutes) {
        return Err(Error::field("slot_minutes", "5 to 240 minutes"));
    }
    if input.end_time - input.start_time < TimeDelta::minutes(i64::from(input.slot_minutes)) {
        return Err(Error::field(
            "slot_minutes",
            "at least one slot fits between start and end",
        ));
    }
    let valid_from = input.valid_from.unwrap_or_else(today_in_china);
    if input.valid_to.is_some_and(|to| to < valid_from) {
        return Err(Error::field(
            "valid_to",
            "the last day comes after the first",
        ));
    }
    let mut rule = Availability {
        id: 0,
        clinician_id: id,
        weekday: input.weekday,
        start_time: input.start_time,
        end_time: input.end_time,
        slot_minutes: input.slot_minutes,
        valid_from,
        valid_to: input.valid_to,
    };
    rule.id = state.store.add_availability(&rule, caller.0.id).await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// A day or part of a day off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionInput {
    /// The day.
    day: NaiveDate,
    /// From, China time; the whole day when left out.
    #[schema(value_type = Option<String>)]
    start_time: Option<NaiveTime>,
    /// Until, China time.
    #[schema(value_type = Option<String>)]
    end_time: Option<NaiveTime>,
    /// Why.
    reason: String,
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
    let c = clinician(&state, id).await?;
    may_manage(&caller, &c)?;
    match (input.start_time, input.end_time) {
        (Some(s), Some(e)) if e <= s => {
            return Err(Error::field("end_time", "the end comes after the start"));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::field(
                "end_time",
                "give both times, or neither for the whole day",
            ));
        }
        _ => {}
    }
    if input.reason.trim().is_empty() {
        return Err(Error::field("reason", "say why"));
    }
    let mut e = AvailabilityException {
        id: 0,
        clinician_id: id,
        day: input.day,
        start_time: input.start_time,
        end_time: input.end_time,
        reason: input.reason.trim().to_owned(),
    };
    e.id = state
        .store
        .add_availability_exception(&e, caller.0.id)
        .await?;
    Ok((StatusCode::CREATED, Json(e)))
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
    clinician(&state, id).await?;
    let from = q.from.unwrap_or_else(today_in_china);
    let to = q.to.unwrap_or(from + TimeDelta::days(14));
    if to < from || to - from > TimeDelta::days(31) {
        return Err(Error::field("to", "to lies 0 to 31 days after from"));
    }
    Ok(Json(free_slots_of(&state.store, id, from, to).await?))
}
