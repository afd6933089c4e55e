//! [`Store`] operations: the facts reports are computed from (`sql/reports.rs`).

use chrono::{DateTime, Utc};

use super::{Store, StoreError, postgres, sqlite};
use crate::booking::RequestState;

impl Store {
    /// Requests of a pairing submitted in a range, by state.
    pub async fn report_states(
        &self,
        pairing_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        dispatch!(self, reports::states(pairing_id, from, to))
    }

    /// Steps of a pairing's requests submitted in a range.
    pub async fn report_steps(
        &self,
        pairing_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(i64, RequestState, DateTime<Utc>)>, StoreError> {
        dispatch!(self, reports::steps(pairing_id, from, to))
    }

    /// Sessions held in a range for requests of some institutions (comma-framed ids).
    pub async fn report_sessions_held(
        &self,
        institutions: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(i64, DateTime<Utc>)>, StoreError> {
        dispatch!(self, reports::sessions_held(institutions, from, to))
    }
}
