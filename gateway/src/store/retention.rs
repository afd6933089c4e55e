//! [`Store`] operations: retention periods and the purge of records whose period ended
//! (`sql/retention.rs`; the rules are in `crate::retention`).

use super::{Store, StoreError, postgres, sqlite};
use crate::domain::named_enum;

named_enum! {
    /// A record with a retention period of its own, as the audit log names its kind.
    Retained {
        /// A consultation or read request, with its steps, opinions, attachments, booked
        /// slot, notices and its room's chat and presence.
        Request = "request",
        /// A ward round, with its patients and its room's chat and presence.
        WardRound = "ward_round",
        /// A teaching session, with its enrolments, attendance and its room's chat and
        /// presence.
        TeachingSession = "teaching_session",
    }
}

impl Retained {
    /// The name of its session's room, whose chat and presence are kept with it.
    pub fn room(self, id: i64) -> String {
        match self {
            Self::Request => format!("consultation-{id}"),
            Self::WardRound => format!("ward-round-{id}"),
            Self::TeachingSession => format!("teaching-{id}"),
        }
    }
}

/// What a purge deleted.
#[derive(Debug, Clone, Default)]
pub struct Purged {
    /// The patient (a ward round's patients, joined by 、), for the audit entry.
    pub patient: Option<String>,
    /// Rows deleted, the record's own included.
    pub rows: u64,
    /// The SHA-256 names of attachment files no record refers to any more, to be removed
    /// from the data directory once the deletion is committed.
    pub files: Vec<String>,
}

impl Store {
    /// Writes the years each kind of record is kept (`retention_policy`), replacing what
    /// was there; the database refuses a period below its legal minimum.
    pub async fn sync_retention(&self, periods: &[(&str, u32)]) -> Result<(), StoreError> {
        dispatch!(self, retention::sync(periods))
    }

    /// The records whose retention has ended by the database's clock, oldest id first.
    pub async fn retention_ended(&self) -> Result<Vec<(Retained, i64)>, StoreError> {
        dispatch!(self, retention::ended())
    }

    /// Deletes `kind` record `id` with everything kept with it, in one transaction, if
    /// its retention has ended (else `None`, nothing deleted).
    pub async fn purge(&self, kind: Retained, id: i64) -> Result<Option<Purged>, StoreError> {
        dispatch!(self, retention::purge(kind, id))
    }
}
