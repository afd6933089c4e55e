//! WADO-RS (PS3.18 §10.4): studies, series and instances as `application/dicom` streamed
//! as they are read, their metadata as DICOM JSON, bulk data and frames; each of what the
//! caller may see (see [`access::study`] and [`access::instance`]).

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use duikou_imaging::dicomweb::{self, FrameError};
use rand::RngCore as _;

use super::{base, instance_url, json};
use crate::error::Error;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::imaging::access;
use crate::store::VisibleInstance;

/// A multipart boundary no part will contain: 24 random hex digits.
fn boundary() -> String {
    let mut b = [0_u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parts as `multipart/related; type="{kind}"`, each part of `part_type`.
fn multipart(kind: &str, part_type: &str, parts: &[Vec<u8>]) -> Response {
    let boundary = boundary();
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
    let boundary = boundary();
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

pub(super) async fn retrieve_study(
    State(state): State<AppState>,
    caller: Caller,
    Path(study): Path<String>,
) -> Result<Response, Error> {
    let all = access::study(&state.store, &caller.0, &study, None).await?;
    files(&state, &all).await
}

pub(super) async fn retrieve_series(
    State(state): State<AppState>,
    caller: Caller,
    Path((study, series)): Path<(String, String)>,
) -> Result<Response, Error> {
    let all = access::study(&state.store, &caller.0, &study, Some(&series)).await?;
    files(&state, &all).await
}

pub(super) async fn retrieve_instance(
    State(state): State<AppState>,
    caller: Caller,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Result<Response, Error> {
    let i = access::instance(&state.store, &caller.0, &study, &series, &instance).await?;
    files(&state, &[i]).await
}

/// The metadata of `instances` as DICOM JSON, bulk data behind URLs of their own.
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

pub(super) async fn study_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
) -> Result<Response, Error> {
    let all = access::study(&state.store, &caller.0, &study, None).await?;
    metadata_of(&state, &headers, all).await
}

pub(super) async fn series_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series)): Path<(String, String)>,
) -> Result<Response, Error> {
    let all = access::study(&state.store, &caller.0, &study, Some(&series)).await?;
    metadata_of(&state, &headers, all).await
}

pub(super) async fn instance_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Result<Response, Error> {
    let i = access::instance(&state.store, &caller.0, &study, &series, &instance).await?;
    metadata_of(&state, &headers, vec![i]).await
}

pub(super) async fn bulk_data(
    State(state): State<AppState>,
    caller: Caller,
    Path((study, series, instance, tag)): Path<(String, String, String, String)>,
) -> Result<Response, Error> {
    let i = access::instance(&state.store, &caller.0, &study, &series, &instance).await?;
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
pub(super) async fn retrieve_frames(
    State(state): State<AppState>,
    caller: Caller,
    Path((study, series, instance, frames)): Path<(String, String, String, String)>,
) -> Result<Response, Error> {
    let numbers = frame_numbers(&frames)?;
    let i = access::instance(&state.store, &caller.0, &study, &series, &instance).await?;
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
