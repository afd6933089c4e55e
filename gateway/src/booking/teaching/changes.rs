//! Changing and cancelling a teaching session, by its organisers (the presenting
//! institution's coordinators, or an administrator) and only while it is not over.
//!
//! A change may give another presenter of the same institution, another topic, time or
//! number of places; places added go to the waiting list in order of asking, and places
//! are never taken from trainees holding them. A cancellation keeps the reason; the
//! enrolments stay as they were, so the trainees see what they had enrolled in and why
//! it will not take place, while the session takes no more enrolment and its room does
//! not open ([`crate::rooms`]).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use super::TeachingSession;
use super::service::{checked_topic, require_organiser, session};
use crate::booking::cancellation::{reason, still_open, to_come};
use crate::domain::User;
use crate::rules::{Error, Rule};
use crate::store::{Store, TeachingChange, TeachingChanged};

/// What changes in a session; what is left out stays as it is.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionChangeInput {
    /// Another presenter, a clinician of the presenting institution.
    pub presenter_clinician_id: Option<i64>,
    /// Topic.
    pub topic: Option<String>,
    /// Start, a time to come when it changes.
    pub starts_at: Option<DateTime<Utc>>,
    /// End.
    pub ends_at: Option<DateTime<Utc>>,
    /// Places, 1 to 1000 and no fewer than the trainees holding one.
    pub capacity: Option<i32>,
}

/// Why a session is cancelled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    /// The reason, shown to the people enrolled; at most 500 characters.
    pub reason: String,
}

/// Changes session `id`; the session as it is after.
pub async fn change_session(
    store: &Store,
    by: &User,
    id: i64,
    input: SessionChangeInput,
) -> Result<TeachingSession, Error> {
    let s = session(store, id).await?;
    require_organiser(by, s.presenter_institution_id)?;
    let now = store.now();
    still_open(s.cancelled_at, s.ends_at, now)?;
    let presenter_clinician_id = match input.presenter_clinician_id {
        None => s.presenter_clinician_id,
        Some(c) => {
            let presenter = store
                .clinician(c)
                .await?
                .ok_or_else(|| Error::field("presenter_clinician_id", "no such clinician"))?;
            if presenter.institution_id != s.presenter_institution_id {
                return Err(Error::field(
                    "presenter_clinician_id",
                    "the presenter works at the presenting institution",
                ));
            }
            presenter.id
        }
    };
    let starts_at = input.starts_at.unwrap_or(s.starts_at);
    if starts_at != s.starts_at {
        to_come("starts_at", starts_at, now)?;
    }
    let ends_at = input.ends_at.unwrap_or(s.ends_at);
    let capacity = input.capacity.unwrap_or(s.capacity);
    let topic = checked_topic(
        input.topic.as_deref().unwrap_or(&s.topic),
        starts_at,
        ends_at,
        capacity,
    )?;
    let change = TeachingChange {
        presenter_clinician_id,
        topic,
        starts_at,
        ends_at,
        capacity,
    };
    match store.change_teaching_session(id, &change).await? {
        TeachingChanged::Done => session(store, id).await,
        TeachingChanged::Cancelled => Err(cancelled_meanwhile()),
        TeachingChanged::PlacesTaken(enrolled) => Err(Error::field(
            "capacity",
            format!("{enrolled} trainees hold places; a session keeps at least that many"),
        )),
    }
}

/// Cancels session `id` with the reason; the session as it is after.
pub async fn cancel_session(
    store: &Store,
    by: &User,
    id: i64,
    input: CancelInput,
) -> Result<TeachingSession, Error> {
    let s = session(store, id).await?;
    require_organiser(by, s.presenter_institution_id)?;
    still_open(s.cancelled_at, s.ends_at, store.now())?;
    let reason = reason(&input.reason)?;
    if !store.cancel_teaching_session(id, by.id, reason).await? {
        return Err(cancelled_meanwhile());
    }
    session(store, id).await
}

fn cancelled_meanwhile() -> Error {
    Error::refused(
        Rule::SessionCancelled,
        None,
        "somebody cancelled the session meanwhile",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::EnrolmentStatus;
    use crate::booking::teaching::{SessionInput, create_session, enrol, withdraw};
    use crate::domain::Supporter;
    use crate::testing::Fixture;
    use chrono::TimeDelta;

    fn invalid_field(e: &Error) -> Option<&str> {
        match e {
            Error::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// A session tomorrow at the tertiary hospital for two trainees, the county's three
    /// trainees enrolled in it (the third waits), and its organiser.
    async fn full_session() -> (Fixture, User, TeachingSession, Vec<User>) {
        let f = Fixture::new().await;
        let tertiary = f.institution("江门市中心医院", "tertiary", "general").await;
        let county = f.institution("台山市人民医院", "county", "general").await;
        f.pairing(Supporter::Institution(tertiary.id), &county, "teaching")
            .await;
        let presenter = f.clinician(&tertiary, "黄教授").await;
        let office = f.user(&tertiary, "coordinator", None).await;
        let starts_at = Utc::now() + TimeDelta::days(1);
        let s = create_session(
            &f.store,
            &office,
            SessionInput {
                presenter_clinician_id: presenter.id,
                topic: "高血压基层规范化管理".into(),
                starts_at,
                ends_at: starts_at + TimeDelta::hours(2),
                capacity: 2,
            },
        )
        .await
        .unwrap();
        let mut trainees = Vec::new();
        for _ in 0..3 {
            let t = f.user(&county, "trainee", None).await;
            enrol(&f.store, &t, s.id).await.unwrap();
            trainees.push(t);
        }
        (f, office, s, trainees)
    }

    async fn statuses(f: &Fixture, id: i64) -> Vec<EnrolmentStatus> {
        f.store
            .enrolments(id)
            .await
            .unwrap()
            .iter()
            .map(|e| e.status)
            .collect()
    }

    #[tokio::test]
    async fn places_added_go_to_the_waiting_list_and_places_held_are_kept() {
        let (f, office, s, _) = full_session().await;
        use EnrolmentStatus::*;
        assert_eq!(statuses(&f, s.id).await, [Enrolled, Enrolled, Waiting]);
        let fewer = SessionChangeInput {
            capacity: Some(1),
            ..SessionChangeInput::default()
        };
        let e = change_session(&f.store, &office, s.id, fewer)
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&e), Some("capacity"), "{e}");
        let later = s.starts_at + TimeDelta::days(7);
        let more = SessionChangeInput {
            capacity: Some(3),
            starts_at: Some(later),
            ends_at: Some(later + TimeDelta::hours(3)),
            topic: Some("  高血压与糖尿病基层管理 ".into()),
            ..SessionChangeInput::default()
        };
        let changed = change_session(&f.store, &office, s.id, more).await.unwrap();
        assert_eq!((changed.enrolled, changed.waiting), (3, 0));
        assert_eq!(changed.topic, "高血压与糖尿病基层管理");
        assert_eq!(changed.starts_at, later);
        assert_eq!(statuses(&f, s.id).await, [Enrolled, Enrolled, Enrolled]);

        for (input, field) in [
            (
                SessionChangeInput {
                    starts_at: Some(Utc::now() - TimeDelta::hours(1)),
                    ..SessionChangeInput::default()
                },
                "starts_at",
            ),
            (
                SessionChangeInput {
                    ends_at: Some(later),
                    ..SessionChangeInput::default()
                },
                "ends_at",
            ),
            (
                SessionChangeInput {
                    topic: Some(" ".into()),
                    ..SessionChangeInput::default()
                },
                "topic",
            ),
            (
                SessionChangeInput {
                    presenter_clinician_id: Some(999_999),
                    ..SessionChangeInput::default()
                },
                "presenter_clinician_id",
            ),
        ] {
            let e = change_session(&f.store, &office, s.id, input)
                .await
                .unwrap_err();
            assert_eq!(invalid_field(&e), Some(field), "{e}");
        }
    }

    #[tokio::test]
    async fn a_cancelled_session_keeps_its_trainees_and_takes_no_more() {
        let (f, office, s, trainees) = full_session().await;
        let blank = CancelInput { reason: "".into() };
        let e = cancel_session(&f.store, &office, s.id, blank)
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&e), Some("reason"));
        let reason = CancelInput {
            reason: "主讲专家临时承担抢救任务".into(),
        };
        let cancelled = cancel_session(&f.store, &office, s.id, reason)
            .await
            .unwrap();
        assert!(cancelled.cancelled_at.is_some());
        assert_eq!(
            cancelled.cancel_reason.as_deref(),
            Some("主讲专家临时承担抢救任务")
        );

        // The trainee who withdraws leaves no place to the waiting one: the session will
        // not take place.
        withdraw(&f.store, &trainees[0], s.id).await.unwrap();
        use EnrolmentStatus::*;
        assert_eq!(statuses(&f, s.id).await, [Withdrawn, Enrolled, Waiting]);
        let e = enrol(&f.store, &trainees[0], s.id).await.unwrap_err();
        assert_eq!(e.rule(), Some(Rule::SessionCancelled));
        let again = CancelInput { reason: "x".into() };
        let e = cancel_session(&f.store, &office, s.id, again)
            .await
            .unwrap_err();
        assert_eq!(e.rule(), Some(Rule::SessionCancelled));
        let e = change_session(&f.store, &office, s.id, SessionChangeInput::default())
            .await
            .unwrap_err();
        assert_eq!(e.rule(), Some(Rule::SessionCancelled));
    }
}
