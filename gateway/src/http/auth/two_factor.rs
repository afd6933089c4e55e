//! `/me/two-factor`: enrolling, confirming and removing the caller's second factor
//! (TOTP, [`crate::auth::totp`]), and checking a code at login.
//!
//! Enrolment begins with a fresh secret (shown once, as a QR code of its `otpauth://`
//! URI and in base32 to type), is confirmed by a code from it, which answers ten
//! recovery codes, shown once, and ends only with a current code or the password.
//! Secrets, codes and recovery codes are never written to the audit or the logs.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Session, held_back};
use crate::audit::Event;
use crate::auth::totp;
use crate::domain::User;
use crate::error::{Error, Problem};
use crate::http::AppState;
use crate::http::extract::ApiJson;
use crate::text::Text;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(begin_enrolment, disable))
        .routes(routes!(confirm_enrolment))
}

/// What an authenticator app needs, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolment {
    /// The secret in base32 (RFC 4648), to type when the QR code cannot be scanned.
    pub secret: String,
    /// The `otpauth://totp/` URI the QR code holds: SHA-1, 6 digits, 30 seconds.
    pub otpauth_uri: String,
    /// The QR code of `otpauth_uri`, an SVG document.
    pub qr_svg: String,
}

/// A code from the authenticator.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Code {
    /// The 6 digits the authenticator shows.
    pub code: String,
}

/// The recovery codes, shown this once: each signs in once in place of a code.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten codes.
    pub recovery_codes: Vec<String>,
}

/// What proves the removal of the second factor: a current code, or the password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Removal {
    /// A code from the authenticator (or an unused recovery code).
    pub code: Option<String>,
    /// The account's password.
    pub password: Option<String>,
}

/// What a code typed at login turned out to be.
pub(super) enum Checked {
    /// A code of the authenticator, of a step not used before.
    Code,
    /// An unused recovery code, now used; how many are left.
    RecoveryCode {
        /// Unused codes left.
        left: i64,
    },
    /// Neither: why, for the audit.
    Refused(&'static str),
}

/// The refusal of a wrong code, naming the field `code`.
pub(super) fn wrong_code() -> Error {
    Error::field(
        "code",
        Text::new(
            "problem.two_factor.wrong_code",
            "the code is wrong, or was used already; wait for the next one",
        ),
    )
}

/// The enrolment endpoints act for a user whose password is their own.
fn own_password(session: &Session) -> Result<&User, Error> {
    if session.user.must_change_password {
        return Err(Error::PasswordChangeRequired);
    }
    Ok(&session.user)
}

/// The Unix time of the store's clock.
fn unix_now(state: &AppState) -> u64 {
    u64::try_from(state.store.now().timestamp()).unwrap_or(0)
}

/// Checks `code` against `user`'s confirmed second factor: a code of the authenticator
/// (taking its step as used) or an unused recovery code (using it).
pub(super) async fn check_code(
    state: &AppState,
    user: &User,
    code: &str,
) -> Result<Checked, Error> {
    let Some(factor) = state
        .store
        .two_factor(user.id)
        .await?
        .filter(|f| f.confirmed)
    else {
        return Ok(Checked::Refused("no second factor enrolled"));
    };
    if totp::looks_like_recovery_code(code) {
        let hash = totp::recovery_code_hash(code);
        return Ok(match state.store.use_recovery_code(user.id, &hash).await? {
            Some(left) => Checked::RecoveryCode { left },
            None => Checked::Refused("wrong or used recovery code"),
        });
    }
    let Some(step) = totp::matching_step(&factor.secret, code, unix_now(state)) else {
        return Ok(Checked::Refused("wrong code"));
    };
    let step = i64::try_from(step).map_err(anyhow::Error::from)?;
    if state.store.use_step(user.id, step).await? {
        Ok(Checked::Code)
    } else {
        Ok(Checked::Refused("a code used already"))
    }
}

/// Begins enrolling a second factor: a new secret, as a QR code and in base32. Again
/// until confirmed, each time with a new secret; refused (409) while one is enrolled.
#[utoipa::path(post, path = "/me/two-factor", tag = "auth",
    responses((status = 200, body = Enrolment), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn begin_enrolment(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<Enrolment>, Error> {
    let user = own_password(&session)?;
    let enrolled = || {
        Error::Conflict(Text::new(
            "problem.two_factor.enrolled",
            "a second factor is enrolled already; remove it first to enrol another",
        ))
    };
    if user.two_factor {
        return Err(enrolled());
    }
    let secret = totp::new_secret();
    let otpauth_uri = totp::otpauth_uri(&secret, &user.username)?;
    let qr_svg = totp::qr_svg(&otpauth_uri)?;
    if !state.store.begin_two_factor(user.id, &secret).await? {
        return Err(enrolled());
    }
    Event::by(user, "account", "enrol_two_factor")
        .id(user.id)
        .record(&state.store)
        .await?;
    Ok(Json(Enrolment {
        secret,
        otpauth_uri,
        qr_svg,
    }))
}

/// Confirms the enrolment with a current code of the new secret; answers the ten
/// recovery codes, this once. Wrong codes are throttled like passwords (429) and refused
/// naming `code`.
#[utoipa::path(post, path = "/me/two-factor/confirm", tag = "auth", request_body = Code,
    responses((status = 200, body = RecoveryCodes), (status = 401, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn confirm_enrolment(
    State(state): State<AppState>,
    session: Session,
    ApiJson(input): ApiJson<Code>,
) -> Result<Json<RecoveryCodes>, Error> {
    let user = own_password(&session)?;
    let audit = || Event::by(user, "account", "confirm_two_factor").id(user.id);
    let key = format!("second factor of user {}", user.id);
    let free = state.config.auth.failed_logins_before_delay;
    if let Err(held) = held_back(&state, &[(key.clone(), free)]).await {
        audit()
            .denied()
            .detail("held back after wrong codes".to_owned())
            .record(&state.store)
            .await?;
        return Err(held);
    }
    let Some(factor) = state
        .store
        .two_factor(user.id)
        .await?
        .filter(|f| !f.confirmed)
    else {
        return Err(Error::Conflict(Text::new(
            "problem.two_factor.not_begun",
            "no enrolment is waiting for its code; begin it first",
        )));
    };
    let Some(step) = totp::matching_step(&factor.secret, &input.code, unix_now(&state)) else {
        audit()
            .denied()
            .detail("wrong code".to_owned())
            .record(&state.store)
            .await?;
        return Err(wrong_code());
    };
    let step = i64::try_from(step).map_err(anyhow::Error::from)?;
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_code_hash(c)).collect();
    if !state
        .store
        .confirm_two_factor(user.id, step, &hashes)
        .await?
    {
        return Err(Error::Conflict(Text::new(
            "problem.two_factor.enrolled",
            "a second factor is enrolled already; remove it first to enrol another",
        )));
    }
    state.store.login_succeeded(&key, (&key, free)).await?;
    audit().record(&state.store).await?;
    tracing::info!(user = user.id, "second factor enrolled");
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Removes the caller's second factor and recovery codes, proved by a current code
/// (`code`) or the password (`password`); wrong ones are throttled (429) and refused
/// naming the field. Where the caller's roles ask for a second factor, they can then do
/// nothing but enrol again.
#[utoipa::path(delete, path = "/me/two-factor", tag = "auth", request_body = Removal,
    responses((status = 204), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn disable(
    State(state): State<AppState>,
    session: Session,
    ApiJson(input): ApiJson<Removal>,
) -> Result<StatusCode, Error> {
    let user = own_password(&session)?;
    let audit = || Event::by(user, "account", "disable_two_factor").id(user.id);
    let code = input.code.filter(|c| !c.trim().is_empty());
    let password = input.password.filter(|p| !p.is_empty());
    if code.is_none() && password.is_none() {
        return Err(Error::field(
            "code",
            Text::new(
                "problem.two_factor.proof",
                "give a current code, or your password",
            ),
        ));
    }
    if !user.two_factor {
        // An enrolment begun and never confirmed goes without proof.
        state.store.remove_two_factor(user.id).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    let key = format!("second factor of user {}", user.id);
    let free = state.config.auth.failed_logins_before_delay;
    if let Err(held) = held_back(&state, &[(key.clone(), free)]).await {
        audit()
            .denied()
            .detail("held back after failed attempts".to_owned())
            .record(&state.store)
            .await?;
        return Err(held);
    }
    let proved = match (code, password) {
        (Some(code), _) => match check_code(&state, user, &code).await? {
            Checked::Code | Checked::RecoveryCode { .. } => Ok("by a code"),
            Checked::Refused(why) => Err((why, wrong_code())),
        },
        (None, Some(password)) => {
            let (_, hash) = state
                .store
                .user_with_hash(&user.username)
                .await?
                .ok_or(Error::Unauthenticated)?;
            if state.hasher.verify(password, hash).await? {
                Ok("by the password")
            } else {
                Err((
                    "wrong password",
                    Error::field(
                        "password",
                        Text::new("problem.password.wrong", "the current password is wrong"),
                    ),
                ))
            }
        }
        (None, None) => unreachable!("checked above"),
    };
    match proved {
        Ok(how) => {
            state.store.remove_two_factor(user.id).await?;
            state.store.login_succeeded(&key, (&key, free)).await?;
            audit().detail(how.to_owned()).record(&state.store).await?;
            tracing::info!(user = user.id, "second factor removed");
            Ok(StatusCode::NO_CONTENT)
        }
        Err((why, refusal)) => {
            audit()
                .denied()
                .detail(why.to_owned())
                .record(&state.store)
                .await?;
            Err(refusal)
        }
    }
}
