//! `/teams`: expert teams with a leader and members (`003`: 5-10 members and a named
//! leader; `004`: a dean or deputy and at least five staff). Administrators and the unit's
//! coordinators form and change them ([`crate::registry`] decides who may, and where a
//! plan sets a size).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use crate::domain::Team;
use crate::error::{Error, Problem};
use crate::registry::{self, TeamChange, TeamInput};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_teams, create_team))
        .routes(routes!(get_team, update_team))
}

/// Search parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TeamQuery {
    /// The teams of one institution.
    institution_id: Option<i64>,
}

/// Lists teams. Any logged-in user.
#[utoipa::path(get, path = "/teams", tag = "registry", params(TeamQuery),
    responses((status = 200, body = Vec<Team>), (status = 401, body = Problem)))]
async fn list_teams(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<TeamQuery>,
) -> Result<Json<Vec<Team>>, Error> {
    Ok(Json(registry::teams(&state.store, q.institution_id).await?))
}

/// One team. Any logged-in user.
#[utoipa::path(get, path = "/teams/{id}", tag = "registry", params(("id" = i64, Path)),
    responses((status = 200, body = Team), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_team(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<Team>, Error> {
    Ok(Json(registry::team(&state.store, id).await?))
}

/// Forms a team. Administrators, or coordinators of the team's unit.
#[utoipa::path(post, path = "/teams", tag = "registry", request_body = TeamInput,
    responses((status = 201, body = Team), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_team(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<TeamInput>,
) -> Result<(StatusCode, Json<Team>), Error> {
    let team = registry::create_team(&state.store, &caller.0, input).await?;
    Ok((StatusCode::CREATED, Json(team)))
}

/// Changes a team's name, leader or members. Administrators, or coordinators of the
/// team's unit; a Huancui team keeps 5 to 10 members (`team-size`).
#[utoipa::path(patch, path = "/teams/{id}", tag = "registry", params(("id" = i64, Path)), request_body = TeamChange,
    responses((status = 200, body = Team), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_team(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(change): ApiJson<TeamChange>,
) -> Result<Json<Team>, Error> {
    Ok(Json(
        registry::update_team(&state.store, &caller.0, id, change).await?,
    ))
}
