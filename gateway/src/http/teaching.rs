//! `/teaching`: continuing-education sessions, enrolment with a waiting list, attendance
//! and hours; `/visits`: on-site visits to villages.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use crate::booking::{
    AttendanceSink, Enrolment, TeachingSession, attended_hours, china, teaching_rules,
};
use crate::domain::{Level, Role, Service, Services};
use crate::error::{Error, Problem};
use crate::store::{NewTeachingSession, Visit};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions, create_session))
        .routes(routes!(get_session))
        .routes(routes!(enrol))
        .routes(routes!(withdraw))
        .routes(routes!(list_enrolments))
        .routes(routes!(my_enrolments))
        .routes(routes!(record_attendance))
        .routes(routes!(hours))
        .routes(routes!(list_visits, add_visit))
}

async fn session(state: &AppState, id: i64) -> Result<TeachingSession, Error> {
    state
        .store
        .teaching_session(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("teaching session {id}")))
}

/// A new session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionInput {
    /// The presenting clinician.
    presenter_clinician_id: i64,
    /// Topic.
    topic: String,
    /// Start.
    starts_at: DateTime<Utc>,
    /// End.
    ends_at: DateTime<Utc>,
    /// Places, 1 to 1000.
    capacity: i32,
}

/// Schedules a teaching session: the presenter's unit's coordinators or an administrator.
#[utoipa::path(post, path = "/teaching", tag = "teaching", request_body = SessionInput,
    responses((status = 201, body = TeachingSession), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_session(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<SessionInput>,
) -> Result<(StatusCode, Json<TeachingSession>), Error> {
    let presenter = state
        .store
        .clinician(input.presenter_clinician_id)
        .await?
        .ok_or_else(|| Error::field("presenter_clinician_id", "no such clinician"))?;
    teaching_rules::require_organiser(&caller.0, presenter.institution_id)?;
    if input.topic.trim().is_empty() {
        return Err(Error::field("topic", "a topic is required"));
    }
    if input.ends_at <= input.starts_at {
        return Err(Error::field("ends_at", "the end comes after the start"));
    }
    if !(1..=1000).contains(&input.capacity) {
        return Err(Error::field("capacity", "1 to 1000 places"));
    }
    let id = state
        .store
        .create_teaching_session(&NewTeachingSession {
            presenter_clinician_id: presenter.id,
            presenter_institution_id: presenter.institution_id,
            topic: input.topic.trim().to_owned(),
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            capacity: input.capacity,
            created_by: caller.0.id,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(session(&state, id).await?)))
}

/// Catalogue range.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// From (default now).
    from: Option<DateTime<Utc>>,
    /// To (default 90 days after `from`).
    to: Option<DateTime<Utc>>,
}

/// The catalogue of teaching sessions.
#[utoipa::path(get, path = "/teaching", tag = "teaching", params(SessionQuery),
    responses((status = 200, body = Vec<TeachingSession>)))]
async fn list_sessions(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<SessionQuery>,
) -> Result<Json<Vec<TeachingSession>>, Error> {
    let from = q.from.unwrap_or_else(Utc::now);
    let to = q.to.unwrap_or(from + TimeDelta::days(90));
    Ok(Json(state.store.teaching_sessions(None, from, to).await?))
}

/// One session.
#[utoipa::path(get, path = "/teaching/{id}", tag = "teaching", params(("id" = i64, Path)),
    responses((status = 200, body = TeachingSession), (status = 404, body = Problem)))]
async fn get_session(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<TeachingSession>, Error> {
    Ok(Json(session(&state, id).await?))
}

/// The outcome of an enrolment.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolResult {
    /// `enrolled`, or `waiting` when the session is full.
    status: String,
}

/// Enrols the caller; a full session puts them on the waiting list.
#[utoipa::path(post, path = "/teaching/{id}/enrol", tag = "teaching", params(("id" = i64, Path)),
    responses((status = 201, body = EnrolResult), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn enrol(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<(StatusCode, Json<EnrolResult>), Error> {
    let status = teaching_rules::enrol(&state.store, &caller.0, id).await?;
    Ok((StatusCode::CREATED, Json(EnrolResult { status })))
}

/// Withdraws the caller; the first on the waiting list takes the place.
#[utoipa::path(post, path = "/teaching/{id}/withdraw", tag = "teaching", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<StatusCode, Error> {
    session(&state, id).await?;
    if state.store.withdraw(id, caller.0.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound("your enrolment".into()))
    }
}

/// The enrolments of a session, for its organisers.
#[utoipa::path(get, path = "/teaching/{id}/enrolments", tag = "teaching", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Enrolment>), (status = 403, body = Problem)))]
async fn list_enrolments(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<Vec<Enrolment>>, Error> {
    let s = session(&state, id).await?;
    teaching_rules::require_organiser(&caller.0, s.presenter_institution_id)?;
    Ok(Json(state.store.enrolments(id).await?))
}

/// The caller's own enrolments (enrolled, waiting or withdrawn), in every session.
#[utoipa::path(get, path = "/teaching/enrolments", tag = "teaching",
    responses((status = 200, body = Vec<Enrolment>), (status = 401, body = Problem)))]
async fn my_enrolments(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Enrolment>>, Error> {
    Ok(Json(state.store.enrolments_of(caller.0.id).await?))
}

/// A stretch of presence.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttendanceInput {
    /// The trainee.
    user_id: i64,
    /// Joined.
    joined_at: DateTime<Utc>,
    /// Left.
    left_at: Option<DateTime<Utc>>,
}

/// Records attendance (until the signaling layer reports it from the room itself).
#[utoipa::path(post, path = "/teaching/{id}/attendance", tag = "teaching", params(("id" = i64, Path)),
    request_body = AttendanceInput,
    responses((status = 204), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn record_attendance(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(a): ApiJson<AttendanceInput>,
) -> Result<StatusCode, Error> {
    let s = session(&state, id).await?;
    teaching_rules::require_organiser(&caller.0, s.presenter_institution_id)?;
    teaching_rules::StoreAttendance(&state.store)
        .record(id, a.user_id, a.joined_at, a.left_at)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whose hours, in which year.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HoursQuery {
    /// The trainee; the caller when left out.
    user_id: Option<i64>,
    /// The year (China); this year when left out.
    year: Option<i32>,
}

/// Continuing-education hours of a trainee.
#[derive(Debug, Serialize, ToSchema)]
pub struct Hours {
    /// The trainee.
    user_id: i64,
    /// The year.
    year: i32,
    /// Hours attended in the year, inside each session's time.
    hours: f64,
    /// Per session.
    sessions: Vec<SessionHours>,
}

/// Hours in one session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionHours {
    /// The session.
    session_id: i64,
    /// Its topic.
    topic: String,
    /// Hours attended.
    hours: f64,
}

/// A trainee's continuing-education hours: their own, or for their institution's
/// coordinators and administrators.
#[utoipa::path(get, path = "/teaching/hours", tag = "teaching", params(HoursQuery),
    responses((status = 200, body = Hours), (status = 403, body = Problem)))]
async fn hours(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HoursQuery>,
) -> Result<Json<Hours>, Error> {
    let user_id = q.user_id.unwrap_or(caller.0.id);
    if user_id != caller.0.id {
        let user = state
            .store
            .user(user_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {user_id}")))?;
        let coordinator =
            caller.0.is(Role::Coordinator) && caller.0.institution_id == user.institution_id;
        if !coordinator && !caller.0.is(Role::Admin) {
            return Err(Error::forbidden(
                "only the trainee, their coordinators or an administrator",
            ));
        }
    }
    let year = q
        .year
        .unwrap_or_else(|| Utc::now().with_timezone(&china()).year());
    let attendance = state.store.attendance(Some(user_id), None).await?;
    let mut by_session: std::collections::BTreeMap<i64, Vec<_>> = Default::default();
    for a in attendance {
        by_session
            .entry(a.session_id)
            .or_default()
            .push((a.joined_at, a.left_at));
    }
    let mut sessions = Vec::new();
    for (id, stretches) in by_session {
        let s = session(&state, id).await?;
        if s.starts_at.with_timezone(&china()).year() == year {
            let h = attended_hours(s.starts_at, s.ends_at, &stretches);
            sessions.push(SessionHours {
                session_id: id,
                topic: s.topic,
                hours: h,
            });
        }
    }
    let hours = sessions.iter().map(|s| s.hours).sum();
    Ok(Json(Hours {
        user_id,
        year,
        hours,
        sessions,
    }))
}

/// An on-site visit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitInput {
    /// The village station.
    village_id: i64,
    /// The day (China).
    visit_date: NaiveDate,
    /// The visiting team.
    team_id: Option<i64>,
    /// Or the visiting clinician.
    clinician_id: Option<i64>,
    /// Services given.
    #[schema(value_type = Vec<Service>)]
    services: Services,
    /// Notes, without patient data.
    notes: Option<String>,
}

/// An on-site visit to a village.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitOut {
    /// Visit id.
    id: i64,
    /// The village station.
    village_id: i64,
    /// The day (China).
    visit_date: NaiveDate,
    /// The visiting team.
    team_id: Option<i64>,
    /// Or the visiting clinician.
    clinician_id: Option<i64>,
    /// Services given.
    #[schema(value_type = Vec<Service>)]
    services: Services,
    /// Notes, without patient data.
    notes: Option<String>,
}

impl From<Visit> for VisitOut {
    fn from(v: Visit) -> Self {
        Self {
            id: v.id,
            village_id: v.village_id,
            visit_date: v.visit_date,
            team_id: v.team_id,
            clinician_id: v.clinician_id,
            services: v.services,
            notes: v.notes,
        }
    }
}

/// Records an on-site visit (巡诊, 坐诊): coordinators of the visiting unit, or administrators.
#[utoipa::path(post, path = "/visits", tag = "teaching", request_body = VisitInput,
    responses((status = 201, body = VisitOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn add_visit(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(v): ApiJson<VisitInput>,
) -> Result<(StatusCode, Json<VisitOut>), Error> {
    let village = state
        .store
        .institution(v.village_id)
        .await?
        .ok_or_else(|| Error::field("village_id", "no such institution"))?;
    if village.level != Level::VillageStation {
        return Err(Error::field(
            "village_id",
            format!("{} is not a village station", village.name),
        ));
    }
    let unit = match (v.team_id, v.clinician_id) {
        (Some(t), None) => state
            .store
            .team(t)
            .await?
            .map(|t| t.institution_id)
            .ok_or_else(|| Error::field("team_id", "no such team"))?,
        (None, Some(c)) => state
            .store
            .clinician(c)
            .await?
            .map(|c| c.institution_id)
            .ok_or_else(|| Error::field("clinician_id", "no such clinician"))?,
        _ => {
            return Err(Error::field(
                "team_id",
                "give the visiting team or the visiting clinician",
            ));
        }
    };
    let coordinator = caller.0.is(Role::Coordinator) && caller.0.institution_id == unit;
    if !coordinator && !caller.0.is(Role::Admin) {
        return Err(Error::forbidden(
            "only the visiting unit's coordinators or an administrator record visits",
        ));
    }
    if v.visit_date > crate::registry::today_in_china() {
        return Err(Error::field(
            "visit_date",
            "a visit is recorded once it has happened",
        ));
    }
    let mut visit = Visit {
        id: 0,
        village_id: v.village_id,
        visit_date: v.visit_date,
        team_id: v.team_id,
        clinician_id: v.clinician_id,
        services: v.services,
        notes: v.notes,
    };
    visit.id = state.store.add_visit(&visit, caller.0.id).await?;
    Ok((StatusCode::CREATED, Json(visit.into())))
}

/// Which visits.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VisitQuery {
    /// The village station.
    village_id: i64,
    /// From (default a year ago).
    from: Option<NaiveDate>,
    /// To (default today).
    to: Option<NaiveDate>,
}

/// Visits to a village.
#[utoipa::path(get, path = "/visits", tag = "teaching", params(VisitQuery), responses((status = 200, body = Vec<VisitOut>)))]
async fn list_visits(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<VisitQuery>,
) -> Result<Json<Vec<VisitOut>>, Error> {
    let to = q.to.unwrap_or_else(crate::registry::today_in_china);
    let from = q.from.unwrap_or(to - TimeDelta::days(365));
    let visits = state
        .store
        .visits(&format!(",{},", q.village_id), from, to)
        .await?;
    Ok(Json(visits.into_iter().map(VisitOut::from).collect()))
}
