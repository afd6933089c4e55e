//! The audit log: appended to, read by administrators, never changed. Compiled once per
//! backend (see `store/mod.rs`).

use chrono::{DateTime, Utc};

use super::{Db, Pool};
use crate::store::{AuditEntry, AuditFilter, Outcome, StoreError};

/// Appends an entry.
pub async fn append(pool: &Pool, e: &AuditEntry) -> Result<(), StoreError> {
    sqlx::query::<Db>(
        "insert into audit_log (at, user_id, roles, institution_id, action, object_kind, object_id, outcome, detail)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(e.at)
    .bind(e.user_id)
    .bind(&e.roles)
    .bind(e.institution_id)
    .bind(&e.action)
    .bind(&e.object_kind)
    .bind(e.object_id)
    .bind(e.outcome.as_str())
    .bind(&e.detail)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    at: DateTime<Utc>,
    user_id: Option<i64>,
    roles: String,
    institution_id: Option<i64>,
    action: String,
    object_kind: String,
    object_id: Option<i64>,
    #[sqlx(try_from = "String")]
    outcome: Outcome,
    detail: Option<String>,
}

/// Entries matching `f`, newest first.
pub async fn entries(pool: &Pool, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query_as::<Db, Row>(
        "select at, user_id, roles, institution_id, action, object_kind, object_id, outcome, detail
         from audit_log
         where ($1 is null or user_id = $1)
           and ($2 is null or institution_id = $2)
           and ($3 is null or object_kind = $3)
           and ($4 is null or object_id = $4)
           and ($5 is null or outcome = $5)
         order by id desc limit $6 offset $7",
    )
    .bind(f.user_id)
    .bind(f.institution_id)
    .bind(&f.object_kind)
    .bind(f.object_id)
    .bind(f.outcome.map(|o| o.as_str()))
    .bind(f.limit)
    .bind(f.offset)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            at: r.at,
            user_id: r.user_id,
            roles: r.roles,
            institution_id: r.institution_id,
            action: r.action,
            object_kind: r.object_kind,
            object_id: r.object_id,
            outcome: r.outcome,
            detail: r.detail,
        })
        .collect())
}
