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

use std::sync::atomic::{AtomicUsize, Ordering};
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
use super::extract::{ApiJson, ApiQuery, Id};
use super::{AppState, page};
use crate::booking::RequestKind;
use crate::domain::{Role, User};
use crate::error::{Error, Problem};
use crate::store::{Delivery, Notification, Store};

/// How often a stream reads the summary.
const POLL: Duration = Duration::from_secs(2);
/// How long a stream lasts before the browser reconnects.
const STREAM_FOR: Duration = Duration::from_secs(60);
/// Streams open now in this process; `notify.max_streams` bounds them: more are refused
/// with 503 and `Retry-After` (`EventSource` tries again), so that open pages cannot
/// multiply the database's reads without bound.
static STREAMS: AtomicUsize = AtomicUsize::new(0);

/// One open stream, counted while it lives.
struct Counted;

impl Counted {
    fn take(max: usize) -> Option<Self> {
        STREAMS
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        STREAMS.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(summary))
        .routes(routes!(stream_summary))
        .routes(routes!(mark_read))
        .routes(routes!(mark_all_read))
        .routes(routes!(email_choice, set_email_choice))
        .routes(routes!(chat_robot, set_chat_robot, remove_chat_robot))
        .routes(routes!(deliveries))
        .routes(routes!(webhook))
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
              (status = 401, body = Problem), (status = 503, body = Problem)))]
async fn stream_summary(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, Error> {
    let counted = Counted::take(state.config.notify.max_streams).ok_or(Error::TooManyStreams)?;
    let user = caller.0;
    let until = tokio::time::Instant::now() + STREAM_FOR;
    // (store, user, the summary sent last); the first is sent at once.
    let events = stream::unfold(
        (state.store, user, None::<Summary>, counted),
        move |(store, user, last, counted)| async move {
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
                    return Some((Ok(event), (store, user, Some(now), counted)));
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
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

/// How a person is told besides the pages.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailChoice {
    /// Their e-mail address.
    pub email: Option<String>,
    /// Whether they want each notice by e-mail too.
    pub email_notices: bool,
    /// Whether this gateway sends e-mail at all (an SMTP server is configured).
    pub email_available: bool,
}

/// A person's choice of e-mail.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChoiceInput {
    /// Their e-mail address; null to remove it.
    pub email: Option<String>,
    /// Whether they want each notice by e-mail too (needs an address).
    pub email_notices: bool,
}

async fn choice_of(state: &AppState, user_id: i64) -> Result<EmailChoice, Error> {
    let (email, email_notices) = state
        .store
        .email_choice(user_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {user_id}")))?;
    Ok(EmailChoice {
        email,
        email_notices,
        email_available: state.config.notify.smtp_url.is_some(),
    })
}

/// Whether the caller has notices by e-mail too, and at which address.
#[utoipa::path(get, path = "/me/notices", tag = "notifications",
    responses((status = 200, body = EmailChoice), (status = 401, body = Problem)))]
async fn email_choice(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<EmailChoice>, Error> {
    Ok(Json(choice_of(&state, caller.0.id).await?))
}

/// The caller chooses notices by e-mail (no patient data: what happened, the request
/// number and a link) and the address.
#[utoipa::path(put, path = "/me/notices", tag = "notifications", request_body = EmailChoiceInput,
    responses((status = 200, body = EmailChoice), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn set_email_choice(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<EmailChoiceInput>,
) -> Result<Json<EmailChoice>, Error> {
    let email = input
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    if let Some(e) = email {
        if e.len() > 254 || e.parse::<lettre::Address>().is_err() {
            return Err(Error::field(
                "email",
                "an e-mail address such as wang@example.org",
            ));
        }
    }
    if input.email_notices {
        if email.is_none() {
            return Err(Error::field("email", "notices by e-mail need an address"));
        }
        if state.config.notify.smtp_url.is_none() {
            return Err(Error::field(
                "email_notices",
                "this gateway sends no e-mail: no SMTP server is configured",
            ));
        }
    }
    state
        .store
        .set_email_choice(caller.0.id, email, input.email_notices)
        .await?;
    Ok(Json(choice_of(&state, caller.0.id).await?))
}

/// The kinds of chat group robot.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    /// 企业微信 group robot.
    Wecom,
    /// 钉钉 custom robot.
    Dingtalk,
    /// 飞书 custom bot.
    Feishu,
}

impl ChatKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Wecom => "wecom",
            Self::Dingtalk => "dingtalk",
            Self::Feishu => "feishu",
        }
    }
}

/// An institution's chat group robot, told of urgent requests submitted to it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRobotInput {
    /// `wecom`, `dingtalk` or `feishu`.
    pub kind: ChatKind,
    /// The robot's incoming-webhook URL.
    pub url: String,
    /// The signing secret (DingTalk and Feishu "signature" security), if set.
    pub secret: Option<String>,
}

/// An institution's chat group robot as shown (the secret never).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatRobot {
    /// `wecom`, `dingtalk` or `feishu`.
    pub kind: String,
    /// The incoming-webhook URL.
    pub url: String,
    /// Whether messages are signed with a secret.
    pub signed: bool,
}

/// The institution's chat group robot: its coordinators or an administrator.
#[utoipa::path(get, path = "/institutions/{id}/chat-robot", tag = "notifications", params(("id" = i64, Path)),
    responses((status = 200, body = ChatRobot), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn chat_robot(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<ChatRobot>, Error> {
    crate::registry::managed(&state.store, &caller.0, id, "see its chat group robot").await?;
    let (kind, url, signed) = state
        .store
        .chat_robot(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("a chat group robot of institution {id}")))?;
    Ok(Json(ChatRobot { kind, url, signed }))
}

/// Sets the institution's chat group robot, told of urgent requests submitted to the
/// institution: its coordinators or an administrator. Where the URL leads is checked
/// against the outbound policy now and at every message.
#[utoipa::path(put, path = "/institutions/{id}/chat-robot", tag = "notifications", params(("id" = i64, Path)),
    request_body = ChatRobotInput,
    responses((status = 204), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn set_chat_robot(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<ChatRobotInput>,
) -> Result<StatusCode, Error> {
    crate::registry::managed(&state.store, &caller.0, id, "set its chat group robot").await?;
    let url = input.url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000 {
        return Err(Error::field("url", "an http:// or https:// URL"));
    }
    let policy = state.config.outbound_policy();
    crate::notify::check_url(url, &policy).map_err(|e| Error::field("url", e))?;
    let secret = input
        .secret
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if secret.is_some_and(|s| s.len() > 200) {
        return Err(Error::field("secret", "at most 200 characters"));
    }
    state
        .store
        .set_chat_robot(id, input.kind.as_str(), url, secret)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the institution's chat group robot.
#[utoipa::path(delete, path = "/institutions/{id}/chat-robot", tag = "notifications", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn remove_chat_robot(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<StatusCode, Error> {
    crate::registry::managed(&state.store, &caller.0, id, "remove its chat group robot").await?;
    if !state.store.remove_chat_robot(id).await? {
        return Err(Error::NotFound(format!(
            "a chat group robot of institution {id}"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Which messages.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Page size, 1 to 1000 (default 100).
    limit: Option<i64>,
}

/// The institution's newest messages in the outbox (webhook calls, chat robot messages,
/// e-mails to its people) with whether and when they were delivered: its coordinators or
/// an administrator.
#[utoipa::path(get, path = "/institutions/{id}/deliveries", tag = "notifications",
    params(("id" = i64, Path), DeliveryQuery),
    responses((status = 200, body = Vec<Delivery>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<Vec<Delivery>>, Error> {
    crate::registry::managed(&state.store, &caller.0, id, "see its deliveries").await?;
    let (limit, _) = page(q.limit, None)?;
    Ok(Json(state.store.deliveries(id, limit).await?))
}

/// An institution's webhook as shown (the secret never).
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    /// Where state changes are posted.
    pub url: String,
}

/// The institution's webhook: its coordinators or an administrator.
#[utoipa::path(get, path = "/institutions/{id}/webhook", tag = "notifications", params(("id" = i64, Path)),
    responses((status = 200, body = Webhook), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn webhook(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<Webhook>, Error> {
    crate::registry::managed(&state.store, &caller.0, id, "see its webhook").await?;
    let url = state
        .store
        .webhook_url(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("a webhook of institution {id}")))?;
    Ok(Json(Webhook { url }))
}
