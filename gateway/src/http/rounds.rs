//! `/ward-rounds`: recurring remote ward rounds between a supporting team and a supported
//! hospital's ward, with the patients to see and the team's note on each.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use crate::booking::{RoundPatient, WardRound, china};
use crate::domain::{Role, Service, Team, User};
use crate::error::{Error, Problem};
use crate::registry::supporter_chain;
use crate::store::Store;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rounds, create_rounds))
        .routes(routes!(get_round))
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

/// A round with its patients.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoundView {
    /// The round.
    #[serde(flatten)]
    round: WardRound,
    /// Patients to see.
    patients: Vec<RoundPatient>,
}

async fn audit(
    store: &Store,
    caller: &User,
    action: &str,
    id: i64,
    allowed: bool,
) -> Result<(), Error> {
    crate::audit::record(store, caller, "ward_round", action, Some(id), allowed, None).await
}

async fn team(store: &Store, id: i64) -> Result<Team, Error> {
    store
        .team(id)
        .await?
        .ok_or_else(|| Error::field("team_id", format!("no team has id {id}")))
}

/// Loads a round for a clinician or coordinator of either side; refusals are audited.
async fn open(
    store: &Store,
    caller: &User,
    id: i64,
    action: &str,
) -> Result<(WardRound, Team), Error> {
    let round = store
        .ward_round(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("ward round {id}")))?;
    let t = team(store, round.team_id).await?;
    let side = caller.institution_id == round.supported_institution_id
        || caller.institution_id == t.institution_id;
    if !side || !(caller.is(Role::Clinician) || caller.is(Role::Coordinator)) {
        audit(store, caller, action, id, false).await?;
        return Err(Error::refused(
            "wrong-institution",
            StatusCode::FORBIDDEN,
            None,
            "only the team's and the ward's institutions take part in a ward round",
        ));
    }
    audit(store, caller, action, id, true).await?;
    Ok((round, t))
}

/// Schedules weekly ward rounds; the team must be the ward hospital's designated
/// supporter for ward rounds on every date.
#[utoipa::path(post, path = "/ward-rounds", tag = "ward rounds", request_body = RoundsInput,
    responses((status = 201, body = Vec<WardRound>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_rounds(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<RoundsInput>,
) -> Result<(StatusCode, Json<Vec<WardRound>>), Error> {
    let t = team(&state.store, input.team_id).await?;
    let organiser = caller.0.is(Role::Admin)
        || (caller.0.is(Role::Coordinator)
            && (caller.0.institution_id == t.institution_id
                || caller.0.institution_id == input.supported_institution_id));
    if !organiser {
        return Err(Error::forbidden(
            "the coordinators of either side or an administrator schedule ward rounds",
        ));
    }
    if input.ward.trim().is_empty() {
        return Err(Error::field("ward", "name the ward"));
    }
    if let Some(id) = input.ward_team_id {
        let ward_team = team(&state.store, id)
            .await
            .map_err(|_| Error::field("ward_team_id", format!("no team has id {id}")))?;
        if ward_team.institution_id != input.supported_institution_id {
            return Err(Error::field(
                "ward_team_id",
                "the ward's team belongs to the supported hospital",
            ));
        }
    }
    if !(15..=480).contains(&input.duration_minutes) {
        return Err(Error::field("duration_minutes", "15 to 480 minutes"));
    }
    if !(1..=52).contains(&input.weeks) {
        return Err(Error::field("weeks", "1 to 52 weekly rounds"));
    }
    let mut rounds = Vec::new();
    for week in 0..input.weeks {
        let starts_at = input.starts_at + TimeDelta::weeks(week);
        let date = starts_at.with_timezone(&china()).date_naive();
        let chain = supporter_chain(
            &state.store,
            input.supported_institution_id,
            Service::WardRound,
            date,
        )
        .await?;
        let designated = chain.designated().is_some_and(|l| {
            (l.kind == crate::registry::LinkKind::Team && l.id == t.id)
                || (l.kind == crate::registry::LinkKind::Institution && l.id == t.institution_id)
        });
        if !designated {
            let who = chain
                .designated()
                .map_or("nobody".to_owned(), |l| l.name.clone());
            return Err(Error::refused(
                "not-designated-supporter",
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("team_id"),
                format!(
                    "on {date} the designated supporter for ward rounds is {who}, not {}",
                    t.name
                ),
            ));
        }
        rounds.push(WardRound {
            id: 0,
            team_id: t.id,
            supported_institution_id: input.supported_institution_id,
            ward: input.ward.trim().to_owned(),
            starts_at,
            ends_at: starts_at + TimeDelta::minutes(input.duration_minutes),
            series_id: None,
            ward_team_id: input.ward_team_id,
        });
    }
    let ids = state.store.create_ward_rounds(&rounds, caller.0.id).await?;
    let mut created = Vec::new();
    for id in ids {
        created.extend(state.store.ward_round(id).await?);
    }
    Ok((StatusCode::CREATED, Json(created)))
}

/// Which rounds.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RoundQuery {
    /// From (default now).
    from: Option<DateTime<Utc>>,
    /// To (default 60 days after `from`).
    to: Option<DateTime<Utc>>,
}

/// The rounds the caller's institution takes part in: as the ward, or through its teams.
#[utoipa::path(get, path = "/ward-rounds", tag = "ward rounds", params(RoundQuery),
    responses((status = 200, body = Vec<WardRound>), (status = 403, body = Problem)))]
async fn list_rounds(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RoundQuery>,
) -> Result<Json<Vec<WardRound>>, Error> {
    if !(caller.0.is(Role::Clinician) || caller.0.is(Role::Coordinator)) {
        return Err(Error::forbidden(
            "clinicians and coordinators see ward rounds",
        ));
    }
    let from = q.from.unwrap_or_else(Utc::now);
    let to = q.to.unwrap_or(from + TimeDelta::days(60));
    let teams: Vec<String> = state
        .store
        .teams(Some(caller.0.institution_id))
        .await?
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    let rounds = state
        .store
        .ward_rounds(
            &format!(",{},", caller.0.institution_id),
            &format!(",{},", teams.join(",")),
            from,
            to,
        )
        .await?;
    Ok(Json(rounds))
}

/// One round with its patients; for either side, audited.
#[utoipa::path(get, path = "/ward-rounds/{id}", tag = "ward rounds", params(("id" = i64, Path)),
    responses((status = 200, body = RoundView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_round(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<RoundView>, Error> {
    let (round, _) = open(&state.store, &caller.0, id, "read").await?;
    let patients = state.store.round_patients(id).await?;
    Ok(Json(RoundView { round, patients }))
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
    responses((status = 201, body = Vec<RoundPatient>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn add_patient(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(p): ApiJson<PatientInput>,
) -> Result<(StatusCode, Json<Vec<RoundPatient>>), Error> {
    let (round, _) = open(&state.store, &caller.0, id, "add_patient").await?;
    if caller.0.institution_id != round.supported_institution_id {
        return Err(Error::forbidden(
            "the ward's own clinicians put patients on the list",
        ));
    }
    for (field, value) in [
        ("bed", &p.bed),
        ("patient_name", &p.patient_name),
        ("question", &p.question),
    ] {
        if value.trim().is_empty() {
            return Err(Error::field(field, "required"));
        }
    }
    state
        .store
        .add_round_patient(id, p.bed.trim(), p.patient_name.trim(), p.question.trim())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(state.store.round_patients(id).await?),
    ))
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
    responses((status = 200, body = Vec<RoundPatient>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn note_patient(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, patient)): axum::extract::Path<(i64, i64)>,
    ApiJson(n): ApiJson<NoteInput>,
) -> Result<Json<Vec<RoundPatient>>, Error> {
    let (_, t) = open(&state.store, &caller.0, id, "note_patient").await?;
    if !caller
        .0
        .clinician_id
        .is_some_and(|c| t.member_ids.contains(&c))
    {
        return Err(Error::forbidden(
            "members of the round's team write the notes",
        ));
    }
    if n.note.trim().is_empty() {
        return Err(Error::field("note", "required"));
    }
    if !state
        .store
        .note_round_patient(id, patient, n.note.trim(), caller.0.id)
        .await?
    {
        return Err(Error::NotFound(format!("patient {patient} on round {id}")));
    }
    Ok(Json(state.store.round_patients(id).await?))
}
