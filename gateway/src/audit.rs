//! Recording access to patient data: every read, every change and every refused attempt
//! (national rules: every access to patient data is audited). Entries are appended only;
//! administrators read them through `GET /api/v1/audit`.

use crate::domain::User;
use crate::rules::Error;
use crate::store::{AuditEntry, Outcome, Store};

/// Appends an entry: `caller` did `action` on `object_kind` `id`, allowed or not.
pub async fn record(
    store: &Store,
    caller: &User,
    object_kind: &str,
    action: &str,
    id: Option<i64>,
    allowed: bool,
    detail: Option<String>,
) -> Result<(), Error> {
    store
        .audit(&AuditEntry {
            at: store.now(),
            user_id: Some(caller.id),
            roles: caller.roles.to_stored(),
            institution_id: Some(caller.institution_id),
            action: action.to_owned(),
            object_kind: object_kind.to_owned(),
            object_id: id,
            outcome: if allowed {
                Outcome::Allowed
            } else {
                Outcome::Denied
            },
            detail,
        })
        .await?;
    Ok(())
}
