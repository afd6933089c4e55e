//! DICOMweb under `/dicomweb` (PS3.18) for reading studies in a browser viewer: QIDO-RS
//! searches, WADO-RS retrieval of studies, series and instances as `application/dicom`,
//! metadata as DICOM JSON with bulk data behind `BulkDataURI`s. A user sees the studies
//! their institution sent and those forwarded to it (a radiologist of the supporting
//! hospital, the county's own clinicians); nobody else.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use duikou_imaging::dicomweb::{self, Indexed};
use rand::RngCore as _;

use super::AppState;
use super::auth::Caller;
use crate::domain::{Role, User};
use crate::error::Error;
use crate::store::VisibleInstance;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/dicomweb/studies", get(search_studies))
        .route("/dicomweb/studies/{study}", get(retrieve_study))
        .route("/dicomweb/studies/{study}/metadata", get(study_metadata))
        .route("/dicomweb/studies/{study}/series", get(search_series))
        .route(
            "/dicomweb/studies/{study}/instances",
            get(search_study_instances),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}",
            get(retrieve_series),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/metadata",
            get(series_metadata),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances",
            get(search_series_instances),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}",
            get(retrieve_instance),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/metadata",
            get(instance_metadata),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tag}",
            get(bulk_data),
        )
}

fn reader(caller: &User) -> Result<i64, Error> {
    if caller.is(Role::Radiologist) || caller.is(Role::Clinician) || caller.is(Role::Coordinator) {
        Ok(caller.institution_id)
    } else {
        Err(Error::forbidden(
            "radiologists, clinicians and coordinators of the sending or reading institution",
        ))
    }
}

fn base(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if state.tls { "https" } else { "http" };
    format!("{scheme}://{host}/dicomweb")
}

fn json(values: Vec<serde_json::Value>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/dicom+json")],
        serde_json::Value::Array(values).to_string(),
    )
        .into_response()
}

fn query(params: &HashMap<String, String>) -> Result<dicomweb::Query, Error> {
    dicomweb::Query::parse(&dicomweb::pairs(params)).map_err(|(key, why)| Error::field(key, why))
}

/// The visible instances of a study (and series); 403 when the study exists but belongs
/// to others, 404 when it does not exist.
async fn visible(
    state: &AppState,
    caller: &User,
    study: &str,
    series: Option<&str>,
) -> Result<Vec<VisibleInstance>, Error> {
    let institution = reader(caller)?;
    let found = state
        .store
        .visible_instances(institution, Some(study), series)
        .await?;
    if found.is_empty() {
        if state.store.study_exists(study).await? {
            crate::audit::record(&state.store, caller, "study", "read", None, false, None).await?;
            return Err(Error::forbidden(
                "this study was neither sent by nor to your institution",
            ));
        }
        return Err(Error::NotFound(format!("study {study}")));
    }
    crate::audit::record(&state.store, caller, "study", "read", None, true, None).await?;
    Ok(found)
}

fn indexed(all: &[VisibleInstance]) -> Vec<Indexed> {
    all.iter().map(Indexed::from).collect()
}

async fn search_studies(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Error> {
    let institution = reader(&caller.0)?;
    let q = query(&params)?;
    let all = state
        .store
        .visible_instances(institution, None, None)
        .await?;
    Ok(json(dicomweb::search_studies(
        &indexed(&all),
        &q,
        &base(&state, &headers),
    )))
}

async fn search_series(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Error> {
    let q = query(&params)?;
    let all = visible(&state, &caller.0, &study, None).await?;
    Ok(json(dicomweb::search_series(
        &indexed(&all),
        &q,
        &base(&state, &headers),
    )))
}

async fn search_study_instances(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Error> {
    let q = query(&params)?;
    let all = visible(&state, &caller.0, &study, None).await?;
    Ok(json(dicomweb::search_instances(
        &indexed(&all),
        &q,
        &base(&state, &headers),
    )))
}

async fn search_series_instances(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Error> {
    let q = query(&params)?;
    let all = visible(&state, &caller.0, &study, Some(&series)).await?;
    Ok(json(dicomweb::search_instances(
        &indexed(&all),
        &q,
        &base(&state, &headers),
    )))
}

fn spool(state: &AppState) -> std::path::PathBuf {
    state.config.imaging.spool(&state.config.data.dir)
}

/// The stored files as `multipart/related; type="application/dicom"`.
async fn files(state: &AppState, instances: &[VisibleInstance]) -> Result<Response, Error> {
    let root = spool(state);
    let mut parts = Vec::with_capacity(instances.len());
    for i in instances {
        let bytes = tokio::fs::read(root.join(&i.path))
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("reading a stored instance: {e}")))?;
        parts.push(bytes);
    }
    let mut b = [0_u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    let boundary: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let body = dicomweb::multipart(&boundary, "application/dicom", &parts);
    Ok((
        [(
            header::CONTENT_TYPE,
            format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        )],
        Body::from(body),
    )
        .into_response())
}

async fn retrieve_study(
    State(state): State<AppState>,
    caller: Caller,
    Path(study): Path<String>,
) -> Result<Response, Error> {
    let all = visible(&state, &caller.0, &study, None).await?;
    files(&state, &all).await
}

async fn retrieve_series(
    State(state): State<AppState>,
    caller: Caller,
    Path((study, series)): Path<(String, String)>,
) -> Result<Response, Error> {
    let all = visible(&state, &caller.0, &study, Some(&series)).await?;
    files(&state, &all).await
}

async fn one(
    state: &AppState,
    caller: &User,
    study: &str,
    series: &str,
    instance: &str,
) -> Result<VisibleInstance, Error> {
    visible(state, caller, study, Some(series))
        .await?
        .into_iter()
        .find(|i| i.sop_instance_uid == instance)
        .ok_or_else(|| Error::NotFound(format!("instance {instance}")))
}

async fn retrieve_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Result<Response, Error> {
    let i = one(&state, &caller.0, &study, &series, &instance).await?;
    files(&state, &[i]).await
}

async fn metadata_of(
    state: &AppState,
    headers: &HeaderMap,
    instances: Vec<VisibleInstance>,
) -> Result<Response, Error> {
    let root = spool(state);
    let base = base(state, headers);
    let values = tokio::task::spawn_blocking(move || {
        instances
            .iter()
            .map(|i| {
                let url = format!(
                    "{base}/studies/{}/series/{}/instances/{}",
                    i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid
                );
                dicomweb::metadata(&root.join(&i.path), &url)
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?
    .map_err(|e| Error::Internal(anyhow::anyhow!("reading metadata: {e}")))?;
    Ok(json(values))
}

async fn study_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
) -> Result<Response, Error> {
    let all = visible(&state, &caller.0, &study, None).await?;
    metadata_of(&state, &headers, all).await
}

async fn series_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series)): Path<(String, String)>,
) -> Result<Response, Error> {
    let all = visible(&state, &caller.0, &study, Some(&series)).await?;
    metadata_of(&state, &headers, all).await
}

async fn instance_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Result<Response, Error> {
    let i = one(&state, &caller.0, &study, &series, &instance).await?;
    metadata_of(&state, &headers, vec![i]).await
}

async fn bulk_data(
    State(state): State<AppState>,
    caller: Caller,
    Path((study, series, instance, tag)): Path<(String, String, String, String)>,
) -> Result<Response, Error> {
    let i = one(&state, &caller.0, &study, &series, &instance).await?;
    let path = spool(&state).join(&i.path);
    let value = tokio::task::spawn_blocking(move || dicomweb::bulk_data(&path, &tag))
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(|e| Error::field("tag", e))?
        .ok_or_else(|| Error::NotFound("that attribute".into()))?;
    let boundary = "duikou-bulk";
    let body = dicomweb::multipart(boundary, "application/octet-stream", &[value]);
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            format!("multipart/related; type=\"application/octet-stream\"; boundary={boundary}"),
        )],
        Body::from(body),
    )
        .into_response())
}
