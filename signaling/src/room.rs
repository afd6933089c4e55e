//! One room's state as a sans-I/O state machine: connections, messages and the time come
//! in, messages to send, connections to close and attendance events come out. The
//! WebSocket shell around it only moves bytes.
//!
//! Every message to a participant takes the next number of that participant's stream and
//! is kept (up to [`RoomConfig::buffer`]) so that a participant whose connection dropped
//! can resume with its session id and the last number it saw: it gets what it missed and
//! the others never see it leave. Only after [`RoomConfig::resume_window`] without a
//! connection is it gone.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::protocol::{ClientMessage, ParticipantInfo, ServerMessage, VERSION};

/// Identifies one WebSocket connection of the shell.
pub type ConnId = u64;

/// WebSocket close code: the same identity joined again from another connection.
pub const CLOSE_REPLACED: u16 = 4001;
/// WebSocket close code: no pong within the ping timeout.
pub const CLOSE_PING_TIMEOUT: u16 = 4002;
/// WebSocket close code: the participant left.
pub const CLOSE_NORMAL: u16 = 1000;

/// Timing and sizes of a room.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// How long a dropped participant may resume before it counts as gone.
    pub resume_window: Duration,
    /// Silence after which the server pings.
    pub ping_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    pub ping_timeout: Duration,
    /// Messages kept per participant for resuming.
    pub buffer: usize,
    /// Participants at most.
    pub capacity: usize,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            resume_window: Duration::from_secs(30),
            ping_interval: Duration::from_secs(10),
            ping_timeout: Duration::from_secs(10),
            buffer: 512,
            capacity: 4,
        }
    }
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send `message` on connection `conn`.
    Send {
        /// The connection.
        conn: ConnId,
        /// The message.
        message: ServerMessage,
    },
    /// Close connection `conn` with a WebSocket close code.
    Close {
        /// The connection.
        conn: ConnId,
        /// The close code.
        code: u16,
        /// Why, for the close frame.
        reason: &'static str,
    },
    /// `identity` entered (`present`) or left the room at `at`, for attendance.
    Attendance {
        /// Who.
        identity: String,
        /// Entered or left.
        present: bool,
        /// When.
        at: Instant,
    },
}

/// Why a join or resume is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// The room holds its capacity.
    #[error("the room is full ({0} participants)")]
    Full(usize),
    /// No participant has that session id (any more).
    #[error("no session to resume; join again")]
    UnknownSession,
    /// The messages after that number are no longer kept.
    #[error("too much was missed to resume; join again")]
    TooOld,
}

#[derive(Debug)]
struct Participant {
    info: ParticipantInfo,
    session_id: String,
    conn: Option<ConnId>,
    next_seq: u64,
    kept: VecDeque<ServerMessage>,
    disconnected_at: Option<Instant>,
    last_heard: Instant,
    ping_sent: Option<Instant>,
}

/// A room.
#[derive(Debug)]
pub struct Room {
    config: RoomConfig,
    participants: BTreeMap<String, Participant>,
}

impl Room {
    /// An empty room.
    pub fn new(config: RoomConfig) -> Self {
        Self {
            config,
            participants: BTreeMap::new(),
        }
    }

    /// Who is in the room (connected or within the resume window).
    pub fn identities(&self) -> Vec<String> {
        self.participants.keys().cloned().collect()
    }

    /// Numbers a message for `identity`, keeps it, and sends it if connected.
    fn deliver(
        &mut self,
        identity: &str,
        build: impl FnOnce(u64) -> ServerMessage,
        out: &mut Vec<Effect>,
    ) {
        let Some(p) = self.participants.get_mut(identity) else {
            return;
        };
        p.next_seq += 1;
        let message = build(p.next_seq);
        p.kept.push_back(message.clone());
        while p.kept.len() > self.config.buffer {
            p.kept.pop_front();
        }
        if let Some(conn) = p.conn {
            out.push(Effect::Send { conn, message });
        }
    }

    fn others(&self, identity: &str) -> Vec<String> {
        self.participants
            .keys()
            .filter(|k| *k != identity)
            .cloned()
            .collect()
    }

    /// Admits `identity` on `conn` with a fresh `session_id` (an unguessable token the
    /// shell makes). The same identity joining again replaces its older connection and is
    /// not announced twice.
    pub fn join(
        &mut self,
        conn: ConnId,
        identity: &str,
        role: &str,
        session_id: String,
        now: Instant,
    ) -> Result<Vec<Effect>, RoomError> {
        let mut out = Vec::new();
        let rejoin = self.participants.contains_key(identity);
        if !rejoin && self.participants.len() >= self.config.capacity {
            return Err(RoomError::Full(self.config.capacity));
        }
        if let Some(old) = self.participants.get(identity).and_then(|p| p.conn) {
            out.push(Effect::Close {
                conn: old,
                code: CLOSE_REPLACED,
                reason: "joined again elsewhere",
            });
        }
        let info = ParticipantInfo {
            identity: identity.to_owned(),
            role: role.to_owned(),
            audio_muted: false,
            video_muted: false,
        };
        self.participants.insert(
            identity.to_owned(),
            Participant {
                info: info.clone(),
                session_id: session_id.clone(),
                conn: Some(conn),
                next_seq: 0,
                kept: VecDeque::new(),
                disconnected_at: None,
                last_heard: now,
                ping_sent: None,
            },
        );
        let participants = self
            .others(identity)
            .iter()
            .map(|k| self.participants[k].info.clone())
            .collect();
        self.deliver(
            identity,
            |seq| ServerMessage::Welcome {
                v: VERSION,
                seq,
                session_id,
                participants,
                resumed: false,
            },
            &mut out,
        );
        if !rejoin {
            for other in self.others(identity) {
                let participant = info.clone();
                self.deliver(
                    &other,
                    |seq| ServerMessage::Joined {
                        v: VERSION,
                        seq,
                        participant,
                    },
                    &mut out,
                );
            }
            out.push(Effect::Attendance {
                identity: identity.to_owned(),
                present: true,
                at: now,
            });
        }
        Ok(out)
    }

    /// Reconnects a dropped participant on `conn`: a welcome, then every kept message
    /// after `last_seq`. The others see nothing.
    pub fn resume(
        &mut self,
        conn: ConnId,
        session_id: &str,
        last_seq: u64,
        now: Instant,
    ) -> Result<Vec<Effect>, RoomError> {
        let identity = self
            .participants
            .values()
            .find(|p| p.session_id == session_id)
            .map(|p| p.info.identity.clone())
            .ok_or(RoomError::UnknownSession)?;
        let others: Vec<ParticipantInfo> = self
            .others(&identity)
            .iter()
            .map(|k| self.participants[k].info.clone())
            .collect();
        let p = self.participants.get_mut(&identity).expect("found above");
        let oldest = p.kept.front().map_or(p.next_seq + 1, ServerMessage::seq);
        if last_seq + 1 < oldest || last_seq > p.next_seq {
            return Err(RoomError::TooOld);
        }
        let mut out = Vec::new();
        if let Some(old) = p.conn.replace(conn) {
            out.push(Effect::Close {
                conn: old,
                code: CLOSE_REPLACED,
                reason: "resumed elsewhere",
            });
        }
        p.disconnected_at = None;
        p.last_heard = now;
        p.ping_sent = None;
        // The welcome is not numbered: it tells the client where its stream stands.
        out.push(Effect::Send {
            conn,
            message: ServerMessage::Welcome {
                v: VERSION,
                seq: p.next_seq,
                session_id: p.session_id.clone(),
                participants: others,
                resumed: true,
            },
        });
        for message in p.kept.iter().filter(|m| m.seq() > last_seq) {
            out.push(Effect::Send {
                conn,
                message: message.clone(),
            });
        }
        Ok(out)
    }

    fn identity_of(&self, conn: ConnId) -> Option<String> {
        self.participants
            .values()
            .find(|p| p.conn == Some(conn))
            .map(|p| p.info.identity.clone())
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

    /// Handles a parsed message from `conn`.
    pub fn message(&mut self, conn: ConnId, message: ClientMessage, now: Instant) -> Vec<Effect> {
        let Some(from) = self.identity_of(conn) else {
            return Vec::new();
        };
        if let Some(p) = self.participants.get_mut(&from) {
            p.last_heard = now;
            p.ping_sent = None;
        }
        let mut out = Vec::new();
        let relay_to = match &message {
            ClientMessage::Offer { to, .. }
            | ClientMessage::Answer { to, .. }
            | ClientMessage::Candidate { to, .. } => Some(to.clone()),
            _ => None,
        };
        if let Some(to) = &relay_to {
            if *to == from || !self.participants.contains_key(to) {
                return self.refuse(
                    conn,
                    "unknown_participant",
                    &format!("{to} is not another participant of this room"),
                );
            }
        }
        match message {
            ClientMessage::Offer { to, sdp, .. } => {
                let from = from.clone();
                self.deliver(
                    &to,
                    |seq| ServerMessage::Offer {
                        v: VERSION,
                        seq,
                        from,
                        sdp,
                    },
                    &mut out,
                );
            }
            ClientMessage::Answer { to, sdp, .. } => {
                let from = from.clone();
                self.deliver(
                    &to,
                    |seq| ServerMessage::Answer {
                        v: VERSION,
                        seq,
                        from,
                        sdp,
                    },
                    &mut out,
                );
            }
            ClientMessage::Candidate {
                to,
                candidate,
                sdp_mid,
                sdp_mline_index,
                ..
            } => {
                let from = from.clone();
                self.deliver(
                    &to,
                    |seq| ServerMessage::Candidate {
                        v: VERSION,
                        seq,
                        from,
                        candidate,
                        sdp_mid,
                        sdp_mline_index,
                    },
                    &mut out,
                );
            }
            ClientMessage::Mute { audio, video, .. } => {
                if let Some(p) = self.participants.get_mut(&from) {
                    p.info.audio_muted = audio;
                    p.info.video_muted = video;
                }
                for other in self.others(&from) {
                    let identity = from.clone();
                    self.deliver(
                        &other,
                        |seq| ServerMessage::Mute {
                            v: VERSION,
                            seq,
                            identity,
                            audio,
                            video,
                        },
                        &mut out,
                    );
                }
            }
            ClientMessage::Pong { .. } => {}
            ClientMessage::Leave { .. } => {
                out.push(Effect::Close {
                    conn,
                    code: CLOSE_NORMAL,
                    reason: "left",
                });
                self.remove(&from, now, &mut out);
            }
        }
        out
    }

    fn remove(&mut self, identity: &str, now: Instant, out: &mut Vec<Effect>) {
        if self.participants.remove(identity).is_none() {
            return;
        }
        for other in self.others(identity) {
            let gone = identity.to_owned();
            self.deliver(
                &other,
                |seq| ServerMessage::Left {
                    v: VERSION,
                    seq,
                    identity: gone,
                },
                out,
            );
        }
        out.push(Effect::Attendance {
            identity: identity.to_owned(),
            present: false,
            at: now,
        });
    }

    /// The connection dropped: the participant may resume within the window.
    pub fn disconnected(&mut self, conn: ConnId, now: Instant) -> Vec<Effect> {
        if let Some(p) = self
            .participants
            .values_mut()
            .find(|p| p.conn == Some(conn))
        {
            p.conn = None;
            p.disconnected_at = Some(now);
        }
        Vec::new()
    }

    /// Time passes: pings the silent, closes those that do not answer, and lets go of
    /// those gone longer than the resume window.
    pub fn tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        let mut ping = Vec::new();
        for (identity, p) in &mut self.participants {
            match (p.conn, p.disconnected_at, p.ping_sent) {
                (None, Some(since), _)
                    if now.duration_since(since) >= self.config.resume_window =>
                {
                    gone.push(identity.clone())
                }
                (Some(conn), _, Some(sent))
                    if now.duration_since(sent) >= self.config.ping_timeout =>
                {
                    out.push(Effect::Close {
                        conn,
                        code: CLOSE_PING_TIMEOUT,
                        reason: "no pong",
                    });
                    p.conn = None;
                    p.disconnected_at = Some(now);
                    p.ping_sent = None;
                }
                (Some(_), _, None)
                    if now.duration_since(p.last_heard) >= self.config.ping_interval =>
                {
                    p.ping_sent = Some(now);
                    ping.push(identity.clone());
                }
                _ => {}
            }
        }
        for identity in ping {
            self.deliver(
                &identity,
                |seq| ServerMessage::Ping { v: VERSION, seq },
                &mut out,
            );
        }
        for identity in gone {
            self.remove(&identity, now, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests;
