//! Login, logout and the caller of every other endpoint.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Extension;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::extract::ApiJson;
use crate::auth::{SESSION_COOKIE, SessionToken, hash_token};
use crate::domain::User;
use crate::error::{Error, Problem};
use crate::text::Text;

/// The authenticated user of a request, from the session cookie or a bearer token,
/// whose password is their own: a user with a one-time password is refused everything
/// but [`Session`]'s endpoints until they replace it.
#[derive(Debug, Clone)]
pub struct Caller(pub User);

/// The user of a valid session, with a one-time password or not, and the session's
/// token: for the endpoints that let a user replace a one-time password (`/me`,
/// `/me/password`, logout).
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub user: User,
    /// The hash of the token the request presented.
    pub token_hash: String,
}

/// The client's address: the peer's, or, when the peer is one of `trusted_proxies`, the
/// last address in `X-Forwarded-For` that is not itself a trusted proxy (each proxy
/// appends the address it got the request from; what comes before the first trusted one
/// is the client's to write and is not believed). Unknown (no peer, as in a test router)
/// is `0.0.0.0`.
pub(super) fn client_address(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted_proxies: &[IpAddr],
) -> IpAddr {
    let Some(peer) = peer.map(|p| p.ip().to_canonical()) else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted_proxies.contains(&ip.to_canonical()) => continue,
            Ok(ip) => return ip.to_canonical(),
            // A hop that is not an address: what precedes it cannot be trusted either.
            Err(_) => return peer,
        }
    }
    peer
}

/// The unit logins are counted by: the address, or for IPv6 its /64 network, which one
/// subscriber holds whole and can draw fresh addresses from at will.
fn throttled(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
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
    super::cookie(headers, SESSION_COOKIE)
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = presented_token(&parts.headers).ok_or(Error::Unauthenticated)?;
        let token_hash = hash_token(&token);
        let user = state
            .store
            .session_user(&token_hash)
            .await?
            .ok_or(Error::Unauthenticated)?;
        crate::audit::seen(&user);
        Ok(Self { user, token_hash })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let Session { user, .. } = Session::from_request_parts(parts, state).await?;
        if user.must_change_password {
            return Err(Error::PasswordChangeRequired);
        }
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

/// Logs in. Attempts are counted per client address and per (address, username) before
/// the password is checked: past `auth.failed_logins_before_delay` for one username from
/// one address, or `auth.attempts_per_address_before_delay` from one address, further
/// attempts are refused with 429 and a growing `Retry-After`, whatever the password;
/// attempts from other addresses are not affected. When every password check is busy
/// for `auth.password_check_wait_seconds`, the answer is 503 with `Retry-After`.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Login, security(()),
    responses((status = 200, body = LoginResult), (status = 401, body = Problem),
        (status = 429, body = Problem), (status = 503, body = Problem)))]
async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ApiJson(login): ApiJson<Login>,
) -> Result<Response, Error> {
    let auth = &state.config.auth;
    let address = client_address(peer.map(|p| p.0.0), &headers, &auth.trusted_proxies);
    let username = login.username.trim().to_lowercase();
    let address = throttled(address);
    let by_address = format!("address {address}");
    let by_pair = format!("address {address} username {username}");
    let keys = [
        (by_pair.clone(), auth.failed_logins_before_delay),
        (by_address.clone(), auth.attempts_per_address_before_delay),
    ];
    let held = state
        .store
        .count_login_attempt(&keys, auth.attempt_window_seconds, auth.max_delay_seconds)
        .await?;
    if let Some(until) = held {
        let wait_ms = (until - state.store.now()).num_milliseconds().max(0);
        return Err(Error::TooManyAttempts((wait_ms + 999) / 1000));
    }
    let found = state.store.user_with_hash(login.username.trim()).await?;
    // Verify against a real hash even for unknown users, so timing does not tell which
    // usernames exist.
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, state.dummy_hash.as_ref().clone()),
    };
    let ok = state.hasher.verify(login.password, hash).await?;
    let user = match (user, ok) {
        (Some(user), true) if !user.disabled => user,
        _ => {
            tracing::info!("failed login");
            return Err(Error::BadCredentials);
        }
    };
    state
        .store
        .login_succeeded(
            &by_pair,
            (&by_address, auth.attempts_per_address_before_delay),
        )
        .await?;
    let token = SessionToken::generate();
    let expires_at = state.store.now() + TimeDelta::hours(auth.session_hours);
    state
        .store
        .create_session(&token.hash(), user.id, expires_at)
        .await?;
    state.store.logged_in(user.id).await?;
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
async fn logout(State(state): State<AppState>, session: Session) -> Result<Response, Error> {
    state.store.delete_session(&session.token_hash).await?;
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
async fn me(session: Session) -> axum::Json<User> {
    axum::Json(session.user)
}

/// Changes the caller's password, a one-time one too; every other session of the caller
/// ends, this one goes on.
#[utoipa::path(post, path = "/me/password", tag = "auth", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn change_password(
    State(state): State<AppState>,
    session: Session,
    ApiJson(change): ApiJson<PasswordChange>,
) -> Result<axum::http::StatusCode, Error> {
    if change.new.chars().count() < 12 {
        return Err(Error::field(
            "new",
            Text::new(
                "problem.password.short",
                "a password has at least 12 characters",
            ),
        ));
    }
    if change.new == change.current {
        return Err(Error::field(
            "new",
            Text::new(
                "problem.password.same",
                "the new password must differ from the current one",
            ),
        ));
    }
    let (_, hash) = state
        .store
        .user_with_hash(&session.user.username)
        .await?
        .ok_or(Error::Unauthenticated)?;
    // Guesses of the current password (a session left open, say) are held back like
    // logins, counted before each check.
    let auth = &state.config.auth;
    let key = format!("password change of user {}", session.user.id);
    let held = state
        .store
        .count_login_attempt(
            &[(key.clone(), auth.failed_logins_before_delay)],
            auth.attempt_window_seconds,
            auth.max_delay_seconds,
        )
        .await?;
    if let Some(until) = held {
        let wait_ms = (until - state.store.now()).num_milliseconds().max(0);
        return Err(Error::TooManyAttempts((wait_ms + 999) / 1000));
    }
    let matches = state.hasher.verify(change.current, hash).await?;
    if !matches {
        return Err(Error::field(
            "current",
            Text::new("problem.password.wrong", "the current password is wrong"),
        ));
    }
    state
        .store
        .login_succeeded(&key, (&key, auth.failed_logins_before_delay))
        .await?;
    let hash = state.hasher.hash(change.new).await??;
    state
        .store
        .set_password(session.user.id, &hash, false, Some(&session.token_hash))
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Asks the caller for their password again before `action` on request `object_id` (the
/// signature on an opinion: the person at the keyboard is the account's holder, not
/// whoever found a session left open). Guesses are throttled like logins, counted per
/// user before each check (`auth.failed_logins_before_delay`, then 429 with a growing
/// `Retry-After`); a missing or wrong password is refused naming the field `password`.
/// Refusals and the throttle are audited; nothing else changes.
pub(super) async fn reauthenticate(
    state: &AppState,
    user: &User,
    password: Option<&str>,
    action: &str,
    object_id: i64,
) -> Result<(), Error> {
    let refuse = |detail: &str| {
        crate::audit::record(
            &state.store,
            user,
            "request",
            action,
            Some(object_id),
            false,
            Some(detail.to_owned()),
        )
    };
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        refuse("no password given to re-authenticate").await?;
        return Err(Error::field(
            "password",
            "signing asks for your password again",
        ));
    };
    let auth = &state.config.auth;
    let key = format!("re-authentication of user {}", user.id);
    let held = state
        .store
        .count_login_attempt(
            &[(key.clone(), auth.failed_logins_before_delay)],
            auth.attempt_window_seconds,
            auth.max_delay_seconds,
        )
        .await?;
    if let Some(until) = held {
        refuse("re-authentication held back after failed attempts").await?;
        let wait_ms = (until - state.store.now()).num_milliseconds().max(0);
        return Err(Error::TooManyAttempts((wait_ms + 999) / 1000));
    }
    let (_, hash) = state
        .store
        .user_with_hash(&user.username)
        .await?
        .ok_or(Error::Unauthenticated)?;
    if !state.hasher.verify(password.to_owned(), hash).await? {
        tracing::info!(user = user.id, "failed re-authentication");
        refuse("wrong password to re-authenticate").await?;
        return Err(Error::field("password", "the password is wrong"));
    }
    state
        .store
        .login_succeeded(&key, (&key, auth.failed_logins_before_delay))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_comes_from_trusted_proxies_only() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let peer = |ip: &str| Some(SocketAddr::new(ip.parse().unwrap(), 40000));
        let forwarded = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", HeaderValue::from_static(v));
            h
        };
        let at = |p, h: &HeaderMap, t: &[IpAddr]| client_address(p, h, t).to_string();
        // Not from a trusted proxy: the header is the client's own invention.
        assert_eq!(
            at(peer("203.0.113.9"), &forwarded("1.2.3.4"), &[proxy]),
            "203.0.113.9"
        );
        // From the proxy: the last hop it appended.
        assert_eq!(
            at(
                peer("10.0.0.2"),
                &forwarded("1.2.3.4, 198.51.100.7"),
                &[proxy]
            ),
            "198.51.100.7"
        );
        // Trusted hops are passed over; garbage stops the walk.
        let two = ["10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap()];
        assert_eq!(
            at(peer("10.0.0.2"), &forwarded("198.51.100.7, 10.0.0.3"), &two),
            "198.51.100.7"
        );
        assert_eq!(
            at(peer("10.0.0.2"), &forwarded("1.2.3.4, junk"), &[proxy]),
            "10.0.0.2"
        );
        assert_eq!(
            at(peer("10.0.0.2"), &HeaderMap::new(), &[proxy]),
            "10.0.0.2"
        );
        assert_eq!(
            at(peer("::ffff:127.0.0.2"), &HeaderMap::new(), &[]),
            "127.0.0.2"
        );
        assert_eq!(at(None, &HeaderMap::new(), &[]), "0.0.0.0");
        // IPv6 addresses are counted by their /64.
        assert_eq!(throttled("127.0.0.2".parse().unwrap()), "127.0.0.2");
        assert_eq!(
            throttled("2001:db8:1:2:aaaa::1".parse().unwrap()),
            throttled("2001:db8:1:2:bbbb::7".parse().unwrap())
        );
        assert_ne!(
            throttled("2001:db8:1:2::1".parse().unwrap()),
            throttled("2001:db8:1:3::1".parse().unwrap())
        );
    }
}
