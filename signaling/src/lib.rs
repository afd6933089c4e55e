//! # duikou-signaling
//!
//! Rooms for booked sessions: who may enter, how peers find each other through NAT, and
//! (later) the WebSocket protocol and the media fan-out for teaching sessions.
//!
//! ## Layout
//! - [`protocol`]: the signaling messages, version 1 (`PROTOCOL.md`).
//! - [`room`]: one room as a sans-I/O state machine: join, relay, mute, leave, ping and
//!   resume, with time as an input.
//! - [`token`]: room tokens, short-lived HS256 JWTs naming room, identity, role and grants.
//! - [`turn`]: TURN credentials in coturn's shared-secret form (the REST API of
//!   draft-uberti-behave-turn-rest), minted per join.
//! - [`Admission`]: the question the signaling layer asks the gateway before anyone enters a
//!   room. The gateway implements it from its bookings; this crate never imports the gateway.
//!
//! The WebSocket shell, room tokens and the forwarding unit arrive with the rest of the
//! signaling and teaching issues; the protocol logic here stays free of I/O.

pub mod hub;
pub mod protocol;
pub mod room;
pub mod server;
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

/// Decides who may enter the room of a booked session.
///
/// Implemented by the gateway, which knows the bookings; the signaling layer only asks.
pub trait Admission: Send + Sync {
    /// The grants of `identity` in `room`, or `None` when the booking does not name them.
    fn admit(&self, room: &str, identity: &str) -> Option<Grants>;
}
