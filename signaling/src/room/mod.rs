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
//!
//! This module holds the room's types and its state; what the room does is in one file
//! per concern, each adding to [`Room`]:
//! - `members`: admission (capacity, removed identities, a second device), resume, and
//!   letting someone go;
//! - `dispatch`: a participant's messages, each handed to what it concerns;
//! - `relay`: offers, answers and candidates to the peer they name, here or elsewhere;
//! - `moderation`: raised hands, the microphone, removals;
//! - `unit`: rooms whose media the forwarding unit carries;
//! - `stream`: each local participant's numbered, kept stream of messages;
//! - `timers`: pings, ping timeouts and the resume window;
//! - `remote`: participants connected to other processes;
//! - `id`: the room's name, [`RoomId`].

mod dispatch;
mod id;
mod members;
mod moderation;
mod relay;
mod remote;
mod stream;
mod timers;
mod unit;

pub use id::RoomId;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::Grants;
use crate::protocol::{IceServer, ParticipantInfo, ServerMessage};
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
    /// The name from the room token.
    pub name: Option<String>,
    /// The line about the entrant from the room token.
    pub about: Option<String>,
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
}

#[cfg(test)]
mod tests;
