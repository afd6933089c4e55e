//! `/sessions/{session}`: the video room of a booked session. The session itself is the
//! room's brief (when it opens, who leads, where it stands); `join` gives the people the
//! booking names a room token; `signal` is the WebSocket they then speak
//! `signaling/PROTOCOL.md` on; `messages` is the room's text chat; `attendance` is the
//! record of who was there.

use axum::Json;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use duikou_signaling::protocol::IceServer;
use duikou_signaling::token::RoomClaims;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery};
use crate::error::{Error, Problem};
use crate::rooms::brief::RoomBrief;
use crate::rooms::{self, RoomRecord, SessionRef};
use crate::store::RoomMessage;

/// The largest WebSocket message read at all; the signaling limit
/// (`signaling.max_message_bytes`) is smaller and answered with an error message.
const MAX_FRAME_BYTES: usize = 1024 * 1024;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(brief))
        .routes(routes!(join))
        .routes(routes!(messages, post_message))
        .routes(routes!(attendance))
}

/// The WebSocket route, outside the OpenAPI document, which cannot describe it.
pub(super) fn socket_router() -> Router<AppState> {
    Router::new().route("/sessions/{session}/signal", get(signal))
}

fn session_of(raw: &str) -> Result<SessionRef, Error> {
    raw.parse()
        .map_err(|_| Error::NotFound(format!("session {raw:?}")))
}

/// What a participant may do.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantsView {
    /// Send audio and video.
    publish: bool,
    /// Receive the others' media.
    subscribe: bool,
    /// Mute or remove others.
    moderate: bool,
}

/// A STUN or TURN server, as WebRTC's `RTCIceServer`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IceServerView {
    /// URLs.
    urls: Vec<String>,
    /// TURN username, `<unix expiry>:<identity>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// TURN password.
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<String>,
}

impl From<IceServer> for IceServerView {
    fn from(s: IceServer) -> Self {
        Self {
            urls: s.urls,
            username: s.username,
            credential: s.credential,
        }
    }
}

/// Admission to a room.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinAnswer {
    /// The room (the session's name).
    room: String,
    /// The caller's identity in it.
    identity: String,
    /// The caller's role in it.
    role: String,
    /// The caller's name as the others see it.
    name: String,
    /// The caller's title and institution as the others see them.
    about: String,
    /// What the caller may do.
    grants: GrantsView,
    /// The room token, for the first message on the WebSocket.
    token: String,
    /// When the token expires; ask again after.
    expires_at: DateTime<Utc>,
    /// The WebSocket path (`ws://` or `wss://` on this host).
    signal_url: String,
    /// STUN and TURN servers, with a TURN credential minted now.
    ice_servers: Vec<IceServerView>,
}

/// A room token for the video room of a booked session: only for the people the booking
/// names (a consultation's requester, consultant and accompanying clinician; a ward
/// round's two teams; a teaching session's presenter and enrolled trainees), and only
/// inside the session's window.
#[utoipa::path(post, path = "/sessions/{session}/join", tag = "sessions",
    params(("session" = String, Path, description = "consultation-<id>, ward-round-<id> or teaching-<id>")),
    responses((status = 200, body = JoinAnswer), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn join(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<JoinAnswer>, Error> {
    let session = session_of(&raw)?;
    let config = &state.config.signaling;
    let now = state.store.now();
    let admitted = rooms::admit(&state.store, config, session, &caller.0, now).await?;
    let identity = rooms::identity(caller.0.id);
    let ttl = i64::try_from(config.token_ttl_seconds).unwrap_or(300);
    let expires_at = now + TimeDelta::seconds(ttl);
    let claims = RoomClaims {
        room: admitted.room.clone(),
        sub: identity.clone(),
        role: admitted.role.to_owned(),
        name: Some(admitted.name.clone()),
        about: Some(admitted.about.clone()),
        grants: admitted.grants,
        capacity: admitted.capacity,
        // A little slack for clocks of several gateway processes.
        nbf: now.timestamp() - 30,
        exp: expires_at.timestamp(),
    };
    let token = state.signaling.mint(&claims);
    let ice_servers = state
        .signaling
        .ice_servers(&identity)
        .into_iter()
        .map(IceServerView::from)
        .collect();
    Ok(Json(JoinAnswer {
        signal_url: format!("/api/v1/sessions/{}/signal", admitted.room),
        room: admitted.room.into_string(),
        identity,
        role: admitted.role.to_owned(),
        name: admitted.name,
        about: admitted.about,
        grants: GrantsView {
            publish: admitted.grants.publish,
            subscribe: admitted.grants.subscribe,
            moderate: admitted.grants.moderate,
        },
        token,
        expires_at,
        ice_servers,
    }))
}

/// The signaling WebSocket of a session's room (see `signaling/PROTOCOL.md`). The room
/// token comes in the first message, not in the URL.
async fn signal(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, Error> {
    let room = session_of(&raw)?.room();
    let signaling = state.signaling.clone();
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| signaling.serve(socket, room)))
}

/// Who was in a session's room and when, and how long people were there together: the
/// evidence that a consultation or ward round took place. For the people the booking
/// names, the coordinators of the institutions involved, and administrators.
#[utoipa::path(get, path = "/sessions/{session}/attendance", tag = "sessions",
    params(("session" = String, Path, description = "consultation-<id>, ward-round-<id> or teaching-<id>")),
    responses((status = 200, body = RoomRecord), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn attendance(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<RoomRecord>, Error> {
    let session = session_of(&raw)?;
    let config = &state.config.signaling;
    Ok(Json(
        rooms::attendance(&state.store, config, session, &caller.0).await?,
    ))
}

/// The room of a session as its page shows it around the video: when it opens and
/// closes, the gateway's time now (for the lobby's countdown), who leads it by name,
/// title and institution, and where it stands (`early`, `open`, `over`, `closed`). For
/// the people the booking names.
#[utoipa::path(get, path = "/sessions/{session}", tag = "sessions",
    params(("session" = String, Path, description = "consultation-<id>, ward-round-<id> or teaching-<id>")),
    responses((status = 200, body = RoomBrief), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn brief(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<RoomBrief>, Error> {
    let session = session_of(&raw)?;
    let now = state.store.now();
    Ok(Json(
        rooms::brief::brief(
            &state.store,
            &state.config.signaling,
            session,
            &caller.0,
            now,
        )
        .await?,
    ))
}

/// Which messages of a room's chat.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Only those after this message (default 0: from the first).
    after: Option<i64>,
    /// At most this many, 1 to 200 (default 200).
    limit: Option<i64>,
}

/// The text chat of a session's room, oldest first: for the people the booking names,
/// the coordinators of the institutions involved and administrators. Kept with the
/// session (for a consultation, with its request); reads that show messages are audited.
#[utoipa::path(get, path = "/sessions/{session}/messages", tag = "sessions", params(
        ("session" = String, Path, description = "consultation-<id>, ward-round-<id> or teaching-<id>"),
        MessagesQuery),
    responses((status = 200, body = Vec<RoomMessage>), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn messages(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> Result<Json<Vec<RoomMessage>>, Error> {
    let session = session_of(&raw)?;
    Ok(Json(
        rooms::chat::read(
            &state.store,
            &state.config.signaling,
            session,
            &caller.0,
            q.after.unwrap_or(0),
            q.limit.unwrap_or(rooms::chat::MAX_READ),
        )
        .await?,
    ))
}

/// A message for a room's chat.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// The text, 1 to 1000 characters (trimmed).
    body: String,
}

/// Writes a message into the chat of a session's room: the people the booking names,
/// while the room is open (`409 session-not-open` otherwise). A chat keeps at most
/// `signaling.chat_max_messages` (2000 by default).
#[utoipa::path(post, path = "/sessions/{session}/messages", tag = "sessions",
    params(("session" = String, Path, description = "consultation-<id>, ward-round-<id> or teaching-<id>")),
    request_body = NewMessage,
    responses((status = 201, body = RoomMessage), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn post_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    ApiJson(input): ApiJson<NewMessage>,
) -> Result<(StatusCode, Json<RoomMessage>), Error> {
    let session = session_of(&raw)?;
    let now = state.store.now();
    let message = rooms::chat::post(
        &state.store,
        &state.config.signaling,
        session,
        &caller.0,
        &input.body,
        now,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(message)))
}
