//! Every room of one gateway process, with the limits on each connection and the events
//! exchanged with the other processes; sans-I/O like the rooms it holds.
//!
//! The hub numbers nothing and sends nothing itself: it routes a connection's text to
//! its room after checking size and rate, turns the rooms' effects into effects for the
//! shell, and keeps track of the other processes on the bus. A process announces itself
//! with [`BusBody::Sync`] when it starts, and the others answer with who is connected to
//! them ([`BusBody::Present`]); a heartbeat tells that a process is alive, and a process
//! silent for [`HubConfig::node_timeout`] is taken as gone with its participants.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::protocol::{self, IceServer, ParticipantInfo, ServerMessage};
use crate::room::{self, ConnId, Entrant, Room, RoomConfig, RoomError, RoomEvent, RoomId};

/// WebSocket close code: too many refused messages in a short time (RFC 6455 "policy
/// violation").
pub const CLOSE_ABUSE: u16 = 1008;

/// Limits and timing of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Timing and buffers of each room; the capacity comes from each room token.
    pub room: RoomConfig,
    /// The largest text message accepted, in bytes; larger ones are refused.
    pub max_message_bytes: usize,
    /// Messages a connection may send per second, sustained.
    pub rate_per_second: f64,
    /// Messages a connection may send at once (the trickle of candidates at a join).
    pub burst: f64,
    /// Refused messages within [`HubConfig::abuse_window`] after which the socket closes.
    pub abuse_limit: usize,
    /// See [`HubConfig::abuse_limit`].
    pub abuse_window: Duration,
    /// How often this process tells the others it is alive.
    pub heartbeat: Duration,
    /// Silence after which another process counts as gone.
    pub node_timeout: Duration,
    /// Rooms whose names start with one of these send their media through the
    /// forwarding unit (teaching sessions).
    pub forwarded_rooms: Vec<String>,
    /// Rooms that hold more participants than this send their media through the
    /// forwarding unit too (a ward round's two teams): beyond four, a mesh of peer
    /// connections costs each browser more than a village link carries.
    pub mesh_at_most: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            room: RoomConfig::default(),
            max_message_bytes: 64 * 1024,
            rate_per_second: 50.0,
            burst: 200.0,
            abuse_limit: 100,
            abuse_window: Duration::from_secs(10),
            heartbeat: Duration::from_secs(5),
            node_timeout: Duration::from_secs(20),
            forwarded_rooms: vec!["teaching-".to_owned()],
            mesh_at_most: 4,
        }
    }
}

/// A message between gateway processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusEvent {
    /// The sending process.
    pub node: String,
    /// What it says.
    pub body: BusBody,
}

/// What one gateway process tells the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusBody {
    /// Something happened in a room.
    Room {
        /// The room.
        room: RoomId,
        /// What.
        event: RoomEvent,
    },
    /// "I have started: who is connected to you?"
    Sync,
    /// The answer to [`BusBody::Sync`]: who is connected to the sender in `room`.
    Present {
        /// The room.
        room: RoomId,
        /// Its participants at the sender.
        participants: Vec<ParticipantInfo>,
    },
    /// The sender is alive.
    Heartbeat,
    /// The sender is stopping.
    Bye,
}

/// A participant coming back on a new connection.
#[derive(Debug, Clone)]
pub struct Resume {
    /// The identity from the room token, which must hold the session.
    pub identity: String,
    /// The `session_id` of the welcome.
    pub session_id: String,
    /// The last `seq` received.
    pub last_seq: u64,
    /// STUN and TURN servers for the welcome.
    pub ice_servers: Vec<IceServer>,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEffect {
    /// Send a message on a connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The message.
        message: ServerMessage,
    },
    /// Close a connection.
    Close {
        /// The connection.
        conn: ConnId,
        /// WebSocket close code.
        code: u16,
        /// Why.
        reason: &'static str,
    },
    /// Someone entered or left `room`.
    Attendance {
        /// The room.
        room: RoomId,
        /// Who.
        identity: String,
        /// Entered or left.
        present: bool,
        /// When.
        at: Instant,
    },
    /// Tell the other processes.
    Publish(BusEvent),
    /// Hand a participant's request to the forwarding unit.
    Media {
        /// The room.
        room: RoomId,
        /// Who.
        identity: String,
        /// What the unit may forward of its media.
        may: crate::sfu::May,
        /// The request.
        request: room::MediaRequest,
    },
}

#[derive(Debug)]
struct Conn {
    room: RoomId,
    tokens: f64,
    refilled: Instant,
    refusals: VecDeque<Instant>,
}

/// All rooms of this process.
#[derive(Debug)]
pub struct Hub {
    node: String,
    config: HubConfig,
    rooms: HashMap<RoomId, Room>,
    conns: HashMap<ConnId, Conn>,
    nodes: HashMap<String, Instant>,
    last_heartbeat: Option<Instant>,
}

impl Hub {
    /// A hub for the process named `node` (unique among the processes on the bus).
    pub fn new(node: String, config: HubConfig) -> Self {
        Self {
            node,
            config,
            rooms: HashMap::new(),
            conns: HashMap::new(),
            nodes: HashMap::new(),
            last_heartbeat: None,
        }
    }

    /// This process's name on the bus.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The first thing to publish: asks the other processes who is connected to them.
    pub fn start(&self) -> HubEffect {
        self.publish(BusBody::Sync)
    }

    /// The last thing to publish: this process's participants are gone.
    pub fn stop(&self) -> HubEffect {
        self.publish(BusBody::Bye)
    }

    fn publish(&self, body: BusBody) -> HubEffect {
        HubEffect::Publish(BusEvent {
            node: self.node.clone(),
            body,
        })
    }

    /// Who is in `room`, here or elsewhere.
    pub fn identities(&self, room: &RoomId) -> Vec<String> {
        self.rooms
            .get(room)
            .map(Room::identities)
            .unwrap_or_default()
    }

    fn lift(&self, room: &RoomId, effects: Vec<room::Effect>) -> Vec<HubEffect> {
        effects
            .into_iter()
            .map(|e| match e {
                room::Effect::Send { conn, message } => HubEffect::Send { conn, message },
                room::Effect::Close { conn, code, reason } => {
                    HubEffect::Close { conn, code, reason }
                }
                room::Effect::Attendance {
                    identity,
                    present,
                    at,
                } => HubEffect::Attendance {
                    room: room.clone(),
                    identity,
                    present,
                    at,
                },
                room::Effect::Publish(event) => self.publish(BusBody::Room {
                    room: room.clone(),
                    event,
                }),
                room::Effect::Media {
                    identity,
                    may,
                    request,
                } => HubEffect::Media {
                    room: room.clone(),
                    identity,
                    may,
                    request,
                },
            })
            .collect()
    }

    fn room_mut(&mut self, room: &RoomId) -> &mut Room {
        self.rooms
            .entry(room.clone())
            .or_insert_with(|| Room::new(self.config.room.clone()))
    }

    /// A message from the forwarding unit (its answer, or why it refused) for `identity`
    /// in `room`.
    pub fn from_unit(
        &mut self,
        room: &RoomId,
        identity: &str,
        message: ServerMessage,
    ) -> Vec<HubEffect> {
        let effects = match self.rooms.get_mut(room) {
            Some(r) => r.from_unit(identity, message),
            None => Vec::new(),
        };
        self.lift(room, effects)
    }

    fn attach(&mut self, conn: ConnId, room: &RoomId, now: Instant) {
        self.conns.insert(
            conn,
            Conn {
                room: room.clone(),
                tokens: self.config.burst,
                refilled: now,
                refusals: VecDeque::new(),
            },
        );
    }

    /// Admits `entrant` on `conn` to `room`, which holds `capacity` participants.
    pub fn join(
        &mut self,
        conn: ConnId,
        room: &RoomId,
        entrant: Entrant,
        capacity: usize,
        now: Instant,
    ) -> Result<Vec<HubEffect>, RoomError> {
        let forwarded = capacity > self.config.mesh_at_most
            || self
                .config
                .forwarded_rooms
                .iter()
                .any(|prefix| room.as_str().starts_with(prefix.as_str()));
        let r = self.room_mut(room);
        r.set_capacity(capacity);
        r.set_forwarded(forwarded);
        let joined = r.join(conn, entrant, now);
        if joined.is_err() && r.is_empty() {
            self.rooms.remove(room);
        }
        let effects = joined?;
        self.attach(conn, room, now);
        Ok(self.lift(room, effects))
    }

    /// Resumes a dropped participant of `room` on `conn`.
    pub fn resume(
        &mut self,
        conn: ConnId,
        room: &RoomId,
        resume: Resume,
        now: Instant,
    ) -> Result<Vec<HubEffect>, RoomError> {
        let r = self.rooms.get_mut(room).ok_or(RoomError::UnknownSession)?;
        if r.identity_of_session(&resume.session_id) != Some(resume.identity.as_str()) {
            return Err(RoomError::UnknownSession);
        }
        let effects = r.resume(
            conn,
            &resume.session_id,
            resume.last_seq,
            resume.ice_servers,
            now,
        )?;
        self.attach(conn, room, now);
        Ok(self.lift(room, effects))
    }

    /// A text message from a connection in a room.
    pub fn text(&mut self, conn: ConnId, text: &str, now: Instant) -> Vec<HubEffect> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Vec::new();
        };
        if text.len() > self.config.max_message_bytes {
            let message = format!(
                "a message may have at most {} bytes; this one has {}",
                self.config.max_message_bytes,
                text.len()
            );
            return self.refuse(conn, "too_large", &message, now);
        }
        let elapsed = now.duration_since(c.refilled).as_secs_f64();
        c.tokens = (c.tokens + elapsed * self.config.rate_per_second).min(self.config.burst);
        c.refilled = now;
        if c.tokens < 1.0 {
            let message = format!(
                "more than {} messages a second; this one was dropped",
                self.config.rate_per_second
            );
            return self.refuse(conn, "rate_limited", &message, now);
        }
        c.tokens -= 1.0;
        let room = c.room.clone();
        match protocol::parse(text) {
            Ok(message) => {
                let effects = match self.rooms.get_mut(&room) {
                    Some(r) => r.message(conn, message, now),
                    None => Vec::new(),
                };
                if effects
                    .iter()
                    .any(|e| matches!(e, room::Effect::Close { conn: c, .. } if *c == conn))
                {
                    self.conns.remove(&conn);
                }
                let out = self.lift(&room, effects);
                self.count_refusals(conn, &out, now);
                out
            }
            Err(problem) => self.refuse(conn, "malformed", &problem, now),
        }
    }

    /// Refuses the last message of `conn` with an error `code`.
    pub fn refuse(
        &mut self,
        conn: ConnId,
        code: &str,
        message: &str,
        now: Instant,
    ) -> Vec<HubEffect> {
        let Some(room) = self.conns.get(&conn).map(|c| c.room.clone()) else {
            return Vec::new();
        };
        let effects = self
            .rooms
            .get_mut(&room)
            .map(|r| r.refuse(conn, code, message))
            .unwrap_or_default();
        let out = self.lift(&room, effects);
        self.count_refusals(conn, &out, now);
        out
    }

    /// Counts the errors sent to `conn` in `out`; too many close it.
    fn count_refusals(&mut self, conn: ConnId, out: &[HubEffect], now: Instant) {
        let errors = out
            .iter()
            .filter(|e| {
                matches!(e, HubEffect::Send { conn: c, message: ServerMessage::Error { .. } } if *c == conn)
            })
            .count();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        for _ in 0..errors {
            c.refusals.push_back(now);
        }
        while c
            .refusals
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.config.abuse_window)
        {
            c.refusals.pop_front();
        }
    }

    /// Whether `conn` has had too many refusals and must be closed. Separate from
    /// [`Hub::text`] so that the error that tipped it over is still sent first.
    pub fn abusive(&mut self, conn: ConnId, now: Instant) -> Option<Vec<HubEffect>> {
        let c = self.conns.get(&conn)?;
        if c.refusals.len() <= self.config.abuse_limit {
            return None;
        }
        let mut out = vec![HubEffect::Close {
            conn,
            code: CLOSE_ABUSE,
            reason: "too many refused messages",
        }];
        out.extend(self.disconnected(conn, now));
        Some(out)
    }

    /// The connection closed or dropped.
    pub fn disconnected(&mut self, conn: ConnId, now: Instant) -> Vec<HubEffect> {
        let Some(c) = self.conns.remove(&conn) else {
            return Vec::new();
        };
        let effects = match self.rooms.get_mut(&c.room) {
            Some(r) => r.disconnected(conn, now),
            None => Vec::new(),
        };
        self.lift(&c.room, effects)
    }

    /// Time passes: rooms ping and let go, the heartbeat goes out, silent processes are
    /// given up, empty rooms are dropped.
    pub fn tick(&mut self, now: Instant) -> Vec<HubEffect> {
        let mut out = Vec::new();
        if self
            .last_heartbeat
            .is_none_or(|t| now.duration_since(t) >= self.config.heartbeat)
        {
            self.last_heartbeat = Some(now);
            out.push(self.publish(BusBody::Heartbeat));
        }
        let silent: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, seen)| now.duration_since(**seen) >= self.config.node_timeout)
            .map(|(n, _)| n.clone())
            .collect();
        for node in silent {
            self.nodes.remove(&node);
            out.extend(self.node_gone(&node, now));
        }
        let names: Vec<RoomId> = self.rooms.keys().cloned().collect();
        for name in names {
            let effects = self.rooms.get_mut(&name).expect("listed").tick(now);
            for e in &effects {
                if let room::Effect::Close { conn, .. } = e {
                    self.conns.remove(conn);
                }
            }
            out.extend(self.lift(&name, effects));
        }
        self.rooms.retain(|_, r| !r.is_empty());
        out
    }

    fn node_gone(&mut self, node: &str, now: Instant) -> Vec<HubEffect> {
        let names: Vec<RoomId> = self.rooms.keys().cloned().collect();
        let mut out = Vec::new();
        for name in names {
            let effects = self
                .rooms
                .get_mut(&name)
                .expect("listed")
                .node_gone(node, now);
            out.extend(self.lift(&name, effects));
        }
        out
    }

    /// Another process published `event`.
    pub fn bus(&mut self, event: BusEvent, now: Instant) -> Vec<HubEffect> {
        if event.node == self.node {
            return Vec::new();
        }
        let node = event.node;
        self.nodes.insert(node.clone(), now);
        match event.body {
            BusBody::Room { room, event } => {
                let effects = self.room_mut(&room).remote(&node, event, now);
                let out = self.lift(&room, effects);
                if self.rooms.get(&room).is_some_and(Room::is_empty) {
                    self.rooms.remove(&room);
                }
                out
            }
            BusBody::Present { room, participants } => {
                let effects = self
                    .room_mut(&room)
                    .remote_present(&node, participants, now);
                self.lift(&room, effects)
            }
            BusBody::Sync => self
                .rooms
                .iter()
                .filter(|(_, r)| r.has_local())
                .map(|(name, r)| {
                    self.publish(BusBody::Present {
                        room: name.clone(),
                        participants: r.local_participants(),
                    })
                })
                .collect(),
            BusBody::Heartbeat => Vec::new(),
            BusBody::Bye => {
                self.nodes.remove(&node);
                self.node_gone(&node, now)
            }
        }
    }
}

#[cfg(test)]
mod tests;
