//! The facts reports are computed from. Compiled once per backend (see `store/mod.rs`).

use chrono::{DateTime, Utc};

use super::{Db, Pool};
use crate::booking::RequestState;
use crate::store::StoreError;

/// Requests of a pairing submitted in `[from, to)`, counted by state.
pub async fn states(
    pool: &Pool,
    pairing_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query_as::<Db, (String, i64)>(
        "select state, count(*) from consult_request
         where pairing_id = $1 and submitted_at >= $2 and submitted_at < $3 group by state order by state",
    )
    .bind(pairing_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}

/// Steps of the pairing's requests submitted in `[from, to)`: (request, new state, when).
pub async fn steps(
    pool: &Pool,
    pairing_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(i64, RequestState, DateTime<Utc>)>, StoreError> {
    let rows = sqlx::query_as::<Db, (i64, String, DateTime<Utc>)>(
        "select e.request_id, e.to_state, e.at from request_event e join consult_request r on r.id = e.request_id
         where r.pairing_id = $1 and r.submitted_at >= $2 and r.submitted_at < $3 order by e.id",
    )
    .bind(pairing_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(request, state, at)| {
            let state = RequestState::try_from(state)
                .map_err(|e| StoreError::Corrupt(format!("request {request} has a step to {e}")))?;
            Ok((request, state, at))
        })
        .collect()
}

/// Sessions held (a request entering `in_session`) in `[from, to)` for requests of any of
/// `institutions` (comma-framed ids): (requesting institution, when).
pub async fn sessions_held(
    pool: &Pool,
    institutions: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(i64, DateTime<Utc>)>, StoreError> {
    Ok(sqlx::query_as::<Db, (i64, DateTime<Utc>)>(
        "select r.requester_institution_id, e.at from request_event e join consult_request r on r.id = e.request_id
         where e.to_state = 'in_session' and e.at >= $2 and e.at < $3
           and $1 like '%,' || cast(r.requester_institution_id as text) || ',%'",
    )
    .bind(institutions)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}
