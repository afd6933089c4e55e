//! The forwarding unit's task: it owns the [`Unit`] and its UDP socket, takes the
//! participants' requests from the hub task, and reports when media starts or stops
//! reaching someone, for attendance.

use std::time::Instant;

use tokio::sync::mpsc;

use super::{Command, Record, wall};
use crate::protocol::{ServerMessage, UNIT, VERSION};
use crate::room::MediaRequest;
use crate::sfu::{May, PeerKey, Receiving, Unit};

/// A participant's request for the forwarding unit.
pub(super) struct ToUnit {
    pub(super) key: PeerKey,
    pub(super) may: May,
    pub(super) request: MediaRequest,
}

/// The forwarding unit's task: datagrams, requests and its timers in, datagrams and
/// answers out. Answers go back through the hub, which numbers them in the receiver's
/// stream.
pub(super) async fn forward_media(
    socket: tokio::net::UdpSocket,
    advertised: std::net::SocketAddr,
    mut requests: mpsc::UnboundedReceiver<ToUnit>,
    replies: mpsc::UnboundedSender<Command>,
    attendance: mpsc::UnboundedSender<Record>,
) {
    let mut unit = Unit::new(advertised);
    let mut buf = vec![0_u8; 2048];
    loop {
        let due = unit.poll_timeout(Instant::now());
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((n, from)) = received {
                    unit.receive(Instant::now(), from, &buf[..n]);
                }
            }
            request = requests.recv() => {
                let Some(ToUnit { key, may, request }) = request else { break };
                let now = Instant::now();
                match request {
                    MediaRequest::Offer { sdp } => {
                        let message = match unit.offer(now, key.clone(), may, &sdp) {
                            Ok(sdp) => ServerMessage::Answer {
                                v: VERSION,
                                seq: 0,
                                from: UNIT.to_owned(),
                                sdp,
                            },
                            Err(e) => ServerMessage::Error {
                                v: VERSION,
                                seq: 0,
                                code: "media_refused".into(),
                                message: e.to_string(),
                            },
                        };
                        let _ = replies.send(Command::FromUnit {
                            room: key.room,
                            identity: key.identity,
                            message,
                        });
                    }
                    MediaRequest::Candidate { candidate } => unit.candidate(now, &key, &candidate),
                    MediaRequest::Leave => unit.leave(&key),
                    MediaRequest::May => unit.set_may(&key, may),
                    MediaRequest::AudioOnly { on } => unit.set_audio_only(now, &key, on),
                }
            }
            () = tokio::time::sleep_until(due.into()) => unit.handle_timeout(Instant::now()),
        }
        while let Some(t) = unit.poll_transmit() {
            let _ = socket.send_to(&t.contents, t.destination).await;
        }
        while let Some(event) = unit.poll_event() {
            let (key, receiving, at, seconds) = match event {
                Receiving::Started { key, at } => (key, true, at, 0),
                Receiving::Stopped { key, at, seconds } => (key, false, at, seconds),
            };
            let _ = attendance.send(Record::Media {
                room: key.room,
                identity: key.identity,
                receiving,
                at: wall(at),
                seconds,
            });
        }
    }
}
