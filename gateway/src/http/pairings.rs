//! `/pairings`: search pairings and their history; administrators create, change and end
//! them. `/supporters`: the supporter lookup.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id, Ids};
use super::{AppState, page};
use crate::booking::china;
use crate::domain::{Pairing, PairingVersion, Service, Standing, Supporter, TrainingTarget};
use crate::error::{Error, Problem};
use crate::registry::{
    self, PairingChange, PairingEnd, PairingInput, SupporterChain, TargetInput, today_in_china,
};
use crate::store::PairingFilter;

/// A pairing, with where it stands today.
#[derive(Debug, Serialize, ToSchema)]
pub struct PairingOut {
    /// The pairing.
    #[serde(flatten)]
    pairing: Pairing,
    /// Where it stands today (a day in China): `not_started`, `in_force`, `expired` or
    /// `ended`; only a pairing in force supports bookings.
    standing: Standing,
}

/// `pairing` as shown on the store clock's day in China.
fn shown(state: &AppState, pairing: Pairing) -> PairingOut {
    let today = state.store.now().with_timezone(&china()).date_naive();
    PairingOut {
        standing: pairing.standing(today),
        pairing,
    }
}

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pairings, create_pairing))
        .routes(routes!(get_pairing, change_pairing))
        .routes(routes!(pairing_history))
        .routes(routes!(end_pairing))
        .routes(routes!(pairing_targets))
        .routes(routes!(set_pairing_target))
        .routes(routes!(lookup_supporters))
}

/// Search parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PairingQuery {
    /// Supporting institution.
    supporter_institution_id: Option<i64>,
    /// Supporting team.
    supporter_team_id: Option<i64>,
    /// Supporting clinician.
    supporter_clinician_id: Option<i64>,
    /// Supported institution: pairings naming it, or covering its region.
    supported_institution_id: Option<i64>,
    /// A covered service.
    service: Option<Service>,
    /// A date inside the period, `YYYY-MM-DD`.
    date: Option<NaiveDate>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<i64>,
    /// Rows to skip.
    offset: Option<i64>,
}

/// Searches pairings. Any logged-in user.
#[utoipa::path(get, path = "/pairings", tag = "pairings", params(PairingQuery),
    responses((status = 200, body = Vec<PairingOut>), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn list_pairings(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<PairingQuery>,
) -> Result<Json<Vec<PairingOut>>, Error> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let supporter = match (
        q.supporter_institution_id,
        q.supporter_team_id,
        q.supporter_clinician_id,
    ) {
        (None, None, None) => None,
        (i, t, c) => Some(Supporter::from_columns(i, t, c).ok_or_else(|| {
            Error::field(
                "supporter_institution_id",
                "give at most one of the supporter_… parameters",
            )
        })?),
    };
    let supported_institution = match q.supported_institution_id {
        None => None,
        Some(id) => {
            let inst = state.store.institution(id).await?.ok_or_else(|| {
                Error::field(
                    "supported_institution_id",
                    format!("no institution has id {id}"),
                )
            })?;
            Some((id, inst.region.as_str().to_owned()))
        }
    };
    let filter = PairingFilter {
        supporter,
        supported_institution,
        service: q.service,
        date: q.date,
        limit,
        offset,
    };
    let pairings = state.store.pairings(&filter).await?;
    Ok(Json(
        pairings.into_iter().map(|p| shown(&state, p)).collect(),
    ))
}

/// One pairing. Any logged-in user.
#[utoipa::path(get, path = "/pairings/{id}", tag = "pairings", params(("id" = i64, Path)),
    responses((status = 200, body = PairingOut), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_pairing(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<PairingOut>, Error> {
    let p = state
        .store
        .pairing(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("pairing {id}")))?;
    Ok(Json(shown(&state, p)))
}

/// Every version of a pairing, oldest first, with who changed it, when and why.
#[utoipa::path(get, path = "/pairings/{id}/history", tag = "pairings", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<PairingVersion>), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn pairing_history(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<Vec<PairingVersion>>, Error> {
    let history = state.store.pairing_history(id).await?;
    if history.is_empty() {
        return Err(Error::NotFound(format!("pairing {id}")));
    }
    Ok(Json(history))
}

/// Creates a pairing. Administrators only.
#[utoipa::path(post, path = "/pairings", tag = "pairings", request_body = PairingInput,
    responses((status = 201, body = PairingOut), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_pairing(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<PairingInput>,
) -> Result<(StatusCode, Json<PairingOut>), Error> {
    let p = registry::create_pairing(&state.store, &caller.0, input).await?;
    tracing::info!(pairing = p.id, by = caller.0.id, "pairing created");
    Ok((StatusCode::CREATED, Json(shown(&state, p))))
}

/// Changes a pairing. Administrators only; inside the period a reason is required.
#[utoipa::path(patch, path = "/pairings/{id}", tag = "pairings", params(("id" = i64, Path)), request_body = PairingChange,
    responses((status = 200, body = PairingOut), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn change_pairing(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(change): ApiJson<PairingChange>,
) -> Result<Json<PairingOut>, Error> {
    let p = registry::change_pairing(&state.store, &caller.0, id, change).await?;
    tracing::info!(
        pairing = p.id,
        version = p.version,
        by = caller.0.id,
        "pairing changed"
    );
    Ok(Json(shown(&state, p)))
}

/// Ends a pairing on a given last day, with a reason. Administrators only.
#[utoipa::path(post, path = "/pairings/{id}/end", tag = "pairings", params(("id" = i64, Path)), request_body = PairingEnd,
    responses((status = 200, body = PairingOut), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn end_pairing(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(end): ApiJson<PairingEnd>,
) -> Result<Json<PairingOut>, Error> {
    let p = registry::end_pairing(&state.store, &caller.0, id, end).await?;
    tracing::info!(pairing = p.id, by = caller.0.id, "pairing ended");
    Ok(Json(shown(&state, p)))
}

/// The pairing's yearly training targets, one for each year its period touches: its own
/// where its responsibility letter sets them, the program's defaults otherwise. Any
/// logged-in user.
#[utoipa::path(get, path = "/pairings/{id}/targets", tag = "pairings", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<TrainingTarget>), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn pairing_targets(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<Vec<TrainingTarget>>, Error> {
    Ok(Json(
        registry::training_targets(&state.store, &state.config.program, id).await?,
    ))
}

/// Sets the pairing's training target for a year of its period: how many trainees of the
/// supported side, each reaching how many hours of training in the year. Administrators
/// only; the pairing's report counts against it.
#[utoipa::path(put, path = "/pairings/{id}/targets/{year}", tag = "pairings",
    params(("id" = i64, Path), ("year" = i32, Path)), request_body = TargetInput,
    responses((status = 200, body = TrainingTarget), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn set_pairing_target(
    State(state): State<AppState>,
    caller: Caller,
    Ids(id, year): Ids,
    ApiJson(input): ApiJson<TargetInput>,
) -> Result<Json<TrainingTarget>, Error> {
    let target = registry::set_training_target(&state.store, &caller.0, id, year, input).await?;
    tracing::info!(pairing = id, year, by = caller.0.id, "pairing target set");
    Ok(Json(target))
}

/// Lookup parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SupporterQuery {
    /// The supported institution.
    institution_id: i64,
    /// The service.
    service: Service,
    /// The date, `YYYY-MM-DD`; today in China when left out.
    date: Option<NaiveDate>,
}

/// Who supports an institution for a service on a date: the designated supporter first,
/// then each link above it (clinician → unit → assisting tertiary hospital).
#[utoipa::path(get, path = "/supporters", tag = "pairings", params(SupporterQuery),
    responses((status = 200, body = SupporterChain), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn lookup_supporters(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<SupporterQuery>,
) -> Result<Json<SupporterChain>, Error> {
    let date = q.date.unwrap_or_else(today_in_china);
    Ok(Json(
        registry::supporter_chain(&state.store, q.institution_id, q.service, date).await?,
    ))
}
