//! [`Store`] operations: teaching sessions, enrolment, attendance and on-site visits
//! (`sql/teaching.rs`).

use chrono::{DateTime, NaiveDate, Utc};

use super::{Store, StoreError, postgres, sqlite};
use crate::booking::{Attendance, Enrolment, EnrolmentStatus, TeachingSession};
use crate::domain::Services;

/// A new teaching session.
#[derive(Debug, Clone)]
pub struct NewTeachingSession {
    /// Presenter.
    pub presenter_clinician_id: i64,
    /// Presenter's institution.
    pub presenter_institution_id: i64,
    /// Topic.
    pub topic: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Places.
    pub capacity: i32,
    /// The creating user.
    pub created_by: i64,
}

/// A teaching session as it is to be after a change.
#[derive(Debug, Clone)]
pub struct TeachingChange {
    /// Presenter.
    pub presenter_clinician_id: i64,
    /// Topic.
    pub topic: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Places.
    pub capacity: i32,
}

/// What became of a change to a teaching session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeachingChanged {
    /// Changed; places added went to the waiting list.
    Done,
    /// Not changed: the session was cancelled.
    Cancelled,
    /// Not changed: this many trainees hold places, more than the places asked for.
    PlacesTaken(i64),
}

/// An on-site visit to a village.
#[derive(Debug, Clone)]
pub struct Visit {
    /// Visit id.
    pub id: i64,
    /// The village station.
    pub village_id: i64,
    /// The day (China).
    pub visit_date: NaiveDate,
    /// The visiting team.
    pub team_id: Option<i64>,
    /// Or the visiting clinician.
    pub clinician_id: Option<i64>,
    /// Services given.
    pub services: Services,
    /// Notes, without patient data.
    pub notes: Option<String>,
}

impl Store {
    /// Creates a teaching session.
    pub async fn create_teaching_session(&self, s: &NewTeachingSession) -> Result<i64, StoreError> {
        dispatch!(self, teaching::create_session(s, self.now()))
    }

    /// One teaching session.
    pub async fn teaching_session(&self, id: i64) -> Result<Option<TeachingSession>, StoreError> {
        dispatch!(self, teaching::session(id))
    }

    /// Teaching sessions of some presenting institutions (comma-framed ids) or all.
    pub async fn teaching_sessions(
        &self,
        institutions: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<TeachingSession>, StoreError> {
        dispatch!(self, teaching::sessions(institutions, from, to))
    }

    /// Changes a session that is not cancelled, in one transaction.
    pub async fn change_teaching_session(
        &self,
        id: i64,
        change: &TeachingChange,
    ) -> Result<TeachingChanged, StoreError> {
        dispatch!(self, teaching::change_session(id, change))
    }

    /// Cancels a session with the reason; false when it was cancelled already.
    pub async fn cancel_teaching_session(
        &self,
        id: i64,
        by: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self, teaching::cancel_session(id, by, reason, self.now()))
    }

    /// Enrols a trainee; returns `enrolled` or `waiting`, or [`StoreError::Stale`] when
    /// the session was cancelled.
    pub async fn enrol(
        &self,
        session_id: i64,
        user_id: i64,
        institution_id: i64,
    ) -> Result<EnrolmentStatus, StoreError> {
        dispatch!(
            self,
            teaching::enrol(session_id, user_id, institution_id, self.now())
        )
    }

    /// Withdraws a trainee and promotes the first waiting one.
    pub async fn withdraw(&self, session_id: i64, user_id: i64) -> Result<bool, StoreError> {
        dispatch!(self, teaching::withdraw(session_id, user_id))
    }

    /// A session's enrolments.
    pub async fn enrolments(&self, session_id: i64) -> Result<Vec<Enrolment>, StoreError> {
        dispatch!(self, teaching::enrolments(Some(session_id), None))
    }

    /// A trainee's enrolments, in every session.
    pub async fn enrolments_of(&self, user_id: i64) -> Result<Vec<Enrolment>, StoreError> {
        dispatch!(self, teaching::enrolments(None, Some(user_id)))
    }

    /// Records a stretch of attendance.
    pub async fn record_attendance(
        &self,
        a: &Attendance,
        by: Option<i64>,
    ) -> Result<(), StoreError> {
        dispatch!(self, teaching::record_attendance(a, by))
    }

    /// Attendance of a user or of a session.
    pub async fn attendance(
        &self,
        user_id: Option<i64>,
        session_id: Option<i64>,
    ) -> Result<Vec<Attendance>, StoreError> {
        dispatch!(self, teaching::attendance(user_id, session_id))
    }

    /// Records an on-site visit.
    pub async fn add_visit(&self, v: &Visit, by: i64) -> Result<i64, StoreError> {
        dispatch!(self, teaching::add_visit(v, by, self.now()))
    }

    /// Visits to some villages (comma-framed ids) between two days.
    pub async fn visits(
        &self,
        villages: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Visit>, StoreError> {
        dispatch!(self, teaching::visits(villages, from, to))
    }

    /// Visits between two days made by the teams and clinicians of an institution, or
    /// made to it.
    pub async fn visits_involving(
        &self,
        institution: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Visit>, StoreError> {
        dispatch!(self, teaching::visits_involving(institution, from, to))
    }
}
