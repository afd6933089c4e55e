//! Request attachments' records; their bytes live in the data directory, named by their
//! SHA-256. Compiled once per backend (see `store/mod.rs`).

use chrono::{DateTime, Utc};

use super::{Db, Pool};
use crate::booking::AttachmentInfo;
use crate::store::StoreError;

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    request_id: i64,
    filename: String,
    content_type: String,
    size: i64,
    sha256: String,
    created_at: DateTime<Utc>,
}

fn info(r: Row) -> AttachmentInfo {
    AttachmentInfo {
        id: r.id,
        request_id: r.request_id,
        filename: r.filename,
        content_type: r.content_type,
        size: r.size,
        sha256: r.sha256,
        created_at: r.created_at,
    }
}

/// Records an attachment and returns it as kept: the same file twice on one request is one
/// attachment, the first, with its first name and id.
pub async fn add(pool: &Pool, a: &AttachmentInfo, by: i64) -> Result<AttachmentInfo, StoreError> {
    sqlx::query::<Db>(
        "insert into attachment (request_id, filename, content_type, size, sha256, uploaded_by, created_at)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict (request_id, sha256) do nothing",
    )
    .bind(a.request_id)
    .bind(&a.filename)
    .bind(&a.content_type)
    .bind(a.size)
    .bind(&a.sha256)
    .bind(by)
    .bind(a.created_at)
    .execute(pool)
    .await?;
    // Attachments are never deleted: the row is there, whichever insert made it.
    let row = sqlx::query_as::<Db, Row>(
        "select id, request_id, filename, content_type, size, sha256, created_at from attachment
         where request_id = $1 and sha256 = $2",
    )
    .bind(a.request_id)
    .bind(&a.sha256)
    .fetch_one(pool)
    .await?;
    Ok(info(row))
}

/// A request's attachments.
pub async fn list(pool: &Pool, request_id: i64) -> Result<Vec<AttachmentInfo>, StoreError> {
    let rows = sqlx::query_as::<Db, Row>(
        "select id, request_id, filename, content_type, size, sha256, created_at from attachment
         where request_id = $1 order by id",
    )
    .bind(request_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(info).collect())
}
