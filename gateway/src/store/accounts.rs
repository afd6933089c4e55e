//! [`Store`] operations: accounts, sessions, login attempts and second factors
//! (`sql/users.rs`).

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

/// An account's second factor, enrolled or being enrolled. `Debug` does not show the
/// secret.
#[derive(Clone, sqlx::FromRow)]
pub struct TwoFactor {
    /// The TOTP secret, base32.
    pub secret: String,
    /// Whether a code confirmed it (else enrolment has only begun).
    pub confirmed: bool,
    /// The last step a code was accepted for.
    pub last_step: Option<i64>,
}

impl std::fmt::Debug for TwoFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwoFactor")
            .field("confirmed", &self.confirmed)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
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

    /// The account's second factor, enrolled or being enrolled.
    pub async fn two_factor(&self, user_id: i64) -> Result<Option<TwoFactor>, StoreError> {
        dispatch!(self, users::two_factor(user_id))
    }

    /// Begins an enrolment with `secret`; false when a second factor is confirmed.
    pub async fn begin_two_factor(&self, user_id: i64, secret: &str) -> Result<bool, StoreError> {
        dispatch!(self, users::begin_two_factor(user_id, secret, self.now()))
    }

    /// Takes a code's `step` as used, if later than the last one: whether it was.
    pub async fn use_step(&self, user_id: i64, step: i64) -> Result<bool, StoreError> {
        dispatch!(self, users::use_step(user_id, step))
    }

    /// Confirms an enrolment with a code of `step` and stores the recovery codes' hashes.
    pub async fn confirm_two_factor(
        &self,
        user_id: i64,
        step: i64,
        code_hashes: &[String],
    ) -> Result<bool, StoreError> {
        dispatch!(
            self,
            users::confirm_two_factor(user_id, step, code_hashes, self.now())
        )
    }

    /// Removes the second factor and its recovery codes.
    pub async fn remove_two_factor(&self, user_id: i64) -> Result<bool, StoreError> {
        dispatch!(self, users::remove_two_factor(user_id))
    }

    /// Uses a recovery code by its hash: the codes left, or `None` if it is none.
    pub async fn use_recovery_code(
        &self,
        user_id: i64,
        code_hash: &str,
    ) -> Result<Option<i64>, StoreError> {
        dispatch!(
            self,
            users::use_recovery_code(user_id, code_hash, self.now())
        )
    }

    /// Records a login that waits for its second factor until `expires_at`.
    pub async fn create_login_challenge(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(
            self,
            users::create_login_challenge(token_hash, user_id, self.now(), expires_at)
        )
    }

    /// The account of an unexpired login waiting for its second factor.
    pub async fn login_challenge_user(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        dispatch!(self, users::login_challenge_user(token_hash, self.now()))
    }

    /// Ends a login waiting for its second factor.
    pub async fn delete_login_challenge(&self, token_hash: &str) -> Result<(), StoreError> {
        dispatch!(self, users::delete_login_challenge(token_hash))
    }
}
