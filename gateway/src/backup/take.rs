//! Taking a backup: the database snapshot first, then the files it names, the manifest
//! last.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use duikou_imaging::spool::{Spool, Stored};

use super::files::{ATTACHMENTS, DATABASE, DICOM, copy_hashed, empty_or_missing, sync_tree, under};
use super::snapshot::{self, References};
use super::{FORMAT, FileEntry, MANIFEST, Manifest};
use crate::config::Config;

/// How long a segment is copied again while its last indexed record is not whole yet
/// (indexed a moment before its sync ended; see the module's doc).
pub const WHOLE_WITHIN: Duration = Duration::from_secs(10);

/// Takes a backup of the gateway `config` describes, running or not, into `dir` (new or
/// empty).
pub async fn take(config: &Config, dir: &Path) -> anyhow::Result<Manifest> {
    anyhow::ensure!(
        empty_or_missing(dir).with_context(|| format!("reading {}", dir.display()))?,
        "{} is not empty: a backup goes into a new or empty directory",
        dir.display()
    );
    // It holds patient data: its owner alone reads it.
    std::fs::create_dir_all(dir.join(DATABASE))
        .and_then(|()| std::fs::set_permissions(dir, Permissions::from_mode(0o700)))
        .with_context(|| format!("creating {}", dir.display()))?;
    let url = config.database_url();
    let taken_at = chrono::Utc::now();
    let (backend, database, references) = if url.starts_with("sqlite:") {
        let database = format!("{DATABASE}/duikou.db");
        let refs = snapshot::sqlite(&url, &dir.join(&database)).await?;
        ("sqlite", database, refs)
    } else {
        let database = format!("{DATABASE}/duikou.pgdump");
        let refs = snapshot::postgres(&super::owner_url(config), &dir.join(&database)).await?;
        ("postgres", database, refs)
    };
    let (spool, data) = (
        config.imaging.spool(&config.data.dir),
        config.data.dir.clone(),
    );
    let target = dir.to_path_buf();
    let database_file = database.clone();
    let (files, audit) = tokio::task::spawn_blocking(move || {
        let files = copy_named(&references, &spool, &data, &target, &database_file)?;
        sync_tree(&target)?;
        anyhow::Ok((files, references.audit))
    })
    .await??;
    let manifest = Manifest {
        format: FORMAT,
        backend: backend.to_owned(),
        gateway_version: env!("CARGO_PKG_VERSION").to_owned(),
        taken_at,
        database,
        audit,
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    super::files::write_durably(dir, MANIFEST, &json)
        .with_context(|| format!("writing {}", dir.join(MANIFEST).display()))?;
    Ok(manifest)
}

/// Copies the spool's files and the attachments `references` names into `dir`, and
/// lists every file there (the database's `database` among them). Blocking.
fn copy_named(
    references: &References,
    spool: &Path,
    data_dir: &Path,
    dir: &Path,
    database: &str,
) -> anyhow::Result<Vec<FileEntry>> {
    let (size, sha256) = super::files::hash_file(&dir.join(database))?;
    let mut files = vec![FileEntry {
        path: database.to_owned(),
        size,
        sha256,
    }];
    for (relative, offset, length) in &references.spool {
        let (Some(from), Some(to)) = (under(spool, relative), under(&dir.join(DICOM), relative))
        else {
            anyhow::bail!("the index names a spool file outside the spool: {relative:?}");
        };
        let (size, sha256) = copy_segment(&from, &to, *offset, *length)?;
        files.push(FileEntry {
            path: format!("{DICOM}/{relative}"),
            size,
            sha256,
        });
    }
    for sha in &references.attachments {
        let from = under(&data_dir.join(ATTACHMENTS), sha)
            .filter(|_| sha.bytes().all(|b| b.is_ascii_hexdigit()))
            .with_context(|| format!("an attachment's checksum is not one: {sha:?}"))?;
        let to = dir.join(ATTACHMENTS).join(sha);
        let (size, sha256) = copy_hashed(&from, None, &to)
            .with_context(|| format!("copying the attachment {}", from.display()))?;
        files.push(FileEntry {
            path: format!("{ATTACHMENTS}/{sha}"),
            size,
            sha256,
        });
    }
    Ok(files)
}

/// Copies `from` up to the end of its last indexed record (`offset`, `length`) into
/// `to`, again while that record is not whole in the copy (for at most
/// [`WHOLE_WITHIN`]); a file that is not a segment (an instance kept whole) is copied
/// as it is.
fn copy_segment(from: &Path, to: &Path, offset: u64, length: u64) -> anyhow::Result<(u64, String)> {
    let end = offset + length;
    let is_segment = from
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "segments");
    let deadline = Instant::now() + WHOLE_WITHIN;
    loop {
        let copied = copy_hashed(from, Some(end), to)
            .with_context(|| format!("copying {}", from.display()))?;
        let stored = Stored {
            path: PathBuf::from(to),
            offset,
            length,
        };
        if !is_segment || Spool::holds(&stored)? {
            return Ok(copied);
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                segment = %from.display(),
                "the last indexed record of a segment is not whole: its instance was not \
                 acknowledged, and a restored gateway drops it from its index at start"
            );
            return Ok(copied);
        }
        std::fs::remove_file(to)?;
        std::thread::sleep(Duration::from_millis(50));
    }
}
