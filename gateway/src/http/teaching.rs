//! `/teaching`: continuing-education sessions (scheduled, changed and cancelled by their
//! organisers), enrolment with a waiting list, attendance and hours; `/visits`: on-site
//! visits to villages.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use crate::booking::teaching::{
    self, AttendanceInput, CancelInput, Hours, SessionChangeInput, SessionInput,
};
use crate::booking::visits::{self, VisitInput, VisitsOf};
use crate::booking::{Enrolment, EnrolmentStatus, TeachingSession};
use crate::domain::{Service, Services};
use crate::error::{Error, Problem};
use crate::store::Visit;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions, create_session))
        .routes(routes!(get_session, change_session))
        .routes(routes!(cancel_session))
        .routes(routes!(enrol))
        .routes(routes!(withdraw))
        .routes(routes!(list_enrolments))
        .routes(routes!(my_enrolments))
        .routes(routes!(record_attendance))
        .routes(routes!(hours))
        .routes(routes!(list_visits, add_visit))
}

/// Schedules a teaching session: the presenter's unit's coordinators or an administrator.
#[utoipa::path(post, path = "/teaching", tag = "teaching", request_body = SessionInput,
    responses((status = 201, body = TeachingSession), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_session(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<SessionInput>,
) -> Result<(StatusCode, Json<TeachingSession>), Error> {
    let session = teaching::create_session(&state.store, &caller.0, input).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// Catalogue range.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionQuery {
    /// The presenting institution; every one when left out.
    institution_id: Option<i64>,
    /// Sessions starting from (default now).
    from: Option<DateTime<Utc>>,
    /// Sessions starting before (default 90 days after `from`).
    to: Option<DateTime<Utc>>,
}

/// The catalogue of teaching sessions, cancelled ones with their reason.
#[utoipa::path(get, path = "/teaching", tag = "teaching", params(SessionQuery),
    responses((status = 200, body = Vec<TeachingSession>)))]
async fn list_sessions(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<SessionQuery>,
) -> Result<Json<Vec<TeachingSession>>, Error> {
    Ok(Json(
        teaching::sessions(&state.store, q.institution_id, q.from, q.to).await?,
    ))
}

/// Changes a session's presenter, topic, time or places: its organisers, before it is
/// over. Places added go to the waiting list; fewer places than trainees holding one are
/// refused.
#[utoipa::path(patch, path = "/teaching/{id}", tag = "teaching", params(("id" = i64, Path)),
    request_body = SessionChangeInput,
    responses((status = 200, body = TeachingSession), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn change_session(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<SessionChangeInput>,
) -> Result<Json<TeachingSession>, Error> {
    Ok(Json(
        teaching::change_session(&state.store, &caller.0, id, input).await?,
    ))
}

/// Cancels a session with a reason: its organisers, before it is over. It takes no more
/// enrolment and its room does not open; the enrolments stay listed.
#[utoipa::path(post, path = "/teaching/{id}/cancel", tag = "teaching", params(("id" = i64, Path)),
    request_body = CancelInput,
    responses((status = 200, body = TeachingSession), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn cancel_session(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<CancelInput>,
) -> Result<Json<TeachingSession>, Error> {
    Ok(Json(
        teaching::cancel_session(&state.store, &caller.0, id, input).await?,
    ))
}

/// One session.
#[utoipa::path(get, path = "/teaching/{id}", tag = "teaching", params(("id" = i64, Path)),
    responses((status = 200, body = TeachingSession), (status = 404, body = Problem)))]
async fn get_session(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<TeachingSession>, Error> {
    Ok(Json(teaching::session(&state.store, id).await?))
}

/// The outcome of an enrolment.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolResult {
    /// `enrolled`, or `waiting` when the session is full.
    status: EnrolmentStatus,
}

/// Enrols the caller; a full session puts them on the waiting list.
#[utoipa::path(post, path = "/teaching/{id}/enrol", tag = "teaching", params(("id" = i64, Path)),
    responses((status = 201, body = EnrolResult), (status = 403, body = Problem), (status = 409, body = Problem)))]
async fn enrol(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<(StatusCode, Json<EnrolResult>), Error> {
    let status = teaching::enrol(&state.store, &caller.0, id).await?;
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
    teaching::withdraw(&state.store, &caller.0, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The enrolments of a session, for its organisers.
#[utoipa::path(get, path = "/teaching/{id}/enrolments", tag = "teaching", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Enrolment>), (status = 403, body = Problem)))]
async fn list_enrolments(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<Vec<Enrolment>>, Error> {
    Ok(Json(
        teaching::enrolments(&state.store, &caller.0, id).await?,
    ))
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
    teaching::record_attendance(&state.store, &caller.0, id, a).await?;
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

/// A trainee's continuing-education hours: their own, or for their institution's
/// coordinators and administrators.
#[utoipa::path(get, path = "/teaching/hours", tag = "teaching", params(HoursQuery),
    responses((status = 200, body = Hours), (status = 403, body = Problem)))]
async fn hours(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<HoursQuery>,
) -> Result<Json<Hours>, Error> {
    Ok(Json(
        teaching::hours(&state.store, &caller.0, q.user_id, q.year).await?,
    ))
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
    let visit = visits::add_visit(&state.store, &caller.0, v).await?;
    Ok((StatusCode::CREATED, Json(visit.into())))
}

/// Which visits.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VisitQuery {
    /// The visits to this village station.
    village_id: Option<i64>,
    /// Or the visits made by this institution's teams and clinicians, or made to it.
    institution_id: Option<i64>,
    /// From (default a year before `to`).
    from: Option<NaiveDate>,
    /// To (default today).
    to: Option<NaiveDate>,
}

/// Visits to a village, or those an institution made or received.
#[utoipa::path(get, path = "/visits", tag = "teaching", params(VisitQuery),
    responses((status = 200, body = Vec<VisitOut>), (status = 422, body = Problem)))]
async fn list_visits(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<VisitQuery>,
) -> Result<Json<Vec<VisitOut>>, Error> {
    let of = match (q.village_id, q.institution_id) {
        (Some(village), None) => VisitsOf::Village(village),
        (None, Some(institution)) => VisitsOf::Institution(institution),
        _ => {
            return Err(Error::field(
                "village_id",
                "give village_id or institution_id, one of them",
            ));
        }
    };
    let visits = visits::visits(&state.store, of, q.from, q.to).await?;
    Ok(Json(visits.into_iter().map(VisitOut::from).collect()))
}
