//! Rooms whose media goes through the forwarding unit (teaching sessions, ward rounds):
//! participants' offers, candidates and audio-only requests become requests for the
//! unit, with what it may forward of each one's media; the unit's answers come back
//! through the room, numbered in the receiver's stream.

use super::{ConnId, Effect, MediaRequest, Room};
use crate::protocol::ServerMessage;
use crate::sfu::May;

impl Room {
    /// Sends this room's media through the forwarding unit ([`UNIT`](crate::protocol::UNIT)).
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

    /// What the unit may forward of `identity`'s media: everything with the publish
    /// grant, its audio once a moderator gave it the microphone.
    pub(super) fn may(&self, identity: &str) -> May {
        self.participants
            .get(identity)
            .map(|p| May {
                audio: p.grants.publish || p.mic,
                video: p.grants.publish,
            })
            .unwrap_or_default()
    }

    /// Hands `from`'s `request` to the forwarding unit.
    pub(super) fn ask_unit(&self, from: &str, request: MediaRequest) -> Vec<Effect> {
        vec![Effect::Media {
            identity: from.to_owned(),
            may: self.may(from),
            request,
        }]
    }

    /// `from` asks for audio only (`on`), or for video again; only the unit can do that.
    pub(super) fn audio_only(&mut self, conn: ConnId, from: &str, on: bool) -> Vec<Effect> {
        if !self.forwarded {
            return self.refuse(
                conn,
                "not_allowed",
                "audio_only is for rooms served by the forwarding unit",
            );
        }
        self.ask_unit(from, MediaRequest::AudioOnly { on })
    }
}
