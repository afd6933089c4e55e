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

/// A message of a room's chat.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct RoomMessage {
    /// Message id, rising in the order written.
    pub id: i64,
    /// The writer's account.
    pub user_id: i64,
    /// The writer's name.
    pub name: String,
    /// What they wrote.
    pub body: String,
    /// When.
    pub created_at: DateTime<Utc>,
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

    /// Adds a message to the chat of `room` unless it holds `cap` already; its id, or
    /// `None` at the cap.
    pub async fn room_message_add(
        &self,
        room: &str,
        user_id: i64,
        body: &str,
        at: DateTime<Utc>,
        cap: i64,
    ) -> Result<Option<i64>, StoreError> {
        dispatch!(self, rooms::message_add(room, user_id, body, at, cap))
    }

    /// The messages of the chat of `room` after message `after`, oldest first, at most
    /// `limit`.
    pub async fn room_messages(
        &self,
        room: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<RoomMessage>, StoreError> {
        dispatch!(self, rooms::messages(room, after, limit))
    }
}
