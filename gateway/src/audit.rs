//! Recording access to patient data: every read, every change and every refused attempt
//! (national rules: every access to patient data is audited). Entries are appended only;
//! administrators read them through `GET /api/v1/audit`.
//!
//! ## The chain
//! Each entry carries a link: the SHA-256 (hex) of the previous entry's link, a newline,
//! and the entry's content as a JSON array (time to the microsecond in RFC 3339 UTC, user,
//! roles, institution, action, object kind, object id, outcome, detail); the first
//! entry's previous link is empty. The database refuses to change or delete an entry
//! (triggers). [`verify`] walks the chain and names the first entry whose link is not
//! what its content and its predecessor give.
//!
//! What it proves: that no entry up to the newest was changed, removed or put in another
//! place since it was written, unless whoever did it also rewrote every later link, which
//! takes write access to the table past the triggers (the owner of the database). What it
//! does not: that entries were never cut from the end, nor that the whole chain was not
//! rewritten; anchors (the newest link and its id, written where the database owner
//! cannot reach) are what show those.

use sha2::{Digest as _, Sha256};

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

/// The link of `entry` after the link `prev` ("" for the first entry).
pub fn link(prev: &str, entry: &AuditEntry) -> String {
    let content = serde_json::json!([
        entry
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        entry.user_id,
        entry.roles,
        entry.institution_id,
        entry.action,
        entry.object_kind,
        entry.object_id,
        entry.outcome.as_str(),
        entry.detail,
    ]);
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(content.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// What walking the chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry links to the one before: how many there are, and the newest's id and
    /// link (the head, to anchor).
    Whole {
        /// Entries.
        entries: u64,
        /// The newest entry's id and link, if any.
        head: Option<(i64, String)>,
    },
    /// The chain breaks at this entry: its link is not what its content and the entry
    /// before give (it, or one before it, was changed, removed or moved).
    Broken {
        /// The entry.
        id: i64,
        /// Entries that linked before it.
        entries: u64,
    },
}

/// Walks the whole chain, oldest first.
pub async fn verify(store: &Store) -> Result<Verdict, Error> {
    const PAGE: i64 = 1000;
    let (mut after, mut prev, mut entries) = (0_i64, String::new(), 0_u64);
    loop {
        let page = store.audit_chain(after, PAGE).await?;
        let Some((last, _, _)) = page.last() else {
            break;
        };
        let last = *last;
        for (id, entry, hash) in page {
            let expected = link(&prev, &entry);
            if hash.as_deref() != Some(expected.as_str()) {
                return Ok(Verdict::Broken { id, entries });
            }
            prev = expected;
            entries += 1;
        }
        after = last;
    }
    Ok(Verdict::Whole {
        entries,
        head: (entries > 0).then_some((after, prev)),
    })
}
