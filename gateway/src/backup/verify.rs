//! Checking a backup against its manifest.

use std::path::Path;

use super::files::{hash_file, under};
use super::snapshot::run_tool;
use super::{AuditHead, FORMAT, MANIFEST, Manifest};

/// What is wrong with a backup: the first file found missing or changed, or the
/// manifest or database that does not hold what it should.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Damaged(pub String);

/// Checks the backup in `dir`: its manifest, every file's size and SHA-256, and (SQLite)
/// that the copied database opens and its audit chain is whole with the manifest's head,
/// or (PostgreSQL) that `pg_restore` reads the archive. Returns the manifest, or what is
/// wrong first.
pub async fn verify(dir: &Path) -> Result<Manifest, Damaged> {
    let text = match std::fs::read(dir.join(MANIFEST)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Damaged(format!(
                "{MANIFEST} is missing from {}: the backup did not finish, or this is not a backup",
                dir.display()
            )));
        }
        Err(e) => return Err(Damaged(format!("{MANIFEST}: {e}"))),
    };
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| Damaged(format!("{MANIFEST} is not a backup's manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(Damaged(format!(
            "{MANIFEST} is of format {}; this gateway reads format {FORMAT}",
            manifest.format
        )));
    }
    if !manifest.files.iter().any(|f| f.path == manifest.database) {
        return Err(Damaged(format!(
            "{MANIFEST} does not list its database {}",
            manifest.database
        )));
    }
    let (root, files) = (dir.to_path_buf(), manifest.files.clone());
    tokio::task::spawn_blocking(move || {
        for file in &files {
            let path = under(&root, &file.path).ok_or_else(|| {
                Damaged(format!(
                    "{MANIFEST} names a file outside the backup: {:?}",
                    file.path
                ))
            })?;
            match hash_file(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Damaged(format!("{} is missing", file.path)));
                }
                Err(e) => return Err(Damaged(format!("{}: {e}", file.path))),
                Ok((size, _)) if size != file.size => {
                    return Err(Damaged(format!(
                        "{} holds {size} bytes, not the {} of the manifest",
                        file.path, file.size
                    )));
                }
                Ok((_, sha)) if sha != file.sha256 => {
                    return Err(Damaged(format!(
                        "{} is not what was backed up: its SHA-256 is {sha}, not {}",
                        file.path, file.sha256
                    )));
                }
                Ok(_) => {}
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| Damaged(format!("checking the files: {e}")))??;
    let database = dir.join(&manifest.database);
    match manifest.backend.as_str() {
        "sqlite" => {
            let found = sqlite_audit(&database)
                .await
                .map_err(|e| Damaged(format!("{}: {e:#}", manifest.database)))?;
            if found != manifest.audit {
                return Err(Damaged(format!(
                    "the audit chain of {} is not the manifest's: {found} (the manifest: {})",
                    manifest.database, manifest.audit
                )));
            }
        }
        "postgres" => {
            let mut list = tokio::process::Command::new("pg_restore");
            list.arg("--list").arg(&database);
            run_tool(list, "pg_restore")
                .await
                .map_err(|e| Damaged(format!("{}: {e:#}", manifest.database)))?;
        }
        other => {
            return Err(Damaged(format!(
                "{MANIFEST} names an unknown backend {other:?}"
            )));
        }
    }
    Ok(manifest)
}

/// Walks the audit chain of the SQLite copy at `file`, read-only: its head if whole.
async fn sqlite_audit(file: &Path) -> anyhow::Result<AuditHead> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .create_if_missing(false);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    const PAGE: i64 = 1000;
    let (mut after, mut prev, mut entries) = (0_i64, String::new(), 0_u64);
    loop {
        let page = crate::store::sqlite::audit::chain(&pool, after, PAGE).await?;
        let Some((last, _, _)) = page.last() else {
            break;
        };
        let last = *last;
        for (id, entry, hash) in page {
            let expected = crate::audit::link(&prev, &entry);
            anyhow::ensure!(
                hash.as_deref() == Some(expected.as_str()),
                "its audit chain breaks at entry #{id}"
            );
            prev = expected;
            entries += 1;
        }
        after = last;
    }
    pool.close().await;
    Ok(AuditHead {
        entries,
        head_id: (entries > 0).then_some(after),
        head_link: (entries > 0).then_some(prev),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::FileEntry;

    fn manifest(files: Vec<FileEntry>) -> Manifest {
        Manifest {
            format: FORMAT,
            backend: "sqlite".into(),
            gateway_version: "0.1.0".into(),
            taken_at: chrono::Utc::now(),
            database: "database/duikou.db".into(),
            audit: AuditHead {
                entries: 0,
                head_id: None,
                head_link: None,
            },
            files,
        }
    }

    fn entry(path: &str, bytes: &[u8]) -> FileEntry {
        use sha2::Digest as _;
        FileEntry {
            path: path.into(),
            size: bytes.len() as u64,
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
        }
    }

    async fn verdict(dir: &Path, manifest: &Manifest) -> Result<Manifest, Damaged> {
        std::fs::write(dir.join(MANIFEST), serde_json::to_vec(manifest).unwrap()).unwrap();
        verify(dir).await
    }

    #[tokio::test]
    async fn a_manifest_naming_a_file_outside_the_backup_or_one_changed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("database")).unwrap();
        std::fs::write(dir.path().join("database/duikou.db"), b"not a database").unwrap();
        let database = entry("database/duikou.db", b"not a database");

        let outside = manifest(vec![database.clone(), entry("../secrets", b"")]);
        let Err(Damaged(said)) = verdict(dir.path(), &outside).await else {
            panic!("a path outside the backup is refused");
        };
        assert!(said.contains("outside the backup"), "{said}");

        let changed = manifest(vec![entry("database/duikou.db", b"another database")]);
        let Err(Damaged(said)) = verdict(dir.path(), &changed).await else {
            panic!("a changed file is named");
        };
        assert!(
            said.starts_with("database/duikou.db holds 14 bytes"),
            "{said}"
        );

        // Whole files, but no SQLite database in them: named too.
        let Err(Damaged(said)) = verdict(dir.path(), &manifest(vec![database])).await else {
            panic!("the database is opened");
        };
        assert!(said.starts_with("database/duikou.db:"), "{said}");

        std::fs::write(dir.path().join(MANIFEST), b"{\"format\": 1}").unwrap();
        let Err(Damaged(said)) = verify(dir.path()).await else {
            panic!("a manifest without its fields is refused");
        };
        assert!(said.contains("is not a backup's manifest"), "{said}");
    }
}
