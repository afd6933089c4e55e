//! The operations on teaching sessions, with who may do each: the presenting institution's
//! coordinators (or an administrator) organise, trainees and clinicians of paired
//! institutions enrol, and a trainee's hours are theirs and their coordinators' to see.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::super::slots::china;
use super::{
    Attendance, AttendanceSink, Enrolment, EnrolmentStatus, TeachingSession, attended_hours,
};
use crate::domain::{Role, Service, User};
use crate::registry::supporter_chain;
use crate::rules::{Error, Rule};
use crate::store::{NewTeachingSession, Store};

/// Whether trainees of `institution_id` may enrol in a session of
/// `presenter_institution_id` on `at`: the presenter's institution must be in the
/// chain of those supporting it for teaching.
pub async fn paired_for_teaching(
    store: &Store,
    institution_id: i64,
    presenter_institution_id: i64,
    at: DateTime<Utc>,
) -> Result<bool, Error> {
    let date = at.with_timezone(&china()).date_naive();
    let chain = supporter_chain(store, institution_id, Service::Teaching, date).await?;
    Ok(chain
        .chain
        .iter()
        .any(|l| l.institution_id == presenter_institution_id))
}

/// Refuses unless the caller runs sessions of `institution_id`: an administrator or
/// one of its coordinators.
pub fn require_organiser(caller: &User, institution_id: i64) -> Result<(), Error> {
    if caller.manages(institution_id) {
        Ok(())
    } else {
        Err(Error::forbidden(
            "only the presenting institution's coordinators or an administrator",
        ))
    }
}

/// Enrols the caller, a trainee or clinician of a paired institution.
pub async fn enrol(
    store: &Store,
    caller: &User,
    session_id: i64,
) -> Result<EnrolmentStatus, Error> {
    if !caller.is(Role::Trainee) && !caller.is(Role::Clinician) {
        return Err(Error::forbidden(
            "trainees and clinicians enrol in teaching sessions",
        ));
    }
    let s = store
        .teaching_session(session_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("teaching session {session_id}")))?;
    if s.cancelled_at.is_some() {
        return Err(cancelled());
    }
    if s.starts_at <= Utc::now() {
        return Err(Error::refused(
            Rule::SessionStarted,
            None,
            "the session has begun",
        ));
    }
    if !paired_for_teaching(
        store,
        caller.institution_id,
        s.presenter_institution_id,
        s.starts_at,
    )
    .await?
    {
        return Err(Error::refused(
            Rule::NotPairedForTeaching,
            None,
            "enrolment is open to trainees of institutions paired with the presenter's for teaching",
        ));
    }
    store
        .enrol(session_id, caller.id, caller.institution_id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                Error::Conflict("you are enrolled or waiting already".into())
            }
            crate::store::StoreError::Stale(_) => cancelled(),
            e => e.into(),
        })
}

/// The refusal of what a cancelled session no longer takes.
fn cancelled() -> Error {
    Error::refused(
        Rule::SessionCancelled,
        None,
        "the session was cancelled; its organisers give the reason where it is listed",
    )
}

/// Records attendance from the API or, later, from the signaling layer.
pub struct StoreAttendance<'a>(pub &'a Store);

impl AttendanceSink for StoreAttendance<'_> {
    async fn record(
        &self,
        session_id: i64,
        user_id: i64,
        joined_at: DateTime<Utc>,
        left_at: Option<DateTime<Utc>>,
    ) -> Result<(), Error> {
        if left_at.is_some_and(|l| l < joined_at) {
            return Err(Error::field("left_at", "leaving comes after joining"));
        }
        let enrolled = self
            .0
            .enrolments(session_id)
            .await?
            .iter()
            .any(|e| e.user_id == user_id && e.status == super::EnrolmentStatus::Enrolled);
        if !enrolled {
            return Err(Error::field("user_id", "only enrolled trainees attend"));
        }
        let a = Attendance {
            received_seconds: None,
            session_id,
            user_id,
            joined_at,
            left_at,
        };
        Ok(self.0.record_attendance(&a, None).await?)
    }
}

/// A new session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionInput {
    /// The presenting clinician.
    pub presenter_clinician_id: i64,
    /// Topic.
    pub topic: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Places, 1 to 1000.
    pub capacity: i32,
}

/// A stretch of presence.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttendanceInput {
    /// The trainee.
    pub user_id: i64,
    /// Joined.
    pub joined_at: DateTime<Utc>,
    /// Left.
    pub left_at: Option<DateTime<Utc>>,
}

/// Continuing-education hours of a trainee.
#[derive(Debug, Serialize, ToSchema)]
pub struct Hours {
    /// The trainee.
    pub user_id: i64,
    /// The year.
    pub year: i32,
    /// Hours attended in the year, inside each session's time.
    pub hours: f64,
    /// Per session.
    pub sessions: Vec<SessionHours>,
}

/// Hours in one session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionHours {
    /// The session.
    pub session_id: i64,
    /// Its topic.
    pub topic: String,
    /// Hours attended.
    pub hours: f64,
}

/// One teaching session. Any logged-in user.
pub async fn session(store: &Store, id: i64) -> Result<TeachingSession, Error> {
    store
        .teaching_session(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("teaching session {id}")))
}

/// The catalogue from `from` (now when `None`) to `to` (90 days later when `None`), of
/// every presenting institution or of one; cancelled sessions are listed as cancelled.
pub async fn sessions(
    store: &Store,
    institution_id: Option<i64>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<TeachingSession>, Error> {
    let from = from.unwrap_or_else(|| store.now());
    let to = to.unwrap_or(from + TimeDelta::days(90));
    let institutions = institution_id.map(|id| format!(",{id},"));
    Ok(store
        .teaching_sessions(institutions.as_deref(), from, to)
        .await?)
}

/// The checked details of a session: the topic trimmed, given; the end after the start;
/// 1 to 1000 places.
pub(super) fn checked_topic(
    topic: &str,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    capacity: i32,
) -> Result<String, Error> {
    if topic.trim().is_empty() {
        return Err(Error::field("topic", "a topic is required"));
    }
    if ends_at <= starts_at {
        return Err(Error::field("ends_at", "the end comes after the start"));
    }
    if !(1..=1000).contains(&capacity) {
        return Err(Error::field("capacity", "1 to 1000 places"));
    }
    Ok(topic.trim().to_owned())
}

/// Schedules a teaching session: the presenter's unit's coordinators or an administrator.
pub async fn create_session(
    store: &Store,
    by: &User,
    input: SessionInput,
) -> Result<TeachingSession, Error> {
    let presenter = store
        .clinician(input.presenter_clinician_id)
        .await?
        .ok_or_else(|| Error::field("presenter_clinician_id", "no such clinician"))?;
    require_organiser(by, presenter.institution_id)?;
    let topic = checked_topic(&input.topic, input.starts_at, input.ends_at, input.capacity)?;
    let id = store
        .create_teaching_session(&NewTeachingSession {
            presenter_clinician_id: presenter.id,
            presenter_institution_id: presenter.institution_id,
            topic,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            capacity: input.capacity,
            created_by: by.id,
        })
        .await?;
    session(store, id).await
}

/// Withdraws `by` from session `id`; the first on the waiting list takes the place.
pub async fn withdraw(store: &Store, by: &User, id: i64) -> Result<(), Error> {
    session(store, id).await?;
    if store.withdraw(id, by.id).await? {
        Ok(())
    } else {
        Err(Error::NotFound("your enrolment".into()))
    }
}

/// The enrolments of session `id`, for its organisers.
pub async fn enrolments(store: &Store, by: &User, id: i64) -> Result<Vec<Enrolment>, Error> {
    let s = session(store, id).await?;
    require_organiser(by, s.presenter_institution_id)?;
    Ok(store.enrolments(id).await?)
}

/// Records a stretch of a trainee's presence in session `id`, for its organisers.
pub async fn record_attendance(
    store: &Store,
    by: &User,
    id: i64,
    a: AttendanceInput,
) -> Result<(), Error> {
    let s = session(store, id).await?;
    require_organiser(by, s.presenter_institution_id)?;
    // Presence is recorded once it happened, never ahead.
    let now = store.now();
    if a.joined_at > now {
        return Err(Error::field("joined_at", "is in the future"));
    }
    if a.left_at.is_some_and(|l| l > now) {
        return Err(Error::field("left_at", "is in the future"));
    }
    StoreAttendance(store)
        .record(id, a.user_id, a.joined_at, a.left_at)
        .await
}

/// The continuing-education hours of trainee `user_id` (`by` when `None`) in `year` (this
/// year in China when `None`): their own, or for their institution's coordinators and
/// administrators.
pub async fn hours(
    store: &Store,
    by: &User,
    user_id: Option<i64>,
    year: Option<i32>,
) -> Result<Hours, Error> {
    let user_id = user_id.unwrap_or(by.id);
    if user_id != by.id {
        let user = store
            .user(user_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {user_id}")))?;
        if !by.manages(user.institution_id) {
            return Err(Error::forbidden(
                "only the trainee, their coordinators or an administrator",
            ));
        }
    }
    let year = year.unwrap_or_else(|| store.now().with_timezone(&china()).year());
    let mut by_session: BTreeMap<i64, Vec<_>> = BTreeMap::new();
    for a in store.attendance(Some(user_id), None).await? {
        by_session
            .entry(a.session_id)
            .or_default()
            .push((a.joined_at, a.left_at));
    }
    let mut sessions = Vec::new();
    for (id, stretches) in by_session {
        let s = session(store, id).await?;
        if s.starts_at.with_timezone(&china()).year() == year {
            sessions.push(SessionHours {
                session_id: id,
                hours: attended_hours(s.starts_at, s.ends_at, &stretches),
                topic: s.topic,
            });
        }
    }
    Ok(Hours {
        user_id,
        year,
        hours: sessions.iter().map(|s| s.hours).sum(),
        sessions,
    })
}
