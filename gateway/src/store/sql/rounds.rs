//! Remote ward rounds and their patient lists. Compiled once per backend (see
//! `store/mod.rs`).

use chrono::{DateTime, Utc};

use super::{Db, Pool};
use crate::booking::{RoundPatient, WardRound};
use crate::store::StoreError;

#[derive(sqlx::FromRow)]
struct RoundRow {
    id: i64,
    team_id: i64,
    supported_institution_id: i64,
    ward: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    series_id: Option<i64>,
    ward_team_id: Option<i64>,
    cancelled_at: Option<DateTime<Utc>>,
    cancel_reason: Option<String>,
}

fn round(r: RoundRow) -> WardRound {
    WardRound {
        id: r.id,
        team_id: r.team_id,
        supported_institution_id: r.supported_institution_id,
        ward: r.ward,
        starts_at: r.starts_at,
        ends_at: r.ends_at,
        series_id: r.series_id,
        ward_team_id: r.ward_team_id,
        cancelled_at: r.cancelled_at,
        cancel_reason: r.cancel_reason,
    }
}

const ROUND: &str = "select id, team_id, supported_institution_id, ward, starts_at, ends_at, series_id, ward_team_id,
    cancelled_at, cancel_reason from ward_round";

/// Creates a series of rounds in one transaction; the first one's id names the series.
pub async fn create_series(
    pool: &Pool,
    rounds: &[WardRound],
    by: i64,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let mut ids = Vec::with_capacity(rounds.len());
    for r in rounds {
        let id = sqlx::query_scalar::<Db, i64>(
            "insert into ward_round (team_id, supported_institution_id, ward, starts_at, ends_at, series_id, created_by, created_at, ward_team_id)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id",
        )
        .bind(r.team_id)
        .bind(r.supported_institution_id)
        .bind(&r.ward)
        .bind(r.starts_at)
        .bind(r.ends_at)
        .bind(ids.first().copied())
        .bind(by)
        .bind(now)
        .bind(r.ward_team_id)
        .fetch_one(&mut *tx)
        .await?;
        ids.push(id);
    }
    if let Some(first) = ids.first() {
        sqlx::query::<Db>("update ward_round set series_id = $1 where id = $1")
            .bind(first)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(ids)
}

/// One round.
pub async fn round_by_id(pool: &Pool, id: i64) -> Result<Option<WardRound>, StoreError> {
    Ok(
        sqlx::query_as::<Db, RoundRow>(&format!("{ROUND} where id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?
            .map(round),
    )
}

/// Rounds of the supported institutions (comma-framed ids) or of the teams (comma-framed
/// ids) in `[from, to)`.
pub async fn rounds(
    pool: &Pool,
    institutions: &str,
    teams: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<WardRound>, StoreError> {
    let rows = sqlx::query_as::<Db, RoundRow>(&format!(
        "{ROUND} where ($1 like '%,' || cast(supported_institution_id as text) || ',%'
                        or $2 like '%,' || cast(team_id as text) || ',%')
           and starts_at >= $3 and starts_at < $4 order by starts_at, id"
    ))
    .bind(institutions)
    .bind(teams)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(round).collect())
}

/// Moves a round that is not cancelled; false when it was.
pub async fn move_round(
    pool: &Pool,
    id: i64,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query::<Db>(
        "update ward_round set starts_at = $2, ends_at = $3 where id = $1 and cancelled_at is null",
    )
    .bind(id)
    .bind(starts_at)
    .bind(ends_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Cancels round `id` unless it is cancelled or over at `now` and, with `series` (its
/// series and start), the rounds of the series from that start on that are neither, in
/// one transaction; the ids cancelled, none when round `id` was not.
pub async fn cancel(
    pool: &Pool,
    id: i64,
    series: Option<(i64, DateTime<Utc>)>,
    by: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    const CANCEL: &str =
        "update ward_round set cancelled_at = $1, cancelled_by = $2, cancel_reason = $3
         where cancelled_at is null and ends_at > $1";
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let mut ids = sqlx::query_scalar::<Db, i64>(&format!("{CANCEL} and id = $4 returning id"))
        .bind(now)
        .bind(by)
        .bind(reason)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
    if ids.is_empty() {
        return Ok(ids);
    }
    if let Some((series_id, from)) = series {
        ids.extend(
            sqlx::query_scalar::<Db, i64>(&format!(
                "{CANCEL} and series_id = $4 and starts_at >= $5 returning id"
            ))
            .bind(now)
            .bind(by)
            .bind(reason)
            .bind(series_id)
            .bind(from)
            .fetch_all(&mut *tx)
            .await?,
        );
    }
    tx.commit().await?;
    Ok(ids)
}

#[derive(sqlx::FromRow)]
struct PatientRow {
    id: i64,
    round_id: i64,
    bed: String,
    patient_name: String,
    question: String,
    note: Option<String>,
    note_by: Option<i64>,
    note_at: Option<DateTime<Utc>>,
}

/// Adds a patient to a round's list.
pub async fn add_patient(
    pool: &Pool,
    round_id: i64,
    bed: &str,
    name: &str,
    question: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar::<Db, i64>(
        "insert into ward_round_patient (round_id, bed, patient_name, question) values ($1, $2, $3, $4) returning id",
    )
    .bind(round_id)
    .bind(bed)
    .bind(name)
    .bind(question)
    .fetch_one(pool)
    .await?)
}

/// A round's patients.
pub async fn patients(pool: &Pool, round_id: i64) -> Result<Vec<RoundPatient>, StoreError> {
    let rows = sqlx::query_as::<Db, PatientRow>(
        "select id, round_id, bed, patient_name, question, note, note_by, note_at from ward_round_patient
         where round_id = $1 order by id",
    )
    .bind(round_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RoundPatient {
            id: r.id,
            round_id: r.round_id,
            bed: r.bed,
            patient_name: r.patient_name,
            question: r.question,
            note: r.note,
            note_by: r.note_by,
            note_at: r.note_at,
        })
        .collect())
}

/// Writes the note on one patient of a round.
pub async fn note(
    pool: &Pool,
    round_id: i64,
    patient_id: i64,
    note: &str,
    by: i64,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = sqlx::query::<Db>(
        "update ward_round_patient set note = $3, note_by = $4, note_at = $5 where id = $2 and round_id = $1",
    )
    .bind(round_id)
    .bind(patient_id)
    .bind(note)
    .bind(by)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
