//! The audit log: appended to, read by administrators, never changed. Compiled once per
//! backend (see `store/mod.rs`).

use chrono::{DateTime, Utc};

use super::{Db, Pool};
use crate::store::{AuditEntry, AuditFilter, Outcome, StoreError};

/// The columns of an entry as [`ChainRow`] reads them.
const COLUMNS: &str = "id, at, user_id, roles, institution_id, action, object_kind, object_id, \
     outcome, detail, object_ref, patient, client, hash";

/// Appends an entry to the chain: under the chain's lock, the newest entry's hash is read
/// and this entry is written with its link ([`crate::audit::link`]). Entries written
/// before the chain existed are chained first, in order.
pub async fn append(pool: &Pool, e: &AuditEntry) -> Result<(), StoreError> {
    // Kept to the microsecond, as both databases keep it, so that the hash is of what is
    // read back.
    let mut e = e.clone();
    e.at = chrono::SubsecRound::trunc_subsecs(e.at, 6);
    let e = &e;
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    sqlx::query::<Db>(super::AUDIT_CHAIN_LOCK)
        .execute(&mut *tx)
        .await?;
    let prev = chain_unlinked(&mut tx).await?;
    let hash = crate::audit::link(&prev, e);
    sqlx::query::<Db>(
        "insert into audit_log (at, user_id, roles, institution_id, action, object_kind, object_id,
             outcome, detail, object_ref, patient, client, hash)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
    .bind(&e.object_ref)
    .bind(&e.patient)
    .bind(&e.client)
    .bind(&hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The newest entry's id and link.
pub async fn head(pool: &Pool) -> Result<Option<(i64, Option<String>)>, StoreError> {
    Ok(sqlx::query_as::<Db, (i64, Option<String>)>(
        "select id, hash from audit_log order by id desc limit 1",
    )
    .fetch_optional(pool)
    .await?)
}

/// Links the entries not yet in the chain (written before it existed), oldest first, and
/// returns the hash of the newest entry ("" for an empty log).
async fn chain_unlinked(tx: &mut sqlx::Transaction<'_, Db>) -> Result<String, StoreError> {
    let last = sqlx::query_as::<Db, (i64, Option<String>)>(
        "select id, hash from audit_log order by id desc limit 1",
    )
    .fetch_optional(&mut **tx)
    .await?;
    match last {
        None => return Ok(String::new()),
        Some((_, Some(hash))) => return Ok(hash),
        Some((_, None)) => {}
    }
    let mut prev = sqlx::query_scalar::<Db, String>(
        "select hash from audit_log where hash is not null order by id desc limit 1",
    )
    .fetch_optional(&mut **tx)
    .await?
    .unwrap_or_default();
    let unlinked = sqlx::query_as::<Db, ChainRow>(&format!(
        "select {COLUMNS} from audit_log where hash is null order by id"
    ))
    .fetch_all(&mut **tx)
    .await?;
    for row in unlinked {
        let (id, entry) = row.entry();
        prev = crate::audit::link(&prev, &entry);
        sqlx::query::<Db>("update audit_log set hash = $2 where id = $1 and hash is null")
            .bind(id)
            .bind(&prev)
            .execute(&mut **tx)
            .await?;
    }
    Ok(prev)
}

/// An entry with its id and link, as the chain is checked.
#[derive(sqlx::FromRow)]
struct ChainRow {
    id: i64,
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
    object_ref: Option<String>,
    patient: Option<String>,
    client: Option<String>,
    hash: Option<String>,
}

impl ChainRow {
    fn entry(self) -> (i64, AuditEntry) {
        (
            self.id,
            AuditEntry {
                at: self.at,
                user_id: self.user_id,
                roles: self.roles,
                institution_id: self.institution_id,
                action: self.action,
                object_kind: self.object_kind,
                object_id: self.object_id,
                outcome: self.outcome,
                detail: self.detail,
                object_ref: self.object_ref,
                patient: self.patient,
                client: self.client,
            },
        )
    }
}

/// The entries after `after` in order, at most `limit`, each with its id and link: for
/// walking the chain.
pub async fn chain(
    pool: &Pool,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, AuditEntry, Option<String>)>, StoreError> {
    let rows = sqlx::query_as::<Db, ChainRow>(&format!(
        "select {COLUMNS} from audit_log where id > $1 order by id limit $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let hash = r.hash.clone();
            let (id, e) = r.entry();
            (id, e, hash)
        })
        .collect())
}

/// Entries matching `f`, newest first, each with its id.
pub async fn entries(pool: &Pool, f: &AuditFilter) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
    // The patient's name contains what was asked, taken literally.
    let patient = f.patient.as_deref().map(|p| {
        let escaped = p
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let rows = sqlx::query_as::<Db, ChainRow>(&format!(
        "select {COLUMNS} from audit_log
         where ($1 is null or user_id = $1)
           and ($2 is null or institution_id = $2)
           and ($3 is null or object_kind = $3)
           and ($4 is null or object_id = $4)
           and ($5 is null or outcome = $5)
           and ($6 is null or action = $6)
           and ($7 is null or patient like $7 escape '\\')
           and ($8 is null or at >= $8)
           and ($9 is null or at < $9)
           and ($10 is null or object_ref = $10 or object_ref like $11 escape '\\')
         order by id desc limit $12 offset $13"
    ))
    .bind(f.user_id)
    .bind(f.institution_id)
    .bind(&f.object_kind)
    .bind(f.object_id)
    .bind(f.outcome.map(|o| o.as_str()))
    .bind(&f.action)
    .bind(patient)
    .bind(f.since)
    .bind(f.until)
    .bind(&f.reference)
    .bind(f.reference.as_deref().map(|r| {
        let escaped = r
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("{escaped}/%")
    }))
    .bind(f.limit)
    .bind(f.offset)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(ChainRow::entry).collect())
}
