//! Time in the room: the silent are pinged, those who do not answer are closed, and a
//! participant whose connection dropped is let go once the resume window has passed.

use std::time::Instant;

use super::{CLOSE_PING_TIMEOUT, ConnId, Effect, Room};
use crate::protocol::{ServerMessage, VERSION};

impl Room {
    /// The connection dropped: the participant may resume within the window.
    pub fn disconnected(&mut self, conn: ConnId, now: Instant) -> Vec<Effect> {
        if let Some(l) = self
            .participants
            .values_mut()
            .filter_map(|p| p.local.as_mut())
            .find(|l| l.conn == Some(conn))
        {
            l.conn = None;
            l.disconnected_at = Some(now);
        }
        Vec::new()
    }

    /// Time passes: pings the silent, closes those that do not answer, and lets go of
    /// those gone longer than the resume window.
    pub fn tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        let mut ping = Vec::new();
        for (identity, p) in &mut self.participants {
            let Some(l) = p.local.as_mut() else {
                continue;
            };
            match (l.conn, l.disconnected_at, l.ping_sent) {
                (None, Some(since), _)
                    if now.duration_since(since) >= self.config.resume_window =>
                {
                    gone.push(identity.clone())
                }
                (Some(conn), _, Some(sent))
                    if now.duration_since(sent) >= self.config.ping_timeout =>
                {
                    out.push(Effect::Close {
                        conn,
                        code: CLOSE_PING_TIMEOUT,
                        reason: "no pong",
                    });
                    l.conn = None;
                    l.disconnected_at = Some(now);
                    l.ping_sent = None;
                }
                (Some(_), _, None)
                    if now.duration_since(l.last_heard) >= self.config.ping_interval =>
                {
                    l.ping_sent = Some(now);
                    ping.push(identity.clone());
                }
                _ => {}
            }
        }
        for identity in ping {
            self.deliver(
                &identity,
                |seq| ServerMessage::Ping { v: VERSION, seq },
                &mut out,
            );
        }
        for identity in gone {
            self.remove(&identity, now, &mut out);
        }
        out
    }
}
