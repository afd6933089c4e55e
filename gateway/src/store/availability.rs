//! [`Store`] operations: consultants' availability and the slots booked
//! (`sql/availability.rs`).

use chrono::{DateTime, NaiveDate, Utc};

use super::{Store, StoreError, postgres, sqlite};
use crate::booking::{Availability, AvailabilityException};

/// What of a consultant's availability is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removable {
    /// A weekly rule.
    Rule,
    /// An exception.
    Exception,
}

impl Store {
    /// Publishes a weekly availability rule.
    pub async fn add_availability(&self, rule: &Availability, by: i64) -> Result<i64, StoreError> {
        dispatch!(self, availability::add_rule(rule, by, self.now()))
    }

    /// A consultant's weekly rules.
    pub async fn availability(&self, clinician_id: i64) -> Result<Vec<Availability>, StoreError> {
        dispatch!(self, availability::rules(clinician_id))
    }

    /// Records an exception to a consultant's availability.
    pub async fn add_availability_exception(
        &self,
        e: &AvailabilityException,
        by: i64,
    ) -> Result<i64, StoreError> {
        dispatch!(self, availability::add_exception(e, by, self.now()))
    }

    /// A consultant's exceptions between two days.
    pub async fn availability_exceptions(
        &self,
        clinician_id: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<AvailabilityException>, StoreError> {
        dispatch!(self, availability::exceptions(clinician_id, from, to))
    }

    /// Removes a consultant's weekly rule or exception; false when there is none.
    pub async fn remove_availability(
        &self,
        what: Removable,
        clinician_id: i64,
        id: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, availability::remove(what, clinician_id, id))
    }

    /// Start instants of a consultant's booked slots in `[from, to)`.
    pub async fn booked_slots(
        &self,
        clinician_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        dispatch!(self, availability::booked(clinician_id, from, to))
    }
}
