//! Passwords and login sessions.
//!
//! Passwords are hashed with argon2id (RFC 9106) at the crate's recommended cost; login
//! hands out an opaque random token, sent back as the `duikou_session` cookie by browsers
//! or as a bearer token by API clients, and stored only as its SHA-256 hash.

mod hasher;
mod password;
mod token;

pub use hasher::{Busy, Hasher};
pub use password::{generate_password, hash_password, verify_password};
pub use token::{SessionToken, hash_token};

/// The cookie that carries the session token for browsers.
pub const SESSION_COOKIE: &str = "duikou_session";
