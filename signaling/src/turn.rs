//! TURN credentials in coturn's shared-secret form ("TURN REST API",
//! draft-uberti-behave-turn-rest-00 §2.2, coturn `--use-auth-secret`):
//! `username = "<unix expiry>:<identity>"`, `password = base64(HMAC-SHA1(secret, username))`.
//! coturn recomputes the password from its copy of the secret, so no per-user state is shared.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// A username and password valid at a TURN server that shares our secret, until `expires`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredential {
    /// `"<unix expiry>:<identity>"`.
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: String,
    /// Unix time after which coturn refuses the credential.
    pub expires: i64,
}

/// Mints the credential for `identity` expiring at unix time `expires`.
pub fn credential(secret: &[u8], identity: &str, expires: i64) -> TurnCredential {
    let username = format!("{expires}:{identity}");
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    TurnCredential {
        username,
        password,
        expires,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_coturn_test_vector() {
        let c = credential(b"north", "alice", 1_700_000_000);
        assert_eq!(c.username, "1700000000:alice");
        assert_eq!(c.password, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
    }

    #[test]
    fn a_different_secret_gives_a_different_password() {
        let a = credential(b"north", "alice", 1_700_000_000);
        let b = credential(b"south", "alice", 1_700_000_000);
        assert_ne!(a.password, b.password);
    }
}
