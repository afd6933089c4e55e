//! Retention periods and the purge. Compiled once per backend (see `store/mod.rs`); the
//! periods, when each record's ends and the triggers refusing earlier deletes are in
//! migration 0026.

use super::{Db, Pool};
use crate::store::StoreError;
use crate::store::retention::{Purged, Retained};

/// Replaces the years of each kind of record.
pub async fn sync(pool: &Pool, periods: &[(&str, u32)]) -> Result<(), StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    for (kind, years) in periods {
        sqlx::query::<Db>(
            "insert into retention_policy (kind, years) values ($1, $2)
             on conflict (kind) do update set years = excluded.years",
        )
        .bind(*kind)
        .bind(i64::from(*years))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The view telling when records of `kind` end their period.
fn view(kind: Retained) -> &'static str {
    match kind {
        Retained::Request => "request_retention",
        Retained::WardRound => "ward_round_retention",
        Retained::TeachingSession => "teaching_retention",
    }
}

/// The records whose retention has ended.
pub async fn ended(pool: &Pool) -> Result<Vec<(Retained, i64)>, StoreError> {
    let mut due = Vec::new();
    for kind in Retained::ALL {
        let ids = sqlx::query_scalar::<Db, i64>(&format!(
            "select id from {} where ended order by id",
            view(*kind)
        ))
        .fetch_all(pool)
        .await?;
        due.extend(ids.into_iter().map(|id| (*kind, id)));
    }
    Ok(due)
}

/// Deletes a record and what is kept with it, dependants first, if its retention has
/// ended; the triggers check each row again.
pub async fn purge(pool: &Pool, kind: Retained, id: i64) -> Result<Option<Purged>, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let ended = sqlx::query_scalar::<Db, i64>(&format!(
        "select count(*) from {} where id = $1 and ended",
        view(kind)
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if ended == 0 {
        return Ok(None);
    }
    let mut purged = Purged::default();
    let room = kind.room(id);
    for table in ["room_message", "room_presence"] {
        purged.rows += sqlx::query::<Db>(&format!("delete from {table} where room = $1"))
            .bind(&room)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    let (dependants, parent): (&[(&str, &str)], &str) = match kind {
        Retained::Request => {
            let content = sqlx::query_scalar::<Db, String>(
                "select content from consult_request where id = $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            purged.patient = serde_json::from_str::<serde_json::Value>(&content)
                .ok()
                .and_then(|c| c["patient"]["name"].as_str().map(str::to_owned));
            purged.files = sqlx::query_scalar::<Db, String>(
                "select sha256 from attachment where request_id = $1 order by id",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            (
                &[
                    ("notification", "request_id"),
                    ("slot_booking", "request_id"),
                    ("attachment", "request_id"),
                    ("opinion", "request_id"),
                    ("request_event", "request_id"),
                ],
                "consult_request",
            )
        }
        Retained::WardRound => {
            let names = sqlx::query_scalar::<Db, String>(
                "select patient_name from ward_round_patient where round_id = $1 order by id",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            purged.patient = (!names.is_empty()).then(|| names.join("、"));
            (&[("ward_round_patient", "round_id")], "ward_round")
        }
        Retained::TeachingSession => (
            &[("attendance", "session_id"), ("enrolment", "session_id")],
            "teaching_session",
        ),
    };
    for (table, column) in dependants {
        purged.rows += sqlx::query::<Db>(&format!("delete from {table} where {column} = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    purged.rows += sqlx::query::<Db>(&format!("delete from {parent} where id = $1"))
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    // A file is named by its content: another request may hold the same one.
    let mut unreferenced = Vec::new();
    for sha256 in std::mem::take(&mut purged.files) {
        let held =
            sqlx::query_scalar::<Db, i64>("select count(*) from attachment where sha256 = $1")
                .bind(&sha256)
                .fetch_one(&mut *tx)
                .await?;
        if held == 0 && !unreferenced.contains(&sha256) {
            unreferenced.push(sha256);
        }
    }
    purged.files = unreferenced;
    tx.commit().await?;
    Ok(Some(purged))
}
