//! [`Store`] operations for video rooms (`sql/rooms.rs`).

use chrono::{DateTime, Utc};

use super::{Store, StoreError, postgres, sqlite};

/// One stretch of presence in a room.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Presence {
    /// Who.
    pub user_id: i64,
    /// Entered.
    pub joined_at: DateTime<Utc>,
    /// Left; open while present.
    pub left_at: Option<DateTime<Utc>>,
}

impl Store {
    /// The value of setting `key`, storing `value` first if it has none.
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        dispatch!(self, rooms::setting_or_insert(key, value))
    }

    /// `user_id` entered `room` at `at`.
    pub async fn presence_open(
        &self,
        room: &str,
        user_id: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, rooms::presence_open(room, user_id, at))
    }

    /// `user_id` left `room` at `at`; false when no stretch was open.
    pub async fn presence_close(
        &self,
        room: &str,
        user_id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, rooms::presence_close(room, user_id, at))
    }

    /// Every stretch of presence in `room`.
    pub async fn presence(&self, room: &str) -> Result<Vec<Presence>, StoreError> {
        dispatch!(self, rooms::presence(room))
    }

    /// Closes a trainee's open attendance stretch in a teaching session, with the seconds
    /// in which media reached it, when the forwarding unit counted them.
    pub async fn attendance_close(
        &self,
        session_id: i64,
        user_id: i64,
        at: DateTime<Utc>,
        received_seconds: Option<i64>,
    ) -> Result<bool, StoreError> {
        dispatch!(
            self,
            rooms::attendance_close(session_id, user_id, at, received_seconds)
        )
    }
}
