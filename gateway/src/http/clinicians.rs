//! `/clinicians`: search clinicians by unit, specialty and title rank; administrators and
//! the unit's coordinators add them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use super::{AppState, page};
use crate::domain::{Clinician, Role, Sex, TitleRank, normalize_name};
use crate::error::{Error, Problem};
use crate::store::{ClinicianFilter, NewClinician};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_clinicians, create_clinician))
        .routes(routes!(get_clinician, update_credentials))
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
    responses((status = 200, body = Vec<Clinician>), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn list_clinicians(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<ClinicianQuery>,
) -> Result<Json<Vec<Clinician>>, Error> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let ranks = q.min_rank.map(|min| {
        TitleRank::ALL
            .iter()
            .filter(|r| **r >= min)
            .map(|r| r.as_str().to_owned())
            .collect()
    });
    let filter = ClinicianFilter {
        institution_id: q.institution_id,
        specialty: q.specialty.filter(|s| !s.trim().is_empty()),
        ranks,
        name: q.name.map(|n| normalize_name(&n)).filter(|n| !n.is_empty()),
        limit,
        offset,
    };
    Ok(Json(state.store.clinicians(&filter).await?))
}

/// One clinician. Any logged-in user.
#[utoipa::path(get, path = "/clinicians/{id}", tag = "registry", params(("id" = i64, Path)),
    responses((status = 200, body = Clinician), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_clinician(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<Clinician>, Error> {
    state
        .store
        .clinician(id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("clinician {id}")))
}

/// A new clinician.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClinicianInput {
    /// Name.
    name: String,
    /// Sex.
    sex: Option<Sex>,
    /// Unit.
    institution_id: i64,
    /// Professional title as written, e.g. 副主任中医师; its rank is derived.
    title: String,
    /// Specialty.
    specialty: String,
    /// Practising licence number.
    licence_number: Option<String>,
    /// Years of independent practice.
    practice_years: Option<i32>,
}

/// Adds a clinician. Administrators, or coordinators of the clinician's unit.
#[utoipa::path(post, path = "/clinicians", tag = "registry", request_body = ClinicianInput,
    responses((status = 201, body = Clinician), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_clinician(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<ClinicianInput>,
) -> Result<(StatusCode, Json<Clinician>), Error> {
    let own_coordinator =
        caller.0.is(Role::Coordinator) && caller.0.institution_id == input.institution_id;
    if !caller.0.is(Role::Admin) && !own_coordinator {
        return Err(Error::forbidden(
            "only an administrator or the unit's coordinator may add its clinicians",
        ));
    }
    let name = normalize_name(&input.name);
    if name.is_empty() {
        return Err(Error::field("name", "a name is required"));
    }
    let title = normalize_name(&input.title);
    let rank = TitleRank::of_title(&title).ok_or_else(|| {
        Error::field(
            "title",
            format!("{title:?} is not a known professional title"),
        )
    })?;
    if input.practice_years.is_some_and(|y| !(0..=70).contains(&y)) {
        return Err(Error::field(
            "practice_years",
            "years of practice lie between 0 and 70",
        ));
    }
    let new = NewClinician {
        name,
        sex: input.sex.map(|s| s.as_str().to_owned()),
        institution_id: input.institution_id,
        title,
        title_rank: rank.as_str().to_owned(),
        specialty: normalize_name(&input.specialty),
        licence_number: input
            .licence_number
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty()),
        practice_years: input.practice_years,
    };
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_clinician(&new).await?),
    ))
}

/// A clinician's credentials, as the unit's records show them now.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsInput {
    /// Practising licence number; null when it lapsed.
    licence_number: Option<String>,
    /// Years of independent practice.
    practice_years: Option<i32>,
}

/// Updates a clinician's licence and years of practice: administrators, or coordinators
/// of the clinician's unit. Consultants are checked against them again at signing.
#[utoipa::path(patch, path = "/clinicians/{id}", tag = "registry", params(("id" = i64, Path)), request_body = CredentialsInput,
    responses((status = 200, body = Clinician), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_credentials(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<CredentialsInput>,
) -> Result<Json<Clinician>, Error> {
    let c = state
        .store
        .clinician(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("clinician {id}")))?;
    let own_coordinator =
        caller.0.is(Role::Coordinator) && caller.0.institution_id == c.institution_id;
    if !caller.0.is(Role::Admin) && !own_coordinator {
        return Err(Error::forbidden(
            "only an administrator or the unit's coordinator",
        ));
    }
    if input.practice_years.is_some_and(|y| !(0..=70).contains(&y)) {
        return Err(Error::field(
            "practice_years",
            "years of practice lie between 0 and 70",
        ));
    }
    let licence = input
        .licence_number
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let updated = state
        .store
        .update_clinician_credentials(id, licence, input.practice_years)
        .await?;
    updated
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("clinician {id}")))
}
