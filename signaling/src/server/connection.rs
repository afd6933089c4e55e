//! One WebSocket connection: its writer task drains the outbox the hub task fills, its
//! reader hands frames to the hub task, and before any of that the handshake checks the
//! room token of the first `join` or `resume` and has the hub admit it.

use std::sync::atomic::Ordering;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{mpsc, oneshot};

use super::{
    CLOSE_NO_JOIN, CLOSE_NOT_ADMITTED, CLOSE_ROOM_FULL, Command, Outgoing, Signaling, random_hex,
};
use crate::hub::Resume;
use crate::protocol::{self, ClientMessage, ServerMessage, VERSION};
use crate::room::{ConnId, Entrant, RoomError, RoomId};
use crate::token::{self, TokenError};

/// Messages waiting for a slow client before it is disconnected.
const OUTBOX: usize = 1024;

impl Signaling {
    /// Runs one WebSocket connection to `room` until it closes.
    pub async fn serve(self, socket: WebSocket, room: impl Into<RoomId>) {
        let room = room.into();
        let conn = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let (mut sink, mut stream) = socket.split();
        let (outbox, mut pending) = mpsc::channel::<Outgoing>(OUTBOX);
        let writer = tokio::spawn(async move {
            while let Some(out) = pending.recv().await {
                match out {
                    Outgoing::Text(text) => {
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Outgoing::Close(code, reason) => {
                        let frame = CloseFrame {
                            code,
                            reason: reason.into(),
                        };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        break;
                    }
                }
            }
            let _ = sink.close().await;
        });
        let admitted = tokio::time::timeout(
            self.inner.config.handshake_timeout,
            self.handshake(conn, &room, &mut stream, &outbox),
        )
        .await;
        match admitted {
            Ok(true) => {
                while let Some(Ok(frame)) = stream.next().await {
                    let command = match frame {
                        Message::Text(text) => Command::Text {
                            conn,
                            text: text.to_string(),
                        },
                        Message::Binary(_) => Command::Binary { conn },
                        Message::Close(_) => break,
                        Message::Ping(_) | Message::Pong(_) => continue,
                    };
                    if self.inner.commands.send(command).is_err() {
                        break;
                    }
                }
                let _ = self.inner.commands.send(Command::Closed { conn });
            }
            Ok(false) => {}
            Err(_) => {
                let _ = outbox
                    .send(Outgoing::Close(CLOSE_NO_JOIN, "no join in time"))
                    .await;
            }
        }
        drop(outbox);
        let _ = writer.await;
    }

    /// Reads until a `join` or `resume` is accepted (`true`) or the connection is over.
    async fn handshake(
        &self,
        conn: ConnId,
        room: &RoomId,
        stream: &mut futures_util::stream::SplitStream<WebSocket>,
        outbox: &mpsc::Sender<Outgoing>,
    ) -> bool {
        let say = |code: &str, message: String| {
            let m = ServerMessage::Error {
                v: VERSION,
                seq: 0,
                code: code.to_owned(),
                message,
            };
            Outgoing::Text(serde_json::to_string(&m).expect("plain JSON"))
        };
        while let Some(Ok(frame)) = stream.next().await {
            let text = match frame {
                Message::Text(text) => text,
                Message::Close(_) => return false,
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Binary(_) => {
                    let _ = outbox
                        .send(say("malformed", "messages are JSON text".into()))
                        .await;
                    continue;
                }
            };
            if text.len() > self.inner.config.hub.max_message_bytes {
                let _ = outbox
                    .send(say("too_large", "the first message is too large".into()))
                    .await;
                continue;
            }
            let message = match protocol::parse(&text) {
                Ok(m) => m,
                Err(problem) => {
                    let _ = outbox.send(say("malformed", problem)).await;
                    continue;
                }
            };
            let (token, resume) = match message {
                ClientMessage::Join { token, .. } => (token, None),
                ClientMessage::Resume {
                    token,
                    session_id,
                    last_seq,
                    ..
                } => (token, Some((session_id, last_seq))),
                _ => {
                    let _ = outbox
                        .send(say(
                            "join_first",
                            "the first message is join or resume".into(),
                        ))
                        .await;
                    continue;
                }
            };
            let claims = match token::verify(
                &self.inner.config.token_secret,
                &token,
                room,
                (self.inner.config.clock.0)(),
            ) {
                Ok(claims) => claims,
                Err(e) => {
                    let code = match e {
                        TokenError::Invalid => "token_invalid",
                        TokenError::Expired => "token_expired",
                        TokenError::NotYet => "token_not_yet_valid",
                        TokenError::WrongRoom => "token_wrong_room",
                    };
                    let _ = outbox.send(say(code, e.to_string())).await;
                    let _ = outbox
                        .send(Outgoing::Close(CLOSE_NOT_ADMITTED, "not admitted"))
                        .await;
                    return false;
                }
            };
            let ice_servers = self.ice_servers(&claims.sub);
            let (reply, answer) = oneshot::channel();
            let command = match resume {
                None => Command::Join {
                    conn,
                    room: room.clone(),
                    entrant: Entrant {
                        identity: claims.sub.clone(),
                        role: claims.role.clone(),
                        name: claims.name.clone(),
                        about: claims.about.clone(),
                        session_id: random_hex(16),
                        ice_servers,
                        grants: claims.grants,
                    },
                    capacity: usize::try_from(claims.capacity).unwrap_or(usize::MAX),
                    outbox: outbox.clone(),
                    reply,
                },
                Some((session_id, last_seq)) => Command::Resume {
                    conn,
                    room: room.clone(),
                    resume: Resume {
                        identity: claims.sub.clone(),
                        session_id,
                        last_seq,
                        ice_servers,
                    },
                    outbox: outbox.clone(),
                    reply,
                },
            };
            if self.inner.commands.send(command).is_err() {
                return false;
            }
            match answer.await {
                Ok(Ok(())) => return true,
                Ok(Err(RoomError::Full(n))) => {
                    let _ = outbox
                        .send(say("room_full", format!("the room holds {n} participants")))
                        .await;
                    let _ = outbox
                        .send(Outgoing::Close(CLOSE_ROOM_FULL, "room full"))
                        .await;
                    return false;
                }
                Ok(Err(RoomError::Removed)) => {
                    let _ = outbox
                        .send(say("removed", RoomError::Removed.to_string()))
                        .await;
                    let _ = outbox
                        .send(Outgoing::Close(crate::room::CLOSE_REMOVED, "removed"))
                        .await;
                    return false;
                }
                // A resume that cannot be honoured: the client may join afresh.
                Ok(Err(e)) => {
                    let _ = outbox.send(say("resume_refused", e.to_string())).await;
                }
                Err(_) => return false,
            }
        }
        false
    }
}
