//! Remote continuing education (远程继续教育, `004`): teaching sessions, enrolment of the
//! trainees of paired institutions with a waiting list, attendance and hours.
//!
//! - `service`: scheduling, enrolment, attendance and hours, with who may do each.
//! - `changes`: changing and cancelling a session.

mod changes;
mod service;

pub use changes::*;
pub use service::*;

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
    /// When its organisers cancelled it: a cancelled session takes no enrolment and its
    /// room does not open; its enrolments stay as they were.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why, in the organisers' words.
    pub cancel_reason: Option<String>,
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
