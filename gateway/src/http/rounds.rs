//! `/ward-rounds`: recurring remote ward rounds between a supporting team and a supported
//! hospital's ward, with the patients to see and the team's note on each; their
//! organisers move a round or cancel rounds. The rules are in [`crate::booking::rounds`];
//! these handlers parse, call it and answer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id, Ids};
use crate::booking::{NewPatient, NewRounds, RoundPatient, WardRound, rounds};
use crate::error::{Error, Problem};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rounds, create_rounds))
        .routes(routes!(get_round, change_round))
        .routes(routes!(cancel_rounds))
        .routes(routes!(add_patient))
        .routes(routes!(note_patient))
}

/// A weekly series of rounds.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoundsInput {
    /// The supporting team.
    team_id: i64,
    /// The supported hospital.
    supported_institution_id: i64,
    /// The ward.
    ward: String,
    /// The ward's own team (a team of the supported hospital): only its members join the
    /// video room from the ward's side. Left out: any clinician of the supported hospital.
    #[serde(default)]
    ward_team_id: Option<i64>,
    /// The first round's start.
    starts_at: DateTime<Utc>,
    /// Minutes, 15 to 480.
    duration_minutes: i64,
    /// How many weekly rounds, 1 to 52.
    #[serde(default = "one")]
    weeks: i64,
}

fn one() -> i64 {
    1
}

/// One round.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoundOut {
    /// Round id.
    id: i64,
    /// The supporting team.
    team_id: i64,
    /// The supported hospital.
    supported_institution_id: i64,
    /// The ward, e.g. 内科病区.
    ward: String,
    /// Start.
    starts_at: DateTime<Utc>,
    /// End.
    ends_at: DateTime<Utc>,
    /// The first round of its weekly series.
    series_id: Option<i64>,
    /// The ward's own team, when named: only its members join the round's room from the
    /// ward's side. Unnamed: the clinicians of the supported hospital.
    ward_team_id: Option<i64>,
    /// When its organisers cancelled it; its room does not open.
    cancelled_at: Option<DateTime<Utc>>,
    /// Why.
    cancel_reason: Option<String>,
}

impl From<WardRound> for RoundOut {
    fn from(r: WardRound) -> Self {
        Self {
            id: r.id,
            team_id: r.team_id,
            supported_institution_id: r.supported_institution_id,
            ward: r.ward,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            series_id: r.series_id,
            ward_team_id: r.ward_team_id,
            cancelled_at: r.cancelled_at,
            cancel_reason: r.cancel_reason,
        }
    }
}

/// A patient to see on a round.
#[derive(Serialize, ToSchema)]
pub struct PatientOut {
    /// Entry id.
    id: i64,
    /// The round.
    round_id: i64,
    /// Bed.
    bed: String,
    /// The patient's name: visible to the two institutions only.
    patient_name: String,
    /// What the ward asks about this patient.
    question: String,
    /// The team's note.
    note: Option<String>,
    /// Who wrote it.
    note_by: Option<i64>,
    /// When.
    note_at: Option<DateTime<Utc>>,
}

impl From<RoundPatient> for PatientOut {
    fn from(p: RoundPatient) -> Self {
        Self {
            id: p.id,
            round_id: p.round_id,
            bed: p.bed,
            patient_name: p.patient_name,
            question: p.question,
            note: p.note,
            note_by: p.note_by,
            note_at: p.note_at,
        }
    }
}

fn patients_out(patients: Vec<RoundPatient>) -> Vec<PatientOut> {
    patients.into_iter().map(PatientOut::from).collect()
}

/// A round with its patients.
#[derive(Serialize, ToSchema)]
pub struct RoundView {
    /// The round.
    #[serde(flatten)]
    round: RoundOut,
    /// Patients to see.
    patients: Vec<PatientOut>,
}

/// Schedules weekly ward rounds; the team must be the ward hospital's designated
/// supporter for ward rounds on every date.
#[utoipa::path(post, path = "/ward-rounds", tag = "ward rounds", request_body = RoundsInput,
    responses((status = 201, body = Vec<RoundOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_rounds(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<RoundsInput>,
) -> Result<(StatusCode, Json<Vec<RoundOut>>), Error> {
    let new = NewRounds {
        team_id: input.team_id,
        supported_institution_id: input.supported_institution_id,
        ward: input.ward,
        ward_team_id: input.ward_team_id,
        starts_at: input.starts_at,
        duration_minutes: input.duration_minutes,
        weeks: input.weeks,
    };
    let created = rounds::schedule(&state.store, &caller.0, &new).await?;
    Ok((
        StatusCode::CREATED,
        Json(created.into_iter().map(RoundOut::from).collect()),
    ))
}

/// Which rounds.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RoundQuery {
    /// The institution (administrators name any; others their own, the default).
    institution_id: Option<i64>,
    /// Rounds starting from (default now).
    from: Option<DateTime<Utc>>,
    /// Rounds starting before (default 60 days after `from`).
    to: Option<DateTime<Utc>>,
}

/// The rounds an institution takes part in: as the ward, or through its teams; cancelled
/// ones with their reason.
#[utoipa::path(get, path = "/ward-rounds", tag = "ward rounds", params(RoundQuery),
    responses((status = 200, body = Vec<RoundOut>), (status = 403, body = Problem)))]
async fn list_rounds(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RoundQuery>,
) -> Result<Json<Vec<RoundOut>>, Error> {
    let from = q.from.unwrap_or_else(Utc::now);
    let to = q.to.unwrap_or(from + TimeDelta::days(60));
    let listed = rounds::list(&state.store, &caller.0, q.institution_id, from, to).await?;
    Ok(Json(listed.into_iter().map(RoundOut::from).collect()))
}

/// A round's new time.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoundChangeInput {
    /// The new start, a time to come.
    starts_at: DateTime<Utc>,
    /// Minutes, 15 to 480; as long as before when left out.
    duration_minutes: Option<i64>,
}

/// Moves one round: the coordinators of either side or an administrator, before it is
/// over; the team must be the ward's designated supporter on the new day.
#[utoipa::path(patch, path = "/ward-rounds/{id}", tag = "ward rounds", params(("id" = i64, Path)),
    request_body = RoundChangeInput,
    responses((status = 200, body = RoundOut), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn change_round(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<RoundChangeInput>,
) -> Result<Json<RoundOut>, Error> {
    let round = rounds::change(
        &state.store,
        &caller.0,
        id,
        input.starts_at,
        input.duration_minutes,
    )
    .await?;
    Ok(Json(round.into()))
}

/// Why rounds are cancelled, and how many.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoundCancelInput {
    /// The reason, shown to both sides; at most 500 characters.
    reason: String,
    /// Also cancel the later rounds of the series that are not over.
    #[serde(default)]
    rest_of_series: bool,
}

/// Cancels one round, or it and the rest of its series, with a reason: the coordinators
/// of either side or an administrator, before it is over. A cancelled round's room does
/// not open.
#[utoipa::path(post, path = "/ward-rounds/{id}/cancel", tag = "ward rounds", params(("id" = i64, Path)),
    request_body = RoundCancelInput,
    responses((status = 200, body = Vec<RoundOut>), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn cancel_rounds(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<RoundCancelInput>,
) -> Result<Json<Vec<RoundOut>>, Error> {
    let cancelled = rounds::cancel(
        &state.store,
        &caller.0,
        id,
        &input.reason,
        input.rest_of_series,
    )
    .await?;
    Ok(Json(cancelled.into_iter().map(RoundOut::from).collect()))
}

/// One round with its patients; for either side, audited.
#[utoipa::path(get, path = "/ward-rounds/{id}", tag = "ward rounds", params(("id" = i64, Path)),
    responses((status = 200, body = RoundView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_round(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<RoundView>, Error> {
    let (round, patients) = rounds::read(&state.store, &caller.0, id).await?;
    Ok(Json(RoundView {
        round: round.into(),
        patients: patients_out(patients),
    }))
}

/// A patient to put on the list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientInput {
    /// Bed.
    bed: String,
    /// Name.
    patient_name: String,
    /// What the ward asks.
    question: String,
}

/// Puts a patient on a round's list: the ward hospital's clinicians.
#[utoipa::path(post, path = "/ward-rounds/{id}/patients", tag = "ward rounds", params(("id" = i64, Path)), request_body = PatientInput,
    responses((status = 201, body = Vec<PatientOut>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn add_patient(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(p): ApiJson<PatientInput>,
) -> Result<(StatusCode, Json<Vec<PatientOut>>), Error> {
    let patient = NewPatient {
        bed: p.bed,
        patient_name: p.patient_name,
        question: p.question,
    };
    let listed = rounds::add_patient(&state.store, &caller.0, id, &patient).await?;
    Ok((StatusCode::CREATED, Json(patients_out(listed))))
}

/// The team's note on a patient.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    /// The note.
    note: String,
}

/// Writes the note on a patient: members of the round's team.
#[utoipa::path(put, path = "/ward-rounds/{id}/patients/{patient}/note", tag = "ward rounds",
    params(("id" = i64, Path), ("patient" = i64, Path)), request_body = NoteInput,
    responses((status = 200, body = Vec<PatientOut>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn note_patient(
    State(state): State<AppState>,
    caller: Caller,
    Ids(id, patient): Ids,
    ApiJson(n): ApiJson<NoteInput>,
) -> Result<Json<Vec<PatientOut>>, Error> {
    let listed = rounds::note_patient(&state.store, &caller.0, id, patient, &n.note).await?;
    Ok(Json(patients_out(listed)))
}
