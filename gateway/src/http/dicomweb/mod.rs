//! DICOMweb under `/dicomweb` (PS3.18) for reading studies in a browser viewer: QIDO-RS
//! searches, WADO-RS retrieval of studies, series and instances as `application/dicom`,
//! metadata as DICOM JSON with bulk data behind `BulkDataURI`s, frames in the stored
//! transfer syntax; and STOW-RS upload, kept exactly as the storage SCP keeps a C-STORE
//! and forwarded the same way. A user sees the studies their institution sent and those
//! forwarded to it (a radiologist of the supporting hospital, the county's own
//! clinicians); nobody else, and nobody adds instances to a study they cannot see.
//! Cross-origin viewers are allowed by `http.cors_origins`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use duikou_imaging::dicomweb::{self, FrameError, Indexed};
use duikou_imaging::dimse::status;
use duikou_imaging::scp::{self, Archive as _};
use duikou_imaging::spool::Sender;
use duikou_imaging::stow::{self, Outcome};
use rand::RngCore as _;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::AppState;
use super::auth::Caller;
use crate::domain::User;
use crate::error::Error;
use crate::imaging::access;
use crate::store::VisibleInstance;

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

/// The visible instances of a study (and series); see [`access::study`].
async fn visible(
    state: &AppState,
    caller: &User,
    study: &str,
    series: Option<&str>,
) -> Result<Vec<VisibleInstance>, Error> {
    Ok(access::study(&state.store, caller, study, series).await?)
}

fn indexed(all: Vec<VisibleInstance>) -> Vec<Indexed> {
    all.into_iter().map(|v| v.indexed).collect()
}

/// The instances a search runs over (see [`access::searched`]).
async fn scope(
    state: &AppState,
    caller: &User,
    study: Option<&str>,
    series: Option<&str>,
) -> Result<Vec<Indexed>, Error> {
    Ok(indexed(
        access::searched(&state.store, caller, study, series).await?,
    ))
}

async fn search_studies(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Error> {
    let q = query(&params)?;
    let all = scope(&state, &caller.0, None, None).await?;
    Ok(json(dicomweb::search_studies(
        &all,
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
    let all = scope(&state, &caller.0, Some(&study), None).await?;
    Ok(json(dicomweb::search_series(
        &all,
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
    let all = scope(&state, &caller.0, Some(&study), None).await?;
    Ok(json(dicomweb::search_instances(
        &all,
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
    let all = scope(&state, &caller.0, Some(&study), Some(&series)).await?;
    Ok(json(dicomweb::search_instances(
        &all,
        &q,
        &base(&state, &headers),
    )))
}

/// The calling AE title recorded for instances uploaded over STOW-RS.
const STOW_RS: &str = "STOW-RS";

/// Parts as `multipart/related; type="{kind}"`, each part of `part_type`.
fn multipart(kind: &str, part_type: &str, parts: &[Vec<u8>]) -> Response {
    let mut b = [0_u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    let boundary: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let body = dicomweb::multipart(&boundary, part_type, parts);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            format!("multipart/related; type=\"{kind}\"; boundary={boundary}"),
        )],
        Body::from(body),
    )
        .into_response()
}

/// The bytes of a retrieval sent at a time, and how many such pieces wait between the
/// reader and the connection: a study of any size takes at most about 4 MiB of memory.
const PIECE: usize = 1 << 20;
const PIECES_AHEAD: usize = 3;

/// The stored files as `multipart/related; type="application/dicom"`, streamed instance
/// by instance in pieces of [`PIECE`] bytes as the connection takes them. An instance
/// that cannot be read once the answer has begun ends the stream with an error, so the
/// answer is cut short rather than silently incomplete.
async fn files(state: &AppState, instances: &[VisibleInstance]) -> Result<Response, Error> {
    let spool = &state.relay.spool;
    let stored: Vec<_> = instances
        .iter()
        .map(|i| spool.stored(&i.path, i.byte_offset, i.size))
        .collect();
    let mut b = [0_u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    let boundary: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(PIECES_AHEAD);
    let marker = boundary.clone();
    // The pieces are read on the blocking pool one at a time and sent from a task, so a
    // client that stops reading holds a waiting task, never a blocking thread.
    tokio::spawn(async move {
        for instance in stored {
            let head = format!("--{marker}\r\nContent-Type: application/dicom\r\n\r\n");
            if tx.send(Ok(Bytes::from(head))).await.is_err() {
                return;
            }
            let mut reader = match tokio::task::spawn_blocking(move || instance.open()).await {
                Ok(Ok(reader)) => reader,
                Ok(Err(e)) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
            };
            loop {
                let read = tokio::task::spawn_blocking(move || {
                    use std::io::Read as _;
                    let mut piece = vec![0_u8; PIECE];
                    let mut filled = 0;
                    while filled < PIECE {
                        match reader.read(&mut piece[filled..]) {
                            Ok(0) => break,
                            Ok(n) => filled += n,
                            Err(e) => return (reader, Err(e)),
                        }
                    }
                    piece.truncate(filled);
                    (reader, Ok(piece))
                })
                .await;
                let piece = match read {
                    Ok((back, Ok(piece))) => {
                        reader = back;
                        piece
                    }
                    Ok((_, Err(e))) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e))).await;
                        return;
                    }
                };
                if piece.is_empty() {
                    break;
                }
                if tx.send(Ok(Bytes::from(piece))).await.is_err() {
                    // The client went away.
                    return;
                }
            }
            if tx.send(Ok(Bytes::from_static(b"\r\n"))).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Ok(Bytes::from(format!("--{marker}--\r\n")))).await;
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        )],
        Body::from_stream(stream),
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
        .find(|i| i.indexed.sop_instance_uid == instance)
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

fn instance_url(base: &str, i: &Indexed) -> String {
    format!(
        "{base}/studies/{}/series/{}/instances/{}",
        i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid
    )
}

async fn metadata_of(
    state: &AppState,
    headers: &HeaderMap,
    instances: Vec<VisibleInstance>,
) -> Result<Response, Error> {
    let spool = state.relay.spool.clone();
    let base = base(state, headers);
    let values = tokio::task::spawn_blocking(move || {
        instances
            .iter()
            .map(|i| {
                let stored = spool.stored(&i.path, i.byte_offset, i.size);
                dicomweb::metadata(&stored, &instance_url(&base, &i.indexed))
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
    let stored = state.relay.spool.stored(&i.path, i.byte_offset, i.size);
    let value = tokio::task::spawn_blocking(move || dicomweb::bulk_data(&stored, &tag))
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(|e| Error::field("tag", e))?
        .ok_or_else(|| Error::NotFound("that attribute".into()))?;
    Ok(multipart(
        "application/octet-stream",
        "application/octet-stream",
        &[value],
    ))
}

/// Frame numbers as the path gives them: `1` or `1,3,5`.
fn frame_numbers(list: &str) -> Result<Vec<u32>, Error> {
    list.split(',')
        .map(|n| n.trim().parse::<u32>().ok().filter(|&n| n >= 1))
        .collect::<Option<Vec<_>>>()
        .filter(|v| !v.is_empty() && v.len() <= 10_000)
        .ok_or_else(|| Error::field("frames", "frame numbers from 1, separated by commas"))
}

/// WADO-RS frames in the stored transfer syntax (named in each part's content type).
async fn retrieve_frames(
    State(state): State<AppState>,
    caller: Caller,
    Path((study, series, instance, frames)): Path<(String, String, String, String)>,
) -> Result<Response, Error> {
    let numbers = frame_numbers(&frames)?;
    let i = one(&state, &caller.0, &study, &series, &instance).await?;
    let stored = state.relay.spool.stored(&i.path, i.byte_offset, i.size);
    let (ts, frames) = tokio::task::spawn_blocking(move || dicomweb::frames(&stored, &numbers))
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(|e| match e {
            FrameError::NoPixelData => Error::NotFound("pixel data in that instance".into()),
            FrameError::OutOfRange(n) => Error::NotFound(format!("frame {n}")),
            FrameError::Unreadable(why) => {
                Error::Internal(anyhow::anyhow!("reading frames: {why}"))
            }
        })?;
    Ok(multipart(
        "application/octet-stream",
        &format!("application/octet-stream; transfer-syntax={ts}"),
        &frames,
    ))
}

/// STOW-RS: `POST /dicomweb/studies`.
async fn store_instances(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Error> {
    stow_request(&state, &caller.0, &headers, None, body).await
}

/// STOW-RS into one study: `POST /dicomweb/studies/{study}`; instances of other studies
/// fail.
async fn store_study_instances(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
    body: Body,
) -> Result<Response, Error> {
    stow_request(&state, &caller.0, &headers, Some(study), body).await
}

/// Whether the caller's institution may add instances to `study` (see
/// [`crate::imaging::may_add_to`]).
async fn may_add_to(state: &AppState, institution: i64, study: &str) -> Result<bool, Error> {
    Ok(crate::imaging::may_add_to(&state.store, institution, study).await?)
}

/// A part that failed with `status`, before its instance was known.
fn failed(status: u16) -> Outcome {
    Outcome {
        sop_class_uid: String::new(),
        sop_instance_uid: String::new(),
        status,
        retrieve_url: None,
    }
}

/// Who is storing, and where.
struct Uploader<'a> {
    state: &'a AppState,
    caller: &'a User,
    institution: i64,
    study: Option<String>,
    base: String,
    /// Studies checked already, and whether the caller may add to them.
    allowed: HashMap<String, bool>,
    /// Where the uploaded instances go, once the first is kept.
    route: Option<crate::imaging::Route>,
    /// Bytes of the body arrived, and handed on by the multipart parser (see
    /// [`UNPARSED_AT_MOST`]).
    arrived: Arc<AtomicU64>,
    handed: Arc<AtomicU64>,
}

/// Bytes of a STOW-RS body that may arrive beyond what the multipart parser has handed
/// on: the parser buffers a part's headers, and anything before the first boundary,
/// until they end, so headers that never end would otherwise be held whole.
const UNPARSED_AT_MOST: u64 = 1 << 20;

async fn stow_request(
    state: &AppState,
    caller: &User,
    headers: &HeaderMap,
    study: Option<String>,
    body: Body,
) -> Result<Response, Error> {
    // A request longer than the limit is refused before any of it is kept.
    let limit = state.config.imaging.stow_max_request_bytes;
    let stated = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if stated.is_some_and(|n| n > limit) {
        super::extract::drain(body).await;
        let mut refused =
            Error::PayloadTooLarge(usize::try_from(limit).unwrap_or(usize::MAX)).into_response();
        // What was not drained is still on the connection.
        refused.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return Ok(refused);
    }
    match admit_upload(state, caller, headers, study).await {
        Ok((boundary, up)) => up.upload(boundary, body).await,
        Err(e) => {
            super::extract::drain(body).await;
            Err(e)
        }
    }
}

/// Checks who uploads what, where, before any part is read.
async fn admit_upload<'a>(
    state: &'a AppState,
    caller: &'a User,
    headers: &HeaderMap,
    study: Option<String>,
) -> Result<(String, Uploader<'a>), Error> {
    let institution = access::reader(caller)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = stow::boundary(content_type).map_err(|_| {
        Error::UnsupportedMediaType("multipart/related; type=\"application/dicom\"")
    })?;
    let mut up = Uploader {
        state,
        caller,
        institution,
        study,
        base: base(state, headers),
        allowed: HashMap::new(),
        route: None,
        arrived: Arc::default(),
        handed: Arc::default(),
    };
    if let Some(study) = up.study.clone() {
        if !may_add_to(state, institution, &study).await? {
            crate::audit::record(&state.store, caller, "study", "store", None, false, None).await?;
            return Err(Error::forbidden(
                "this study was neither sent by nor to your institution",
            ));
        }
        up.allowed.insert(study, true);
    }
    Ok((boundary, up))
}

impl Uploader<'_> {
    /// Stores each part of `body`, and answers with what was stored and what failed.
    async fn upload(mut self, boundary: String, body: Body) -> Result<Response, Error> {
        let imaging = &self.state.config.imaging;
        // A body without a stated length is cut off at the same limit as it streams.
        let constraints = multer::Constraints::new()
            .size_limit(multer::SizeLimit::new().whole_stream(imaging.stow_max_request_bytes));
        let (arrived, handed) = (self.arrived.clone(), self.handed.clone());
        type BoxError = Box<dyn std::error::Error + Send + Sync>;
        let stream = futures_util::StreamExt::map(
            body.into_data_stream(),
            move |chunk| -> Result<Bytes, BoxError> {
                let chunk = chunk.map_err(|e| Box::new(e) as BoxError)?;
                let n = chunk.len() as u64;
                let total = arrived.fetch_add(n, Ordering::Relaxed) + n;
                if total > handed.load(Ordering::Relaxed) + UNPARSED_AT_MOST {
                    return Err(
                        "a part's headers, or what precedes the first part, go on without end"
                            .into(),
                    );
                }
                Ok(chunk)
            },
        );
        let mut parts = multer::Multipart::with_constraints(stream, boundary, constraints);
        let mut outcomes = Vec::new();
        // Whether the whole body was read: if not, the connection cannot carry another
        // request, and the answer says so.
        let mut complete = false;
        loop {
            let field = match parts.next_field().await {
                Ok(Some(field)) => {
                    // Everything before the part's data has been parsed.
                    self.handed
                        .store(self.arrived.load(Ordering::Relaxed), Ordering::Relaxed);
                    field
                }
                Ok(None) => {
                    complete = true;
                    break;
                }
                Err(multer::Error::StreamSizeExceeded { .. }) => {
                    outcomes.push(failed(status::OUT_OF_RESOURCES));
                    break;
                }
                Err(e) => return Err(Error::field("body", format!("malformed multipart: {e}"))),
            };
            // Parts beyond the limit are not read: the first fails, and the answer
            // lists what was kept before it.
            if outcomes.len() == imaging.stow_max_parts {
                outcomes.push(failed(status::OUT_OF_RESOURCES));
                break;
            }
            let (outcome, go_on) = self.part(field).await?;
            outcomes.push(outcome);
            if !go_on {
                break;
            }
        }
        // What is left unread is read and dropped, up to a bound, so that a client still
        // sending gets the answer instead of a reset connection.
        let mut drained = 0;
        while !complete && drained <= super::extract::DRAIN_AT_MOST {
            match parts.next_field().await {
                Ok(None) => complete = true,
                Ok(Some(mut rest)) => {
                    while let Ok(Some(chunk)) = rest.chunk().await {
                        self.handed.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        drained += chunk.len();
                        if drained > super::extract::DRAIN_AT_MOST {
                            break;
                        }
                    }
                }
                Err(_) => break,
            }
        }
        if outcomes.is_empty() {
            return Err(Error::field("body", "no application/dicom parts"));
        }
        let stored = outcomes
            .iter()
            .filter(|o| o.status == status::SUCCESS)
            .count();
        crate::audit::record(
            &self.state.store,
            self.caller,
            "study",
            "store",
            None,
            true,
            Some(format!(
                "{stored} instances stored, {} failed",
                outcomes.len() - stored
            )),
        )
        .await?;
        let code = if stored == outcomes.len() {
            StatusCode::OK
        } else if stored == 0 {
            StatusCode::CONFLICT
        } else {
            StatusCode::ACCEPTED
        };
        let study_url = self
            .study
            .as_ref()
            .map(|s| format!("{}/studies/{s}", self.base));
        let mut response = (
            code,
            [(header::CONTENT_TYPE, "application/dicom+json")],
            stow::response(study_url.as_deref(), &outcomes).to_string(),
        )
            .into_response();
        if !complete {
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        Ok(response)
    }

    /// Streams one part into the spool and keeps it, or says why not; and whether the
    /// rest of the request may still be read (not once it passed its length limit).
    async fn part(&mut self, field: multer::Field<'static>) -> Result<(Outcome, bool), Error> {
        let mut cut_off = false;
        let outcome = self.part_within(field, &mut cut_off).await?;
        Ok((outcome, !cut_off))
    }

    async fn part_within(
        &mut self,
        mut field: multer::Field<'static>,
        cut_off: &mut bool,
    ) -> Result<Outcome, Error> {
        let dicom = field
            .content_type()
            .is_none_or(|t| t.essence_str().eq_ignore_ascii_case("application/dicom"));
        if !dicom {
            return Ok(failed(status::CANNOT_UNDERSTAND));
        }
        let relay = &self.state.relay;
        let sender = Sender {
            institution_id: self.institution,
            calling_ae: STOW_RS.into(),
        };
        let Ok(mut incoming) = relay.spool.begin(sender).await else {
            return Ok(failed(status::OUT_OF_RESOURCES));
        };
        let limit = self.state.config.imaging.max_instance_bytes;
        let mut failure = None;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    self.handed.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if failure.is_some() {
                        continue;
                    }
                    if incoming.written() + chunk.len() as u64 > limit
                        || incoming.write(&chunk).is_err()
                    {
                        failure = Some(status::OUT_OF_RESOURCES);
                    }
                }
                Ok(None) => break,
                Err(multer::Error::StreamSizeExceeded { .. }) => {
                    *cut_off = true;
                    incoming.discard().await;
                    return Ok(failed(status::OUT_OF_RESOURCES));
                }
                Err(e) => {
                    incoming.discard().await;
                    return Err(Error::field("body", format!("malformed multipart: {e}")));
                }
            }
        }
        if let Some(code) = failure {
            incoming.discard().await;
            return Ok(failed(code));
        }
        // Synced once it is in place (see `scp::keep`); read back meanwhile.
        if incoming.flush().is_err() {
            incoming.discard().await;
            return Ok(failed(status::OUT_OF_RESOURCES));
        }
        let stored = incoming.stored();
        let checked = tokio::task::spawn_blocking(move || {
            let meta = stow::meta(&stored).map_err(|code| (stow::Meta::default(), code))?;
            match scp::inspect(
                &stored,
                &meta.sop_class_uid,
                &meta.sop_instance_uid,
                &meta.transfer_syntax,
            ) {
                Ok(record) => Ok((meta, record)),
                Err(code) => Err((meta, code)),
            }
        })
        .await
        .unwrap_or_else(|_| Err((stow::Meta::default(), status::CANNOT_UNDERSTAND)));
        let (meta, mut record) = match checked {
            Ok(checked) => checked,
            Err((meta, code)) => {
                incoming.discard().await;
                return Ok(Outcome {
                    sop_class_uid: meta.sop_class_uid,
                    sop_instance_uid: meta.sop_instance_uid,
                    ..failed(code)
                });
            }
        };
        let refusal = match self.admit(&record.study_instance_uid).await {
            Ok(refusal) => refusal,
            Err(e) => {
                incoming.discard().await;
                return Err(e);
            }
        };
        let code = match refusal {
            Some(code) => {
                incoming.discard().await;
                code
            }
            None => {
                record.calling_ae = STOW_RS.into();
                record.institution_id = self.institution;
                let indexed = Indexed {
                    study_instance_uid: record.study_instance_uid.clone(),
                    series_instance_uid: record.series_instance_uid.clone(),
                    sop_instance_uid: record.sop_instance_uid.clone(),
                    ..Indexed::default()
                };
                if self.route.is_none() {
                    self.route = Some(relay.archive.route(self.institution).await);
                }
                let route = self.route.as_ref().expect("just set");
                let code = scp::keep(relay.archive.as_ref(), route, incoming, record).await;
                if code == status::SUCCESS {
                    return Ok(Outcome {
                        sop_class_uid: meta.sop_class_uid,
                        sop_instance_uid: meta.sop_instance_uid,
                        status: code,
                        retrieve_url: Some(instance_url(&self.base, &indexed)),
                    });
                }
                code
            }
        };
        Ok(Outcome {
            sop_class_uid: meta.sop_class_uid,
            sop_instance_uid: meta.sop_instance_uid,
            ..failed(code)
        })
    }

    /// None when an instance of `study` may be added; else the failure reason.
    async fn admit(&mut self, study: &str) -> Result<Option<u16>, Error> {
        if self.study.as_deref().is_some_and(|s| s != study) {
            return Ok(Some(status::DATA_SET_DOES_NOT_MATCH));
        }
        let allowed = match self.allowed.get(study) {
            Some(&allowed) => allowed,
            None => {
                let allowed = may_add_to(self.state, self.institution, study).await?;
                self.allowed.insert(study.to_owned(), allowed);
                if !allowed {
                    crate::audit::record(
                        &self.state.store,
                        self.caller,
                        "study",
                        "store",
                        None,
                        false,
                        None,
                    )
                    .await?;
                }
                allowed
            }
        };
        Ok((!allowed).then_some(stow::reason::NOT_AUTHORIZED))
    }
}
