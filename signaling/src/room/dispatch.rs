//! The messages of a participant in the room, each handed to what it concerns: signals
//! to the relay, the microphone and removals to moderation, media requests to the
//! forwarding unit; mute state, and refusals, are answered here.

use std::time::Instant;

use super::{CLOSE_NORMAL, ConnId, Effect, Room, RoomEvent};
use crate::protocol::{ClientMessage, ServerMessage, VERSION};

impl Room {
    /// Handles a parsed message from `conn`.
    pub fn message(&mut self, conn: ConnId, message: ClientMessage, now: Instant) -> Vec<Effect> {
        let Some(from) = self.identity_of(conn) else {
            return Vec::new();
        };
        if let Some(l) = self
            .participants
            .get_mut(&from)
            .and_then(|p| p.local.as_mut())
        {
            l.last_heard = now;
            l.ping_sent = None;
        }
        match message {
            ClientMessage::Join { .. } | ClientMessage::Resume { .. } => {
                self.refuse(conn, "already_joined", "this connection is in the room")
            }
            ClientMessage::Offer { to, sdp, .. } => self.offer(conn, &from, &to, sdp),
            ClientMessage::Answer { to, sdp, .. } => self.answer(conn, &from, &to, sdp),
            ClientMessage::Candidate {
                to,
                candidate,
                sdp_mid,
                sdp_mline_index,
                ..
            } => self.candidate(conn, &from, &to, candidate, sdp_mid, sdp_mline_index),
            ClientMessage::Mute { audio, video, .. } => {
                let mut out = Vec::new();
                self.set_mute(&from, audio, video, &mut out);
                out.push(Effect::Publish(RoomEvent::Mute {
                    identity: from,
                    audio,
                    video,
                }));
                out
            }
            ClientMessage::Pong { .. } => Vec::new(),
            ClientMessage::Hand { raised, .. } => self.raise_hand(&from, raised),
            ClientMessage::Grant { to, audio, .. } => self.grant(conn, &from, &to, audio),
            ClientMessage::Remove { identity, .. } => {
                self.remove_by_moderator(conn, &from, &identity, now)
            }
            ClientMessage::AudioOnly { on, .. } => self.audio_only(conn, &from, on),
            ClientMessage::Leave { .. } => {
                let mut out = vec![Effect::Close {
                    conn,
                    code: CLOSE_NORMAL,
                    reason: "left",
                }];
                self.remove(&from, now, &mut out);
                out
            }
        }
    }

    /// Tells the sender on `conn` that its last message was refused.
    pub fn refuse(&mut self, conn: ConnId, code: &str, message: &str) -> Vec<Effect> {
        let mut out = Vec::new();
        if let Some(identity) = self.identity_of(conn) {
            let (code, message) = (code.to_owned(), message.to_owned());
            self.deliver(
                &identity,
                |seq| ServerMessage::Error {
                    v: VERSION,
                    seq,
                    code,
                    message,
                },
                &mut out,
            );
        }
        out
    }

    /// The refusal of `from`'s message on `conn` when `identity`, which it names, is not
    /// another participant of the room; `None` when it is.
    pub(super) fn unless_another(
        &mut self,
        conn: ConnId,
        from: &str,
        identity: &str,
    ) -> Option<Vec<Effect>> {
        if identity != from && self.participants.contains_key(identity) {
            return None;
        }
        Some(self.refuse(
            conn,
            "unknown_participant",
            &format!("{identity} is not another participant of this room"),
        ))
    }

    /// Sets `identity`'s mute state and tells the others here.
    pub(super) fn set_mute(
        &mut self,
        identity: &str,
        audio: bool,
        video: bool,
        out: &mut Vec<Effect>,
    ) {
        let Some(p) = self.participants.get_mut(identity) else {
            return;
        };
        p.info.audio_muted = audio;
        p.info.video_muted = video;
        let m = ServerMessage::Mute {
            v: VERSION,
            seq: 0,
            identity: identity.to_owned(),
            audio,
            video,
        };
        self.broadcast(identity, &m, out);
    }
}
