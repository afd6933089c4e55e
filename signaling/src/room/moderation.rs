//! What moderators decide, in a classroom or a ward round: who has the microphone
//! (trainees raise their hands, a moderator gives or takes it back) and who is removed
//! for the rest of the session.

use std::time::Instant;

use super::{CLOSE_REMOVED, ConnId, Effect, MediaRequest, Room};
use crate::protocol::{ServerMessage, VERSION};

impl Room {
    /// `from` raises its hand, or lowers it; everyone here sees it.
    pub(super) fn raise_hand(&mut self, from: &str, raised: bool) -> Vec<Effect> {
        if let Some(p) = self.participants.get_mut(from) {
            p.hand = raised;
        }
        let m = ServerMessage::Hand {
            v: VERSION,
            seq: 0,
            identity: from.to_owned(),
            raised,
        };
        let mut out = Vec::new();
        self.broadcast("", &m, &mut out);
        out
    }

    fn is_moderator(&self, identity: &str) -> bool {
        self.participants
            .get(identity)
            .is_some_and(|p| p.grants.moderate)
    }

    /// `from` gives `to` the microphone (`audio`) or takes it back.
    pub(super) fn grant(&mut self, conn: ConnId, from: &str, to: &str, audio: bool) -> Vec<Effect> {
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
    pub(super) fn remove_by_moderator(
        &mut self,
        conn: ConnId,
        from: &str,
        identity: &str,
        now: Instant,
    ) -> Vec<Effect> {
        if !self.is_moderator(from) {
            return self.refuse(conn, "not_allowed", "only moderators remove participants");
        }
        if let Some(refused) = self.unless_another(conn, from, identity) {
            return refused;
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
}
