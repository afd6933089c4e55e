//! A WebRTC test peer (the `webrtc` crate, 0.21) that meets others through the gateway's
//! signaling WebSocket exactly as `signaling/PROTOCOL.md` tells a client to: join with the
//! room token, offer to those whose identity sorts after its own, answer the others,
//! trickle candidates (or, for peers that never trickle, put them all in the SDP), and
//! open a data channel to each. Host candidates on loopback only, so that tests need no
//! network.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCIceConnectionState, RTCIceGatheringState, RTCIceServer,
    RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCSessionDescription,
};

/// How the peer behaves.
#[derive(Debug, Clone, Default)]
pub struct PeerOptions {
    /// Send candidates as they are found; without, wait for all and put them in the SDP
    /// (as aiortc does) and never send a `candidate` message.
    pub trickle: bool,
    /// STUN and TURN servers; none are needed on loopback.
    pub ice_servers: Vec<RTCIceServer>,
    /// Use relayed candidates only, so that every packet goes through the TURN server.
    pub relay_only: bool,
}

/// The ICE servers of a join answer or welcome (`ice_servers`), for webrtc-rs.
pub fn ice_servers(answer: &Value) -> Vec<RTCIceServer> {
    answer["ice_servers"]
        .as_array()
        .map(|servers| {
            servers
                .iter()
                .map(|s| RTCIceServer {
                    urls: s["urls"]
                        .as_array()
                        .map(|u| {
                            u.iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    username: s["username"].as_str().unwrap_or_default().to_owned(),
                    credential: s["credential"].as_str().unwrap_or_default().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What one peer connection has reached.
#[derive(Default)]
struct Link {
    connected: AtomicBool,
    gathered: AtomicBool,
    open: AtomicBool,
    channel: Mutex<Option<Arc<dyn DataChannel>>>,
    inbox: Mutex<VecDeque<String>>,
}

impl Link {
    fn watch(self: &Arc<Self>, dc: Arc<dyn DataChannel>) {
        *self.channel.lock().expect("not poisoned") = Some(dc.clone());
        let link = self.clone();
        tokio::spawn(async move {
            while let Some(event) = dc.poll().await {
                match event {
                    DataChannelEvent::OnOpen => link.open.store(true, Ordering::SeqCst),
                    DataChannelEvent::OnMessage(m) => link
                        .inbox
                        .lock()
                        .expect("not poisoned")
                        .push_back(String::from_utf8_lossy(&m.data).into_owned()),
                    DataChannelEvent::OnClose => break,
                    _ => {}
                }
            }
        });
    }
}

/// Reports the events of one peer connection into its [`Link`].
struct Events {
    remote: String,
    trickle: bool,
    link: Arc<Link>,
    out: mpsc::UnboundedSender<Value>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if !self.trickle {
            return;
        }
        if let Ok(c) = event.candidate.to_json() {
            let _ = self.out.send(json!({"v": 1, "type": "candidate", "to": self.remote,
                "candidate": c.candidate, "sdp_mid": c.sdp_mid, "sdp_mline_index": c.sdp_mline_index}));
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.link.gathered.store(true, Ordering::SeqCst);
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        let up = matches!(
            state,
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
        );
        self.link.connected.store(up, Ordering::SeqCst);
    }

    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        self.link.watch(dc);
    }
}

struct Remote {
    pc: Arc<dyn PeerConnection>,
    described: bool,
    pending: Vec<RTCIceCandidateInit>,
}

struct State {
    identity: String,
    options: PeerOptions,
    out: mpsc::UnboundedSender<Value>,
    remotes: tokio::sync::Mutex<HashMap<String, Remote>>,
    links: Mutex<HashMap<String, Arc<Link>>>,
    messages: Mutex<Vec<Value>>,
    sent: Arc<Mutex<Vec<Value>>>,
}

/// A WebRTC peer in a room.
pub struct Peer {
    state: Arc<State>,
    welcome: Value,
    reader: tokio::task::JoinHandle<()>,
}

pub(crate) async fn poll_until(
    timeout: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            bail!("{what} did not happen within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

impl State {
    async fn connection(
        self: &Arc<Self>,
        remote: &str,
    ) -> anyhow::Result<(Arc<dyn PeerConnection>, Arc<Link>)> {
        let link = Arc::new(Link::default());
        let events = Events {
            remote: remote.to_owned(),
            trickle: self.options.trickle,
            link: link.clone(),
            out: self.out.clone(),
        };
        let policy = if self.options.relay_only {
            RTCIceTransportPolicy::Relay
        } else {
            RTCIceTransportPolicy::All
        };
        let config = RTCConfigurationBuilder::new()
            .with_ice_servers(self.options.ice_servers.clone())
            .with_ice_transport_policy(policy)
            .build();
        let pc = PeerConnectionBuilder::new()
            .with_configuration(config)
            .with_handler(Arc::new(events))
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .context("a peer connection")?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        self.links
            .lock()
            .expect("not poisoned")
            .insert(remote.to_owned(), link.clone());
        Ok((pc, link))
    }

    /// The local description to send: at once when trickling, else with every candidate.
    async fn described(&self, pc: &Arc<dyn PeerConnection>, link: &Link) -> anyhow::Result<String> {
        if !self.options.trickle {
            poll_until(Duration::from_secs(10), "ICE gathering", || {
                link.gathered.load(Ordering::SeqCst)
            })
            .await?;
        }
        Ok(pc
            .local_description()
            .await
            .ok_or_else(|| anyhow!("no local description"))?
            .sdp)
    }

    async fn drop_remote(&self, remote: &str) {
        if let Some(old) = self.remotes.lock().await.remove(remote) {
            let _ = tokio::time::timeout(crate::CLOSE_WITHIN, old.pc.close()).await;
        }
    }

    /// Offers to `remote` when the protocol's rule says this side offers.
    async fn meet(self: &Arc<Self>, remote: &str) -> anyhow::Result<()> {
        self.drop_remote(remote).await;
        if self.identity.as_str() >= remote {
            return Ok(());
        }
        let (pc, link) = self.connection(remote).await?;
        let dc = pc.create_data_channel("duikou", None).await?;
        link.watch(dc);
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        self.remotes.lock().await.insert(
            remote.to_owned(),
            Remote {
                pc: pc.clone(),
                described: false,
                pending: Vec::new(),
            },
        );
        let sdp = self.described(&pc, &link).await?;
        let _ = self
            .out
            .send(json!({"v": 1, "type": "offer", "to": remote, "sdp": sdp}));
        Ok(())
    }

    async fn offered(self: &Arc<Self>, from: &str, sdp: String) -> anyhow::Result<()> {
        self.drop_remote(from).await;
        let (pc, link) = self.connection(from).await?;
        pc.set_remote_description(RTCSessionDescription::offer(sdp)?)
            .await?;
        let pending = self
            .remotes
            .lock()
            .await
            .remove(from)
            .map(|r| r.pending)
            .unwrap_or_default();
        for c in pending {
            pc.add_ice_candidate(c).await?;
        }
        self.remotes.lock().await.insert(
            from.to_owned(),
            Remote {
                pc: pc.clone(),
                described: true,
                pending: Vec::new(),
            },
        );
        let answer = pc.create_answer(None).await?;
        pc.set_local_description(answer).await?;
        let sdp = self.described(&pc, &link).await?;
        let _ = self
            .out
            .send(json!({"v": 1, "type": "answer", "to": from, "sdp": sdp}));
        Ok(())
    }

    async fn answered(&self, from: &str, sdp: String) -> anyhow::Result<()> {
        let mut remotes = self.remotes.lock().await;
        let r = remotes
            .get_mut(from)
            .ok_or_else(|| anyhow!("an answer from {from}, who was not offered to"))?;
        r.pc.set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        r.described = true;
        for c in std::mem::take(&mut r.pending) {
            r.pc.add_ice_candidate(c).await?;
        }
        Ok(())
    }

    async fn candidate(&self, from: &str, m: &Value) -> anyhow::Result<()> {
        let c = RTCIceCandidateInit {
            candidate: m["candidate"].as_str().unwrap_or_default().to_owned(),
            sdp_mid: m["sdp_mid"].as_str().map(str::to_owned),
            sdp_mline_index: m["sdp_mline_index"]
                .as_u64()
                .and_then(|i| u16::try_from(i).ok()),
            ..Default::default()
        };
        let mut remotes = self.remotes.lock().await;
        match remotes.get_mut(from) {
            Some(r) if r.described => r.pc.add_ice_candidate(c).await?,
            Some(r) => r.pending.push(c),
            // The offer comes before its candidates; these are for a connection dropped since.
            None => {}
        }
        Ok(())
    }

    async fn handle(self: &Arc<Self>, m: Value) -> anyhow::Result<()> {
        let from = m["from"].as_str().unwrap_or_default().to_owned();
        match m["type"].as_str().unwrap_or_default() {
            "ping" => {
                let _ = self.out.send(json!({"v": 1, "type": "pong"}));
            }
            "joined" => {
                let id = m["participant"]["identity"].as_str().unwrap_or_default();
                self.meet(id).await?;
            }
            "left" => {
                self.drop_remote(m["identity"].as_str().unwrap_or_default())
                    .await;
            }
            "offer" => {
                self.offered(&from, m["sdp"].as_str().unwrap_or_default().to_owned())
                    .await?
            }
            "answer" => {
                self.answered(&from, m["sdp"].as_str().unwrap_or_default().to_owned())
                    .await?
            }
            "candidate" => self.candidate(&from, &m).await?,
            _ => {}
        }
        Ok(())
    }
}

/// The two halves of a signaling WebSocket.
pub(crate) type WsSink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;
pub(crate) type WsStream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

/// Opens the signaling WebSocket at `ws_url`, joins with `token` and returns the socket
/// and the welcome.
pub(crate) async fn enter(ws_url: &str, token: &str) -> anyhow::Result<(WsSink, WsStream, Value)> {
    let (ws, _) = connect_async(ws_url).await.context("the WebSocket opens")?;
    let (mut sink, mut stream) = ws.split();
    sink.send(Message::Text(
        json!({"v": 1, "type": "join", "token": token})
            .to_string()
            .into(),
    ))
    .await?;
    let welcome: Value = loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await? {
            Some(Ok(Message::Text(t))) => break serde_json::from_str(&t)?,
            Some(Ok(_)) => continue,
            other => bail!("no welcome: {other:?}"),
        }
    };
    if welcome["type"] != "welcome" {
        bail!("refused: {welcome}");
    }
    Ok((sink, stream, welcome))
}

impl Peer {
    /// Opens the WebSocket at `ws_url`, joins with `token` and waits for the welcome; then
    /// meets everyone in the room, and everyone who comes later.
    pub async fn join(ws_url: &str, token: &str, options: PeerOptions) -> anyhow::Result<Self> {
        let (mut sink, mut stream, welcome) = enter(ws_url, token).await?;
        let (out, mut outgoing) = mpsc::unbounded_channel::<Value>();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        tokio::spawn(async move {
            while let Some(m) = outgoing.recv().await {
                log.lock().expect("not poisoned").push(m.clone());
                if sink
                    .send(Message::Text(m.to_string().into()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let state = Arc::new(State {
            identity: welcome["identity"].as_str().unwrap_or_default().to_owned(),
            options,
            out,
            remotes: tokio::sync::Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            messages: Mutex::new(vec![welcome.clone()]),
            sent,
        });
        let present: Vec<String> = welcome["participants"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p["identity"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let reading = state.clone();
        let reader = tokio::spawn(async move {
            for identity in present {
                if let Err(e) = reading.meet(&identity).await {
                    eprintln!("peer {}: {e:#}", reading.identity);
                }
            }
            while let Some(Ok(frame)) = stream.next().await {
                let Message::Text(text) = frame else { continue };
                let Ok(m) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                reading
                    .messages
                    .lock()
                    .expect("not poisoned")
                    .push(m.clone());
                if let Err(e) = reading.handle(m).await {
                    eprintln!("peer {}: {e:#}", reading.identity);
                }
            }
        });
        Ok(Self {
            state,
            welcome,
            reader,
        })
    }

    /// This peer's identity in the room.
    pub fn identity(&self) -> String {
        self.state.identity.clone()
    }

    /// The welcome as received.
    pub fn welcome(&self) -> Value {
        self.welcome.clone()
    }

    /// Every server message received so far, the welcome first.
    pub fn messages(&self) -> Vec<Value> {
        self.state.messages.lock().expect("not poisoned").clone()
    }

    fn link(&self, remote: &str) -> Option<Arc<Link>> {
        self.state
            .links
            .lock()
            .expect("not poisoned")
            .get(remote)
            .cloned()
    }

    /// Waits until ICE is connected with `remote` and the data channel is open.
    pub async fn connected_to(&self, remote: &str, timeout: Duration) -> anyhow::Result<()> {
        poll_until(
            timeout,
            &format!("ICE connected with {remote} and the data channel open"),
            || {
                self.link(remote).is_some_and(|l| {
                    l.connected.load(Ordering::SeqCst) && l.open.load(Ordering::SeqCst)
                })
            },
        )
        .await
    }

    /// Sends `text` to `to` over the data channel.
    pub async fn send(&self, to: &str, text: &str) -> anyhow::Result<()> {
        let channel = self
            .link(to)
            .and_then(|l| l.channel.lock().expect("not poisoned").clone())
            .ok_or_else(|| anyhow!("no data channel with {to}"))?;
        channel.send_text(text).await?;
        Ok(())
    }

    /// The next data-channel message from `from`.
    pub async fn recv_from(&self, from: &str, timeout: Duration) -> anyhow::Result<String> {
        let mut got = None;
        poll_until(timeout, &format!("a message from {from}"), || {
            got = self
                .link(from)
                .and_then(|l| l.inbox.lock().expect("not poisoned").pop_front());
            got.is_some()
        })
        .await?;
        got.ok_or_else(|| anyhow!("no message"))
    }

    /// Every message this peer sent after its join.
    pub fn sent(&self) -> Vec<Value> {
        self.state.sent.lock().expect("not poisoned").clone()
    }

    /// The candidate lines of the local descriptions sent so far, e.g. to see that they
    /// were relayed.
    pub fn sent_candidates(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for m in &self.sent() {
            if let Some(sdp) = m["sdp"].as_str() {
                lines.extend(
                    sdp.lines()
                        .filter(|l| l.starts_with("a=candidate"))
                        .map(str::to_owned),
                );
            }
            if let Some(c) = m["candidate"].as_str() {
                lines.push(c.to_owned());
            }
        }
        lines
    }

    /// Leaves the room and closes every peer connection.
    pub async fn leave(self) -> anyhow::Result<()> {
        let _ = self.state.out.send(json!({"v": 1, "type": "leave"}));
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (_, r) in self.state.remotes.lock().await.drain() {
            let _ = tokio::time::timeout(crate::CLOSE_WITHIN, r.pc.close()).await;
        }
        self.reader.abort();
        Ok(())
    }
}
