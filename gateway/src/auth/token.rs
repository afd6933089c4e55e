//! Opaque session tokens: 32 random bytes, base64url, stored as a SHA-256 hash so that a
//! copy of the database does not give working sessions.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// A freshly minted session token. `Debug` does not show it.
pub struct SessionToken(String);

impl SessionToken {
    /// A new random token.
    pub fn generate() -> Self {
        let mut bytes = [0_u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The token, to hand to the client once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps.
    pub fn hash(&self) -> String {
        hash_token(&self.0)
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// The stored form of a token presented by a client.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let t = SessionToken::generate();
        assert_ne!(t.expose(), SessionToken::generate().expose());
        assert_eq!(t.hash(), hash_token(t.expose()));
        assert_ne!(t.hash(), t.expose());
        assert!(!format!("{t:?}").contains(t.expose()));
    }
}
