//! How long records are kept, and their purge once that time has passed.
//!
//! Remote medical records are medical records (医疗机构病历管理规定): outpatient records
//! are kept at least 15 years, inpatient records at least 30. Consultations, imaging and
//! pathology reads are outpatient records, ward rounds inpatient ones; teaching sessions
//! are not medical records but the evidence of training targets and continuing-education
//! credit, kept 15 years by default. `[retention]` sets the years of each
//! ([`crate::config::RetentionConfig`]); a period below the legal minimum is refused at
//! load and at start.
//!
//! ## Kept by the database
//! The periods are a table, `retention_policy`, written from the configuration at every
//! start ([`sync`]): with `database.owner_url` by the owner, the gateway's own role may
//! only read it; else by the gateway's connection. A check in the table refuses a period
//! below the legal minimum whoever writes it. Triggers (migration 0026, on both backends)
//! refuse to delete a request, a ward round or a teaching session, or anything kept with
//! it (a request's steps, opinions, attachments and notices; a round's patients; a
//! session's enrolments and attendance; the chat and presence of each one's room), until its period has ended by the database's own clock: a kind without a
//! period is never deleted. PostgreSQL also refuses to truncate those tables. So neither
//! the gateway nor an administrator of it can delete a record earlier; only whoever owns
//! the tables can (by turning the triggers off), and a purge that did not go through
//! [`purge`] leaves no `purge` entry in the audit chain.
//!
//! ## What counts
//! A period counts from the record's last change: a request's `updated_at` (every step,
//! opinion and booking moves it), or a later attachment or chat message (written without
//! moving it); a ward round's creation, end, cancellation or latest note on a patient; a
//! teaching session's creation, end, cancellation or latest attendance.
//!
//! ## The purge
//! `duikou purge` deletes each record whose period has ended, with what is kept with it,
//! in one transaction per record, then the attachment files no record refers to any more
//! (after the commit: a file outliving its row is harmless, a row outliving its file is
//! not), and appends a `purge` entry to the audit chain naming the record and its patient
//! (after the commit, as every entry follows what it records: should the append fail, the
//! purge stops there with an error naming the record). `--dry-run` lists the records and
//! changes nothing. The audit log itself is never purged, and studies in the imaging
//! relay are outside these periods.

use std::path::Path;

use crate::config::RetentionConfig;
use crate::store::{Retained, Store};

/// Checks `config` against the legal minimums and writes its periods to the database.
pub async fn sync(store: &Store, config: &RetentionConfig) -> anyhow::Result<()> {
    config.check().map_err(anyhow::Error::msg)?;
    let periods: Vec<(&str, u32)> = config
        .periods()
        .iter()
        .map(|(kind, years, _, _)| (*kind, *years))
        .collect();
    store.sync_retention(&periods).await?;
    Ok(())
}

/// What a purge did, or in a dry run would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Requests purged.
    pub requests: usize,
    /// Ward rounds purged.
    pub ward_rounds: usize,
    /// Teaching sessions purged.
    pub teaching_sessions: usize,
    /// Rows deleted, the records' own included (none in a dry run).
    pub rows: u64,
    /// Attachment files removed (none in a dry run).
    pub files: usize,
}

impl Summary {
    fn count(&mut self, kind: Retained) {
        match kind {
            Retained::Request => self.requests += 1,
            Retained::WardRound => self.ward_rounds += 1,
            Retained::TeachingSession => self.teaching_sessions += 1,
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests, {} ward rounds, {} teaching sessions ({} rows, {} files)",
            self.requests, self.ward_rounds, self.teaching_sessions, self.rows, self.files
        )
    }
}

/// Purges every record whose retention has ended, each in its own transaction, removes
/// the attachment files under `data_dir` no record refers to any more, and audits each
/// purge; with `dry_run`, only lists them. `each` is told of every record, as it goes.
pub async fn purge(
    store: &Store,
    data_dir: &Path,
    dry_run: bool,
    mut each: impl FnMut(Retained, i64),
) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    for (kind, id) in store.retention_ended().await? {
        if dry_run {
            each(kind, id);
            summary.count(kind);
            continue;
        }
        // Changed since it was listed (its period starts again): kept.
        let Some(purged) = store.purge(kind, id).await? else {
            continue;
        };
        each(kind, id);
        summary.count(kind);
        summary.rows += purged.rows;
        for sha256 in &purged.files {
            let path = crate::booking::path_of(data_dir, sha256);
            match std::fs::remove_file(&path) {
                Ok(()) => summary.files += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "an attachment file of a purged record was not removed")
                }
            }
        }
        crate::audit::Event::unauthenticated(kind.as_str(), "purge")
            .id(id)
            .patient(purged.patient)
            .detail(format!(
                "retention ended; {} rows and {} files deleted",
                purged.rows,
                purged.files.len()
            ))
            .record(store)
            .await
            .map_err(|e| anyhow::anyhow!("auditing the purge of {} {id}: {e}", kind.as_str()))?;
    }
    Ok(summary)
}
