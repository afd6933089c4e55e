//! `/users`: accounts. Who sees and who creates them is decided in
//! [`crate::registry::accounts`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use crate::domain::User;
use crate::error::{Error, Problem};
use crate::registry::{self, AccountInput, CreatedAccount, ResetPassword};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, change_user))
        .routes(routes!(reset_password))
        .routes(routes!(reset_two_factor))
}

/// Filter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// The accounts of one institution; non-administrators may only ask for their own.
    institution_id: Option<i64>,
}

/// Lists accounts the caller may see.
#[utoipa::path(get, path = "/users", tag = "users", params(UserQuery),
    responses((status = 200, body = Vec<User>), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<Vec<User>>, Error> {
    let users = registry::accounts(&state.store, &caller.0, q.institution_id).await?;
    Ok(Json(users))
}

/// One account: administrators, or members of the same institution.
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<User>, Error> {
    Ok(Json(registry::account(&state.store, &caller.0, id).await?))
}

/// A change to an account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    /// Disabled accounts cannot log in, and disabling one ends its sessions.
    disabled: bool,
}

/// Disables an account (its sessions end at once) or enables it again: administrators,
/// or the institution's coordinator for its accounts that are not administrators'.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = AccountChange,
    responses((status = 200, body = User), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn change_user(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(change): ApiJson<AccountChange>,
) -> Result<Json<User>, Error> {
    let user = registry::set_disabled(&state.store, &caller.0, id, change.disabled).await?;
    Ok(Json(user))
}

/// Creates an account: administrators for any institution, coordinators for their own
/// (and never an administrator).
#[utoipa::path(post, path = "/users", tag = "users", request_body = AccountInput,
    responses((status = 201, body = CreatedAccount), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<AccountInput>,
) -> Result<(StatusCode, Json<CreatedAccount>), Error> {
    let created = registry::create_account(&state.store, &state.hasher, &caller.0, input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Resets another person's password to a one-time password, returned this once, which
/// they must change at their next login; their sessions end. Who may: as for disabling.
#[utoipa::path(post, path = "/users/{id}/password-reset", tag = "users", params(("id" = i64, Path)),
    responses((status = 200, body = ResetPassword), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<ResetPassword>, Error> {
    let reset = registry::reset_password(&state.store, &state.hasher, &caller.0, id).await?;
    Ok(Json(reset))
}

/// Removes another person's second factor, when they lost both their phone and their
/// recovery codes: they sign in with their password alone, and enrol again where their
/// role requires it. Who may: as for disabling. Audited, refusals too.
#[utoipa::path(delete, path = "/users/{id}/two-factor", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn reset_two_factor(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<StatusCode, Error> {
    registry::reset_two_factor(&state.store, &caller.0, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
