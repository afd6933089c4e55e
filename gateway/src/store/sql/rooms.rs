//! Video rooms: presence in a session's room, attendance of teaching sessions from the
//! signaling layer, and settings generated once. Compiled once per backend (see
//! `store/mod.rs`).

use chrono::{DateTime, Utc};

use super::{Db, Pool};
use crate::store::{Presence, RoomMessage, StoreError};

/// The value of setting `key`, storing `value` first if it has none. Concurrent callers
/// all get the one value stored first.
pub async fn setting_or_insert(pool: &Pool, key: &str, value: &str) -> Result<String, StoreError> {
    sqlx::query::<Db>(
        "insert into setting (key, value) values ($1, $2) on conflict (key) do nothing",
    )
    .bind(key)
    .bind(value)
    .execute(pool)
    .await?;
    Ok(
        sqlx::query_scalar::<Db, String>("select value from setting where key = $1")
            .bind(key)
            .fetch_one(pool)
            .await?,
    )
}

/// `user_id` entered `room` at `at`.
pub async fn presence_open(
    pool: &Pool,
    room: &str,
    user_id: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query::<Db>("insert into room_presence (room, user_id, joined_at) values ($1, $2, $3)")
        .bind(room)
        .bind(user_id)
        .bind(at)
        .execute(pool)
        .await?;
    Ok(())
}

/// `user_id` left `room` at `at`: closes their open stretch, if any.
pub async fn presence_close(
    pool: &Pool,
    room: &str,
    user_id: i64,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query::<Db>(
        "update room_presence set left_at = $3 where id = (select max(id) from room_presence
         where room = $1 and user_id = $2 and left_at is null)",
    )
    .bind(room)
    .bind(user_id)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Every stretch of presence in `room`, in order.
pub async fn presence(pool: &Pool, room: &str) -> Result<Vec<Presence>, StoreError> {
    Ok(sqlx::query_as::<Db, Presence>(
        "select user_id, joined_at, left_at from room_presence where room = $1 order by joined_at, id",
    )
    .bind(room)
    .fetch_all(pool)
    .await?)
}

/// Closes the open attendance stretch of a trainee in a teaching session.
pub async fn attendance_close(
    pool: &Pool,
    session_id: i64,
    user_id: i64,
    at: DateTime<Utc>,
    received_seconds: Option<i64>,
) -> Result<bool, StoreError> {
    let done = sqlx::query::<Db>(
        "update attendance set left_at = $3, received_seconds = $4 where id = (select max(id)
         from attendance where session_id = $1 and user_id = $2 and left_at is null)",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(at)
    .bind(received_seconds)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Adds a message to the chat of `room` unless it holds `cap` already; its id, or `None`
/// at the cap.
pub async fn message_add(
    pool: &Pool,
    room: &str,
    user_id: i64,
    body: &str,
    at: DateTime<Utc>,
    cap: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar::<Db, i64>(
        "insert into room_message (room, user_id, body, created_at)
         select $1, $2, $3, $4 where (select count(*) from room_message where room = $1) < $5
         returning id",
    )
    .bind(room)
    .bind(user_id)
    .bind(body)
    .bind(at)
    .bind(cap)
    .fetch_optional(pool)
    .await?)
}

/// The messages of the chat of `room` after message `after`, oldest first, at most
/// `limit`; each with its writer's name (the clinician's, else the account's).
pub async fn messages(
    pool: &Pool,
    room: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<RoomMessage>, StoreError> {
    Ok(sqlx::query_as::<Db, RoomMessage>(
        "select m.id, m.user_id, coalesce(c.name, u.display_name) as name, m.body, m.created_at
         from room_message m join app_user u on u.id = m.user_id
         left join clinician c on c.id = u.clinician_id
         where m.room = $1 and m.id > $2 order by m.id limit $3",
    )
    .bind(room)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
