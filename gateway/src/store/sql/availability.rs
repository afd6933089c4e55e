//! Consultants' weekly availability, exceptions and booked slots. Compiled once per
//! backend (see `store/mod.rs`).

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::{Db, Pool};
use crate::booking::{Availability, AvailabilityException};
use crate::store::{Removable, StoreError};

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: i64,
    clinician_id: i64,
    weekday: i32,
    start_time: NaiveTime,
    end_time: NaiveTime,
    slot_minutes: i32,
    valid_from: NaiveDate,
    valid_to: Option<NaiveDate>,
}

/// Publishes a weekly rule.
pub async fn add_rule(
    pool: &Pool,
    r: &Availability,
    by: i64,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar::<Db, i64>(
        "insert into availability (clinician_id, weekday, start_time, end_time, slot_minutes, valid_from, valid_to,
             created_by, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id",
    )
    .bind(r.clinician_id)
    .bind(r.weekday as i32)
    .bind(r.start_time)
    .bind(r.end_time)
    .bind(r.slot_minutes)
    .bind(r.valid_from)
    .bind(r.valid_to)
    .bind(by)
    .bind(now)
    .fetch_one(pool)
    .await?)
}

/// A consultant's weekly rules.
pub async fn rules(pool: &Pool, clinician_id: i64) -> Result<Vec<Availability>, StoreError> {
    let rows = sqlx::query_as::<Db, RuleRow>(
        "select id, clinician_id, weekday, start_time, end_time, slot_minutes, valid_from, valid_to
         from availability where clinician_id = $1 order by weekday, start_time, id",
    )
    .bind(clinician_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Availability {
            id: r.id,
            clinician_id: r.clinician_id,
            weekday: r.weekday.unsigned_abs(),
            start_time: r.start_time,
            end_time: r.end_time,
            slot_minutes: r.slot_minutes,
            valid_from: r.valid_from,
            valid_to: r.valid_to,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct ExceptionRow {
    id: i64,
    clinician_id: i64,
    day: NaiveDate,
    start_time: Option<NaiveTime>,
    end_time: Option<NaiveTime>,
    reason: String,
}

/// Records a day or part of a day off.
pub async fn add_exception(
    pool: &Pool,
    e: &AvailabilityException,
    by: i64,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar::<Db, i64>(
        "insert into availability_exception (clinician_id, day, start_time, end_time, reason, created_by, created_at)
         values ($1, $2, $3, $4, $5, $6, $7) returning id",
    )
    .bind(e.clinician_id)
    .bind(e.day)
    .bind(e.start_time)
    .bind(e.end_time)
    .bind(&e.reason)
    .bind(by)
    .bind(now)
    .fetch_one(pool)
    .await?)
}

/// A consultant's exceptions between two days.
pub async fn exceptions(
    pool: &Pool,
    clinician_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<AvailabilityException>, StoreError> {
    let rows = sqlx::query_as::<Db, ExceptionRow>(
        "select id, clinician_id, day, start_time, end_time, reason from availability_exception
         where clinician_id = $1 and day >= $2 and day <= $3 order by day, id",
    )
    .bind(clinician_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AvailabilityException {
            id: r.id,
            clinician_id: r.clinician_id,
            day: r.day,
            start_time: r.start_time,
            end_time: r.end_time,
            reason: r.reason,
        })
        .collect())
}

/// Removes a weekly rule or an exception (`table` names which) of a consultant; false
/// when the consultant has none with that id. Slots booked already stay booked.
pub async fn remove(
    pool: &Pool,
    table: Removable,
    clinician_id: i64,
    id: i64,
) -> Result<bool, StoreError> {
    let sql = match table {
        Removable::Rule => "delete from availability where id = $1 and clinician_id = $2",
        Removable::Exception => {
            "delete from availability_exception where id = $1 and clinician_id = $2"
        }
    };
    Ok(sqlx::query::<Db>(sql)
        .bind(id)
        .bind(clinician_id)
        .execute(pool)
        .await?
        .rows_affected()
        == 1)
}

/// Start instants of a consultant's booked slots in a range.
pub async fn booked(
    pool: &Pool,
    clinician_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    Ok(sqlx::query_scalar::<Db, DateTime<Utc>>(
        "select start_at from slot_booking where clinician_id = $1 and start_at >= $2 and start_at < $3",
    )
    .bind(clinician_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}
