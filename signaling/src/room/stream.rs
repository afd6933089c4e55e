//! Each local participant's stream: every message to it takes the next number of the
//! stream and is kept (up to [`RoomConfig::buffer`](super::RoomConfig::buffer)) for a
//! resume, and is sent at once while it is connected.

use super::{Effect, Room};
use crate::protocol::ServerMessage;

impl Room {
    /// Numbers a message for local `identity`, keeps it, and sends it if connected.
    pub(super) fn deliver(
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
    pub(super) fn broadcast(
        &mut self,
        except: &str,
        message: &ServerMessage,
        out: &mut Vec<Effect>,
    ) {
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
}
