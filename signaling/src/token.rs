//! Room tokens: short-lived JWTs (RFC 7519, HS256) that admit one identity to one room
//! with its grants. The gateway mints one at `POST /api/v1/sessions/{id}/join` for the
//! people the booking names; the signaling shell verifies it before the room sees the
//! connection. Identities and room names are opaque ids, never patient data.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::Grants;
use crate::room::RoomId;

/// What a room token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomClaims {
    /// The room.
    pub room: RoomId,
    /// The identity (`sub`).
    pub sub: String,
    /// The role in the room, e.g. `requester`, `consultant`, `trainee`.
    pub role: String,
    /// The holder's name as the others see it (staff names only, never patient data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A line about the holder for the others, such as title and institution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    /// What the holder may do.
    #[serde(flatten)]
    pub grants: Grants,
    /// Participants the room holds at most, from the booking.
    pub capacity: u32,
    /// Not before (unix seconds).
    pub nbf: i64,
    /// Expires (unix seconds).
    pub exp: i64,
}

/// Why a token does not admit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Signature, format or algorithm wrong.
    #[error("the room token is not valid")]
    Invalid,
    /// Past `exp`.
    #[error("the room token has expired")]
    Expired,
    /// Before `nbf`.
    #[error("the room token is not valid yet")]
    NotYet,
    /// For another room.
    #[error("the room token is for another room")]
    WrongRoom,
}

/// Signs `claims` with the shared `secret`.
pub fn mint(secret: &[u8], claims: &RoomClaims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing of plain claims cannot fail")
}

/// Checks `token` for `room` at unix time `now`: signature, `nbf`, `exp` (no leeway) and
/// the room.
pub fn verify(
    secret: &[u8],
    token: &str,
    room: &RoomId,
    now: i64,
) -> Result<RoomClaims, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // Time is checked below against the caller's clock, so that it can be tested.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    let claims =
        jsonwebtoken::decode::<RoomClaims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    if now < claims.nbf {
        return Err(TokenError::NotYet);
    }
    if claims.room != *room {
        return Err(TokenError::WrongRoom);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> RoomClaims {
        RoomClaims {
            room: "session-42".into(),
            sub: "user-7".into(),
            role: "consultant".into(),
            name: None,
            about: None,
            grants: Grants {
                publish: true,
                subscribe: true,
                moderate: false,
            },
            capacity: 3,
            nbf: 1_000,
            exp: 2_000,
        }
    }

    #[test]
    fn a_token_admits_its_identity_to_its_room_inside_its_window() {
        let token = mint(b"secret", &claims());
        let c = verify(b"secret", &token, &"session-42".into(), 1_500).unwrap();
        assert_eq!(c.sub, "user-7");
        assert_eq!(
            c.grants,
            Grants {
                publish: true,
                subscribe: true,
                moderate: false
            }
        );
    }

    #[test]
    fn expired_early_foreign_and_forged_tokens_are_refused() {
        let token = mint(b"secret", &claims());
        assert_eq!(
            verify(b"secret", &token, &"session-42".into(), 2_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(b"secret", &token, &"session-42".into(), 999),
            Err(TokenError::NotYet)
        );
        assert_eq!(
            verify(b"secret", &token, &"session-43".into(), 1_500),
            Err(TokenError::WrongRoom)
        );
        assert_eq!(
            verify(b"other", &token, &"session-42".into(), 1_500),
            Err(TokenError::Invalid)
        );
        let mut forged = token.clone();
        forged.replace_range(forged.len() - 4.., "AAAA");
        assert_eq!(
            verify(b"secret", &forged, &"session-42".into(), 1_500),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            verify(b"secret", "not.a.jwt", &"session-42".into(), 1_500),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn an_unsigned_token_is_refused() {
        // {"alg":"none"} with the same claims and no signature.
        let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        let body = mint(b"secret", &claims())
            .split('.')
            .nth(1)
            .unwrap()
            .to_owned();
        assert_eq!(
            verify(
                b"secret",
                &format!("{header}.{body}."),
                &"session-42".into(),
                1_500
            ),
            Err(TokenError::Invalid)
        );
    }
}
