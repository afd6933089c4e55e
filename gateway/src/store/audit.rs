//! [`Store`] operations: the audit log (`sql/audit.rs`).

use chrono::{DateTime, Utc};

use super::{Store, StoreError, postgres, sqlite};
use crate::domain::named_enum;

named_enum! {
    /// Whether an audited action was done.
    Outcome {
        /// The caller was allowed, and it was done.
        Allowed = "allowed",
        /// The caller was refused.
        Denied = "denied",
    }
}

/// One audit log entry.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub user_id: Option<i64>,
    /// Their roles at the time.
    pub roles: String,
    /// Their institution.
    pub institution_id: Option<i64>,
    /// What they did: `read`, `list`, `create`, `update`, or a workflow step.
    pub action: String,
    /// On what kind of object.
    pub object_kind: String,
    /// Which one.
    pub object_id: Option<i64>,
    /// Whether it was done.
    pub outcome: Outcome,
    /// Why it was denied, what changed, or what was searched for.
    pub detail: Option<String>,
    /// The object by a reference that is not a number: a study, series or instance UID.
    pub object_ref: Option<String>,
    /// The patient whose record it was, by name as the record holds it.
    pub patient: Option<String>,
    /// The client's address (behind a trusted proxy, the one it forwarded for).
    pub client: Option<String>,
}

/// Which audit entries to list: each condition given narrows the list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// By user.
    pub user_id: Option<i64>,
    /// By institution.
    pub institution_id: Option<i64>,
    /// By object kind.
    pub object_kind: Option<String>,
    /// By object id.
    pub object_id: Option<i64>,
    /// By action.
    pub action: Option<String>,
    /// By outcome.
    pub outcome: Option<Outcome>,
    /// Entries whose patient's name contains this.
    pub patient: Option<String>,
    /// Entries on this object reference (a study UID), or one within it (its series and
    /// instances: `<study>/…`).
    pub reference: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

impl Store {
    /// Appends to the audit log.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        dispatch!(self, audit::append(entry))
    }

    /// The entries after id `after`, oldest first, at most `limit`, each with its id and
    /// its link in the chain.
    pub async fn audit_chain(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, AuditEntry, Option<String>)>, StoreError> {
        dispatch!(self, audit::chain(after, limit))
    }

    /// The newest entry's id and link, if there is one.
    pub async fn audit_head(&self) -> Result<Option<(i64, Option<String>)>, StoreError> {
        dispatch!(self, audit::head())
    }

    /// Reads the audit log, newest first, each entry with its id.
    pub async fn audit_entries(
        &self,
        filter: &AuditFilter,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        dispatch!(self, audit::entries(filter))
    }
}
