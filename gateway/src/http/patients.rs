//! `/patients/export`: an administrator's copy of everything held about one patient
//! (see [`crate::patients`]), for the patient who asks for it. Audited, refusals too.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::ApiQuery;
use crate::audit::Event;
use crate::domain::Role;
use crate::error::{Error, Problem};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export_patient))
}

/// The patient a copy is of.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PatientQuery {
    /// Name, as the records hold it.
    name: String,
    /// Date of birth, `YYYY-MM-DD`.
    birth_date: NaiveDate,
    /// Resident identity card number, when known.
    id_number: Option<String>,
}

/// Everything held about one patient as a zip with `manifest.json`: their requests with
/// steps, opinions and attachments, their studies' index, and every audit entry on them.
/// Administrators only; audited with the patient.
#[utoipa::path(get, path = "/patients/export", tag = "audit", params(PatientQuery),
    responses((status = 200, content((Vec<u8> = "application/zip"))),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn export_patient(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PatientQuery>,
) -> Result<Response, Error> {
    let name = q.name.trim().to_owned();
    let event = Event::by(&caller.0, "patient", "export").patient(Some(name.clone()));
    if !caller.0.is(Role::Admin) {
        event.denied().record(&state.store).await?;
        return Err(Error::forbidden(
            "only administrators export a patient's records",
        ));
    }
    if name.is_empty() {
        return Err(Error::field("name", "the patient's name is needed"));
    }
    let who = crate::patients::Patient {
        name,
        birth_date: q.birth_date,
        id_number: q
            .id_number
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty()),
    };
    let by = format!("{} (user {})", caller.0.display_name, caller.0.id);
    let copy = crate::patients::copy(&state.store, &state.config.data.dir, &who, &by).await?;
    event.detail(copy.summary()).record(&state.store).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"patient.zip\"",
            ),
        ],
        copy.zip,
    )
        .into_response())
}
