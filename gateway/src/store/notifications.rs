//! [`Store`] operations: what waits for each person (`sql/notifications.rs`). Notices
//! are written with the change they tell of, in its transaction
//! ([`RequestUpdate::people`](super::RequestUpdate)), so that none is lost and none tells
//! of a change that did not happen.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Store, StoreError, postgres, sqlite};
use crate::domain::Role;

/// Who a notice goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// One user.
    User(i64),
    /// The enabled accounts of a clinician.
    Clinician(i64),
    /// The enabled users of an institution holding any of the roles.
    Holders {
        /// The institution.
        institution_id: i64,
        /// The roles.
        roles: Vec<Role>,
    },
}

/// A notice of an event of a request, to the people of `to` but `except` (the one who
/// caused it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonNotice {
    /// The people.
    pub to: Audience,
    /// `submitted`, `accepted`, `declined`, `scheduled`, `starting` (within a quarter of
    /// an hour), `in_session`, `opinion_signed`, `overdue`, `expired`.
    pub event: String,
    /// The request.
    pub request_id: i64,
    /// What it asks for: `consultation`, `imaging_read`, `pathology_read`.
    pub kind: String,
    /// The request's version after the change: a person has one notice of an event of a
    /// version.
    pub version: i32,
    /// Whether the request is urgent.
    pub urgent: bool,
    /// The user who caused it, told nothing.
    pub except: Option<i64>,
}

/// A notice as its person reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Notification {
    /// Notice id.
    pub id: i64,
    /// What happened: `submitted`, `accepted`, `declined`, `scheduled`, `starting` (the
    /// session begins within a quarter of an hour), `in_session` (it has begun),
    /// `opinion_signed`, `overdue`, `expired`.
    pub event: String,
    /// The request it is about.
    pub request_id: Option<i64>,
    /// What the request asks for: `consultation`, `imaging_read`, `pathology_read`.
    pub request_kind: Option<String>,
    /// Whether the request is urgent.
    pub urgent: bool,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When the person marked it read; null while unread.
    pub read_at: Option<DateTime<Utc>>,
}

/// A message of the outbox as an institution's coordinators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    /// Message id.
    pub id: i64,
    /// `webhook`, `email` or `chat`.
    pub channel: String,
    /// What it tells of.
    pub event: String,
    /// The request it is about.
    pub request_id: Option<i64>,
    /// For an e-mail, the person it goes to.
    pub person: Option<String>,
    /// Attempts so far.
    pub attempts: i32,
    /// When it is tried next, while not delivered.
    pub next_attempt_at: DateTime<Utc>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl Store {
    /// The newest `limit` messages of an institution in the outbox.
    pub async fn deliveries(
        &self,
        institution_id: i64,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        dispatch!(self, notifications::deliveries(institution_id, limit))
    }

    /// The URL of an institution's webhook.
    pub async fn webhook_url(&self, institution_id: i64) -> Result<Option<String>, StoreError> {
        dispatch!(self, notifications::webhook_url(institution_id))
    }

    /// The newest notices of `user_id`, newest first: unread ones only when `unread`,
    /// those older than notice `before` when given.
    pub async fn notifications(
        &self,
        user_id: i64,
        unread: bool,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Notification>, StoreError> {
        dispatch!(self, notifications::list(user_id, unread, before, limit))
    }

    /// How many notices of `user_id` are unread, and the newest notice's id.
    pub async fn unread_notifications(&self, user_id: i64) -> Result<(i64, i64), StoreError> {
        dispatch!(self, notifications::unread(user_id))
    }

    /// Marks notice `id` of `user_id` read (all of theirs when `id` is `None`); false when
    /// they have no such notice.
    pub async fn mark_notifications_read(
        &self,
        user_id: i64,
        id: Option<i64>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, notifications::mark_read(user_id, id, self.now()))
    }

    /// What waits for `user_id` at `institution_id`: (submitted requests of the `kinds`
    /// they answer, imaging reads accepted and not signed, signed opinions of their own
    /// requests to acknowledge); `kinds` as `,consultation,imaging_read,`.
    pub async fn waiting(
        &self,
        user_id: i64,
        institution_id: i64,
        kinds: &str,
    ) -> Result<(i64, i64, i64), StoreError> {
        dispatch!(self, notifications::waiting(user_id, institution_id, kinds))
    }

    /// `user_id`'s e-mail address and whether they want notices by e-mail; `None` for no
    /// such user.
    pub async fn email_choice(
        &self,
        user_id: i64,
    ) -> Result<Option<(Option<String>, bool)>, StoreError> {
        dispatch!(self, notifications::email_choice(user_id))
    }

    /// Sets `user_id`'s e-mail address and whether they want notices by e-mail.
    pub async fn set_email_choice(
        &self,
        user_id: i64,
        email: Option<&str>,
        wanted: bool,
    ) -> Result<(), StoreError> {
        dispatch!(
            self,
            notifications::set_email_choice(user_id, email, wanted)
        )
    }

    /// An institution's chat group robot: (kind, URL, whether it has a secret).
    pub async fn chat_robot(
        &self,
        institution_id: i64,
    ) -> Result<Option<(String, String, bool)>, StoreError> {
        dispatch!(self, notifications::chat_robot(institution_id))
    }

    /// Sets an institution's chat group robot.
    pub async fn set_chat_robot(
        &self,
        institution_id: i64,
        kind: &str,
        url: &str,
        secret: Option<&str>,
    ) -> Result<(), StoreError> {
        dispatch!(
            self,
            notifications::set_chat_robot(institution_id, kind, url, secret, self.now())
        )
    }

    /// Removes an institution's chat group robot; false when it had none.
    pub async fn remove_chat_robot(&self, institution_id: i64) -> Result<bool, StoreError> {
        dispatch!(self, notifications::remove_chat_robot(institution_id))
    }

    /// Tells `notices` and `messages` that request `request` is overdue, in one
    /// transaction, only while it still awaits a decision; false when it no longer does.
    pub async fn overdue_told(
        &self,
        request: i64,
        notices: &[PersonNotice],
        messages: &[super::OutboxMessage],
    ) -> Result<bool, StoreError> {
        dispatch!(
            self,
            notifications::overdue_told(request, notices, messages, self.now())
        )
    }

    /// Writes notices in a transaction of their own.
    pub async fn notify_people(&self, notices: &[PersonNotice]) -> Result<(), StoreError> {
        dispatch!(self, notifications::write_now(notices, self.now()))
    }
}
