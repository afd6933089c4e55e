//! Imaging destinations and the forward queue. Compiled once per backend (see
//! `store/mod.rs`).

use chrono::{DateTime, Utc};

use super::{Db, Pool};
use crate::store::{
    ClaimedForward, ForwardFilter, ForwardOutcome, ForwardTarget, ForwardView, ImagingDestination,
    StoreError,
};

/// Sets (or replaces) an institution's destination.
pub async fn set_destination(
    pool: &Pool,
    d: &ImagingDestination,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query::<Db>(
        "insert into imaging_destination (institution_id, ae_title, host, port, tls, updated_at)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (institution_id) do update set ae_title = $2, host = $3, port = $4, tls = $5, updated_at = $6",
    )
    .bind(d.institution_id)
    .bind(d.ae_title.as_str())
    .bind(&d.host)
    .bind(d.port)
    .bind(d.tls)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// An institution's destination.
pub async fn destination(
    pool: &Pool,
    institution_id: i64,
) -> Result<Option<ImagingDestination>, StoreError> {
    Ok(sqlx::query_as::<Db, ImagingDestination>(
        "select institution_id, ae_title, host, port, tls from imaging_destination where institution_id = $1",
    )
    .bind(institution_id)
    .fetch_optional(pool)
    .await?)
}

/// Claims up to `limit` due forwards: pending ones whose time has come, and sending ones
/// whose lease ran out (their process died), in one statement. The outer condition is
/// checked again on each row as it is updated, so two gateway processes never claim the
/// same job.
pub async fn claim(
    pool: &Pool,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ClaimedForward>, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    if let Some(relax) = super::RELAXED_COMMIT {
        sqlx::query::<Db>(relax).execute(&mut *tx).await?;
    }
    let ids = sqlx::query_scalar::<Db, i64>(
        "update forward_job set state = 'sending', next_attempt_at = $2
         where id in (select id from forward_job
                      where state in ('pending', 'sending') and next_attempt_at <= $1
                      order by id limit $3)
           and state in ('pending', 'sending') and next_attempt_at <= $1
         returning id",
    )
    .bind(now)
    .bind(lease_until)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let mut claimed = Vec::new();
    if !ids.is_empty() {
        // The ids are the database's own integers, written into the statement.
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        claimed = sqlx::query_as::<Db, ClaimedForward>(&format!(
            "select f.id, f.attempts, i.path, i.byte_offset, i.size, i.sop_class_uid,
                    i.sop_instance_uid, i.transfer_syntax, f.ae_title, f.host, f.port, f.tls
             from forward_job f join dicom_instance i on i.id = f.instance_id
             where f.id in ({list})"
        ))
        .fetch_all(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// Records the outcomes of attempts in one transaction: delivered, due again at their
/// `next` time (retry), or failed for good. Only jobs still being sent change.
pub async fn record(
    pool: &Pool,
    outcomes: &[ForwardOutcome],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    if let Some(relax) = super::RELAXED_COMMIT {
        sqlx::query::<Db>(relax).execute(&mut *tx).await?;
    }
    // Deliveries, by far the most, in one statement.
    let delivered: Vec<String> = outcomes
        .iter()
        .filter(|o| o.error.is_none())
        .map(|o| o.id.to_string())
        .collect();
    if !delivered.is_empty() {
        let ids = format!("[{}]", delivered.join(","));
        sqlx::query::<Db>(&format!(
            "update forward_job set state = 'delivered', attempts = attempts + 1, delivered_at = $2, last_error = null
             where id in ({}) and state = 'sending'",
            super::IDS_IN_JSON
        ))
        .bind(ids)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    for o in outcomes {
        let Some(error) = &o.error else { continue };
        sqlx::query::<Db>(
            "update forward_job set state = $3, attempts = attempts + 1, last_error = $2, next_attempt_at = $4
             where id = $1 and state = 'sending'",
        )
        .bind(o.id)
        .bind(error)
        .bind(if o.retry { "pending" } else { "failed" })
        .bind(o.next)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Forwards, newest first.
pub async fn forwards(pool: &Pool, f: &ForwardFilter) -> Result<Vec<ForwardView>, StoreError> {
    Ok(sqlx::query_as::<Db, ForwardView>(
        "select f.id, i.sop_instance_uid, i.study_instance_uid, f.source_institution_id,
                f.destination_institution_id, f.ae_title, f.host, f.port, f.tls, f.state, f.attempts,
                f.next_attempt_at, f.last_error, f.created_at, f.delivered_at
         from forward_job f join dicom_instance i on i.id = f.instance_id
         where ($1 is null or f.source_institution_id = $1 or f.destination_institution_id = $1)
           and ($2 is null or f.state = $2)
           and ($3 is null or f.id = $3)
         order by f.id desc limit $4 offset $5",
    )
    .bind(f.institution_id)
    .bind(f.state.map(crate::store::ForwardState::as_str))
    .bind(f.id)
    .bind(f.limit)
    .bind(f.offset)
    .fetch_all(pool)
    .await?)
}

/// Makes a failed, pending or cancelled forward due now, to `target` when given.
pub async fn retry(
    pool: &Pool,
    id: i64,
    target: Option<&ForwardTarget>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = match target {
        Some(t) => {
            sqlx::query::<Db>(
                "update forward_job set state = 'pending', next_attempt_at = $2, destination_institution_id = $3,
                        ae_title = $4, host = $5, port = $6, tls = $7
                 where id = $1 and state in ('pending', 'failed', 'cancelled')",
            )
            .bind(id)
            .bind(now)
            .bind(t.institution_id)
            .bind(&t.ae_title)
            .bind(&t.host)
            .bind(t.port)
            .bind(t.tls)
            .execute(pool)
            .await?
        }
        None => {
            sqlx::query::<Db>(
                "update forward_job set state = 'pending', next_attempt_at = $2
                 where id = $1 and state in ('pending', 'failed', 'cancelled')",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await?
        }
    };
    Ok(done.rows_affected() > 0)
}

/// Cancels a pending or failed forward.
pub async fn cancel(pool: &Pool, id: i64) -> Result<bool, StoreError> {
    let done = sqlx::query::<Db>(
        "update forward_job set state = 'cancelled' where id = $1 and state in ('pending', 'failed')",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
