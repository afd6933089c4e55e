//! QIDO-RS (PS3.18 §10.6): searches for studies, series and instances among those the
//! caller may see, answered as DICOM JSON.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use duikou_imaging::dicomweb::{self, Indexed};

use super::{base, json};
use crate::domain::User;
use crate::error::Error;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::imaging::access;

/// A search's query parameters: attribute matches and paging.
fn query(params: &HashMap<String, String>) -> Result<dicomweb::Query, Error> {
    dicomweb::Query::parse(&dicomweb::pairs(params)).map_err(|(key, why)| Error::field(key, why))
}

/// What a search lists of the instances it runs over: studies, series or instances.
type Level = fn(&[Indexed], &dicomweb::Query, &str) -> Vec<serde_json::Value>;

/// A search at `level` over the instances the caller may see, or those of one study (and
/// series) as [`access::searched`] finds them.
async fn search(
    state: &AppState,
    caller: &User,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    study: Option<&str>,
    series: Option<&str>,
    level: Level,
) -> Result<Response, Error> {
    let q = query(params)?;
    let all = access::searched(&state.store, caller, study, series).await?;
    let all: Vec<Indexed> = all.into_iter().map(|v| v.indexed).collect();
    let answer = level(&all, &q, &base(state, headers));
    // What was asked, in a stable order; the patient, when the query names one.
    let mut asked: Vec<_> = params.iter().collect();
    asked.sort();
    let asked = asked
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let patient = ["PatientName", "00100010", "PatientID", "00100020"]
        .iter()
        .find_map(|k| params.get(*k))
        .map(String::as_str)
        .filter(|p| !p.is_empty());
    access::searched_audit(
        &state.store,
        caller,
        [study, series],
        &asked,
        patient,
        &all,
        answer.len(),
    )
    .await?;
    Ok(json(answer))
}

pub(super) async fn search_studies(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Error> {
    let level = dicomweb::search_studies;
    search(&state, &caller.0, &headers, &params, None, None, level).await
}

pub(super) async fn search_series(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Error> {
    let level = dicomweb::search_series;
    search(
        &state,
        &caller.0,
        &headers,
        &params,
        Some(&study),
        None,
        level,
    )
    .await
}

pub(super) async fn search_study_instances(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Error> {
    let level = dicomweb::search_instances;
    search(
        &state,
        &caller.0,
        &headers,
        &params,
        Some(&study),
        None,
        level,
    )
    .await
}

pub(super) async fn search_series_instances(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Error> {
    let (study, series) = (Some(study.as_str()), Some(series.as_str()));
    let level = dicomweb::search_instances;
    search(&state, &caller.0, &headers, &params, study, series, level).await
}
