//! Login, logout and the caller of every other endpoint.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::extract::ApiJson;
use crate::auth::{SESSION_COOKIE, SessionToken, hash_password, hash_token, verify_password};
use crate::domain::{Role, User};
use crate::error::{Error, Problem};

/// The authenticated user of a request, from the session cookie or a bearer token.
#[derive(Debug, Clone)]
pub struct Caller(pub User);

impl Caller {
    /// Refuses unless the caller is an administrator.
    pub fn require_admin(&self, action: &str) -> Result<(), Error> {
        if self.0.is(Role::Admin) {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "only an administrator may {action}"
            )))
        }
    }
}

fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_owned());
    }
    super::cookie(headers, SESSION_COOKIE).map(str::to_owned)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = presented_token(&parts.headers).ok_or(Error::Unauthenticated)?;
        let user = state
            .store
            .session_user(&hash_token(&token))
            .await?
            .ok_or(Error::Unauthenticated)?;
        Ok(Self(user))
    }
}

/// Username and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResult {
    /// Bearer token for API clients; browsers get the same token as an HttpOnly cookie.
    pub token: String,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
    /// Who logged in.
    pub user: User,
}

/// A new password for the caller.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    pub current: String,
    /// The new password, at least 12 characters.
    pub new: String,
}

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

/// Logs in. After repeated failures for one username, further attempts are refused with
/// 429 and a growing `Retry-After`, whatever the password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Login, security(()),
    responses((status = 200, body = LoginResult), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn login(
    State(state): State<AppState>,
    ApiJson(login): ApiJson<Login>,
) -> Result<Response, Error> {
    let auth = &state.config.auth;
    let key = login.username.trim().to_lowercase();
    if let Some(until) = state.store.login_locked_until(&key).await? {
        let wait_ms = (until - Utc::now()).num_milliseconds();
        if wait_ms > 0 {
            return Err(Error::TooManyAttempts((wait_ms + 999) / 1000));
        }
    }
    let found = state.store.user_with_hash(login.username.trim()).await?;
    // Verify against a real hash even for unknown users, so timing does not tell which
    // usernames exist.
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, state.dummy_hash.as_ref().clone()),
    };
    let password = login.password;
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(anyhow::Error::from)?;
    let user = match (user, ok) {
        (Some(user), true) if !user.disabled => user,
        _ => {
            state
                .store
                .record_login_failure(
                    &key,
                    auth.failed_logins_before_delay,
                    auth.max_delay_seconds,
                )
                .await?;
            tracing::info!("failed login");
            return Err(Error::BadCredentials);
        }
    };
    state.store.clear_login_failures(&key).await?;
    let token = SessionToken::generate();
    let expires_at = Utc::now() + TimeDelta::hours(auth.session_hours);
    state
        .store
        .create_session(&token.hash(), user.id, expires_at)
        .await?;
    tracing::info!(user = user.id, "login");
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        token.expose(),
        auth.session_hours * 3600,
        if state.tls { "; Secure" } else { "" }
    );
    let mut response = axum::Json(LoginResult {
        token: token.expose().to_owned(),
        expires_at,
        user,
    })
    .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(anyhow::Error::from)?,
    );
    Ok(response)
}

/// Ends the caller's session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout(
    State(state): State<AppState>,
    _caller: Caller,
    headers: HeaderMap,
) -> Result<Response, Error> {
    if let Some(token) = presented_token(&headers) {
        state.store.delete_session(&hash_token(&token)).await?;
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(anyhow::Error::from)?,
    );
    Ok(response)
}

/// The caller's account.
#[utoipa::path(get, path = "/me", tag = "auth",
    responses((status = 200, body = User), (status = 401, body = Problem)))]
async fn me(caller: Caller) -> axum::Json<User> {
    axum::Json(caller.0)
}

/// Changes the caller's password; every session of the caller ends, this one included.
#[utoipa::path(post, path = "/me/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(change): ApiJson<PasswordChange>,
) -> Result<axum::http::StatusCode, Error> {
    if change.new.chars().count() < 12 {
        return Err(Error::field("new", "a password has at least 12 characters"));
    }
    let (_, hash) = state
        .store
        .user_with_hash(&caller.0.username)
        .await?
        .ok_or(Error::Unauthenticated)?;
    let current = change.current;
    let matches = tokio::task::spawn_blocking(move || verify_password(&current, &hash))
        .await
        .map_err(anyhow::Error::from)?;
    if !matches {
        return Err(Error::field("current", "the current password is wrong"));
    }
    let new = change.new;
    let hash = tokio::task::spawn_blocking(move || hash_password(&new))
        .await
        .map_err(anyhow::Error::from)??;
    state.store.set_password(caller.0.id, &hash).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
