//! The task that owns the [`Hub`]: it feeds it the connections' commands, the bus's
//! events and the clock, and carries out what the hub says: messages into outboxes,
//! closes, events onto the bus, attendance to the recorder, requests to the forwarding
//! unit. A client that does not read its messages loses its connection here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::media::ToUnit;
use super::{BusLink, CLOSE_GOING_AWAY, CLOSE_TOO_SLOW, Command, Outgoing, Record, wall};
use crate::hub::{BusEvent, Hub, HubEffect};
use crate::protocol::{ServerMessage, VERSION};
use crate::room::{ConnId, MediaRequest, RoomError};
use crate::sfu::PeerKey;

/// The hub task.
pub(super) async fn run(
    mut hub: Hub,
    mut commands: mpsc::UnboundedReceiver<Command>,
    bus: Option<BusLink>,
    attendance: mpsc::UnboundedSender<Record>,
    media: Option<mpsc::UnboundedSender<ToUnit>>,
) {
    let (bus_out, mut bus_in) = match bus {
        Some(link) => (Some(link.outgoing), Some(link.incoming)),
        None => (None, None),
    };
    let mut shell = Shell {
        outboxes: HashMap::new(),
        bus: bus_out,
        attendance,
        media,
    };
    let hello = hub.start();
    shell.apply(&mut hub, vec![hello]);
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let effects = tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { break };
                let now = Instant::now();
                match command {
                    Command::Join { conn, room, entrant, capacity, outbox, reply } => {
                        shell.admit(&mut hub, conn, outbox, reply, |hub| {
                            hub.join(conn, &room, entrant, capacity, now)
                        });
                        Vec::new()
                    }
                    Command::Resume { conn, room, resume, outbox, reply } => {
                        shell.admit(&mut hub, conn, outbox, reply, |hub| {
                            hub.resume(conn, &room, resume, now)
                        });
                        Vec::new()
                    }
                    Command::Text { conn, text } => {
                        let mut effects = hub.text(conn, &text, now);
                        effects.extend(hub.abusive(conn, now).unwrap_or_default());
                        effects
                    }
                    Command::Binary { conn } => {
                        let mut effects = hub.refuse(conn, "malformed", "messages are JSON text", now);
                        effects.extend(hub.abusive(conn, now).unwrap_or_default());
                        effects
                    }
                    Command::Closed { conn } => {
                        shell.outboxes.remove(&conn);
                        hub.disconnected(conn, now)
                    }
                    Command::FromUnit { room, identity, message } => {
                        hub.from_unit(&room, &identity, message)
                    }
                    Command::Stop { done } => {
                        let bye = hub.stop();
                        shell.apply(&mut hub, vec![bye]);
                        for (_, outbox) in shell.outboxes.drain() {
                            let _ = outbox.try_send(Outgoing::Close(CLOSE_GOING_AWAY, "server stopping"));
                        }
                        let _ = done.send(());
                        break;
                    }
                }
            }
            Some(event) = async { match bus_in.as_mut() { Some(rx) => rx.recv().await, None => None } }, if bus_in.is_some() => {
                hub.bus(event, Instant::now())
            }
            _ = clock.tick() => hub.tick(Instant::now()),
        };
        shell.apply(&mut hub, effects);
    }
}

struct Shell {
    outboxes: HashMap<ConnId, mpsc::Sender<Outgoing>>,
    bus: Option<mpsc::UnboundedSender<BusEvent>>,
    attendance: mpsc::UnboundedSender<Record>,
    media: Option<mpsc::UnboundedSender<ToUnit>>,
}

impl Shell {
    /// Takes `conn`'s outbox, then has the hub `admit` the connection: when it does, its
    /// effects are carried out (the welcome goes into that outbox); when it refuses, the
    /// outbox is let go. The connection's reader hears which in `reply`.
    fn admit(
        &mut self,
        hub: &mut Hub,
        conn: ConnId,
        outbox: mpsc::Sender<Outgoing>,
        reply: oneshot::Sender<Result<(), RoomError>>,
        admit: impl FnOnce(&mut Hub) -> Result<Vec<HubEffect>, RoomError>,
    ) {
        self.outboxes.insert(conn, outbox);
        match admit(hub) {
            Ok(effects) => {
                self.apply(hub, effects);
                let _ = reply.send(Ok(()));
            }
            Err(e) => {
                self.outboxes.remove(&conn);
                let _ = reply.send(Err(e));
            }
        }
    }

    fn apply(&mut self, hub: &mut Hub, effects: Vec<HubEffect>) {
        let mut slow = Vec::new();
        for effect in effects {
            match effect {
                HubEffect::Send { conn, message } => {
                    let Some(outbox) = self.outboxes.get(&conn) else {
                        continue;
                    };
                    let text = serde_json::to_string(&message).expect("plain JSON");
                    if outbox.try_send(Outgoing::Text(text)).is_err() {
                        slow.push(conn);
                    }
                }
                HubEffect::Close { conn, code, reason } => {
                    if let Some(outbox) = self.outboxes.remove(&conn) {
                        let _ = outbox.try_send(Outgoing::Close(code, reason));
                    }
                }
                HubEffect::Attendance {
                    room,
                    identity,
                    present,
                    at,
                } => {
                    let _ = self.attendance.send(Record::Presence {
                        room,
                        identity,
                        present,
                        at: wall(at),
                    });
                }
                HubEffect::Publish(event) => {
                    if let Some(bus) = &self.bus {
                        let _ = bus.send(event);
                    }
                }
                HubEffect::Media {
                    room,
                    identity,
                    may,
                    request,
                } => {
                    let key = PeerKey { room, identity };
                    let sent = self.media.as_ref().is_some_and(|m| {
                        m.send(ToUnit {
                            key: key.clone(),
                            may,
                            request: request.clone(),
                        })
                        .is_ok()
                    });
                    if !sent && matches!(request, MediaRequest::Offer { .. }) {
                        let refused = ServerMessage::Error {
                            v: VERSION,
                            seq: 0,
                            code: "media_refused".into(),
                            message: "the forwarding unit does not run on this server".into(),
                        };
                        let more = hub.from_unit(&key.room, &key.identity, refused);
                        self.apply(hub, more);
                    }
                }
            }
        }
        // A client that does not read loses its connection, not the others' messages;
        // it may resume.
        for conn in slow {
            if let Some(outbox) = self.outboxes.remove(&conn) {
                let _ = outbox.try_send(Outgoing::Close(CLOSE_TOO_SLOW, "not reading"));
            }
            let more = hub.disconnected(conn, Instant::now());
            self.apply(hub, more);
        }
    }
}
