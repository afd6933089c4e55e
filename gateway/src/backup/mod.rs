//! Backup and restore of a running gateway: `duikou backup DIR`, `duikou backup verify
//! DIR`, `duikou restore DIR`.
//!
//! ## What a backup holds
//! `DIR/database/` the database (SQLite: `duikou.db`; PostgreSQL: `duikou.pgdump`, a
//! `pg_dump` archive in its custom format), `DIR/dicom/` the spool's files the database
//! names, `DIR/attachments/` the requests' attachments it names, and `DIR/manifest.json`:
//! every file with its size and SHA-256, the backend, the gateway's version, the time and
//! the audit chain's head as the database snapshot holds it.
//!
//! ## Consistency
//! The database is copied first, as one transaction sees it: SQLite's `VACUUM INTO` reads
//! one snapshot (the gateway keeps writing beside it: WAL mode), PostgreSQL's `pg_dump`
//! is handed a snapshot exported from a repeatable-read transaction that stays open while
//! it runs. What that snapshot names is read from the same snapshot: for each spool file,
//! the end of its last indexed record; the checksum of every attachment. Only then are
//! the files copied, and only what the snapshot names: a segment up to the end of its
//! last indexed record (never the zeros prepared beyond it, nor records that came after
//! the snapshot), each attachment by its checksum. Files named in the database are never
//! changed in place (segments are appended to, attachments written once under their
//! checksum), so a copy taken after the snapshot holds the bytes it names.
//!
//! An instance is answered only once its record is synced and indexed, so every instance
//! acknowledged before the backup began is in the snapshot and whole in the copy. The
//! index may name a record a moment before its sync is done (`duikou_imaging::scp`): the
//! last indexed record of each copied segment is checked, and the segment copied again
//! until it is whole, for at most ten seconds. One still not whole belongs to
//! an instance never acknowledged; the restored gateway drops it from its index at start,
//! as after a crash.
//!
//! A backup is finished when `manifest.json` is there: it is written last, to a temporary
//! name, synced and renamed, after every file and directory was synced. A directory
//! without it is a backup that did not finish. [`verify`] checks every file against the
//! manifest; [`restore`] does that before it writes anything.
//!
//! Not in a backup: the configuration file, TLS certificates and keys (the self-signed one
//! is made again), logs, the audit anchor file (kept apart from the data on purpose), and
//! instances kept outside the local spool.

mod files;
mod restore;
mod snapshot;
mod take;
mod verify;

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use restore::restore;
pub use take::take;
pub use verify::{Damaged, verify};

use crate::config::Config;

/// The manifest's file name in a backup directory.
pub const MANIFEST: &str = "manifest.json";

/// The manifest's format; a restore refuses others.
pub const FORMAT: u32 = 1;

/// What `manifest.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The version of the gateway that took it.
    pub gateway_version: String,
    /// When the backup began, just before its database snapshot.
    pub taken_at: DateTime<Utc>,
    /// The database file, relative to the backup directory.
    pub database: String,
    /// The audit chain in the snapshot.
    pub audit: AuditHead,
    /// Every file of the backup but the manifest.
    pub files: Vec<FileEntry>,
}

/// The audit chain as the snapshot holds it: how many entries, and the newest one's id
/// and link (what `duikou audit verify` prints as the head).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditHead {
    /// Entries.
    pub entries: u64,
    /// The newest entry's id, if any.
    pub head_id: Option<i64>,
    /// Its link (SHA-256, hex).
    pub head_link: Option<String>,
}

impl std::fmt::Display for AuditHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.head_id, &self.head_link) {
            (Some(id), Some(link)) => write!(f, "{} entries; head #{id} {link}", self.entries),
            _ => write!(f, "the audit log is empty"),
        }
    }
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the backup directory, `/`-separated.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// The URL PostgreSQL is dumped and restored through: the database's owner
/// (`database.owner_url`) where the gateway's own role may not read or create everything,
/// else the gateway's. A restore by the owner leaves the gateway's role to be granted its
/// rights at the gateway's first start, as after migrations.
fn owner_url(config: &Config) -> String {
    config
        .database
        .owner_url
        .as_ref()
        .map_or_else(|| config.database_url(), |owner| owner.expose().to_owned())
}

/// `duikou backup DIR`.
pub async fn run_backup(config: &Config, dir: &Path) -> anyhow::Result<ExitCode> {
    let manifest = take(config, dir).await?;
    let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
    // A backup holds every patient's records: it is audited like an export (after the
    // snapshot, so the entry is in the next backup, not this one).
    let store = crate::startup::open_store(config).await?;
    crate::audit::Event::unauthenticated("backup", "export")
        .detail(format!(
            "into {}: {}, {bytes} bytes; audit chain: {}",
            dir.display(),
            files(manifest.files.len()),
            manifest.audit
        ))
        .record(&store)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    store.close().await;
    println!(
        "backed up into {}: {}, {bytes} bytes ({}); audit chain: {}",
        dir.display(),
        files(manifest.files.len()),
        manifest.backend,
        manifest.audit
    );
    Ok(ExitCode::SUCCESS)
}

/// `duikou backup verify DIR`: exit 0 when the backup is whole, 1 naming what is not.
pub async fn run_verify(dir: &Path) -> anyhow::Result<ExitCode> {
    Ok(match verify(dir).await {
        Ok(manifest) => {
            let bytes: u64 = manifest.files.iter().map(|f| f.size).sum();
            println!(
                "the backup is whole: {}, {bytes} bytes, {} taken {} by duikou {}; audit chain: {}",
                files(manifest.files.len()),
                manifest.backend,
                manifest
                    .taken_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                manifest.gateway_version,
                manifest.audit
            );
            ExitCode::SUCCESS
        }
        Err(damaged) => {
            println!("the backup is damaged: {damaged}");
            ExitCode::FAILURE
        }
    })
}

/// `duikou restore DIR`.
pub async fn run_restore(config: &Config, dir: &Path) -> anyhow::Result<ExitCode> {
    let manifest = restore(config, dir).await?;
    println!(
        "restored the backup taken {} ({}, {}) into {}; audit chain: {}",
        manifest
            .taken_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        files(manifest.files.len()),
        manifest.backend,
        config.data.dir.display(),
        manifest.audit
    );
    Ok(ExitCode::SUCCESS)
}

/// "1 file", "3 files".
fn files(n: usize) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}
