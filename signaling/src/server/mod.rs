//! The thin async shell around the [`Hub`]: one task owns the hub and feeds it commands
//! from the WebSocket connections, events from the bus and the clock; each connection
//! has a reader ([`Signaling::serve`]) and a writer task draining its outbox. Room tokens
//! are checked at the first message of a connection.
//!
//! This module holds the shell's configuration, what it asks of the gateway
//! ([`Presence`], [`BusLink`]) and the service that starts it; each part of the shell has
//! a file: `connection` (a WebSocket's reader and writer, and the handshake), `hub_task`
//! (the task owning the hub, which carries out its effects) and `media` (the forwarding
//! unit's task on its UDP socket).

mod connection;
mod hub_task;
mod media;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::RngCore as _;
use tokio::sync::{mpsc, oneshot};

use crate::hub::{BusEvent, Hub, HubConfig, Resume};
use crate::protocol::{IceServer, ServerMessage};
use crate::room::{ConnId, Entrant, RoomError, RoomId};
use crate::token::{self, RoomClaims};
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
    /// The time room tokens are checked at.
    pub clock: TokenClock,
}

/// The time (unix seconds) the shell checks room tokens' `nbf` and `exp` at: the
/// system's by default; a gateway passes its own clock, so that tokens it mints by a
/// clock a test has moved on are valid here too.
#[derive(Clone)]
pub struct TokenClock(pub Arc<dyn Fn() -> i64 + Send + Sync>);

impl Default for TokenClock {
    fn default() -> Self {
        Self(Arc::new(unix_now))
    }
}

impl std::fmt::Debug for TokenClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenClock({})", (self.0)())
    }
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
        room: RoomId,
        identity: String,
        present: bool,
        at: SystemTime,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    /// In a room served by the forwarding unit, media started reaching `identity` at `at`
    /// (`receiving`), or stopped, having reached it in `seconds` seconds.
    fn media(
        &self,
        room: RoomId,
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
                    } => presence.record(room, identity, present, at).await,
                    Record::Media {
                        room,
                        identity,
                        receiving,
                        at,
                        seconds,
                    } => presence.media(room, identity, receiving, at, seconds).await,
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
                tokio::spawn(media::forward_media(
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
        tokio::spawn(hub_task::run(hub, rx, bus, attendance, media));
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
}
