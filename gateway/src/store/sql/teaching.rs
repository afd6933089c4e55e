//! Teaching sessions, enrolment, attendance and on-site visits. Compiled once per
//! backend (see `store/mod.rs`).

use chrono::{DateTime, NaiveDate, Utc};

use super::{Db, Pool};
use crate::booking::{Attendance, Enrolment, EnrolmentStatus, TeachingSession};
use crate::store::{NewTeachingSession, StoreError, TeachingChange, TeachingChanged, Visit};

const SESSION: &str = "select s.id, s.presenter_clinician_id, s.presenter_institution_id, s.topic, s.starts_at,
    s.ends_at, s.capacity, s.cancelled_at, s.cancel_reason,
    (select count(*) from enrolment e where e.session_id = s.id and e.status = 'enrolled') as enrolled,
    (select count(*) from enrolment e where e.session_id = s.id and e.status = 'waiting') as waiting
    from teaching_session s";

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: i64,
    presenter_clinician_id: i64,
    presenter_institution_id: i64,
    topic: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    capacity: i32,
    enrolled: i64,
    waiting: i64,
    cancelled_at: Option<DateTime<Utc>>,
    cancel_reason: Option<String>,
}

impl From<SessionRow> for TeachingSession {
    fn from(r: SessionRow) -> Self {
        TeachingSession {
            id: r.id,
            presenter_clinician_id: r.presenter_clinician_id,
            presenter_institution_id: r.presenter_institution_id,
            topic: r.topic,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            capacity: r.capacity,
            enrolled: r.enrolled,
            waiting: r.waiting,
            cancelled_at: r.cancelled_at,
            cancel_reason: r.cancel_reason,
        }
    }
}

/// Creates a session.
pub async fn create_session(
    pool: &Pool,
    s: &NewTeachingSession,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar::<Db, i64>(
        "insert into teaching_session (presenter_clinician_id, presenter_institution_id, topic, starts_at, ends_at,
             capacity, created_by, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
    )
    .bind(s.presenter_clinician_id)
    .bind(s.presenter_institution_id)
    .bind(&s.topic)
    .bind(s.starts_at)
    .bind(s.ends_at)
    .bind(s.capacity)
    .bind(s.created_by)
    .bind(now)
    .fetch_one(pool)
    .await?)
}

/// One session with its counts.
pub async fn session(pool: &Pool, id: i64) -> Result<Option<TeachingSession>, StoreError> {
    let row = sqlx::query_as::<Db, SessionRow>(&format!("{SESSION} where s.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(Into::into))
}

/// Sessions presented by any of `institutions` (comma-framed ids, or all when `None`)
/// starting in `[from, to)`.
pub async fn sessions(
    pool: &Pool,
    institutions: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<TeachingSession>, StoreError> {
    let rows = sqlx::query_as::<Db, SessionRow>(&format!(
        "{SESSION} where ($1 is null or $1 like '%,' || cast(s.presenter_institution_id as text) || ',%')
           and s.starts_at >= $2 and s.starts_at < $3 order by s.starts_at, s.id"
    ))
    .bind(institutions)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Writes the session row to itself unless it was cancelled, which serialises the
/// session's enrolments, withdrawals and changes on both backends (a row lock on
/// PostgreSQL, the write lock on SQLite). False when it was cancelled (or is not there).
async fn lock_open_session(
    tx: &mut sqlx::Transaction<'_, Db>,
    id: i64,
) -> Result<bool, StoreError> {
    let locked = sqlx::query::<Db>(
        "update teaching_session set capacity = capacity where id = $1 and cancelled_at is null",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(locked.rows_affected() == 1)
}

/// Gives the places a session has free to the first on its waiting list, in order of
/// asking.
async fn promote_waiting(
    tx: &mut sqlx::Transaction<'_, Db>,
    session_id: i64,
) -> Result<(), StoreError> {
    let free = sqlx::query_scalar::<Db, i64>(
        "select cast((select capacity from teaching_session where id = $1)
                - (select count(*) from enrolment where session_id = $1 and status = 'enrolled') as bigint)",
    )
    .bind(session_id)
    .fetch_one(&mut **tx)
    .await?;
    if free > 0 {
        sqlx::query::<Db>(
            "update enrolment set status = 'enrolled' where id in (
                 select id from enrolment where session_id = $1 and status = 'waiting'
                 order by created_at, id limit $2)",
        )
        .bind(session_id)
        .bind(free)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Enrols a trainee: a place while there is one, otherwise the waiting list; refused as
/// stale when the session was cancelled.
pub async fn enrol(
    pool: &Pool,
    session_id: i64,
    user_id: i64,
    institution_id: i64,
    now: DateTime<Utc>,
) -> Result<EnrolmentStatus, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    if !lock_open_session(&mut tx, session_id).await? {
        return Err(StoreError::Stale("the session was cancelled".into()));
    }
    let existing = sqlx::query_scalar::<Db, String>(
        "select status from enrolment where session_id = $1 and user_id = $2",
    )
    .bind(session_id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    if existing.as_deref().is_some_and(|s| s != "withdrawn") {
        return Err(StoreError::Conflict("an enrolment of this trainee".into()));
    }
    let free = sqlx::query_scalar::<Db, bool>(
        "select (select count(*) from enrolment where session_id = $1 and status = 'enrolled')
                < (select capacity from teaching_session where id = $1)",
    )
    .bind(session_id)
    .fetch_one(&mut *tx)
    .await?;
    let status = if free {
        EnrolmentStatus::Enrolled
    } else {
        EnrolmentStatus::Waiting
    };
    sqlx::query::<Db>(
        "insert into enrolment (session_id, user_id, institution_id, status, created_at) values ($1, $2, $3, $4, $5)
         on conflict (session_id, user_id) do update set status = excluded.status, created_at = excluded.created_at",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(institution_id)
    .bind(status.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(status)
}

/// Withdraws a trainee; the first on the waiting list takes a freed place, unless the
/// session was cancelled.
pub async fn withdraw(pool: &Pool, session_id: i64, user_id: i64) -> Result<bool, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let open = lock_open_session(&mut tx, session_id).await?;
    let left = sqlx::query::<Db>(
        "update enrolment set status = 'withdrawn' where session_id = $1 and user_id = $2 and status <> 'withdrawn'",
    )
    .bind(session_id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    if open {
        promote_waiting(&mut tx, session_id).await?;
    }
    tx.commit().await?;
    Ok(left.rows_affected() == 1)
}

/// Changes a session that is not cancelled: more places go to the waiting list; fewer
/// than the trainees holding one are refused.
pub async fn change_session(
    pool: &Pool,
    id: i64,
    c: &TeachingChange,
) -> Result<TeachingChanged, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    if !lock_open_session(&mut tx, id).await? {
        return Ok(TeachingChanged::Cancelled);
    }
    let enrolled = sqlx::query_scalar::<Db, i64>(
        "select count(*) from enrolment where session_id = $1 and status = 'enrolled'",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if enrolled > i64::from(c.capacity) {
        return Ok(TeachingChanged::PlacesTaken(enrolled));
    }
    sqlx::query::<Db>(
        "update teaching_session set presenter_clinician_id = $2, topic = $3, starts_at = $4, ends_at = $5,
             capacity = $6 where id = $1",
    )
    .bind(id)
    .bind(c.presenter_clinician_id)
    .bind(&c.topic)
    .bind(c.starts_at)
    .bind(c.ends_at)
    .bind(c.capacity)
    .execute(&mut *tx)
    .await?;
    promote_waiting(&mut tx, id).await?;
    tx.commit().await?;
    Ok(TeachingChanged::Done)
}

/// Cancels a session that is not cancelled yet, keeping who, when and why; false when
/// it was.
pub async fn cancel_session(
    pool: &Pool,
    id: i64,
    by: i64,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query::<Db>(
        "update teaching_session set cancelled_at = $2, cancelled_by = $3, cancel_reason = $4
         where id = $1 and cancelled_at is null",
    )
    .bind(id)
    .bind(at)
    .bind(by)
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(sqlx::FromRow)]
struct EnrolmentRow {
    session_id: i64,
    user_id: i64,
    institution_id: i64,
    status: String,
    created_at: DateTime<Utc>,
}

/// A session's enrolments, in order of asking.
pub async fn enrolments(
    pool: &Pool,
    session_id: Option<i64>,
    user_id: Option<i64>,
) -> Result<Vec<Enrolment>, StoreError> {
    let rows = sqlx::query_as::<Db, EnrolmentRow>(
        "select session_id, user_id, institution_id, status, created_at from enrolment
         where ($1 is null or session_id = $1) and ($2 is null or user_id = $2)
         order by created_at, id",
    )
    .bind(session_id)
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Enrolment {
                status: r.status.parse().map_err(|e| {
                    StoreError::Corrupt(format!("enrolment in session {}: {e}", r.session_id))
                })?,
                session_id: r.session_id,
                user_id: r.user_id,
                institution_id: r.institution_id,
                created_at: r.created_at,
            })
        })
        .collect()
}

/// Records a stretch of presence.
pub async fn record_attendance(
    pool: &Pool,
    a: &Attendance,
    recorded_by: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query::<Db>(
        "insert into attendance (session_id, user_id, joined_at, left_at, recorded_by) values ($1, $2, $3, $4, $5)",
    )
    .bind(a.session_id)
    .bind(a.user_id)
    .bind(a.joined_at)
    .bind(a.left_at)
    .bind(recorded_by)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct AttendanceRow {
    session_id: i64,
    user_id: i64,
    joined_at: DateTime<Utc>,
    left_at: Option<DateTime<Utc>>,
    received_seconds: Option<i64>,
}

/// Attendance of one user, or of one session.
pub async fn attendance(
    pool: &Pool,
    user_id: Option<i64>,
    session_id: Option<i64>,
) -> Result<Vec<Attendance>, StoreError> {
    let rows = sqlx::query_as::<Db, AttendanceRow>(
        "select session_id, user_id, joined_at, left_at, received_seconds from attendance
         where ($1 is null or user_id = $1) and ($2 is null or session_id = $2) order by joined_at, id",
    )
    .bind(user_id)
    .bind(session_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Attendance {
            session_id: r.session_id,
            user_id: r.user_id,
            joined_at: r.joined_at,
            left_at: r.left_at,
            received_seconds: r.received_seconds,
        })
        .collect())
}

/// Records an on-site visit.
pub async fn add_visit(
    pool: &Pool,
    v: &Visit,
    by: i64,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar::<Db, i64>(
        "insert into visit (village_id, visit_date, team_id, clinician_id, services, notes, recorded_by, recorded_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
    )
    .bind(v.village_id)
    .bind(v.visit_date)
    .bind(v.team_id)
    .bind(v.clinician_id)
    .bind(v.services.to_stored())
    .bind(&v.notes)
    .bind(by)
    .bind(now)
    .fetch_one(pool)
    .await?)
}

#[derive(sqlx::FromRow)]
struct VisitRow {
    id: i64,
    village_id: i64,
    visit_date: NaiveDate,
    team_id: Option<i64>,
    clinician_id: Option<i64>,
    services: String,
    notes: Option<String>,
}

/// Visits to any of `villages` (comma-framed ids) between two days.
pub async fn visits(
    pool: &Pool,
    villages: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Visit>, StoreError> {
    let rows = sqlx::query_as::<Db, VisitRow>(
        "select id, village_id, visit_date, team_id, clinician_id, services, notes from visit
         where $1 like '%,' || cast(village_id as text) || ',%' and visit_date >= $2 and visit_date <= $3
         order by visit_date, id",
    )
    .bind(villages)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    visits_of(rows)
}

/// Visits between two days made by the teams and clinicians of `institution`, or made
/// to it.
pub async fn visits_involving(
    pool: &Pool,
    institution: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Visit>, StoreError> {
    let rows = sqlx::query_as::<Db, VisitRow>(
        "select v.id, v.village_id, v.visit_date, v.team_id, v.clinician_id, v.services, v.notes from visit v
         left join team t on t.id = v.team_id left join clinician c on c.id = v.clinician_id
         where (v.village_id = $1 or t.institution_id = $1 or c.institution_id = $1)
           and v.visit_date >= $2 and v.visit_date <= $3
         order by v.visit_date, v.id",
    )
    .bind(institution)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    visits_of(rows)
}

fn visits_of(rows: Vec<VisitRow>) -> Result<Vec<Visit>, StoreError> {
    rows.into_iter()
        .map(|r| {
            Ok(Visit {
                id: r.id,
                village_id: r.village_id,
                visit_date: r.visit_date,
                team_id: r.team_id,
                clinician_id: r.clinician_id,
                services: crate::domain::Services::parse(&r.services)
                    .map_err(|e| StoreError::Corrupt(format!("visit {}: {e}", r.id)))?,
                notes: r.notes,
            })
        })
        .collect()
}
