//! [`Store`] operations: remote ward rounds and their patients (`sql/rounds.rs`).

use chrono::{DateTime, Utc};

use super::{Store, StoreError, postgres, sqlite};
use crate::booking::{RoundPatient, WardRound};

impl Store {
    /// Creates a weekly series of ward rounds in one transaction.
    pub async fn create_ward_rounds(
        &self,
        rounds: &[WardRound],
        by: i64,
    ) -> Result<Vec<i64>, StoreError> {
        dispatch!(self, rounds::create_series(rounds, by, self.now()))
    }

    /// One ward round.
    pub async fn ward_round(&self, id: i64) -> Result<Option<WardRound>, StoreError> {
        dispatch!(self, rounds::round_by_id(id))
    }

    /// Ward rounds of some supported institutions or teams (comma-framed ids) in a range.
    pub async fn ward_rounds(
        &self,
        institutions: &str,
        teams: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<WardRound>, StoreError> {
        dispatch!(self, rounds::rounds(institutions, teams, from, to))
    }

    /// Moves a round that is not cancelled; false when it was.
    pub async fn move_ward_round(
        &self,
        id: i64,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, rounds::move_round(id, starts_at, ends_at))
    }

    /// Cancels round `id` and, with `series` (its series and start), the later rounds of
    /// the series, unless cancelled or over; the ids cancelled, none when round `id` was
    /// not.
    pub async fn cancel_ward_rounds(
        &self,
        id: i64,
        series: Option<(i64, DateTime<Utc>)>,
        by: i64,
        reason: &str,
    ) -> Result<Vec<i64>, StoreError> {
        dispatch!(self, rounds::cancel(id, series, by, reason, self.now()))
    }

    /// Adds a patient to a round.
    pub async fn add_round_patient(
        &self,
        round_id: i64,
        bed: &str,
        name: &str,
        question: &str,
    ) -> Result<i64, StoreError> {
        dispatch!(self, rounds::add_patient(round_id, bed, name, question))
    }

    /// A round's patients.
    pub async fn round_patients(&self, round_id: i64) -> Result<Vec<RoundPatient>, StoreError> {
        dispatch!(self, rounds::patients(round_id))
    }

    /// Writes the team's note on a patient.
    pub async fn note_round_patient(
        &self,
        round_id: i64,
        patient_id: i64,
        note: &str,
        by: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(
            self,
            rounds::note(round_id, patient_id, note, by, self.now())
        )
    }
}
