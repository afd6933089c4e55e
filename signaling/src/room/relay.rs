//! Offers, answers and candidates between peers: each goes to the participant it names,
//! numbered in its stream when it is connected here, published for its process to number
//! when it is connected elsewhere; in a room the forwarding unit serves, those addressed
//! to the unit ([`UNIT`]) go to the unit instead.

use super::{ConnId, Effect, MediaRequest, Room, RoomEvent};
use crate::protocol::{ServerMessage, UNIT, VERSION};

impl Room {
    /// `from`'s offer for `to`.
    pub(super) fn offer(&mut self, conn: ConnId, from: &str, to: &str, sdp: String) -> Vec<Effect> {
        if self.forwarded && to == UNIT {
            return self.ask_unit(from, MediaRequest::Offer { sdp });
        }
        self.pass_on(conn, from, to, |from| ServerMessage::Offer {
            v: VERSION,
            seq: 0,
            from,
            sdp,
        })
    }

    /// `from`'s answer for `to`. The unit makes no offers, so it takes no answers.
    pub(super) fn answer(
        &mut self,
        conn: ConnId,
        from: &str,
        to: &str,
        sdp: String,
    ) -> Vec<Effect> {
        if self.forwarded && to == UNIT {
            return self.refuse(
                conn,
                "unknown_participant",
                &format!("{UNIT} answers offers; it takes no answers"),
            );
        }
        self.pass_on(conn, from, to, |from| ServerMessage::Answer {
            v: VERSION,
            seq: 0,
            from,
            sdp,
        })
    }

    /// A candidate `from` trickled for `to`.
    pub(super) fn candidate(
        &mut self,
        conn: ConnId,
        from: &str,
        to: &str,
        candidate: String,
        sdp_mid: Option<String>,
        sdp_mline_index: Option<u16>,
    ) -> Vec<Effect> {
        if self.forwarded && to == UNIT {
            return self.ask_unit(from, MediaRequest::Candidate { candidate });
        }
        self.pass_on(conn, from, to, |from| ServerMessage::Candidate {
            v: VERSION,
            seq: 0,
            from,
            candidate,
            sdp_mid,
            sdp_mline_index,
        })
    }

    /// Relays what `build` makes of `from`'s message to `to`, if `to` is another
    /// participant of the room; otherwise refuses it.
    fn pass_on(
        &mut self,
        conn: ConnId,
        from: &str,
        to: &str,
        build: impl FnOnce(String) -> ServerMessage,
    ) -> Vec<Effect> {
        if let Some(refused) = self.unless_another(conn, from, to) {
            return refused;
        }
        let mut out = Vec::new();
        self.relay(to, build(from.to_owned()), &mut out);
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
}
