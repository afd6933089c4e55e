//! Passwords, login sessions and the second factor.
//!
//! Passwords are hashed with argon2id (RFC 9106) at the crate's recommended cost; login
//! hands out an opaque random token, sent back as the `duikou_session` cookie by browsers
//! or as a bearer token by API clients, and stored only as its SHA-256 hash. Accounts
//! may add a second factor, TOTP codes and recovery codes ([`totp`]).

mod hasher;
mod password;
mod token;
pub mod totp;

pub use hasher::{Busy, Hasher};
pub use password::{generate_password, hash_password, verify_password};
pub use token::{SessionToken, hash_token};

/// The cookie that carries the session token for browsers.
pub const SESSION_COOKIE: &str = "duikou_session";
