//! One room's state as a sans-I/O state machine: connections, messages and the time come
//! in, messages to send, connections to close and attendance events come out. The
//! WebSocket shell around it only moves bytes.
//!
//! Every message to a participant takes the next number of that participant's stream and
//! is kept (up to [`RoomConfig::buffer`]) so that a participant whose connection dropped
//! can resume with its session id and the last number it saw: it gets what it missed and
//! the others never see it leave. Only after [`RoomConfig::resume_window`] without a
//! connection is it gone.
//!
//! With several gateway processes a room exists in each process that has participants in
//! it. Participants connected here are *local*; those connected to another process are
//! *remote*, known from the [`RoomEvent`]s that process publishes. What concerns other
//! processes comes out as [`Effect::Publish`]; what they publish comes in through the
//! `remote_*` methods. Only the process holding a connection numbers, keeps and sends its
//! messages, and only it reports attendance.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::Grants;
use crate::protocol::{ClientMessage, IceServer, ParticipantInfo, ServerMessage, UNIT, VERSION};
use crate::sfu::May;

/// Identifies one WebSocket connection of the shell.
pub type ConnId = u64;

/// WebSocket close code: the same identity joined again from another connection.
pub const CLOSE_REPLACED: u16 = 4001;
/// WebSocket close code: no pong within the ping timeout.
pub const CLOSE_PING_TIMEOUT: u16 = 4002;
/// WebSocket close code: the participant left.
pub const CLOSE_NORMAL: u16 = 1000;
/// WebSocket close code: a moderator removed the participant.
pub const CLOSE_REMOVED: u16 = 4007;

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

/// Someone entering the room on a connection of this process.
#[derive(Debug, Clone)]
pub struct Entrant {
    /// The identity from the room token.
    pub identity: String,
    /// The role from the room token.
    pub role: String,
    /// A fresh, unguessable resume token made by the shell.
    pub session_id: String,
    /// STUN and TURN servers for the welcome.
    pub ice_servers: Vec<IceServer>,
    /// What the room token grants.
    pub grants: Grants,
}

/// What a participant asks of the forwarding unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaRequest {
    /// Its offer, to be answered.
    Offer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled candidate of its.
    Candidate {
        /// The candidate line.
        candidate: String,
    },
    /// It is gone: drop its media.
    Leave,
    /// What it may send changed (a moderator gave or took the microphone).
    May,
    /// It asks for audio only, or for video again.
    AudioOnly {
        /// Audio only.
        on: bool,
    },
}

/// What another process must hear of this room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RoomEvent {
    /// Someone entered here (or came back on a new connection here).
    Joined {
        /// Who.
        participant: ParticipantInfo,
    },
    /// Someone connected here left.
    Left {
        /// Who.
        identity: String,
    },
    /// A message for a participant connected elsewhere; its receiver numbers it.
    Relay {
        /// The receiver.
        to: String,
        /// The message, numbered 0.
        message: ServerMessage,
    },
    /// Someone's mute state.
    Mute {
        /// Who.
        identity: String,
        /// Audio muted.
        audio: bool,
        /// Video muted.
        video: bool,
    },
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
    /// Tell the other processes.
    Publish(RoomEvent),
    /// Hand a participant's request to the forwarding unit (rooms it serves only).
    Media {
        /// Who.
        identity: String,
        /// What the unit may forward of its media.
        may: May,
        /// The request.
        request: MediaRequest,
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
    /// A moderator removed this participant for the rest of the session.
    #[error("a moderator removed you from this session")]
    Removed,
}

/// A participant connected to this process.
#[derive(Debug)]
struct Local {
    session_id: String,
    conn: Option<ConnId>,
    next_seq: u64,
    kept: VecDeque<ServerMessage>,
    disconnected_at: Option<Instant>,
    last_heard: Instant,
    ping_sent: Option<Instant>,
}

#[derive(Debug)]
struct Participant {
    info: ParticipantInfo,
    grants: Grants,
    /// A moderator gave it the microphone.
    mic: bool,
    /// Its hand is raised.
    hand: bool,
    /// `None` when connected to another process (named by `node`).
    local: Option<Local>,
    node: Option<String>,
}

/// A room.
#[derive(Debug)]
pub struct Room {
    config: RoomConfig,
    participants: BTreeMap<String, Participant>,
    /// Media goes through the forwarding unit, not from peer to peer.
    forwarded: bool,
    /// Identities a moderator removed; they may not come back.
    removed: BTreeSet<String>,
}

impl Room {
    /// An empty room.
    pub fn new(config: RoomConfig) -> Self {
        Self {
            config,
            participants: BTreeMap::new(),
            forwarded: false,
            removed: BTreeSet::new(),
        }
    }

    /// Sends this room's media through the forwarding unit ([`UNIT`]).
    pub fn set_forwarded(&mut self, forwarded: bool) {
        self.forwarded = forwarded;
    }

    /// A message from the forwarding unit for `identity` (connected here).
    pub fn from_unit(&mut self, identity: &str, message: ServerMessage) -> Vec<Effect> {
        let mut out = Vec::new();
        if self
            .participants
            .get(identity)
            .is_some_and(|p| p.local.is_some())
        {
            self.deliver(identity, |seq| message.renumbered(seq), &mut out);
        }
        out
    }

    /// Who is in the room (connected here or elsewhere, or within the resume window).
    pub fn identities(&self) -> Vec<String> {
        self.participants.keys().cloned().collect()
    }

    /// The participants connected to this process, for a process that asks who is here.
    pub fn local_participants(&self) -> Vec<ParticipantInfo> {
        self.participants
            .values()
            .filter(|p| p.local.is_some())
            .map(|p| p.info.clone())
            .collect()
    }

    /// Sets the number of participants the room holds at most.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.config.capacity = capacity;
    }

    /// Whether anyone is connected to this process (or may resume here).
    pub fn has_local(&self) -> bool {
        self.participants.values().any(|p| p.local.is_some())
    }

    /// Whether nobody at all is in the room.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// Numbers a message for local `identity`, keeps it, and sends it if connected.
    fn deliver(
        &mut self,
        identity: &str,
        build: impl FnOnce(u64) -> ServerMessage,
        out: &mut Vec<Effect>,
    ) {
        let Some(p) = self
            .participants
            .get_mut(identity)
            .and_then(|p| p.local.as_mut())
        else {
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

    /// Sends `message` to every local participant but `except`.
    fn broadcast(&mut self, except: &str, message: &ServerMessage, out: &mut Vec<Effect>) {
        let locals: Vec<String> = self
            .participants
            .iter()
            .filter(|(k, p)| *k != except && p.local.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for identity in locals {
            self.deliver(&identity, |seq| message.clone().renumbered(seq), out);
        }
    }

    fn others_info(&self, identity: &str) -> Vec<ParticipantInfo> {
        self.participants
            .iter()
            .filter(|(k, _)| *k != identity)
            .map(|(_, p)| p.info.clone())
            .collect()
    }

    /// Admits `entrant` on `conn`. The same identity joining again (a second tab, a new
    /// device) replaces its older connection; the others hear `joined` again so that they
    /// negotiate afresh with the new device.
    pub fn join(
        &mut self,
        conn: ConnId,
        entrant: Entrant,
        now: Instant,
    ) -> Result<Vec<Effect>, RoomError> {
        let Entrant {
            identity,
            role,
            session_id,
            ice_servers,
            grants,
        } = entrant;
        if self.removed.contains(&identity) {
            return Err(RoomError::Removed);
        }
        let mut out = Vec::new();
        let existing = self.participants.get(&identity);
        if existing.is_none() && self.participants.len() >= self.config.capacity {
            return Err(RoomError::Full(self.config.capacity));
        }
        let here_already = existing.is_some_and(|p| p.local.is_some());
        if let Some(old) = existing.and_then(|p| p.local.as_ref()).and_then(|l| l.conn) {
            out.push(Effect::Close {
                conn: old,
                code: CLOSE_REPLACED,
                reason: "joined again elsewhere",
            });
        }
        // Where the unit forwards, those who may not send join muted.
        let muted = self.forwarded && !grants.publish;
        let info = ParticipantInfo {
            identity: identity.clone(),
            role,
            audio_muted: muted,
            video_muted: muted,
        };
        let participants = self.others_info(&identity);
        self.participants.insert(
            identity.clone(),
            Participant {
                info: info.clone(),
                grants,
                mic: false,
                hand: false,
                local: Some(Local {
                    session_id: session_id.clone(),
                    conn: Some(conn),
                    next_seq: 0,
                    kept: VecDeque::new(),
                    disconnected_at: None,
                    last_heard: now,
                    ping_sent: None,
                }),
                node: None,
            },
        );
        let welcome_identity = identity.clone();
        let unit = self.forwarded.then(|| UNIT.to_owned());
        self.deliver(
            &identity,
            |seq| ServerMessage::Welcome {
                v: VERSION,
                seq,
                identity: welcome_identity,
                session_id,
                participants,
                ice_servers,
                resumed: false,
                unit,
            },
            &mut out,
        );
        let joined = ServerMessage::Joined {
            v: VERSION,
            seq: 0,
            participant: info.clone(),
        };
        self.broadcast(&identity, &joined, &mut out);
        out.push(Effect::Publish(RoomEvent::Joined { participant: info }));
        if !here_already {
            out.push(Effect::Attendance {
                identity,
                present: true,
                at: now,
            });
        }
        Ok(out)
    }

    /// Reconnects a dropped local participant on `conn`: a welcome, then every kept
    /// message after `last_seq`. The others see nothing.
    pub fn resume(
        &mut self,
        conn: ConnId,
        session_id: &str,
        last_seq: u64,
        ice_servers: Vec<IceServer>,
        now: Instant,
    ) -> Result<Vec<Effect>, RoomError> {
        let identity = self
            .participants
            .values()
            .find(|p| p.local.as_ref().is_some_and(|l| l.session_id == session_id))
            .map(|p| p.info.identity.clone())
            .ok_or(RoomError::UnknownSession)?;
        let others = self.others_info(&identity);
        let p = self
            .participants
            .get_mut(&identity)
            .and_then(|p| p.local.as_mut())
            .expect("found above");
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
                identity,
                session_id: p.session_id.clone(),
                participants: others,
                ice_servers,
                resumed: true,
                unit: self.forwarded.then(|| UNIT.to_owned()),
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

    /// The identity holding resume token `session_id` here.
    pub fn identity_of_session(&self, session_id: &str) -> Option<&str> {
        self.participants
            .values()
            .find(|p| p.local.as_ref().is_some_and(|l| l.session_id == session_id))
            .map(|p| p.info.identity.as_str())
    }

    /// The local identity on `conn`.
    pub fn identity_of(&self, conn: ConnId) -> Option<String> {
        self.participants
            .values()
            .find(|p| p.local.as_ref().is_some_and(|l| l.conn == Some(conn)))
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

    /// Sends `message` to `to`, here or through the other processes.
    fn relay(&mut self, to: &str, message: ServerMessage, out: &mut Vec<Effect>) {
        match self.participants.get(to) {
            Some(p) if p.local.is_some() => {
                self.deliver(to, |seq| message.renumbered(seq), out);
            }
            Some(_) => out.push(Effect::Publish(RoomEvent::Relay {
                to: to.to_owned(),
                message,
            })),
            None => {}
        }
    }

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
        let mut out = Vec::new();
        let relay_to = match &message {
            ClientMessage::Offer { to, .. }
            | ClientMessage::Answer { to, .. }
            | ClientMessage::Candidate { to, .. } => Some(to.clone()),
            _ => None,
        };
        if let Some(to) = &relay_to {
            if self.forwarded && to == UNIT {
                return self.ask_unit(conn, &from, message);
            }
            if *to == from || !self.participants.contains_key(to) {
                return self.refuse(
                    conn,
                    "unknown_participant",
                    &format!("{to} is not another participant of this room"),
                );
            }
        }
        let from_ = from.clone();
        match message {
            ClientMessage::Join { .. } | ClientMessage::Resume { .. } => {
                return self.refuse(conn, "already_joined", "this connection is in the room");
            }
            ClientMessage::Offer { to, sdp, .. } => {
                let m = ServerMessage::Offer {
                    v: VERSION,
                    seq: 0,
                    from: from_,
                    sdp,
                };
                self.relay(&to, m, &mut out);
            }
            ClientMessage::Answer { to, sdp, .. } => {
                let m = ServerMessage::Answer {
                    v: VERSION,
                    seq: 0,
                    from: from_,
                    sdp,
                };
                self.relay(&to, m, &mut out);
            }
            ClientMessage::Candidate {
                to,
                candidate,
                sdp_mid,
                sdp_mline_index,
                ..
            } => {
                let m = ServerMessage::Candidate {
                    v: VERSION,
                    seq: 0,
                    from: from_,
                    candidate,
                    sdp_mid,
                    sdp_mline_index,
                };
                self.relay(&to, m, &mut out);
            }
            ClientMessage::Mute { audio, video, .. } => {
                self.set_mute(&from, audio, video, &mut out);
                out.push(Effect::Publish(RoomEvent::Mute {
                    identity: from,
                    audio,
                    video,
                }));
            }
            ClientMessage::Pong { .. } => {}
            ClientMessage::Hand { raised, .. } => {
                if let Some(p) = self.participants.get_mut(&from) {
                    p.hand = raised;
                }
                let m = ServerMessage::Hand {
                    v: VERSION,
                    seq: 0,
                    identity: from.clone(),
                    raised,
                };
                self.broadcast("", &m, &mut out);
            }
            ClientMessage::Grant { to, audio, .. } => {
                return self.grant(conn, &from, &to, audio);
            }
            ClientMessage::Remove { identity, .. } => {
                return self.remove_by_moderator(conn, &from, &identity, now);
            }
            ClientMessage::AudioOnly { on, .. } => {
                if !self.forwarded {
                    return self.refuse(
                        conn,
                        "not_allowed",
                        "audio_only is for rooms served by the forwarding unit",
                    );
                }
                let may = self.may(&from);
                out.push(Effect::Media {
                    identity: from,
                    may,
                    request: MediaRequest::AudioOnly { on },
                });
            }
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

    fn set_mute(&mut self, identity: &str, audio: bool, video: bool, out: &mut Vec<Effect>) {
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

    /// What the unit may forward of `identity`'s media: everything with the publish
    /// grant, its audio once a moderator gave it the microphone.
    fn may(&self, identity: &str) -> May {
        self.participants
            .get(identity)
            .map(|p| May {
                audio: p.grants.publish || p.mic,
                video: p.grants.publish,
            })
            .unwrap_or_default()
    }

    fn is_moderator(&self, identity: &str) -> bool {
        self.participants
            .get(identity)
            .is_some_and(|p| p.grants.moderate)
    }

    /// `from` gives `to` the microphone (`audio`) or takes it back.
    fn grant(&mut self, conn: ConnId, from: &str, to: &str, audio: bool) -> Vec<Effect> {
        if !self.is_moderator(from) {
            return self.refuse(conn, "not_allowed", "only moderators give the microphone");
        }
        let Some(p) = self.participants.get_mut(to) else {
            return self.refuse(
                conn,
                "unknown_participant",
                &format!("{to} is not a participant of this room"),
            );
        };
        p.mic = audio;
        if audio {
            p.hand = false;
        }
        let mut out = Vec::new();
        let m = ServerMessage::Granted {
            v: VERSION,
            seq: 0,
            identity: to.to_owned(),
            audio,
        };
        self.broadcast("", &m, &mut out);
        if self.forwarded {
            out.push(Effect::Media {
                identity: to.to_owned(),
                may: self.may(to),
                request: MediaRequest::May,
            });
        }
        out
    }

    /// `from` removes `identity` for the rest of the session.
    fn remove_by_moderator(
        &mut self,
        conn: ConnId,
        from: &str,
        identity: &str,
        now: Instant,
    ) -> Vec<Effect> {
        if !self.is_moderator(from) {
            return self.refuse(conn, "not_allowed", "only moderators remove participants");
        }
        if identity == from || !self.participants.contains_key(identity) {
            return self.refuse(
                conn,
                "unknown_participant",
                &format!("{identity} is not another participant of this room"),
            );
        }
        let mut out = Vec::new();
        if let Some(c) = self
            .participants
            .get(identity)
            .and_then(|p| p.local.as_ref())
            .and_then(|l| l.conn)
        {
            out.push(Effect::Close {
                conn: c,
                code: CLOSE_REMOVED,
                reason: "removed by a moderator",
            });
        }
        self.removed.insert(identity.to_owned());
        self.remove(identity, now, &mut out);
        out
    }

    /// A participant's offer or candidate for the forwarding unit.
    fn ask_unit(&mut self, conn: ConnId, from: &str, message: ClientMessage) -> Vec<Effect> {
        let may = self.may(from);
        let request = match message {
            ClientMessage::Offer { sdp, .. } => MediaRequest::Offer { sdp },
            ClientMessage::Candidate { candidate, .. } => MediaRequest::Candidate { candidate },
            _ => {
                return self.refuse(
                    conn,
                    "unknown_participant",
                    &format!("{UNIT} answers offers; it takes no answers"),
                );
            }
        };
        vec![Effect::Media {
            identity: from.to_owned(),
            may,
            request,
        }]
    }

    fn remove(&mut self, identity: &str, now: Instant, out: &mut Vec<Effect>) {
        let Some(p) = self.participants.remove(identity) else {
            return;
        };
        if self.forwarded && p.local.is_some() {
            out.push(Effect::Media {
                identity: identity.to_owned(),
                may: May::default(),
                request: MediaRequest::Leave,
            });
        }
        // Someone who never came back was present until the connection dropped.
        let at = p
            .local
            .as_ref()
            .and_then(|l| l.disconnected_at)
            .unwrap_or(now);
        let left = ServerMessage::Left {
            v: VERSION,
            seq: 0,
            identity: identity.to_owned(),
        };
        self.broadcast(identity, &left, out);
        if p.local.is_some() {
            out.push(Effect::Publish(RoomEvent::Left {
                identity: identity.to_owned(),
            }));
            out.push(Effect::Attendance {
                identity: identity.to_owned(),
                present: false,
                at,
            });
        }
    }

    /// The connection dropped: the participant may resume within the window.
    pub fn disconnected(&mut self, conn: ConnId, now: Instant) -> Vec<Effect> {
        if let Some(l) = self
            .participants
            .values_mut()
            .filter_map(|p| p.local.as_mut())
            .find(|l| l.conn == Some(conn))
        {
            l.conn = None;
            l.disconnected_at = Some(now);
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
            let Some(l) = p.local.as_mut() else {
                continue;
            };
            match (l.conn, l.disconnected_at, l.ping_sent) {
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
                    l.conn = None;
                    l.disconnected_at = Some(now);
                    l.ping_sent = None;
                }
                (Some(_), _, None)
                    if now.duration_since(l.last_heard) >= self.config.ping_interval =>
                {
                    l.ping_sent = Some(now);
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

    /// Another process published `event` about this room; `node` names that process.
    pub fn remote(&mut self, node: &str, event: RoomEvent, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        match event {
            RoomEvent::Joined { participant } => {
                self.remote_joined(node, participant, now, &mut out)
            }
            RoomEvent::Left { identity } => {
                let there = self
                    .participants
                    .get(&identity)
                    .is_some_and(|p| p.node.as_deref() == Some(node));
                if there {
                    self.remove(&identity, now, &mut out);
                }
            }
            RoomEvent::Relay { to, message } => {
                if self
                    .participants
                    .get(&to)
                    .is_some_and(|p| p.local.is_some())
                {
                    self.deliver(&to, |seq| message.renumbered(seq), &mut out);
                }
            }
            RoomEvent::Mute {
                identity,
                audio,
                video,
            } => self.set_mute(&identity, audio, video, &mut out),
        }
        out
    }

    fn remote_joined(
        &mut self,
        node: &str,
        info: ParticipantInfo,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        let identity = info.identity.clone();
        if let Some(local) = self
            .participants
            .get(&identity)
            .and_then(|p| p.local.as_ref())
        {
            // The same identity joined at another process: that connection wins.
            if let Some(conn) = local.conn {
                out.push(Effect::Close {
                    conn,
                    code: CLOSE_REPLACED,
                    reason: "joined again elsewhere",
                });
            }
            out.push(Effect::Attendance {
                identity: identity.clone(),
                present: false,
                at: now,
            });
        }
        self.participants.insert(
            identity.clone(),
            Participant {
                info: info.clone(),
                grants: Grants::default(),
                mic: false,
                hand: false,
                local: None,
                node: Some(node.to_owned()),
            },
        );
        let joined = ServerMessage::Joined {
            v: VERSION,
            seq: 0,
            participant: info,
        };
        self.broadcast(&identity, &joined, out);
    }

    /// Another process says who is connected to it (it started, or this one did). Those
    /// not known yet are announced here; nobody connected here is displaced.
    pub fn remote_present(
        &mut self,
        node: &str,
        participants: Vec<ParticipantInfo>,
        now: Instant,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        for info in participants {
            if !self.participants.contains_key(&info.identity) {
                self.remote_joined(node, info, now, &mut out);
            }
        }
        out
    }

    /// Another process stopped or went silent: its participants are gone.
    pub fn node_gone(&mut self, node: &str, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        let theirs: Vec<String> = self
            .participants
            .iter()
            .filter(|(_, p)| p.node.as_deref() == Some(node))
            .map(|(k, _)| k.clone())
            .collect();
        for identity in theirs {
            self.remove(&identity, now, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests;
