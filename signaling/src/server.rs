//! The thin async shell around the [`Hub`]: one task owns the hub and feeds it commands
//! from the WebSocket connections, events from the bus and the clock; each connection
//! has a reader (this module's [`Signaling::serve`]) and a writer task draining its
//! outbox. Room tokens are checked here, at the first message of a connection.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt as _, StreamExt as _};
use rand::RngCore as _;
use tokio::sync::{mpsc, oneshot};

use crate::hub::{BusEvent, Hub, HubConfig, HubEffect, Resume};
use crate::protocol::{self, ClientMessage, IceServer, ServerMessage, UNIT, VERSION};
use crate::room::{ConnId, Entrant, MediaRequest, RoomError, RoomId};
use crate::sfu::{May, PeerKey, Receiving, Unit};
use crate::token::{self, RoomClaims, TokenError};
use crate::turn;

/// WebSocket close code: the room token was refused.
pub const CLOSE_NOT_ADMITTED: u16 = 4003;
/// WebSocket close code: the room is full.
pub const CLOSE_ROOM_FULL: u16 = 4004;
/// WebSocket close code: no `join` or `resume` within the handshake time.
pub const CLOSE_NO_JOIN: u16 = 4005;
/// WebSocket close code: the client does not read its messages fast enough.
pub const CLOSE_TOO_SLOW: u16 = 4006;

/// WebSocket close code: this gateway process is stopping; connect again (RFC 6455).
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// Messages waiting for a slow client before it is disconnected.
const OUTBOX: usize = 1024;

/// STUN and TURN servers handed to each participant.
#[derive(Debug, Clone, Default)]
pub struct IceConfig {
    /// `stun:` URLs.
    pub stun_urls: Vec<String>,
    /// `turn:` and `turns:` URLs of servers sharing `turn_secret`.
    pub turn_urls: Vec<String>,
    /// coturn's `static-auth-secret`; without it no TURN server is handed out.
    pub turn_secret: Option<Vec<u8>>,
    /// How long a minted TURN credential lasts.
    pub turn_ttl: Duration,
}

impl IceConfig {
    /// The servers for `identity` at unix time `now`, with a TURN credential minted now.
    pub fn servers(&self, identity: &str, now: i64) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun_urls.is_empty() {
            servers.push(IceServer {
                urls: self.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        if let (false, Some(secret)) = (self.turn_urls.is_empty(), &self.turn_secret) {
            let ttl = i64::try_from(self.turn_ttl.as_secs()).unwrap_or(i64::MAX / 2);
            let c = turn::credential(secret, identity, now + ttl);
            servers.push(IceServer {
                urls: self.turn_urls.clone(),
                username: Some(c.username),
                credential: Some(c.password),
            });
        }
        servers
    }
}

/// Everything the shell needs.
#[derive(Debug, Clone)]
pub struct ShellConfig {
    /// The HS256 secret room tokens are signed with.
    pub token_secret: Vec<u8>,
    /// STUN and TURN.
    pub ice: IceConfig,
    /// Limits and timing.
    pub hub: HubConfig,
    /// How long a new connection may take to send `join` or `resume`.
    pub handshake_timeout: Duration,
    /// The forwarding unit's socket; without it, forwarded rooms refuse offers.
    pub media: Option<MediaConfig>,
}

/// Where the forwarding unit listens and how peers reach it.
#[derive(Debug, Clone, Copy)]
pub struct MediaConfig {
    /// The UDP address to bind.
    pub listen: std::net::SocketAddr,
    /// The address put in answers as the unit's candidate (its port is the bound one).
    pub advertised: std::net::IpAddr,
}

/// Where joins and leaves go, and when media reached whom: the gateway records them as
/// presence and attendance. Calls come in order, one at a time.
pub trait Presence: Send + Sync + 'static {
    /// `identity` entered (`present`) or left `room` at `at`.
    fn record(
        &self,
        room: String,
        identity: String,
        present: bool,
        at: SystemTime,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    /// In a room served by the forwarding unit, media started reaching `identity` at `at`
    /// (`receiving`), or stopped, having reached it in `seconds` seconds.
    fn media(
        &self,
        room: String,
        identity: String,
        receiving: bool,
        at: SystemTime,
        seconds: u64,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// What the recorder task hands to [`Presence`].
enum Record {
    Presence {
        room: RoomId,
        identity: String,
        present: bool,
        at: SystemTime,
    },
    Media {
        room: RoomId,
        identity: String,
        receiving: bool,
        at: SystemTime,
        seconds: u64,
    },
}

/// The wall-clock time of `at`.
fn wall(at: Instant) -> SystemTime {
    SystemTime::now() - Instant::now().saturating_duration_since(at)
}

/// The two ends of the bus between gateway processes: events to publish, and events the
/// other processes published (own events may come back; the hub ignores them).
#[derive(Debug)]
pub struct BusLink {
    /// What this process publishes.
    pub outgoing: mpsc::UnboundedSender<BusEvent>,
    /// What the bus delivers.
    pub incoming: mpsc::UnboundedReceiver<BusEvent>,
}

enum Outgoing {
    Text(String),
    Close(u16, &'static str),
}

enum Command {
    Join {
        conn: ConnId,
        room: RoomId,
        entrant: Entrant,
        capacity: usize,
        outbox: mpsc::Sender<Outgoing>,
        reply: oneshot::Sender<Result<(), RoomError>>,
    },
    Resume {
        conn: ConnId,
        room: RoomId,
        resume: Resume,
        outbox: mpsc::Sender<Outgoing>,
        reply: oneshot::Sender<Result<(), RoomError>>,
    },
    Text {
        conn: ConnId,
        text: String,
    },
    Binary {
        conn: ConnId,
    },
    Closed {
        conn: ConnId,
    },
    FromUnit {
        room: RoomId,
        identity: String,
        message: ServerMessage,
    },
    Stop {
        done: oneshot::Sender<()>,
    },
}

/// The signaling service of one gateway process; cheap to clone.
#[derive(Clone)]
pub struct Signaling {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::UnboundedSender<Command>,
    config: ShellConfig,
    next_conn: AtomicU64,
    node: String,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0_u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Signaling {
    /// Starts the hub task, and the forwarding unit on its UDP socket if configured.
    /// Without a bus this process is alone (SQLite).
    pub fn start(
        config: ShellConfig,
        presence: Arc<dyn Presence>,
        bus: Option<BusLink>,
    ) -> std::io::Result<Self> {
        let node = random_hex(8);
        let hub = Hub::new(node.clone(), config.hub.clone());
        let (commands, rx) = mpsc::unbounded_channel();
        let (attendance, mut records) = mpsc::unbounded_channel::<Record>();
        tokio::spawn(async move {
            while let Some(record) = records.recv().await {
                match record {
                    Record::Presence {
                        room,
                        identity,
                        present,
                        at,
                    } => {
                        presence
                            .record(room.into_string(), identity, present, at)
                            .await
                    }
                    Record::Media {
                        room,
                        identity,
                        receiving,
                        at,
                        seconds,
                    } => {
                        presence
                            .media(room.into_string(), identity, receiving, at, seconds)
                            .await
                    }
                }
            }
        });
        let media = match config.media {
            Some(media) => {
                let socket = std::net::UdpSocket::bind(media.listen)?;
                socket.set_nonblocking(true)?;
                let socket = tokio::net::UdpSocket::from_std(socket)?;
                let advertised =
                    std::net::SocketAddr::new(media.advertised, socket.local_addr()?.port());
                tracing::info!(%advertised, "forwarding unit listening (udp)");
                let (requests, incoming) = mpsc::unbounded_channel();
                let records = attendance.clone();
                tokio::spawn(forward_media(
                    socket,
                    advertised,
                    incoming,
                    commands.clone(),
                    records,
                ));
                Some(requests)
            }
            None => None,
        };
        tokio::spawn(run(hub, rx, bus, attendance, media));
        Ok(Self {
            inner: Arc::new(Inner {
                commands,
                config,
                next_conn: AtomicU64::new(1),
                node,
            }),
        })
    }

    /// This process's name on the bus.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// Mints the room token for `claims`.
    pub fn mint(&self, claims: &RoomClaims) -> String {
        token::mint(&self.inner.config.token_secret, claims)
    }

    /// STUN and TURN servers for `identity`, with a TURN credential minted now.
    pub fn ice_servers(&self, identity: &str) -> Vec<IceServer> {
        self.inner.config.ice.servers(identity, unix_now())
    }

    /// Tells the other processes this one's participants are gone, and stops the hub.
    pub async fn stop(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.commands.send(Command::Stop { done }).is_ok() {
            let _ = wait.await;
        }
    }

    /// Runs one WebSocket connection to `room` until it closes.
    pub async fn serve(self, socket: WebSocket, room: impl Into<RoomId>) {
        let room = room.into();
        let conn = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let (mut sink, mut stream) = socket.split();
        let (outbox, mut pending) = mpsc::channel::<Outgoing>(OUTBOX);
        let writer = tokio::spawn(async move {
            while let Some(out) = pending.recv().await {
                match out {
                    Outgoing::Text(text) => {
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Outgoing::Close(code, reason) => {
                        let frame = CloseFrame {
                            code,
                            reason: reason.into(),
                        };
                        let _ = sink.send(Message::Close(Some(frame))).await;
                        break;
                    }
                }
            }
            let _ = sink.close().await;
        });
        let admitted = tokio::time::timeout(
            self.inner.config.handshake_timeout,
            self.handshake(conn, &room, &mut stream, &outbox),
        )
        .await;
        match admitted {
            Ok(true) => {
                while let Some(Ok(frame)) = stream.next().await {
                    let command = match frame {
                        Message::Text(text) => Command::Text {
                            conn,
                            text: text.to_string(),
                        },
                        Message::Binary(_) => Command::Binary { conn },
                        Message::Close(_) => break,
                        Message::Ping(_) | Message::Pong(_) => continue,
                    };
                    if self.inner.commands.send(command).is_err() {
                        break;
                    }
                }
                let _ = self.inner.commands.send(Command::Closed { conn });
            }
            Ok(false) => {}
            Err(_) => {
                let _ = outbox
                    .send(Outgoing::Close(CLOSE_NO_JOIN, "no join in time"))
                    .await;
            }
        }
        drop(outbox);
        let _ = writer.await;
    }

    /// Reads until a `join` or `resume` is accepted (`true`) or the connection is over.
    async fn handshake(
        &self,
        conn: ConnId,
        room: &RoomId,
        stream: &mut futures_util::stream::SplitStream<WebSocket>,
        outbox: &mpsc::Sender<Outgoing>,
    ) -> bool {
        let say = |code: &str, message: String| {
            let m = ServerMessage::Error {
                v: VERSION,
                seq: 0,
                code: code.to_owned(),
                message,
            };
            Outgoing::Text(serde_json::to_string(&m).expect("plain JSON"))
        };
        while let Some(Ok(frame)) = stream.next().await {
            let text = match frame {
                Message::Text(text) => text,
                Message::Close(_) => return false,
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Binary(_) => {
                    let _ = outbox
                        .send(say("malformed", "messages are JSON text".into()))
                        .await;
                    continue;
                }
            };
            if text.len() > self.inner.config.hub.max_message_bytes {
                let _ = outbox
                    .send(say("too_large", "the first message is too large".into()))
                    .await;
                continue;
            }
            let message = match protocol::parse(&text) {
                Ok(m) => m,
                Err(problem) => {
                    let _ = outbox.send(say("malformed", problem)).await;
                    continue;
                }
            };
            let (token, resume) = match message {
                ClientMessage::Join { token, .. } => (token, None),
                ClientMessage::Resume {
                    token,
                    session_id,
                    last_seq,
                    ..
                } => (token, Some((session_id, last_seq))),
                _ => {
                    let _ = outbox
                        .send(say(
                            "join_first",
                            "the first message is join or resume".into(),
                        ))
                        .await;
                    continue;
                }
            };
            let claims = match token::verify(
                &self.inner.config.token_secret,
                &token,
                room.as_str(),
                unix_now(),
            ) {
                Ok(claims) => claims,
                Err(e) => {
                    let code = match e {
                        TokenError::Invalid => "token_invalid",
                        TokenError::Expired => "token_expired",
                        TokenError::NotYet => "token_not_yet_valid",
                        TokenError::WrongRoom => "token_wrong_room",
                    };
                    let _ = outbox.send(say(code, e.to_string())).await;
                    let _ = outbox
                        .send(Outgoing::Close(CLOSE_NOT_ADMITTED, "not admitted"))
                        .await;
                    return false;
                }
            };
            let ice_servers = self.ice_servers(&claims.sub);
            let (reply, answer) = oneshot::channel();
            let command = match resume {
                None => Command::Join {
                    conn,
                    room: room.clone(),
                    entrant: Entrant {
                        identity: claims.sub.clone(),
                        role: claims.role.clone(),
                        session_id: random_hex(16),
                        ice_servers,
                        grants: claims.grants,
                    },
                    capacity: usize::try_from(claims.capacity).unwrap_or(usize::MAX),
                    outbox: outbox.clone(),
                    reply,
                },
                Some((session_id, last_seq)) => Command::Resume {
                    conn,
                    room: room.clone(),
                    resume: Resume {
                        identity: claims.sub.clone(),
                        session_id,
                        last_seq,
                        ice_servers,
                    },
                    outbox: outbox.clone(),
                    reply,
                },
            };
            if self.inner.commands.send(command).is_err() {
                return false;
            }
            match answer.await {
                Ok(Ok(())) => return true,
                Ok(Err(RoomError::Full(n))) => {
                    let _ = outbox
                        .send(say("room_full", format!("the room holds {n} participants")))
                        .await;
                    let _ = outbox
                        .send(Outgoing::Close(CLOSE_ROOM_FULL, "room full"))
                        .await;
                    return false;
                }
                Ok(Err(RoomError::Removed)) => {
                    let _ = outbox
                        .send(say("removed", RoomError::Removed.to_string()))
                        .await;
                    let _ = outbox
                        .send(Outgoing::Close(crate::room::CLOSE_REMOVED, "removed"))
                        .await;
                    return false;
                }
                // A resume that cannot be honoured: the client may join afresh.
                Ok(Err(e)) => {
                    let _ = outbox.send(say("resume_refused", e.to_string())).await;
                }
                Err(_) => return false,
            }
        }
        false
    }
}

/// The hub task.
async fn run(
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
                        shell.outboxes.insert(conn, outbox);
                        match hub.join(conn, &room, entrant, capacity, now) {
                            Ok(effects) => {
                                shell.apply(&mut hub, effects);
                                let _ = reply.send(Ok(()));
                            }
                            Err(e) => {
                                shell.outboxes.remove(&conn);
                                let _ = reply.send(Err(e));
                            }
                        }
                        Vec::new()
                    }
                    Command::Resume { conn, room, resume, outbox, reply } => {
                        shell.outboxes.insert(conn, outbox);
                        match hub.resume(conn, &room, resume, now) {
                            Ok(effects) => {
                                shell.apply(&mut hub, effects);
                                let _ = reply.send(Ok(()));
                            }
                            Err(e) => {
                                shell.outboxes.remove(&conn);
                                let _ = reply.send(Err(e));
                            }
                        }
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

/// A participant's request for the forwarding unit.
struct ToUnit {
    key: PeerKey,
    may: May,
    request: MediaRequest,
}

/// The forwarding unit's task: datagrams, requests and its timers in, datagrams and
/// answers out. Answers go back through the hub, which numbers them in the receiver's
/// stream.
async fn forward_media(
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

impl Shell {
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
