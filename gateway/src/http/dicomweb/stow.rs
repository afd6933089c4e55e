//! STOW-RS (PS3.18 §10.5): instances uploaded as `multipart/related`, each part streamed
//! into the relay's spool as it arrives, checked, and kept exactly as the storage SCP keeps
//! a C-STORE (and forwarded the same way), or refused with its reason in the answer. Who
//! may add to which study is decided in [`access::add_to`]; the bounds on what a client
//! may send without end are kept here, where the body is read.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use duikou_imaging::dicomweb::Indexed;
use duikou_imaging::dimse::status;
use duikou_imaging::scp::{self, Archive as _};
use duikou_imaging::spool::Sender;
use duikou_imaging::stow::{self, Outcome};

use super::{base, instance_url};
use crate::domain::User;
use crate::error::Error;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::extract;
use crate::imaging::access;
use crate::rules;

/// The calling AE title recorded for instances uploaded over STOW-RS.
const STOW_RS: &str = "STOW-RS";

/// STOW-RS: `POST /dicomweb/studies`.
pub(super) async fn store_instances(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Error> {
    stow_request(&state, &caller.0, &headers, None, body).await
}

/// STOW-RS into one study: `POST /dicomweb/studies/{study}`; instances of other studies
/// fail.
pub(super) async fn store_study_instances(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
    body: Body,
) -> Result<Response, Error> {
    stow_request(&state, &caller.0, &headers, Some(study), body).await
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
        extract::drain(body).await;
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
            extract::drain(body).await;
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
        access::add_to(&state.store, caller, &study).await?;
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
        while !complete && drained <= extract::DRAIN_AT_MOST {
            match parts.next_field().await {
                Ok(None) => complete = true,
                Ok(Some(mut rest)) => {
                    while let Ok(Some(chunk)) = rest.chunk().await {
                        self.handed.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        drained += chunk.len();
                        if drained > extract::DRAIN_AT_MOST {
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
        access::uploaded(
            &self.state.store,
            self.caller,
            stored,
            outcomes.len() - stored,
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
                // Each study is asked about once a request, so a refusal is audited once
                // however many of its parts follow.
                let allowed = match access::add_to(&self.state.store, self.caller, study).await {
                    Ok(()) => true,
                    Err(rules::Error::Forbidden(_)) => false,
                    Err(e) => return Err(e.into()),
                };
                self.allowed.insert(study.to_owned(), allowed);
                allowed
            }
        };
        Ok((!allowed).then_some(stow::reason::NOT_AUTHORIZED))
    }
}
