//! Restoring a backup into an empty data directory (and, on PostgreSQL, an empty
//! database).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::files::{ATTACHMENTS, DICOM, copy_hashed, empty_or_missing, sync_tree, under};
use super::snapshot::{postgres_objects, postgres_tool, run_tool, sqlite_file};
use super::{Manifest, verify};
use crate::config::Config;

/// Restores the backup in `dir` into the data directory, spool and database `config`
/// names, each of which must be empty: the backup is checked whole first, and nothing is
/// written if it is not.
pub async fn restore(config: &Config, dir: &Path) -> anyhow::Result<Manifest> {
    let manifest = verify(dir)
        .await
        .map_err(|e| anyhow::anyhow!("nothing was restored: the backup is damaged: {e}"))?;
    let url = config.database_url();
    let postgres = !url.starts_with("sqlite:");
    let configured = if postgres { "postgres" } else { "sqlite" };
    anyhow::ensure!(
        manifest.backend == configured,
        "nothing was restored: the backup holds a {} database and database.url names a {configured} one",
        manifest.backend
    );
    let data = config.data.dir.clone();
    let spool = config.imaging.spool(&data);
    for (what, place) in [("data directory", &data), ("DICOM spool", &spool)] {
        anyhow::ensure!(
            empty_or_missing(place).with_context(|| format!("reading {}", place.display()))?,
            "nothing was restored: the {what} {} is not empty; restore only into an empty one",
            place.display()
        );
    }
    let sqlite = if postgres {
        let objects = postgres_objects(&super::owner_url(config)).await?;
        anyhow::ensure!(
            objects == 0,
            "nothing was restored: the PostgreSQL database of database.url is not empty \
             ({objects} tables, views or sequences); restore only into an empty database"
        );
        None
    } else {
        let file = sqlite_file(&url)?;
        anyhow::ensure!(
            !file.exists(),
            "nothing was restored: the SQLite database {} is there already; restore only into an empty data directory",
            file.display()
        );
        Some(file)
    };

    let written = write(&manifest, dir, &data, &spool, sqlite.as_deref()).await;
    if postgres && written.is_ok() {
        let mut load = postgres_tool("pg_restore", &super::owner_url(config))?;
        load.args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
        ])
        .arg(dir.join(&manifest.database));
        run_tool(load, "pg_restore")
            .await
            .map_err(|e| half_way(e, &data, &spool))?;
    }
    written.map_err(|e| half_way(e, &data, &spool))?;
    Ok(manifest)
}

/// Copies the backup's files (and the SQLite database, to `sqlite`) into place, each
/// checked against the manifest as it is copied, and syncs them.
async fn write(
    manifest: &Manifest,
    dir: &Path,
    data: &Path,
    spool: &Path,
    sqlite: Option<&Path>,
) -> anyhow::Result<()> {
    let (manifest, dir, data, spool) = (
        manifest.clone(),
        dir.to_path_buf(),
        data.to_path_buf(),
        spool.to_path_buf(),
    );
    let sqlite = sqlite.map(Path::to_path_buf);
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&data)?;
        for file in &manifest.files {
            let to = if file.path == manifest.database {
                match &sqlite {
                    Some(to) => to.clone(),
                    None => continue,
                }
            } else {
                place(&file.path, &data, &spool)?
            };
            let from = dir.join(&file.path);
            let (size, sha) =
                copy_hashed(&from, None, &to).with_context(|| format!("copying {}", file.path))?;
            anyhow::ensure!(
                size == file.size && sha == file.sha256,
                "{} changed while it was restored",
                file.path
            );
        }
        for root in [&data, &spool] {
            if root.exists() {
                sync_tree(root)?;
            }
        }
        if let Some(parent) = sqlite.as_deref().and_then(Path::parent) {
            std::fs::File::open(parent)?.sync_all()?;
        }
        anyhow::Ok(())
    })
    .await?
}

/// Where a backup's file (not the database) goes: the spool's under the spool, the
/// attachments under the data directory.
fn place(path: &str, data: &Path, spool: &Path) -> anyhow::Result<PathBuf> {
    let found = if let Some(rest) = path.strip_prefix(&format!("{DICOM}/")) {
        under(spool, rest)
    } else if let Some(rest) = path.strip_prefix(&format!("{ATTACHMENTS}/")) {
        under(&data.join(ATTACHMENTS), rest)
    } else {
        None
    };
    found
        .with_context(|| format!("the manifest names a file that is no part of a backup: {path:?}"))
}

/// A restore that failed after it began writing: what to clear before trying again.
fn half_way(e: anyhow::Error, data: &Path, spool: &Path) -> anyhow::Error {
    e.context(format!(
        "the restore stopped half-way: empty the data directory {} (and the spool {}, and on PostgreSQL the database) before restoring again",
        data.display(),
        spool.display()
    ))
}
