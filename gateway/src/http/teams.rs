//! `/teams`: expert teams with a leader and members (`003`: 5-10 members and a named
//! leader; `004`: a dean or deputy and at least five staff).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use crate::domain::{Role, Team, normalize_name};
use crate::error::{Error, Problem};
use crate::store::NewTeam;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_teams, create_team))
        .routes(routes!(get_team))
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
    Ok(Json(state.store.teams(q.institution_id).await?))
}

/// One team. Any logged-in user.
#[utoipa::path(get, path = "/teams/{id}", tag = "registry", params(("id" = i64, Path)),
    responses((status = 200, body = Team), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_team(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<Team>, Error> {
    state
        .store
        .team(id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("team {id}")))
}

/// A new team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamInput {
    /// Name.
    name: String,
    /// The unit; the leader and members are its clinicians.
    institution_id: i64,
    /// The leader (团队长).
    leader_id: i64,
    /// Other members.
    #[serde(default)]
    member_ids: Vec<i64>,
}

/// Forms a team. Administrators, or coordinators of the team's unit.
#[utoipa::path(post, path = "/teams", tag = "registry", request_body = TeamInput,
    responses((status = 201, body = Team), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_team(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<TeamInput>,
) -> Result<(StatusCode, Json<Team>), Error> {
    let own_coordinator =
        caller.0.is(Role::Coordinator) && caller.0.institution_id == input.institution_id;
    if !caller.0.is(Role::Admin) && !own_coordinator {
        return Err(Error::forbidden(
            "only an administrator or the unit's coordinator may form its teams",
        ));
    }
    let name = normalize_name(&input.name);
    if name.is_empty() {
        return Err(Error::field("name", "a name is required"));
    }
    let new = NewTeam {
        name,
        institution_id: input.institution_id,
        leader_id: input.leader_id,
        member_ids: input.member_ids,
    };
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_team(&new).await?),
    ))
}
