//! [`Store`] operations: consultation and read requests, their steps, opinions and
//! attachments (`sql/requests.rs`, `sql/attachments.rs`).

use chrono::{DateTime, Utc};

use super::{OutboxMessage, Store, StoreError, postgres, sqlite};
use crate::booking::{
    AttachmentInfo, ConsultRequest, Opinion, RequestEvent, RequestKind, RequestOrder, RequestState,
    Urgency,
};
use crate::domain::Supporter;

/// A new request draft.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// What is asked for.
    pub kind: RequestKind,
    /// The creating clinician.
    pub requester_user_id: i64,
    /// Their institution.
    pub requester_institution_id: i64,
    /// The pairing that designates the supporter.
    pub pairing_id: i64,
    /// The designated supporter.
    pub supporter: Supporter,
    /// The institution that answers.
    pub supporter_institution_id: i64,
    /// Urgency.
    pub urgency: Urgency,
    /// Whether the requesting institution is remote.
    pub remote: bool,
    /// The content as JSON.
    pub content: String,
}

/// What the first step after creation changes, given the request as created.
pub type FirstStep<'a> =
    dyn Fn(&crate::booking::ConsultRequest) -> (RequestUpdate, StepRecord) + Send + Sync + 'a;

/// Columns a step changes; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct RequestUpdate {
    /// When.
    pub at: DateTime<Utc>,
    /// New state.
    pub state: Option<RequestState>,
    /// New content JSON.
    pub content: Option<String>,
    /// New urgency.
    pub urgency: Option<Urgency>,
    /// Re-resolved pairing.
    pub pairing_id: Option<i64>,
    /// Re-resolved supporter.
    pub supporter: Option<Supporter>,
    /// Re-resolved answering institution.
    pub supporter_institution_id: Option<i64>,
    /// Assigned consultant.
    pub consultant_id: Option<i64>,
    /// Decline reason code.
    pub decline_code: Option<String>,
    /// Decline reason text.
    pub decline_text: Option<String>,
    /// Session start.
    pub scheduled_start: Option<DateTime<Utc>>,
    /// Session end.
    pub scheduled_end: Option<DateTime<Utc>>,
    /// Accept-or-decline deadline.
    pub decision_due_at: Option<DateTime<Utc>>,
    /// Submission time.
    pub submitted_at: Option<DateTime<Utc>>,
    /// Notifications to queue in the same transaction.
    pub outbox: Vec<OutboxMessage>,
    /// Notices to people, written in the same transaction.
    pub people: Vec<super::PersonNotice>,
    /// A consultant's slot to book in the same transaction: (clinician, start, end).
    /// Fails with a conflict when somebody booked it first.
    pub book_slot: Option<(i64, DateTime<Utc>, DateTime<Utc>)>,
}

/// A step to record: from, to, who, when, what else.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// State before; none at creation.
    pub from: Option<RequestState>,
    /// State after.
    pub to: RequestState,
    /// The user; none for duikou itself.
    pub actor: Option<i64>,
    /// When.
    pub at: DateTime<Utc>,
    /// A note without patient data.
    pub note: Option<String>,
}

/// What happens to the opinion in the same transaction as a request change.
#[derive(Debug, Clone)]
pub enum OpinionChange {
    /// Writes the draft (creating it as the next version when there is none).
    Draft {
        /// The consultant.
        consultant_id: i64,
        /// The writing user.
        author: i64,
        /// The text.
        body: String,
        /// The signed version it amends.
        amends_id: Option<i64>,
    },
    /// Signs the draft.
    Sign {
        /// The draft.
        opinion_id: i64,
        /// Who signs, as they stand now.
        signer: crate::booking::Signer,
    },
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    /// Requests of this requesting institution.
    pub requester_institution_id: Option<i64>,
    /// Requests (drafts excluded) addressed to this institution.
    pub supporter_institution_id: Option<i64>,
    /// Only these states.
    pub states: Option<Vec<RequestState>>,
    /// In which order.
    pub order: RequestOrder,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

impl Store {
    /// Creates a draft and records the step.
    pub async fn create_request(
        &self,
        new: &NewRequest,
        step: &StepRecord,
    ) -> Result<i64, StoreError> {
        dispatch!(self, requests::create(new, step))
    }

    /// Creates a draft and takes its first step (submission) in one transaction, so that
    /// a draft exists only if the step is taken.
    pub async fn create_submitted_request(
        &self,
        new: &NewRequest,
        step: &StepRecord,
        then: &FirstStep<'_>,
    ) -> Result<i64, StoreError> {
        dispatch!(self, requests::create_then(new, step, then))
    }

    /// One request.
    pub async fn request(&self, id: i64) -> Result<Option<ConsultRequest>, StoreError> {
        dispatch!(self, requests::request(id))
    }

    /// Requests matching `filter`, in its order.
    pub async fn requests(
        &self,
        filter: &RequestFilter,
    ) -> Result<Vec<ConsultRequest>, StoreError> {
        dispatch!(self, requests::requests(filter))
    }

    /// Changes a request still at `expected` version, records the step and the opinion
    /// change, in one transaction.
    pub async fn update_request(
        &self,
        id: i64,
        expected: i32,
        update: &RequestUpdate,
        step: Option<&StepRecord>,
        opinion: Option<&OpinionChange>,
    ) -> Result<(), StoreError> {
        dispatch!(self, requests::update(id, expected, update, step, opinion))
    }

    /// The steps of a request.
    pub async fn request_events(&self, id: i64) -> Result<Vec<RequestEvent>, StoreError> {
        dispatch!(self, requests::events(id))
    }

    /// Every opinion version of a request, drafts included.
    pub async fn opinions(&self, request_id: i64) -> Result<Vec<Opinion>, StoreError> {
        dispatch!(self, requests::opinions(request_id))
    }

    /// Records an attachment (its bytes already stored); returns it as kept, which for
    /// bytes the request already has is the attachment made first, under its name.
    pub async fn add_attachment(
        &self,
        a: &AttachmentInfo,
        by: i64,
    ) -> Result<AttachmentInfo, StoreError> {
        dispatch!(self, attachments::add(a, by))
    }

    /// A request's attachments.
    pub async fn attachments(&self, request_id: i64) -> Result<Vec<AttachmentInfo>, StoreError> {
        dispatch!(self, attachments::list(request_id))
    }
}
