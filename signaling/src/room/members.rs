//! Who is in the room: admission of those the room tokens name, up to the room's capacity
//! and never again once a moderator removed them; the same identity on a new device
//! replacing its older connection; a dropped participant resuming its stream; and letting
//! someone go, which the others hear and attendance records.

use std::collections::VecDeque;
use std::time::Instant;

use super::{
    CLOSE_REPLACED, ConnId, Effect, Entrant, Local, MediaRequest, Participant, Room, RoomError,
    RoomEvent,
};
use crate::protocol::{IceServer, ParticipantInfo, ServerMessage, UNIT, VERSION};
use crate::sfu::May;

impl Room {
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
            name,
            about,
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
            name,
            about,
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

    pub(super) fn remove(&mut self, identity: &str, now: Instant, out: &mut Vec<Effect>) {
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
}
