//! What waits for each person. Compiled once per backend (see `store/mod.rs`).

use chrono::{DateTime, Utc};

use super::{Db, Pool};
use crate::store::{Audience, Notification, PersonNotice, StoreError};

/// Writes `notices` inside a transaction: one row per person, a row whose dedupe key
/// exists skipped; for the people who chose e-mail, a message to send in the outbox; for an
/// urgent request submitted to an institution with a chat group robot, a message to it.
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
        let payload = serde_json::json!({
            "event": n.event, "request_id": n.request_id, "kind": n.kind, "urgent": n.urgent,
        })
        .to_string();
        let people = format!("from app_user u where {filter} and ($7 or u.id <> $8){roles}");
        // The two statements share their arguments but the third: the notice keeps the
        // urgency ($3), the e-mail its payload ($3).
        let notice = format!(
            "insert into notification (user_id, event, request_id, urgent, dedupe_key, created_at)
             select u.id, $1, $2, $3,
                    'request:' || $2 || ':' || $1 || ':v' || $4 || ':u' || u.id, $5
             {people}
             on conflict (dedupe_key) do nothing"
        );
        let email = format!(
            "insert into outbox (institution_id, event, payload, attempts, next_attempt_at,
                                 dedupe_key, created_at, channel, user_id)
             select u.institution_id, $1, $3, 0, $5,
                    'email:request:' || $2 || ':' || $1 || ':v' || $4 || ':u' || u.id, $5,
                    'email', u.id
             {people} and u.email_notices and u.email is not null
             on conflict (dedupe_key) do nothing"
        );
        for (sql, urgency) in [(&notice, true), (&email, false)] {
            let q = sqlx::query::<Db>(sql).bind(&n.event).bind(n.request_id);
            let mut q = if urgency {
                q.bind(n.urgent)
            } else {
                q.bind(&payload)
            }
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
        // An urgent request reaches the chat group of the institution it is submitted to.
        if let (Audience::Holders { institution_id, .. }, true, "submitted") =
            (&n.to, n.urgent, n.event.as_str())
        {
            sqlx::query::<Db>(
                "insert into outbox (institution_id, event, payload, attempts, next_attempt_at,
                                     dedupe_key, created_at, channel)
                 select c.institution_id, $2, $3, 0, $4, $5, $4, 'chat'
                 from chat_robot c where c.institution_id = $1
                 on conflict (dedupe_key) do nothing",
            )
            .bind(institution_id)
            .bind(&n.event)
            .bind(&payload)
            .bind(now)
            .bind(format!(
                "chat:request:{}:{}:v{}:to{institution_id}",
                n.request_id, n.event, n.version
            ))
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Tells the people `notices` and the institutions `messages` that request `request` is
/// overdue, in one transaction, only while it still awaits a decision; false when it no
/// longer does (decided or cancelled since it was found overdue).
pub async fn overdue_told(
    pool: &Pool,
    request: i64,
    notices: &[PersonNotice],
    messages: &[crate::store::OutboxMessage],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let waiting = sqlx::query_scalar::<Db, i64>(&format!(
        "select id from consult_request where id = $1 and state = 'submitted'{}",
        super::FOR_UPDATE
    ))
    .bind(request)
    .fetch_optional(&mut *tx)
    .await?
    .is_some();
    if waiting {
        write(&mut tx, notices, now).await?;
        super::outbox::enqueue(&mut tx, messages, now).await?;
    }
    tx.commit().await?;
    Ok(waiting)
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

/// A person's e-mail address and whether they want notices by e-mail.
pub async fn email_choice(
    pool: &Pool,
    user_id: i64,
) -> Result<Option<(Option<String>, bool)>, StoreError> {
    Ok(sqlx::query_as::<Db, (Option<String>, bool)>(
        "select email, email_notices from app_user where id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}

/// Sets a person's e-mail address and whether they want notices by e-mail.
pub async fn set_email_choice(
    pool: &Pool,
    user_id: i64,
    email: Option<&str>,
    wanted: bool,
) -> Result<(), StoreError> {
    sqlx::query::<Db>("update app_user set email = $2, email_notices = $3 where id = $1")
        .bind(user_id)
        .bind(email)
        .bind(wanted)
        .execute(pool)
        .await?;
    Ok(())
}

/// An institution's chat group robot: (kind, URL, whether it has a secret).
pub async fn chat_robot(
    pool: &Pool,
    institution_id: i64,
) -> Result<Option<(String, String, bool)>, StoreError> {
    Ok(sqlx::query_as::<Db, (String, String, bool)>(
        "select kind, url, secret is not null from chat_robot where institution_id = $1",
    )
    .bind(institution_id)
    .fetch_optional(pool)
    .await?)
}

/// Sets an institution's chat group robot.
pub async fn set_chat_robot(
    pool: &Pool,
    institution_id: i64,
    kind: &str,
    url: &str,
    secret: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query::<Db>(
        "insert into chat_robot (institution_id, kind, url, secret, created_at)
         values ($1, $2, $3, $4, $5)
         on conflict (institution_id) do update set kind = excluded.kind, url = excluded.url,
             secret = excluded.secret",
    )
    .bind(institution_id)
    .bind(kind)
    .bind(url)
    .bind(secret)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes an institution's chat group robot; false when it had none.
pub async fn remove_chat_robot(pool: &Pool, institution_id: i64) -> Result<bool, StoreError> {
    let done = sqlx::query::<Db>("delete from chat_robot where institution_id = $1")
        .bind(institution_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    channel: String,
    event: String,
    payload: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
    person: Option<String>,
}

/// The newest messages of institution `institution_id` in the outbox: its webhook calls,
/// its chat robot's messages, and the e-mails to its people.
pub async fn deliveries(
    pool: &Pool,
    institution_id: i64,
    limit: i64,
) -> Result<Vec<crate::store::Delivery>, StoreError> {
    let rows = sqlx::query_as::<Db, DeliveryRow>(
        "select o.id, o.channel, o.event, o.payload, o.attempts, o.next_attempt_at,
                o.delivered_at, o.last_error, u.display_name as person
         from outbox o left join app_user u on u.id = o.user_id
         where o.institution_id = $1 order by o.id desc limit $2",
    )
    .bind(institution_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| crate::store::Delivery {
            id: r.id,
            channel: r.channel,
            event: r.event,
            request_id: serde_json::from_str::<serde_json::Value>(&r.payload)
                .ok()
                .and_then(|p| p["request_id"].as_i64()),
            person: r.person,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            delivered_at: r.delivered_at,
            last_error: r.last_error,
        })
        .collect())
}

/// The URL of an institution's webhook.
pub async fn webhook_url(pool: &Pool, institution_id: i64) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar::<Db, String>("select url from webhook where institution_id = $1")
            .bind(institution_id)
            .fetch_optional(pool)
            .await?,
    )
}
