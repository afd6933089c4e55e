//! [`Store`] operations: accounts, sessions and login attempts (`sql/users.rs`).

use chrono::{DateTime, Utc};

use super::{Store, StoreError, postgres, sqlite};
use crate::domain::{Roles, User};

/// A new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// Institution.
    pub institution_id: i64,
    /// Clinician record.
    pub clinician_id: Option<i64>,
    /// Roles.
    pub roles: Roles,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Whether the password was set by someone else, to be replaced at the first login.
    pub one_time_password: bool,
}

impl Store {
    /// Number of accounts.
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        dispatch!(self, users::count())
    }

    /// Creates an account.
    pub async fn create_user(&self, new: &NewUser) -> Result<User, StoreError> {
        dispatch!(self, users::create(new, self.now()))
    }

    /// Creates `new` only if there is no account at all, atomically; `None` otherwise.
    pub async fn create_first_user(&self, new: &NewUser) -> Result<Option<User>, StoreError> {
        dispatch!(self, users::create_first(new, self.now()))
    }

    /// One account.
    pub async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        dispatch!(self, users::user(id))
    }

    /// An account and its password hash, by username.
    pub async fn user_with_hash(
        &self,
        username: &str,
    ) -> Result<Option<(User, String)>, StoreError> {
        dispatch!(self, users::with_hash(username))
    }

    /// Accounts, optionally of one institution.
    pub async fn users(&self, institution_id: Option<i64>) -> Result<Vec<User>, StoreError> {
        dispatch!(self, users::list(institution_id))
    }

    /// Disables an account, ending its sessions, or enables it again.
    pub async fn set_disabled(
        &self,
        user_id: i64,
        disabled: bool,
    ) -> Result<Option<User>, StoreError> {
        dispatch!(self, users::set_disabled(user_id, disabled))
    }

    /// Replaces a password hash, one-time or the user's own, and ends the user's
    /// sessions but `keep`; false when there is no such user.
    pub async fn set_password(
        &self,
        user_id: i64,
        hash: &str,
        one_time: bool,
        keep: Option<&str>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, users::set_password(user_id, hash, one_time, keep))
    }

    /// Records a successful login.
    pub async fn logged_in(&self, user_id: i64) -> Result<(), StoreError> {
        dispatch!(self, users::logged_in(user_id, self.now()))
    }

    /// Records a session by the hash of its token.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(
            self,
            users::create_session(token_hash, user_id, self.now(), expires_at)
        )
    }

    /// The user of an unexpired session.
    pub async fn session_user(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        dispatch!(self, users::session_user(token_hash, self.now()))
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        dispatch!(self, users::delete_session(token_hash))
    }

    /// Counts a login attempt under each of `keys` before its password is checked;
    /// until when it is held back instead, if it is (see
    /// `sql::users::count_login_attempt`).
    pub async fn count_login_attempt(
        &self,
        keys: &[(String, u32)],
        window_seconds: i64,
        max_delay_seconds: i64,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        dispatch!(
            self,
            users::count_login_attempt(keys, window_seconds, max_delay_seconds, self.now())
        )
    }

    /// After a successful login: forgets the attempts under `forget` and takes one back
    /// under `uncount`.
    pub async fn login_succeeded(
        &self,
        forget: &str,
        uncount: (&str, u32),
    ) -> Result<(), StoreError> {
        dispatch!(self, users::login_succeeded(forget, uncount))
    }
}
