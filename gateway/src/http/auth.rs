//! Login (with its second factor), logout and the caller of every other endpoint.

mod two_factor;

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
use crate::audit::Event;
use crate::auth::{SESSION_COOKIE, SessionToken, hash_token};
use crate::domain::User;
use crate::error::{Error, Problem};
use crate::text::Text;

/// The authenticated user of a request, from the session cookie or a bearer token,
/// whose password is their own and who has the second factor their roles ask for
/// (`auth.two_factor_roles`): a user with a one-time password is refused everything but
/// [`Session`]'s endpoints until they replace it, and one without the second factor
/// everything but those and enrolment (`/me/two-factor`) until they enrol.
#[derive(Debug, Clone)]
pub struct Caller(pub User);

/// The user of a valid session, with a one-time password or not, with the second factor
/// their roles ask for or not, and the session's token: for the endpoints that let a
/// user replace a one-time password and enrol a second factor (`/me`, `/me/password`,
/// `/me/two-factor`, logout).
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
        if must_enrol(state, &user) {
            return Err(Error::TwoFactorRequired);
        }
        Ok(Self(user))
    }
}

/// Whether `user`'s roles ask for a second factor (`auth.two_factor_roles`).
fn second_factor_asked(state: &AppState, user: &User) -> bool {
    state
        .config
        .auth
        .two_factor_roles
        .iter()
        .any(|role| user.is(*role))
}

/// Whether `user` must enrol a second factor before anything else.
fn must_enrol(state: &AppState, user: &User) -> bool {
    !user.two_factor && second_factor_asked(state, user)
}

/// Until when an attempt counted under `keys` is held back, as the refusal to answer
/// (429 with `Retry-After`); `Ok` when it may go on.
async fn held_back(state: &AppState, keys: &[(String, u32)]) -> Result<(), Error> {
    let auth = &state.config.auth;
    let held = state
        .store
        .count_login_attempt(keys, auth.attempt_window_seconds, auth.max_delay_seconds)
        .await?;
    match held {
        Some(until) => {
            let wait_ms = (until - state.store.now()).num_milliseconds().max(0);
            Err(Error::TooManyAttempts((wait_ms + 999) / 1000))
        }
        None => Ok(()),
    }
}

/// A login name as the audit may keep it: only when it has the shape of one, so that a
/// password typed into the wrong field is never written down.
fn username_for_audit(username: &str) -> Option<&str> {
    crate::registry::check_username(username)
        .is_ok()
        .then_some(username)
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

/// What a login answers: a session, or, for an account with a second factor, the
/// token of the second step.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    /// Signed in.
    Session(LoginResult),
    /// The password was right; the code comes next
    /// (`POST /auth/login/second-factor`).
    SecondFactor(PendingLogin),
}

/// A login whose password was right, waiting for the second factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingLogin {
    /// Always `second_factor`: what to send next.
    #[schema(example = "second_factor")]
    pub step: &'static str,
    /// Sent back with the code; good once, until `expires_at`.
    pub pending_token: String,
    /// When the second step must be done by (then log in again).
    pub expires_at: DateTime<Utc>,
}

/// The second step of a login: the code of the authenticator, or a recovery code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactor {
    /// The token the first step answered.
    pub pending_token: String,
    /// The 6-digit code the authenticator shows, or an unused recovery code.
    pub code: String,
}

/// The caller's account, and whether their roles ask for a second factor.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The account.
    #[serde(flatten)]
    pub user: User,
    /// Their roles ask for a second factor (`auth.two_factor_roles`): until `two_factor`,
    /// they may do nothing but enrol.
    pub two_factor_required: bool,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResult {
    /// Always `done`.
    #[schema(example = "done")]
    pub step: &'static str,
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
        .routes(routes!(login_second_factor))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .merge(two_factor::router())
}

/// How long the second step of a login may wait, in seconds.
const SECOND_STEP_SECONDS: i64 = 300;

/// Logs in. Attempts are counted per client address and per (address, username) before
/// the password is checked: past `auth.failed_logins_before_delay` for one username from
/// one address, or `auth.attempts_per_address_before_delay` from one address, further
/// attempts are refused with 429 and a growing `Retry-After`, whatever the password;
/// attempts from other addresses are not affected. When every password check is busy
/// for `auth.password_check_wait_seconds`, the answer is 503 with `Retry-After`.
///
/// For an account with a second factor, the right password answers `step:
/// "second_factor"` and a `pending_token`, not a session: the session comes from
/// `POST /auth/login/second-factor` with a code. Every attempt is audited.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Login, security(()),
    responses((status = 200, body = LoginAnswer), (status = 401, body = Problem),
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
    if let Err(held) = held_back(&state, &keys).await {
        let tried = state.store.user_with_hash(login.username.trim()).await?;
        let mut event = Event::unauthenticated("account", "login")
            .denied()
            .detail("held back after failed attempts".to_owned());
        if let Some((user, _)) = tried {
            event = event
                .account(user.id, Some(user.institution_id))
                .id(user.id);
        }
        event.record(&state.store).await?;
        return Err(held);
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
        (Some(user), ok) => {
            tracing::info!("failed login");
            let why = if ok {
                "account disabled"
            } else {
                "wrong password"
            };
            Event::unauthenticated("account", "login")
                .account(user.id, Some(user.institution_id))
                .id(user.id)
                .denied()
                .detail(why.to_owned())
                .record(&state.store)
                .await?;
            return Err(Error::BadCredentials);
        }
        (None, _) => {
            tracing::info!("failed login");
            let detail = match username_for_audit(login.username.trim()) {
                Some(name) => format!("unknown username \"{name}\""),
                None => "unknown username".to_owned(),
            };
            Event::unauthenticated("account", "login")
                .denied()
                .detail(detail)
                .record(&state.store)
                .await?;
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
    if user.two_factor {
        let pending = SessionToken::generate();
        let expires_at = state.store.now() + TimeDelta::seconds(SECOND_STEP_SECONDS);
        state
            .store
            .create_login_challenge(&pending.hash(), user.id, expires_at)
            .await?;
        Event::by(&user, "account", "login")
            .id(user.id)
            .detail("password accepted; the second factor is asked".to_owned())
            .record(&state.store)
            .await?;
        tracing::info!(user = user.id, "password accepted, second factor asked");
        return Ok(axum::Json(LoginAnswer::SecondFactor(PendingLogin {
            step: "second_factor",
            pending_token: pending.expose().to_owned(),
            expires_at,
        }))
        .into_response());
    }
    Event::by(&user, "account", "login")
        .id(user.id)
        .record(&state.store)
        .await?;
    start_session(&state, user).await
}

/// Signs `user` in: a new session, its token in the answer and in the cookie.
async fn start_session(state: &AppState, user: User) -> Result<Response, Error> {
    let auth = &state.config.auth;
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
    let mut response = axum::Json(LoginAnswer::Session(LoginResult {
        step: "done",
        token: token.expose().to_owned(),
        expires_at,
        user,
    }))
    .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(anyhow::Error::from)?,
    );
    Ok(response)
}

/// The second step of a login with a second factor: the code of the authenticator (of
/// the current 30-second step, or the one before or after; each code once only) or an
/// unused recovery code, with the first step's `pending_token` (good for five
/// minutes). Wrong codes are throttled per account like passwords
/// (`auth.failed_logins_before_delay`, then 429 with `Retry-After`) and refused naming
/// the field `code`. Every attempt is audited.
#[utoipa::path(post, path = "/auth/login/second-factor", tag = "auth", request_body = SecondFactor,
    security(()),
    responses((status = 200, body = LoginResult), (status = 401, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn login_second_factor(
    State(state): State<AppState>,
    ApiJson(step): ApiJson<SecondFactor>,
) -> Result<Response, Error> {
    let pending = hash_token(&step.pending_token);
    let user = state
        .store
        .login_challenge_user(&pending)
        .await?
        .filter(|user| !user.disabled)
        .ok_or(Error::Unauthenticated)?;
    let key = format!("second factor of user {}", user.id);
    let free = state.config.auth.failed_logins_before_delay;
    let refuse = |detail: &str| {
        Event::by(&user, "account", "second_factor")
            .id(user.id)
            .denied()
            .detail(detail.to_owned())
            .record(&state.store)
    };
    if let Err(held) = held_back(&state, &[(key.clone(), free)]).await {
        refuse("held back after wrong codes").await?;
        return Err(held);
    }
    match two_factor::check_code(&state, &user, &step.code).await? {
        two_factor::Checked::Code => {
            Event::by(&user, "account", "second_factor")
                .id(user.id)
                .record(&state.store)
                .await?;
        }
        two_factor::Checked::RecoveryCode { left } => {
            Event::by(&user, "account", "recovery_code")
                .id(user.id)
                .detail(format!("{left} recovery codes left"))
                .record(&state.store)
                .await?;
        }
        two_factor::Checked::Refused(why) => {
            tracing::info!(user = user.id, "wrong second factor");
            refuse(why).await?;
            return Err(two_factor::wrong_code());
        }
    }
    state.store.login_succeeded(&key, (&key, free)).await?;
    state.store.delete_login_challenge(&pending).await?;
    start_session(&state, user).await
}

/// Ends the caller's session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = Problem)))]
async fn logout(State(state): State<AppState>, session: Session) -> Result<Response, Error> {
    state.store.delete_session(&session.token_hash).await?;
    Event::by(&session.user, "account", "logout")
        .id(session.user.id)
        .record(&state.store)
        .await?;
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(anyhow::Error::from)?,
    );
    Ok(response)
}

/// The caller's account, and whether their roles ask for a second factor.
#[utoipa::path(get, path = "/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
async fn me(State(state): State<AppState>, session: Session) -> axum::Json<Me> {
    let two_factor_required = second_factor_asked(&state, &session.user);
    axum::Json(Me {
        user: session.user,
        two_factor_required,
    })
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
    let audit = || Event::by(&session.user, "account", "password_change").id(session.user.id);
    if let Err(held) = held_back(&state, &[(key.clone(), auth.failed_logins_before_delay)]).await {
        audit()
            .denied()
            .detail("held back after failed attempts".to_owned())
            .record(&state.store)
            .await?;
        return Err(held);
    }
    let matches = state.hasher.verify(change.current, hash).await?;
    if !matches {
        audit()
            .denied()
            .detail("wrong current password".to_owned())
            .record(&state.store)
            .await?;
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
    let detail = session
        .user
        .must_change_password
        .then(|| "one-time password replaced".to_owned());
    audit().detail(detail).record(&state.store).await?;
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
