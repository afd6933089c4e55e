//! Recording access to patient data: every read, every change and every refused attempt
//! (national rules: every access to patient data is audited). Entries are appended only;
//! administrators read them through `GET /api/v1/audit`.
//!
//! ## The chain
//! Each entry carries a link: the SHA-256 (hex) of the previous entry's link, a newline,
//! and the entry's content as a JSON array (time to the microsecond in RFC 3339 UTC, user,
//! roles, institution, action, object kind, object id, outcome, detail, and then, when
//! the entry has any of them, object reference, patient and client address); the first
//! entry's previous link is empty. The database refuses to change or delete an entry
//! (triggers). [`verify`] walks the chain and names the first entry whose link is not
//! what its content and its predecessor give.
//!
//! What it proves: that no entry up to the newest was changed, removed or put in another
//! place since it was written, unless whoever did it also rewrote every later link, which
//! takes write access to the table past the triggers (the owner of the database). What it
//! does not: that entries were never cut from the end, nor that the whole chain was not
//! rewritten; anchors are what show those.
//!
//! ## Anchors
//! Every `audit.anchor_seconds` (when entries were added since), and at each
//! `duikou audit anchor`, the gateway appends an `anchor` entry to the chain and then
//! publishes the newest entry's id and link ([`Anchor`]): in the application log, and as
//! a JSON line appended (and synced) to `audit.anchor_file`, which belongs on storage the
//! database's owner cannot rewrite (another machine, write-once media), or is handed to
//! a time-stamping service by whoever runs `duikou audit anchor`. [`check_anchors`]
//! finds an anchored entry that is gone (the log was cut after it) or whose link is not
//! the anchored one (the chain was rewritten up to it). Entries added after the last
//! anchor are protected by the chain alone until the next.

use sha2::{Digest as _, Sha256};

use crate::domain::User;
use crate::rules::Error;
use crate::store::{AuditEntry, Outcome, Store};

/// What is known of the HTTP request being answered: the client's address, and the
/// signed-in user once the request's session was found. Set around every request
/// (`crate::http`); entries written while answering it carry the address, and the
/// changes audited by route ([`crate::http`]'s `audit_changes`) name the user.
#[derive(Debug, Default)]
pub struct Context {
    client: Option<String>,
    user: std::sync::Mutex<Option<User>>,
}

impl Context {
    /// A request from `client`.
    pub fn new(client: Option<String>) -> Self {
        Self {
            client,
            user: std::sync::Mutex::default(),
        }
    }

    /// The user the request's session belongs to, if one was found.
    pub fn user(&self) -> Option<User> {
        self.user.lock().ok().and_then(|u| u.clone())
    }
}

tokio::task_local! {
    /// The [`Context`] of the HTTP request being answered.
    pub static CONTEXT: std::sync::Arc<Context>;
}

/// The client address of the request being answered, if any.
fn client() -> Option<String> {
    CONTEXT.try_with(|c| c.client.clone()).ok().flatten()
}

/// Notes that the request being answered is `user`'s (its session was found).
pub fn seen(user: &User) {
    let _ = CONTEXT.try_with(|c| {
        if let Ok(mut slot) = c.user.lock() {
            *slot = Some(user.clone());
        }
    });
}

/// An entry to append: who did what to which object, allowed or refused, and what it
/// concerned. Made with [`Event::by`] (a signed-in user) or [`Event::unauthenticated`]
/// (a login attempt, a peer, the gateway itself), then written with [`Event::record`].
#[derive(Debug, Clone)]
#[must_use = "an event is audited only once recorded"]
pub struct Event {
    entry: AuditEntry,
}

impl Event {
    /// `caller` does `action` on an object of `object_kind`: allowed unless
    /// [`Event::denied`].
    pub fn by(caller: &User, object_kind: &str, action: &str) -> Self {
        let mut event = Self::unauthenticated(object_kind, action);
        event.entry.user_id = Some(caller.id);
        event.entry.roles = caller.roles.to_stored();
        event.entry.institution_id = Some(caller.institution_id);
        event
    }

    /// Someone not signed in (or the gateway itself) does `action` on an object of
    /// `object_kind`.
    pub fn unauthenticated(object_kind: &str, action: &str) -> Self {
        Self {
            entry: AuditEntry {
                at: chrono::DateTime::UNIX_EPOCH,
                user_id: None,
                roles: String::new(),
                institution_id: None,
                action: action.to_owned(),
                object_kind: object_kind.to_owned(),
                object_id: None,
                outcome: Outcome::Allowed,
                detail: None,
                object_ref: None,
                patient: None,
                client: client(),
            },
        }
    }

    /// The account concerned, when nobody is signed in (a failed login names the
    /// account tried).
    pub fn account(mut self, user_id: i64, institution_id: Option<i64>) -> Self {
        self.entry.user_id = Some(user_id);
        self.entry.institution_id = institution_id;
        self
    }

    /// The institution concerned, when nobody is signed in (a DICOM peer's).
    pub fn institution(mut self, institution_id: i64) -> Self {
        self.entry.institution_id = Some(institution_id);
        self
    }

    /// The object, by id.
    pub fn id(mut self, id: impl Into<Option<i64>>) -> Self {
        self.entry.object_id = id.into();
        self
    }

    /// The object, by a reference that is not a number (a study, series or instance UID).
    pub fn reference(mut self, reference: impl Into<String>) -> Self {
        self.entry.object_ref = Some(reference.into());
        self
    }

    /// The patient whose record it is, by name.
    pub fn patient(mut self, name: Option<impl Into<String>>) -> Self {
        self.entry.patient = name.map(Into::into);
        self
    }

    /// Refused, or done: as `allowed` says.
    pub fn allowed(mut self, allowed: bool) -> Self {
        self.entry.outcome = if allowed {
            Outcome::Allowed
        } else {
            Outcome::Denied
        };
        self
    }

    /// Refused.
    pub fn denied(self) -> Self {
        self.allowed(false)
    }

    /// Why it was refused, what changed, or what was searched for.
    pub fn detail(mut self, detail: impl Into<Option<String>>) -> Self {
        self.entry.detail = detail.into();
        self
    }

    /// Appends it, at the store's time.
    pub async fn record(mut self, store: &Store) -> Result<(), Error> {
        self.entry.at = store.now();
        store.audit(&self.entry).await?;
        Ok(())
    }
}

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
    Event::by(caller, object_kind, action)
        .id(id)
        .allowed(allowed)
        .detail(detail)
        .record(store)
        .await
}

/// The link of `entry` after the link `prev` ("" for the first entry).
pub fn link(prev: &str, entry: &AuditEntry) -> String {
    let mut content = vec![
        serde_json::json!(
            entry
                .at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
        serde_json::json!(entry.user_id),
        serde_json::json!(entry.roles),
        serde_json::json!(entry.institution_id),
        serde_json::json!(entry.action),
        serde_json::json!(entry.object_kind),
        serde_json::json!(entry.object_id),
        serde_json::json!(entry.outcome.as_str()),
        serde_json::json!(entry.detail),
    ];
    // Entries naming no object reference, patient or client address end at the detail,
    // as every entry did before those were kept.
    if entry.object_ref.is_some() || entry.patient.is_some() || entry.client.is_some() {
        content.extend([
            serde_json::json!(entry.object_ref),
            serde_json::json!(entry.patient),
            serde_json::json!(entry.client),
        ]);
    }
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(serde_json::Value::Array(content).to_string().as_bytes());
    hex::encode(h.finalize())
}

/// A published head of the chain: the newest entry's id and link, and when it was read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Anchor {
    /// When it was taken.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The entry's id.
    pub id: i64,
    /// Its link.
    pub link: String,
}

/// Appends an `anchor` entry and publishes the head: in the log, and appended to `file`
/// (synced) when given. The anchor entry links everything before it, so the head it
/// gives covers every entry written until then.
pub async fn anchor(store: &Store, file: Option<&std::path::Path>) -> Result<Anchor, Error> {
    Event::unauthenticated("audit_chain", "anchor")
        .record(store)
        .await?;
    let Some((id, Some(link))) = store.audit_head().await? else {
        return Err(Error::Internal(anyhow::anyhow!(
            "the audit chain has no linked head right after an append"
        )));
    };
    let anchor = Anchor {
        at: store.now(),
        id,
        link,
    };
    tracing::info!(id = anchor.id, link = %anchor.link, "audit chain anchored");
    if let Some(file) = file {
        let line = serde_json::to_string(&anchor).map_err(|e| Error::Internal(e.into()))?;
        let file = file.to_owned();
        tokio::task::spawn_blocking(move || append_line(&file, &line))
            .await
            .map_err(|e| Error::Internal(e.into()))?
            .map_err(|e| Error::Internal(e.context("writing the audit anchor file")))?;
    }
    Ok(anchor)
}

fn append_line(file: &std::path::Path, line: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Anchors every `every` while entries are added, until `stop` turns true. An anchor
/// that cannot be written is logged and tried again at the next turn.
pub async fn anchor_periodically(
    store: Store,
    every: std::time::Duration,
    file: Option<std::path::PathBuf>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut last = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let head = match store.audit_head().await {
            Ok(head) => head.map(|(id, _)| id),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the audit chain's head");
                continue;
            }
        };
        // Nothing since the last anchor (whose own entry is the head): nothing to anchor.
        if head.is_none() || head == last {
            continue;
        }
        match anchor(&store, file.as_deref()).await {
            Ok(a) => last = Some(a.id),
            Err(e) => tracing::error!(error = %e, "cannot anchor the audit chain"),
        }
    }
}

/// Reads the anchors of an anchor file, one JSON line each; names the first bad line.
pub fn read_anchors(text: &str) -> Result<Vec<Anchor>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).map_err(|e| format!("line {} is not an anchor: {e}", n + 1))
        })
        .collect()
}

/// The first anchor the chain no longer holds, and how: `None` when every anchored entry
/// is there with its anchored link.
pub async fn check_anchors(store: &Store, anchors: &[Anchor]) -> Result<Option<String>, Error> {
    for a in anchors {
        let found = store
            .audit_chain(a.id - 1, 1)
            .await?
            .into_iter()
            .find(|(id, _, _)| *id == a.id);
        match found {
            None => {
                return Ok(Some(format!(
                    "entry #{}, anchored at {}, is gone: the log was cut",
                    a.id, a.at
                )));
            }
            Some((_, _, link)) if link.as_deref() != Some(a.link.as_str()) => {
                return Ok(Some(format!(
                    "entry #{}, anchored at {}, has another link: the chain was rewritten up to it",
                    a.id, a.at
                )));
            }
            Some(_) => {}
        }
    }
    Ok(None)
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
