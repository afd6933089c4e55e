//! DICOMweb under `/dicomweb` (PS3.18) for reading studies in a browser viewer: QIDO-RS
//! searches, WADO-RS retrieval of studies, series and instances as `application/dicom`,
//! metadata as DICOM JSON with bulk data behind `BulkDataURI`s, frames in the stored
//! transfer syntax; and STOW-RS upload, kept exactly as the storage SCP keeps a C-STORE
//! and forwarded the same way. A user sees the studies their institution sent and those
//! forwarded to it (a radiologist of the supporting hospital, the county's own
//! clinicians); nobody else, and nobody adds instances to a study they cannot see.
//! Cross-origin viewers are allowed by `http.cors_origins`.
//!
//! Who may see or add what is decided in [`crate::imaging::access`]; these handlers parse
//! the request, ask it, and shape the answer as PS3.18 wants it.
//!
//! # Layout
//!
//! - `qido`: the searches, over what the caller may see.
//! - `wado`: retrieval: instances streamed as they are read, metadata, bulk data, frames.
//! - `stow`: upload, each part streamed into the relay's spool and kept or refused.
//! - here: the router, and the URLs and JSON answers the three share.

mod qido;
mod stow;
mod wado;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use duikou_imaging::dicomweb::Indexed;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::AppState;
use qido::{search_series, search_series_instances, search_studies, search_study_instances};
use stow::{store_instances, store_study_instances};
use wado::{
    bulk_data, instance_metadata, retrieve_frames, retrieve_instance, retrieve_series,
    retrieve_study, series_metadata, study_metadata,
};

/// The DICOMweb routes; with `cors_origins` (`*` for any), viewers served from those
/// origins may call them.
pub(super) fn router(cors_origins: &[String]) -> Router<AppState> {
    let routes = Router::new()
        .route(
            "/dicomweb/studies",
            get(search_studies).post(store_instances),
        )
        .route(
            "/dicomweb/studies/{study}",
            get(retrieve_study).post(store_study_instances),
        )
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
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
            get(retrieve_frames),
        );
    if cors_origins.is_empty() {
        return routes;
    }
    let origins = if cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            cors_origins
                .iter()
                .filter_map(|o| header::HeaderValue::from_str(o).ok()),
        )
    };
    routes.layer(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

/// `/dicomweb` as the client reached it, the start of the URLs an answer gives.
fn base(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if state.tls { "https" } else { "http" };
    format!("{scheme}://{host}/dicomweb")
}

/// Values as DICOM JSON (PS3.18 Annex F).
fn json(values: Vec<serde_json::Value>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/dicom+json")],
        serde_json::Value::Array(values).to_string(),
    )
        .into_response()
}

/// Where WADO-RS retrieves the instance `i`.
fn instance_url(base: &str, i: &Indexed) -> String {
    format!(
        "{base}/studies/{}/series/{}/instances/{}",
        i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid
    )
}
