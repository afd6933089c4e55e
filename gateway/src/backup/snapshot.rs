//! The database's snapshot, and what it names, read in the same snapshot.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::Connection as _;
use sqlx::sqlite::SqliteConnectOptions;

use super::AuditHead;

/// What the database snapshot names outside itself, and its audit chain.
#[derive(Debug)]
pub(super) struct References {
    /// Each spool file the index names, with its last record: (path relative to the
    /// spool, offset, length).
    pub(super) spool: Vec<(String, u64, u64)>,
    /// The checksums of the attachments.
    pub(super) attachments: Vec<String>,
    /// The audit chain.
    pub(super) audit: AuditHead,
}

/// For each spool file the index names, its record that starts last.
const LAST_RECORDS: &str = "select i.path, i.byte_offset, i.size from dicom_instance i
     where i.byte_offset = (select max(l.byte_offset) from dicom_instance l where l.path = i.path)
     order by i.path";

/// Reads [`References`] on `$conn` (a connection or transaction of database `$db`).
macro_rules! references {
    ($conn:expr, $db:ty) => {{
        let spool = sqlx::query_as::<$db, (String, i64, i64)>(LAST_RECORDS)
            .fetch_all(&mut *$conn)
            .await?;
        let attachments = sqlx::query_scalar::<$db, String>(
            "select distinct sha256 from attachment order by sha256",
        )
        .fetch_all(&mut *$conn)
        .await?;
        let entries = sqlx::query_scalar::<$db, i64>("select count(*) from audit_log")
            .fetch_one(&mut *$conn)
            .await?;
        let head = sqlx::query_as::<$db, (i64, Option<String>)>(
            "select id, hash from audit_log order by id desc limit 1",
        )
        .fetch_optional(&mut *$conn)
        .await?;
        References {
            spool: spool
                .into_iter()
                .map(|(path, offset, size)| {
                    (
                        path,
                        u64::try_from(offset).unwrap_or(0),
                        u64::try_from(size).unwrap_or(0),
                    )
                })
                .collect(),
            attachments,
            audit: AuditHead {
                entries: u64::try_from(entries).unwrap_or(0),
                head_id: head.as_ref().map(|(id, _)| *id),
                head_link: head.map(|(_, link)| link.unwrap_or_default()),
            },
        }
    }};
}

/// The SQLite file a `sqlite:` URL names.
pub(super) fn sqlite_file(url: &str) -> anyhow::Result<PathBuf> {
    let options = SqliteConnectOptions::from_str(url).context("database.url")?;
    Ok(options.get_filename().to_path_buf())
}

/// Copies the SQLite database at `url` into the new file `to` (`VACUUM INTO`: one read
/// transaction, while the gateway writes on) and reads what the copy names.
pub(super) async fn sqlite(url: &str, to: &Path) -> anyhow::Result<References> {
    let file = sqlite_file(url)?;
    anyhow::ensure!(
        file.is_file(),
        "no SQLite database at {}: check database.url and data.dir",
        file.display()
    );
    let options = SqliteConnectOptions::new()
        .filename(&file)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30));
    let mut live = sqlx::SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    let target = to
        .to_str()
        .context("the backup directory's path is not UTF-8")?;
    sqlx::query("vacuum into ?")
        .bind(target)
        .execute(&mut live)
        .await
        .context("copying the database (VACUUM INTO)")?;
    live.close().await?;
    std::fs::File::open(to)?.sync_all()?;
    let mut copy = open_sqlite_read_only(to).await?;
    let references = references!(&mut copy, sqlx::Sqlite);
    copy.close().await?;
    Ok(references)
}

/// Opens a SQLite file read-only (a backup's copy).
async fn open_sqlite_read_only(file: &Path) -> anyhow::Result<sqlx::SqliteConnection> {
    let options = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .create_if_missing(false);
    sqlx::SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening {}", file.display()))
}

/// Dumps the PostgreSQL database at `url` into `to` with `pg_dump` (custom format), in a
/// snapshot exported from a repeatable-read transaction that reads what it names.
pub(super) async fn postgres(url: &str, to: &Path) -> anyhow::Result<References> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to the PostgreSQL database (database.url)")?;
    let mut tx = conn.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let snapshot: String = sqlx::query_scalar("select pg_export_snapshot()")
        .fetch_one(&mut *tx)
        .await?;
    let references = references!(&mut *tx, sqlx::Postgres);
    let mut dump = postgres_tool("pg_dump", url)?;
    dump.arg("--format=custom")
        .arg(format!("--snapshot={snapshot}"))
        .arg("--file")
        .arg(to);
    run_tool(dump, "pg_dump").await?;
    // The snapshot lives as long as the transaction that exported it.
    tx.commit().await?;
    conn.close().await?;
    std::fs::File::open(to)?.sync_all()?;
    Ok(references)
}

/// A PostgreSQL client tool (Debian's `postgresql-client`) connecting to `url`: the
/// URL is given without its password, which goes in the environment (not on a command
/// line others can read).
pub(super) fn postgres_tool(tool: &str, url: &str) -> anyhow::Result<tokio::process::Command> {
    let mut parsed = reqwest::Url::parse(url).context("database.url is not a URL")?;
    let password = parsed.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    parsed
        .set_password(None)
        .map_err(|()| anyhow::anyhow!("database.url has no host"))?;
    let mut command = tokio::process::Command::new(tool);
    command.arg("--dbname").arg(parsed.as_str());
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    command.kill_on_drop(true);
    Ok(command)
}

/// Runs `command`; an error carries what it wrote to stderr.
pub(super) async fn run_tool(
    mut command: tokio::process::Command,
    tool: &str,
) -> anyhow::Result<()> {
    let out = command
        .stdout(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {tool} (Debian's postgresql-client)"))?;
    anyhow::ensure!(
        out.status.success(),
        "{tool} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// How many tables, views and sequences the PostgreSQL database at `url` holds outside
/// the system's schemas.
pub(super) async fn postgres_objects(url: &str) -> anyhow::Result<i64> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to the PostgreSQL database (database.url)")?;
    let n = sqlx::query_scalar(
        "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname not in ('pg_catalog', 'information_schema')
           and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'
           and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(n)
}
