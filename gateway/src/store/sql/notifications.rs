//! What waits for each person. Compiled once per backend (see `store/mod.rs`).

use chrono::{DateTime, Utc};

use super::{Db, Pool};
use crate::store::{Audience, Notification, PersonNotice, StoreError};

/// Writes `notices` inside a transaction: one row per person, a row whose dedupe key
/// exists skipped.
pub async fn write(
    tx: &mut sqlx::Transaction<'_, Db>,
    notices: &[PersonNotice],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for n in notices {
        // The people: one user, or the enabled holders of some roles at an institution
        // (roles are kept as `clinician,coordinator`).
        let (filter, institution, patterns) = match &n.to {
            Audience::User(id) => ("u.id = $6", *id, Vec::new()),
            Audience::Clinician(id) => ("u.clinician_id = $6 and not u.disabled", *id, Vec::new()),
            Audience::Holders {
                institution_id,
                roles,
            } => (
                "u.institution_id = $6 and not u.disabled",
                *institution_id,
                roles
                    .iter()
                    .map(|r| format!("%,{},%", r.as_str()))
                    .collect(),
            ),
        };
        let roles = if patterns.is_empty() {
            String::new()
        } else {
            let any: Vec<String> = (0..patterns.len())
                .map(|i| format!("(',' || u.roles || ',') like ${}", 9 + i))
                .collect();
            format!(" and ({})", any.join(" or "))
        };
        let sql = format!(
            "insert into notification (user_id, event, request_id, urgent, dedupe_key, created_at)
             select u.id, $1, $2, $3,
                    'request:' || $2 || ':' || $1 || ':v' || $4 || ':u' || u.id, $5
             from app_user u
             where {filter} and ($7 or u.id <> $8){roles}
             on conflict (dedupe_key) do nothing"
        );
        let mut q = sqlx::query::<Db>(&sql)
            .bind(&n.event)
            .bind(n.request_id)
            .bind(n.urgent)
            .bind(n.version)
            .bind(now)
            .bind(institution)
            .bind(n.except.is_none())
            .bind(n.except.unwrap_or_default());
        for p in &patterns {
            q = q.bind(p);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Writes notices in a transaction of their own.
pub async fn write_now(
    pool: &Pool,
    notices: &[PersonNotice],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    write(&mut tx, notices, now).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    event: String,
    request_id: Option<i64>,
    request_kind: Option<String>,
    urgent: bool,
    created_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
}

/// The newest notices of `user_id`.
pub async fn list(
    pool: &Pool,
    user_id: i64,
    unread: bool,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Notification>, StoreError> {
    let rows = sqlx::query_as::<Db, Row>(
        "select n.id, n.event, n.request_id, r.kind as request_kind, n.urgent, n.created_at,
                n.read_at
         from notification n left join consult_request r on r.id = n.request_id
         where n.user_id = $1 and (not $2 or n.read_at is null) and ($3 is null or n.id < $3)
         order by n.id desc limit $4",
    )
    .bind(user_id)
    .bind(unread)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Notification {
            id: r.id,
            event: r.event,
            request_id: r.request_id,
            request_kind: r.request_kind,
            urgent: r.urgent,
            created_at: r.created_at,
            read_at: r.read_at,
        })
        .collect())
}

/// How many notices of `user_id` are unread, and the newest one's id (0 when none).
pub async fn unread(pool: &Pool, user_id: i64) -> Result<(i64, i64), StoreError> {
    Ok(sqlx::query_as::<Db, (i64, i64)>(
        "select coalesce(sum(case when read_at is null then 1 else 0 end), 0),
                coalesce(max(id), 0)
         from notification where user_id = $1",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?)
}

/// Marks one notice of `user_id`, or all of theirs, read.
pub async fn mark_read(
    pool: &Pool,
    user_id: i64,
    id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query::<Db>(
        "update notification set read_at = coalesce(read_at, $3)
         where user_id = $1 and ($2 is null or id = $2)",
    )
    .bind(user_id)
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(id.is_none() || done.rows_affected() > 0)
}

/// What waits for a person at `institution_id`: submitted requests of the kinds they
/// answer (`kinds` as `,consultation,imaging_read,`), imaging reads accepted and not yet
/// signed, and signed opinions of their own requests not yet acknowledged.
pub async fn waiting(
    pool: &Pool,
    user_id: i64,
    institution_id: i64,
    kinds: &str,
) -> Result<(i64, i64, i64), StoreError> {
    Ok(sqlx::query_as::<Db, (i64, i64, i64)>(
        "select
           (select count(*) from consult_request where state = 'submitted'
              and supporter_institution_id = $2 and $3 like '%,' || kind || ',%'),
           (select count(*) from consult_request where kind = 'imaging_read'
              and state in ('accepted', 'scheduled', 'in_session')
              and supporter_institution_id = $2 and $3 like '%,imaging_read,%'),
           (select count(*) from consult_request where state = 'opinion_signed'
              and requester_user_id = $1)",
    )
    .bind(user_id)
    .bind(institution_id)
    .bind(kinds)
    .fetch_one(pool)
    .await?)
}
