//! `/notifications`: what waits for the caller. Each person's notices (written with the
//! change they tell of), marked read one by one or all at once; a summary with the counts
//! the pages show (the bell, the inbox, the worklist, the opinions to acknowledge); and
//! the same summary as a stream of Server-Sent Events, so that an open page learns of a
//! new request or opinion without reloading.
//!
//! The stream reads the summary every [`POLL`] and sends it when it changed, which works
//! the same whichever gateway process wrote the notice; it ends after [`STREAM_FOR`] and
//! the browser's `EventSource` reconnects (after the `retry` it is told), logging in
//! again, so that a stream outlives neither a session nor a shutdown by long.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Caller;
use super::extract::{ApiQuery, Id};
use super::{AppState, page};
use crate::booking::RequestKind;
use crate::domain::{Role, User};
use crate::error::{Error, Problem};
use crate::store::{Notification, Store};

/// How often a stream reads the summary.
const POLL: Duration = Duration::from_secs(2);
/// How long a stream lasts before the browser reconnects.
const STREAM_FOR: Duration = Duration::from_secs(60);

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(summary))
        .routes(routes!(stream_summary))
        .routes(routes!(mark_read))
        .routes(routes!(mark_all_read))
}

/// Which notices.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// Only those not yet read.
    unread: Option<bool>,
    /// Only those older than this notice, to page back.
    before: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<i64>,
}

/// The caller's notices, newest first.
#[utoipa::path(get, path = "/notifications", tag = "notifications", params(NotificationQuery),
    responses((status = 200, body = Vec<Notification>), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> Result<Json<Vec<Notification>>, Error> {
    let (limit, _) = page(q.limit, None)?;
    Ok(Json(
        state
            .store
            .notifications(caller.0.id, q.unread.unwrap_or(false), q.before, limit)
            .await?,
    ))
}

/// What waits for a person, as the pages count it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Summary {
    /// Unread notices.
    pub unread: i64,
    /// The newest notice's id (0 when none): a page that saw a lower one has news.
    pub newest: i64,
    /// Requests submitted to the caller's institution, awaiting a decision, of the kinds
    /// the caller answers (coordinators all; clinicians consultations and pathology;
    /// radiologists imaging reads).
    pub inbox: i64,
    /// Imaging reads accepted at the caller's institution and not yet signed (for
    /// radiologists and coordinators).
    pub reads: i64,
    /// Signed opinions of the caller's own requests, to acknowledge.
    pub opinions: i64,
}

/// The kinds of request `user` answers, as `,consultation,…,`.
fn answered_kinds(user: &User) -> String {
    let mut kinds = Vec::new();
    let all = [
        RequestKind::Consultation,
        RequestKind::ImagingRead,
        RequestKind::PathologyRead,
    ];
    for kind in all {
        if user.is(Role::Coordinator) || user.is(crate::booking::answering_role(kind)) {
            kinds.push(kind.as_str());
        }
    }
    format!(",{},", kinds.join(","))
}

async fn summary_of(store: &Store, user: &User) -> Result<Summary, Error> {
    let (unread, newest) = store.unread_notifications(user.id).await?;
    let (inbox, reads, opinions) = store
        .waiting(user.id, user.institution_id, &answered_kinds(user))
        .await?;
    Ok(Summary {
        unread,
        newest,
        inbox,
        reads,
        opinions,
    })
}

/// What waits for the caller: unread notices and the counts of the inbox, the worklist
/// and the opinions to acknowledge.
#[utoipa::path(get, path = "/notifications/summary", tag = "notifications",
    responses((status = 200, body = Summary), (status = 401, body = Problem)))]
async fn summary(State(state): State<AppState>, caller: Caller) -> Result<Json<Summary>, Error> {
    Ok(Json(summary_of(&state.store, &caller.0).await?))
}

/// The summary as Server-Sent Events (`text/event-stream`): a `summary` event at once and
/// whenever it changes. The stream ends after a minute; `EventSource` reconnects.
#[utoipa::path(get, path = "/notifications/stream", tag = "notifications",
    responses((status = 200, description = "`summary` events, each a Summary as JSON", content_type = "text/event-stream"),
              (status = 401, body = Problem)))]
async fn stream_summary(
    State(state): State<AppState>,
    caller: Caller,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let user = caller.0;
    let until = tokio::time::Instant::now() + STREAM_FOR;
    // (store, user, the summary sent last); the first is sent at once.
    let events = stream::unfold(
        (state.store, user, None::<Summary>),
        move |(store, user, last)| async move {
            loop {
                if last.is_some() {
                    if tokio::time::Instant::now() + POLL > until {
                        return None;
                    }
                    tokio::time::sleep(POLL).await;
                }
                // A failed read ends the stream; the browser reconnects.
                let now = summary_of(&store, &user).await.ok()?;
                if last.as_ref() != Some(&now) {
                    let event = Event::default()
                        .event("summary")
                        .retry(Duration::from_secs(3))
                        .json_data(&now)
                        .ok()?;
                    return Some((Ok(event), (store, user, Some(now))));
                }
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Marks one of the caller's notices read.
#[utoipa::path(post, path = "/notifications/{id}/read", tag = "notifications", params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<StatusCode, Error> {
    if !state
        .store
        .mark_notifications_read(caller.0.id, Some(id))
        .await?
    {
        return Err(Error::NotFound(format!("notification {id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Marks all the caller's notices read.
#[utoipa::path(post, path = "/notifications/read", tag = "notifications",
    responses((status = 204), (status = 401, body = Problem)))]
async fn mark_all_read(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, Error> {
    state
        .store
        .mark_notifications_read(caller.0.id, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
