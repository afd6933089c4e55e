//! Remote continuing education (远程继续教育, `004`): teaching sessions, enrolment of the
//! trainees of paired institutions with a waiting list, attendance and hours.

use crate::domain::named_enum;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// A teaching session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TeachingSession {
    /// Session id.
    pub id: i64,
    /// The presenting clinician.
    pub presenter_clinician_id: i64,
    /// Their institution; trainees of institutions it supports may enrol.
    pub presenter_institution_id: i64,
    /// Topic.
    pub topic: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Places.
    pub capacity: i32,
    /// Trainees holding a place.
    pub enrolled: i64,
    /// Trainees on the waiting list.
    pub waiting: i64,
}

named_enum! {
    /// Where a trainee's enrolment stands.
    EnrolmentStatus {
        /// A place in the session.
        Enrolled = "enrolled",
        /// On the waiting list, first come first served.
        Waiting = "waiting",
        /// Withdrawn by the trainee.
        Withdrawn = "withdrawn",
    }
}

/// A trainee's enrolment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Enrolment {
    /// The session.
    pub session_id: i64,
    /// The trainee.
    pub user_id: i64,
    /// The trainee's institution.
    pub institution_id: i64,
    /// Enrolled, waiting for a place, or withdrawn.
    pub status: EnrolmentStatus,
    /// When they asked.
    pub created_at: DateTime<Utc>,
}

/// One stretch of presence in a session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attendance {
    /// The session.
    pub session_id: i64,
    /// The trainee.
    pub user_id: i64,
    /// Joined.
    pub joined_at: DateTime<Utc>,
    /// Left; open while present.
    pub left_at: Option<DateTime<Utc>>,
    /// Seconds in which media actually reached the trainee during this stretch, as the
    /// forwarding unit counted them; none for stretches recorded by hand or still open.
    pub received_seconds: Option<i64>,
}

/// Where the signaling layer reports who joined and left a teaching room (and, later,
/// consultation rooms). Until signaling exists, the attendance API calls it.
pub trait AttendanceSink: Send + Sync {
    /// `user_id` was present in `session_id` from `joined_at` to `left_at`.
    fn record(
        &self,
        session_id: i64,
        user_id: i64,
        joined_at: DateTime<Utc>,
        left_at: Option<DateTime<Utc>>,
    ) -> impl std::future::Future<Output = Result<(), crate::rules::Error>> + Send;
}

/// Hours of presence inside the session's time, merging overlapping stretches.
pub fn attended_hours(
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
    stretches: &[(DateTime<Utc>, Option<DateTime<Utc>>)],
) -> f64 {
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = stretches
        .iter()
        .map(|(j, l)| ((*j).max(starts), l.unwrap_or(ends).min(ends)))
        .filter(|(j, l)| j < l)
        .collect();
    spans.sort();
    let mut total = 0_i64;
    let mut current: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    for (j, l) in spans {
        current = match current {
            Some((cj, cl)) if j <= cl => Some((cj, cl.max(l))),
            Some((cj, cl)) => {
                total += (cl - cj).num_seconds();
                Some((j, l))
            }
            None => Some((j, l)),
        };
    }
    if let Some((cj, cl)) = current {
        total += (cl - cj).num_seconds();
    }
    total as f64 / 3600.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn hours_count_presence_inside_the_session_once() {
        let s = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let e = s + TimeDelta::hours(2);
        let m = |min: i64| s + TimeDelta::minutes(min);
        // Joined 10 min early, dropped at 30, back at 20 (overlap) until 90, again 100 to the end.
        let stretches = [(m(-10), Some(m(30))), (m(20), Some(m(90))), (m(100), None)];
        assert!((attended_hours(s, e, &stretches) - 110.0 / 60.0).abs() < 1e-9);
        assert_eq!(attended_hours(s, e, &[(m(130), Some(m(140)))]), 0.0);
    }
}

/// The rules around teaching sessions.
pub mod rules {
    use chrono::{DateTime, Utc};

    use super::super::slots::china;
    use super::{Attendance, AttendanceSink};
    use crate::domain::{Role, Service, User};
    use crate::registry::supporter_chain;
    use crate::rules::{Error, Rule};
    use crate::store::Store;

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
        if caller.is(Role::Admin)
            || (caller.is(Role::Coordinator) && caller.institution_id == institution_id)
        {
            Ok(())
        } else {
            Err(Error::forbidden(
                "only the presenting institution's coordinators or an administrator",
            ))
        }
    }

    /// Enrols the caller, a trainee or clinician of a paired institution.
    pub async fn enrol(store: &Store, caller: &User, session_id: i64) -> Result<String, Error> {
        if !caller.is(Role::Trainee) && !caller.is(Role::Clinician) {
            return Err(Error::forbidden(
                "trainees and clinicians enrol in teaching sessions",
            ));
        }
        let s = store
            .teaching_session(session_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("teaching session {session_id}")))?;
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
                e => e.into(),
            })
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
}
