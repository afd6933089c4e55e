//! `/clinicians`: search clinicians by unit, specialty and title rank, each with their
//! years of practice and whether they qualify as a consultant; administrators and the
//! unit's coordinators add them and keep their name, title, specialty and credentials
//! current.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use super::{AppState, page};
use crate::domain::TitleRank;
use crate::error::{Error, Problem};
use crate::registry::{self, ClinicianChange, ClinicianInput, ClinicianRecord, ClinicianSearch};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clinicians, create_clinician))
        .routes(routes!(get_clinician, update_clinician))
}

/// Search parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClinicianQuery {
    /// Unit.
    institution_id: Option<i64>,
    /// Part of the specialty.
    specialty: Option<String>,
    /// Only clinicians of this rank or higher.
    min_rank: Option<TitleRank>,
    /// Part of the name.
    name: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<i64>,
    /// Rows to skip.
    offset: Option<i64>,
}

/// Searches clinicians. Any logged-in user.
#[utoipa::path(get, path = "/clinicians", tag = "registry", params(ClinicianQuery),
    responses((status = 200, body = Vec<ClinicianRecord>), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn list_clinicians(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<ClinicianQuery>,
) -> Result<Json<Vec<ClinicianRecord>>, Error> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let search = ClinicianSearch {
        institution_id: q.institution_id,
        specialty: q.specialty,
        min_rank: q.min_rank,
        name: q.name,
    };
    Ok(Json(
        registry::clinicians(&state.store, search, limit, offset).await?,
    ))
}

/// One clinician. Any logged-in user.
#[utoipa::path(get, path = "/clinicians/{id}", tag = "registry", params(("id" = i64, Path)),
    responses((status = 200, body = ClinicianRecord), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_clinician(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<ClinicianRecord>, Error> {
    Ok(Json(registry::clinician_record(&state.store, id).await?))
}

/// Adds a clinician. Administrators, or coordinators of the clinician's unit.
#[utoipa::path(post, path = "/clinicians", tag = "registry", request_body = ClinicianInput,
    responses((status = 201, body = ClinicianRecord), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_clinician(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<ClinicianInput>,
) -> Result<(StatusCode, Json<ClinicianRecord>), Error> {
    let c = registry::create_clinician(&state.store, &caller.0, input).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// Changes a clinician's name, title, specialty, licence or the day practice began.
///
/// Any field left out keeps its value. Administrators, or coordinators of the clinician's
/// unit. Each field is checked as when the clinician was added, and the title's rank
/// follows from the title. The supporter of a pairing in force (or yet to begin) keeps an
/// intermediate title or higher (`000`): a lower one is refused under
/// `supporter-not-qualified`, naming `title`. A refused change writes nothing.
/// Consultants are checked against their credentials again at signing.
#[utoipa::path(patch, path = "/clinicians/{id}", tag = "registry", params(("id" = i64, Path)), request_body = ClinicianChange,
    responses((status = 200, body = ClinicianRecord), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_clinician(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(change): ApiJson<ClinicianChange>,
) -> Result<Json<ClinicianRecord>, Error> {
    let c = registry::update_clinician(&state.store, &caller.0, id, change).await?;
    Ok(Json(c))
}
