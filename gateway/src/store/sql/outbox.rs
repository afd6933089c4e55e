//! The notification outbox and the institutions' webhooks. Compiled once per backend
//! (see `store/mod.rs`).

use chrono::{DateTime, Utc};

use super::{Db, Pool};
use crate::store::{OutboxMessage, PendingDelivery, StoreError};

/// Inserts messages for institutions' webhooks inside a transaction: only for an
/// institution that has a webhook now (one set later is told of what happens from then
/// on, not of the past); a message whose dedupe key exists is skipped.
pub async fn enqueue(
    tx: &mut sqlx::Transaction<'_, Db>,
    messages: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for m in messages {
        sqlx::query::<Db>(
            "insert into outbox (institution_id, event, payload, attempts, next_attempt_at, dedupe_key, created_at)
             select $1, $2, $3, 0, $4, $5, $4 where exists (select 1 from webhook where institution_id = $1)
             on conflict (dedupe_key) do nothing",
        )
        .bind(m.institution_id)
        .bind(&m.event)
        .bind(&m.payload)
        .bind(now)
        .bind(&m.dedupe_key)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Inserts messages in a transaction of their own.
pub async fn enqueue_now(
    pool: &Pool,
    messages: &[OutboxMessage],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    enqueue(&mut tx, messages, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets an institution's webhook.
pub async fn set_webhook(
    pool: &Pool,
    institution_id: i64,
    url: &str,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query::<Db>(
        "insert into webhook (institution_id, url, secret, created_at) values ($1, $2, $3, $4)
         on conflict (institution_id) do update set url = excluded.url, secret = excluded.secret",
    )
    .bind(institution_id)
    .bind(url)
    .bind(secret)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    channel: String,
    event: String,
    payload: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    url: String,
    secret: String,
    chat_kind: Option<String>,
}

/// Claims up to `limit` due messages that have somewhere to go (an institution's webhook
/// or chat group robot, a person's e-mail address while they want e-mail): each claim
/// pushes the message's next attempt to `lease_until`, so that another gateway process
/// does not send it at the same time.
pub async fn claim(
    pool: &Pool,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<PendingDelivery>, StoreError> {
    let rows = sqlx::query_as::<Db, Row>(
        "select o.id, o.channel, o.event, o.payload, o.attempts, o.next_attempt_at,
                coalesce(w.url, c.url, u.email) as url, coalesce(w.secret, c.secret, '') as secret,
                c.kind as chat_kind
         from outbox o
         left join webhook w on o.channel = 'webhook' and w.institution_id = o.institution_id
         left join chat_robot c on o.channel = 'chat' and c.institution_id = o.institution_id
         left join app_user u on o.channel = 'email' and u.id = o.user_id
                             and u.email_notices and not u.disabled
         where o.delivered_at is null and o.next_attempt_at <= $1
           and coalesce(w.url, c.url, u.email) is not null
         order by o.id limit $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut claimed = Vec::new();
    for r in rows {
        let won = sqlx::query::<Db>(
            "update outbox set next_attempt_at = $3 where id = $1 and next_attempt_at = $2 and delivered_at is null",
        )
        .bind(r.id)
        .bind(r.next_attempt_at)
        .bind(lease_until)
        .execute(pool)
        .await?;
        if won.rows_affected() == 1 {
            claimed.push(PendingDelivery {
                id: r.id,
                channel: r.channel,
                chat_kind: r.chat_kind,
                event: r.event,
                payload: r.payload,
                attempts: r.attempts,
                url: r.url,
                secret: r.secret,
            });
        }
    }
    Ok(claimed)
}

/// Marks a message delivered.
pub async fn delivered(pool: &Pool, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query::<Db>("update outbox set delivered_at = $2, attempts = attempts + 1, last_error = null where id = $1")
        .bind(id)
        .bind(at)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records a failed attempt and when to try again.
pub async fn failed(
    pool: &Pool,
    id: i64,
    error: &str,
    next: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query::<Db>("update outbox set attempts = attempts + 1, last_error = $2, next_attempt_at = $3 where id = $1")
        .bind(id)
        .bind(error)
        .bind(next)
        .execute(pool)
        .await?;
    Ok(())
}

/// Submitted requests past their decision deadline: (request, requester institution,
/// supporter institution).
pub async fn overdue(
    pool: &Pool,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, i64, i64, String, String)>, StoreError> {
    Ok(sqlx::query_as::<Db, (i64, i64, i64, String, String)>(
        "select id, requester_institution_id, supporter_institution_id, kind, urgency
         from consult_request
         where state = 'submitted' and decision_due_at < $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await?)
}

/// Scheduled requests whose session starts within `lead` of `now` (and has not begun):
/// (request, version, requester user, consultant, kind, urgency).
pub async fn starting_soon(
    pool: &Pool,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<(i64, i32, i64, Option<i64>, String, String)>, StoreError> {
    Ok(sqlx::query_as::<Db, (i64, i32, i64, Option<i64>, String, String)>(
        "select id, version, requester_user_id, consultant_id, kind, urgency from consult_request
         where state = 'scheduled' and scheduled_start > $1 and scheduled_start <= $2",
    )
    .bind(now)
    .bind(until)
    .fetch_all(pool)
    .await?)
}

/// Delivery state of the messages about one request, for operators and tests.
pub async fn status(
    pool: &Pool,
    dedupe_prefix: &str,
) -> Result<Vec<(String, i32, bool)>, StoreError> {
    Ok(sqlx::query_as::<Db, (String, i32, bool)>(
        "select event, attempts, delivered_at is not null from outbox where dedupe_key like $1 || '%' order by id",
    )
    .bind(dedupe_prefix)
    .fetch_all(pool)
    .await?)
}
