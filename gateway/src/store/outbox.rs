//! [`Store`] operations: webhooks and the outbox of notifications to them
//! (`sql/outbox.rs`).

use chrono::{DateTime, Utc};

use super::{Store, StoreError, postgres, sqlite};

/// A notification to send to an institution's webhook.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    /// The receiving institution.
    pub institution_id: i64,
    /// `submitted`, `accepted`, `declined`, `scheduled`, `opinion_signed`, `overdue`.
    pub event: String,
    /// The JSON body; never patient data.
    pub payload: String,
    /// At most one message per key.
    pub dedupe_key: Option<String>,
}

/// A claimed message, with where and how to send it.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    /// Message id (sent as `X-Duikou-Delivery`, for receivers to drop repeats).
    pub id: i64,
    /// `webhook`, `email` or `chat`.
    pub channel: String,
    /// A chat robot's kind: `wecom`, `dingtalk`, `feishu`.
    pub chat_kind: Option<String>,
    /// The event.
    pub event: String,
    /// The body.
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: i32,
    /// Where it goes: the webhook's or chat robot's URL, or the e-mail address.
    pub url: String,
    /// The shared secret for the signature (empty when there is none).
    pub secret: String,
}

impl Store {
    /// Sets an institution's webhook.
    pub async fn set_webhook(
        &self,
        institution_id: i64,
        url: &str,
        secret: &str,
    ) -> Result<(), StoreError> {
        dispatch!(
            self,
            outbox::set_webhook(institution_id, url, secret, self.now())
        )
    }

    /// Queues messages.
    pub async fn enqueue(&self, messages: &[OutboxMessage]) -> Result<(), StoreError> {
        dispatch!(self, outbox::enqueue_now(messages, self.now()))
    }

    /// Claims due messages until `lease_until`.
    pub async fn claim_deliveries(
        &self,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        dispatch!(self, outbox::claim(self.now(), lease_until, limit))
    }

    /// Marks a message delivered.
    pub async fn mark_delivered(&self, id: i64) -> Result<(), StoreError> {
        dispatch!(self, outbox::delivered(id, self.now()))
    }

    /// Records a failed delivery.
    pub async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        next: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, outbox::failed(id, error, next))
    }

    /// Scheduled requests whose session starts within `lead` from now: (request, version,
    /// requester user, consultant, kind, urgency).
    pub async fn starting_soon(
        &self,
        lead: chrono::TimeDelta,
    ) -> Result<Vec<(i64, i32, i64, Option<i64>, String, String)>, StoreError> {
        let now = self.now();
        dispatch!(self, outbox::starting_soon(now, now + lead))
    }

    /// Submitted requests past their deadline.
    pub async fn overdue_requests(
        &self,
    ) -> Result<Vec<(i64, i64, i64, String, String)>, StoreError> {
        dispatch!(self, outbox::overdue(self.now()))
    }

    /// (event, attempts, delivered) of the messages whose key starts with `prefix`.
    pub async fn outbox_status(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, i32, bool)>, StoreError> {
        dispatch!(self, outbox::status(prefix))
    }
}
