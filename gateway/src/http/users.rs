//! `/users`: accounts. Administrators see and create accounts of every institution;
//! coordinators those of their own; everybody else sees their own institution's only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use crate::auth::generate_password;
use crate::domain::{Role, Roles, User};
use crate::error::{Error, Problem};
use crate::store::NewUser;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user))
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
    let scope = if caller.0.is(Role::Admin) {
        q.institution_id
    } else {
        match q.institution_id {
            Some(id) if id != caller.0.institution_id => {
                return Err(Error::forbidden(
                    "you may only see the accounts of your own institution",
                ));
            }
            _ => Some(caller.0.institution_id),
        }
    };
    Ok(Json(state.store.users(scope).await?))
}

/// One account: administrators, or members of the same institution.
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<User>, Error> {
    let user = state
        .store
        .user(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {id}")))?;
    if !caller.0.is(Role::Admin) && user.institution_id != caller.0.institution_id {
        return Err(Error::forbidden(
            "you may only see the accounts of your own institution",
        ));
    }
    Ok(Json(user))
}

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    /// Login name: 3 to 64 letters, digits, `.`, `_` or `-`.
    username: String,
    /// Shown name.
    display_name: String,
    /// Institution.
    institution_id: i64,
    /// The user's clinician record, at the same institution.
    clinician_id: Option<i64>,
    /// Roles, at least one.
    roles: Vec<Role>,
    /// Initial password (at least 12 characters); one is generated when left out.
    password: Option<String>,
}

/// The created account.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    /// The account.
    user: User,
    /// The generated password, shown this once; absent when the caller chose one.
    #[serde(skip_serializing_if = "Option::is_none")]
    initial_password: Option<String>,
}

/// Checks a login name: 3 to 64 ASCII letters, digits, `.`, `_` or `-`.
pub fn check_username(username: &str) -> Result<(), Error> {
    let ok = (3..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::field(
            "username",
            "use 3 to 64 letters, digits, '.', '_' or '-'",
        ))
    }
}

/// Creates an account: administrators for any institution, coordinators for their own
/// (and never an administrator).
#[utoipa::path(post, path = "/users", tag = "users", request_body = UserInput,
    responses((status = 201, body = CreatedUser), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<UserInput>,
) -> Result<(StatusCode, Json<CreatedUser>), Error> {
    let roles = Roles::new(input.roles)
        .ok_or_else(|| Error::field("roles", "at least one role is required"))?;
    if !caller.0.is(Role::Admin) {
        if !caller.0.is(Role::Coordinator) || caller.0.institution_id != input.institution_id {
            return Err(Error::forbidden(
                "only an administrator or the institution's coordinator may add accounts",
            ));
        }
        if roles.contains(Role::Admin) {
            return Err(Error::forbidden(
                "only an administrator may create administrators",
            ));
        }
    }
    let username = input.username.trim().to_owned();
    check_username(&username)?;
    let display_name = input.display_name.trim().to_owned();
    if display_name.is_empty() {
        return Err(Error::field("display_name", "a name to show is required"));
    }
    let (password, generated) = match input.password {
        Some(p) if p.chars().count() < 12 => {
            return Err(Error::field(
                "password",
                "a password has at least 12 characters",
            ));
        }
        Some(p) => (p, false),
        None => (generate_password(), true),
    };
    let to_hash = password.clone();
    let password_hash = state.hasher.hash(to_hash).await??;
    let new = NewUser {
        username,
        display_name,
        institution_id: input.institution_id,
        clinician_id: input.clinician_id,
        roles,
        password_hash,
    };
    let user = state.store.create_user(&new).await?;
    tracing::info!(user = user.id, by = caller.0.id, "account created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user,
            initial_password: generated.then_some(password),
        }),
    ))
}
