//! # duikou-signaling
//!
//! Rooms for booked sessions: who may enter, how peers find each other through NAT, and
//! the WebSocket protocol they speak (`PROTOCOL.md`).
//!
//! ## Layout
//! - [`protocol`]: the signaling messages, version 1.
//! - [`room`]: one room as a sans-I/O state machine: join, relay, mute, leave, ping and
//!   resume, with time as an input; participants at other gateway processes are known
//!   from the room events those processes publish.
//! - [`hub`]: every room of a process, the limits on each connection (size, rate, abuse)
//!   and the events exchanged with other processes; sans-I/O too.
//! - [`server`]: the thin tokio/axum shell: a task owning the hub, one reader and one
//!   writer per WebSocket, room tokens checked at the first message.
//! - [`token`]: room tokens, short-lived HS256 JWTs naming room, identity, role and grants.
//! - [`sfu`]: the forwarding unit of teaching sessions and ward rounds, sans-I/O around
//!   str0m: one presenter's media to many receivers, each the simulcast layer its link
//!   carries; media presence for attendance.
//! - [`turn`]: TURN credentials in coturn's shared-secret form (the REST API of
//!   draft-uberti-behave-turn-rest), minted per join.
//!
//! The gateway supplies what this crate must not know: who the booking names (it mints
//! the room tokens), where presence is recorded ([`server::Presence`]) and the bus
//! between processes ([`server::BusLink`], PostgreSQL LISTEN/NOTIFY).

pub mod hub;
pub mod protocol;
pub mod room;
pub mod server;
pub mod sfu;
pub mod token;
pub mod turn;

/// What a participant may do in a room, as granted by the booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Grants {
    /// May send audio and video.
    pub publish: bool,
    /// May receive the other participants' media.
    pub subscribe: bool,
    /// May mute or remove others.
    pub moderate: bool,
}
