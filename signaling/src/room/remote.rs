//! Participants connected to other gateway processes, known from the [`RoomEvent`]s those
//! processes publish: their joins, leaves, mute state and the messages relayed to
//! participants here; and what to do when a process says who it holds or goes away.

use std::time::Instant;

use super::{CLOSE_REPLACED, Effect, Participant, Room, RoomEvent};
use crate::Grants;
use crate::protocol::{ParticipantInfo, ServerMessage, VERSION};

impl Room {
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
