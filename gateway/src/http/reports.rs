//! `/reports`: each pairing against the program's targets, as JSON or CSV.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiQuery, Id};
use crate::error::{Error, Problem};
use crate::reports::{PairingReport, Period, pairing_report};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(report))
}

/// Which period, in which format.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `2017` or `2017-Q2` (China calendar).
    period: String,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// A pairing against its targets. Administrators and coordinators.
#[utoipa::path(get, path = "/reports/pairings/{id}", tag = "reports", params(("id" = i64, Path), ReportQuery),
    responses((status = 200, content((PairingReport = "application/json"), (String = "text/csv"))),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, Error> {
    let period = Period::parse(&q.period).ok_or_else(|| {
        Error::field("period", "a year such as 2017 or a quarter such as 2017-Q2")
    })?;
    let report = pairing_report(&state.store, &caller.0, &state.config.program, id, period).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(report).into_response()),
        Some("csv") => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            report.to_csv()?,
        )
            .into_response()),
        Some(_) => Err(Error::field("format", "json or csv")),
    }
}
