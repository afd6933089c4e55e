//! Imaging destinations and the forward queue. Compiled once per backend (see
//! `store/mod.rs`).

use chrono::{DateTime, Utc};

use super::{Db, Pool};
use crate::store::{
    ClaimedForward, ForwardFilter, ForwardTarget, ForwardView, ImagingDestination, StoreError,
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
    .bind(&d.ae_title)
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

#[derive(sqlx::FromRow)]
struct Due {
    id: i64,
    state: String,
    next_attempt_at: DateTime<Utc>,
}

/// Claims up to `limit` due forwards: pending ones whose time has come, and sending ones
/// whose lease ran out (their process died). Each claim is a compare-and-set, so two
/// gateway processes never send the same job at once.
pub async fn claim(
    pool: &Pool,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ClaimedForward>, StoreError> {
    let due = sqlx::query_as::<Db, Due>(
        "select id, state, next_attempt_at from forward_job
         where state in ('pending', 'sending') and next_attempt_at <= $1 order by id limit $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut ids = Vec::new();
    for d in due {
        let won = sqlx::query::<Db>(
            "update forward_job set state = 'sending', next_attempt_at = $4
             where id = $1 and state = $2 and next_attempt_at = $3",
        )
        .bind(d.id)
        .bind(&d.state)
        .bind(d.next_attempt_at)
        .bind(lease_until)
        .execute(pool)
        .await?;
        if won.rows_affected() == 1 {
            ids.push(d.id);
        }
    }
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        claimed.push(
            sqlx::query_as::<Db, ClaimedForward>(
                "select f.id, f.attempts, i.path, i.sop_class_uid, i.sop_instance_uid, i.transfer_syntax,
                        f.ae_title, f.host, f.port, f.tls
                 from forward_job f join dicom_instance i on i.id = f.instance_id where f.id = $1",
            )
            .bind(id)
            .fetch_one(pool)
            .await?,
        );
    }
    Ok(claimed)
}

/// Records a delivery.
pub async fn delivered(pool: &Pool, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query::<Db>(
        "update forward_job set state = 'delivered', attempts = attempts + 1, delivered_at = $2, last_error = null
         where id = $1 and state = 'sending'",
    )
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failed attempt: due again at `next` (`retry`), or failed for good.
pub async fn not_delivered(
    pool: &Pool,
    id: i64,
    error: &str,
    retry: bool,
    next: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query::<Db>(
        "update forward_job set state = $3, attempts = attempts + 1, last_error = $2, next_attempt_at = $4
         where id = $1 and state = 'sending'",
    )
    .bind(id)
    .bind(error)
    .bind(if retry { "pending" } else { "failed" })
    .bind(next)
    .execute(pool)
    .await?;
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
    .bind(f.state.as_deref())
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
