//! A WebRTC media peer (the `webrtc` crate, 0.21) in a room served by the forwarding unit,
//! as `signaling/PROTOCOL.md` tells a client: join with the room token, offer to the unit
//! named in the welcome (with every candidate in the SDP), take its answer. A presenter
//! sends Opus audio and VP8 video made up here; a receiver offers one audio and one video
//! slot and counts the RTP packets that arrive in each. Loopback only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::Track as _;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceConnectionState, RTCIceGatheringState, RTCSessionDescription,
    Registry, StatsSelector, register_default_interceptors,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit, RtpSender};

/// What a media peer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Sends audio and video.
    Present,
    /// Receives into one audio and one video slot.
    Receive,
}

/// Counters of one peer connection.
#[derive(Default)]
struct Counters {
    gathered: AtomicBool,
    connected: AtomicBool,
    audio_packets: AtomicU64,
    video_packets: AtomicU64,
}

struct Events(Arc<Counters>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.0.gathered.store(true, Ordering::SeqCst);
        }
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        let up = matches!(
            state,
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
        );
        self.0.connected.store(up, Ordering::SeqCst);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let counters = self.0.clone();
        tokio::spawn(async move {
            let kind = track.kind().await;
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(_) = event {
                    let counter = if kind == RtpCodecKind::Audio {
                        &counters.audio_packets
                    } else {
                        &counters.video_packets
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
}

/// A UDP relay between a peer and the unit that a test can cut: the peer's link
/// vanishes without a word.
struct Relay {
    cut: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays between whoever sends to the returned address and `unit`.
    async fn start(unit: std::net::SocketAddr) -> anyhow::Result<(Self, std::net::SocketAddr)> {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let cut = Arc::new(AtomicBool::new(false));
        let stop = cut.clone();
        let task = tokio::spawn(async move {
            let mut peer = None;
            let mut buf = vec![0_u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                if stop.load(Ordering::SeqCst) {
                    continue;
                }
                let to = if from == unit {
                    match peer {
                        Some(p) => p,
                        None => continue,
                    }
                } else {
                    peer = Some(from);
                    unit
                };
                let _ = socket.send_to(&buf[..n], to).await;
            }
        });
        Ok((Self { cut, task }, addr))
    }
}

/// Points the unit's candidate in `sdp` (`… <ip> <port> typ host`) at `to`; returns the
/// changed SDP and the unit's address.
fn redirect(sdp: &str, to: std::net::SocketAddr) -> anyhow::Result<(String, std::net::SocketAddr)> {
    let mut unit = None;
    let lines: Vec<String> = sdp
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            if line.starts_with("a=candidate:") && fields.len() > 7 && fields[7] == "host" {
                if let Ok(addr) = format!("{}:{}", fields[4], fields[5]).parse() {
                    unit = Some(addr);
                    let mut f: Vec<String> = fields.iter().map(|x| (*x).to_owned()).collect();
                    f[4] = to.ip().to_string();
                    f[5] = to.port().to_string();
                    return f.join(" ");
                }
            }
            line.to_owned()
        })
        .collect();
    let unit = unit.context("the answer has the unit's host candidate")?;
    Ok((lines.join("\r\n") + "\r\n", unit))
}

/// A participant with one peer connection to the forwarding unit.
pub struct MediaPeer {
    relay: Option<Relay>,
    pc: Arc<dyn PeerConnection>,
    counters: Arc<Counters>,
    welcome: Value,
    messages: Arc<std::sync::Mutex<Vec<Value>>>,
    out: mpsc::UnboundedSender<Value>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn wait(what: &str, timeout: Duration, done: impl FnMut() -> bool) -> anyhow::Result<()> {
    crate::peer::poll_until(timeout, what, done).await
}

fn track(
    kind: RtpCodecKind,
    mime: &str,
    clock_rate: u32,
    channels: u16,
) -> anyhow::Result<Arc<TrackLocalStaticSample>> {
    let codec = RTCRtpCodec {
        mime_type: mime.to_owned(),
        clock_rate,
        channels,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    };
    let track = MediaStreamTrack::new(
        "presenter".to_owned(),
        format!("{kind}"),
        format!("{kind}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(rand::random::<u32>()),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    );
    Ok(Arc::new(TrackLocalStaticSample::new(
        Instant::now(),
        track,
    )?))
}

async fn payload_type(sender: &Arc<dyn RtpSender>) -> anyhow::Result<u8> {
    sender
        .get_parameters()
        .await?
        .rtp_parameters
        .codecs
        .first()
        .map(|c| c.payload_type)
        .context("a negotiated codec")
}

/// Sends a made-up sample every `every` until the track goes.
fn stream(
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    every: Duration,
    sample: fn(u64) -> Vec<u8>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(pt) = payload_type(&sender).await else {
            return;
        };
        let ssrc = track.ssrcs().await.first().copied().unwrap_or_default();
        let mut tick = tokio::time::interval(every);
        for n in 0.. {
            tick.tick().await;
            let written = track
                .sample_writer(ssrc, pt)
                .write_sample(&Sample {
                    data: Bytes::from(sample(n)),
                    duration: every,
                    ..Sample::new(Instant::now())
                })
                .await;
            if written.is_err() && n > 500 {
                return;
            }
        }
    })
}

/// A VP8 frame: a key frame every 30th (the P bit of its first byte clear).
fn vp8(n: u64) -> Vec<u8> {
    let mut frame = vec![0x5A_u8; 1000];
    frame[0] = if n % 30 == 0 { 0x10 } else { 0x11 };
    frame
}

/// An Opus packet's worth of bytes.
fn opus(_: u64) -> Vec<u8> {
    vec![0xFC; 60]
}

impl MediaPeer {
    /// Joins the room at `ws_url` with `token` and connects to its forwarding unit.
    pub async fn join(ws_url: &str, token: &str, part: Part) -> anyhow::Result<Self> {
        Self::join_via(ws_url, token, part, false).await
    }

    /// As [`MediaPeer::join`], with its media through a relay that [`MediaPeer::cut`]
    /// stops, when `relayed`.
    pub async fn join_via(
        ws_url: &str,
        token: &str,
        part: Part,
        relayed: bool,
    ) -> anyhow::Result<Self> {
        let (mut sink, mut stream_in, welcome) = crate::peer::enter(ws_url, token).await?;
        let unit = welcome["unit"]
            .as_str()
            .context("the welcome names the forwarding unit")?
            .to_owned();
        let (out, mut outgoing) = mpsc::unbounded_channel::<Value>();
        let mut tasks = vec![tokio::spawn(async move {
            while let Some(m) = outgoing.recv().await {
                if sink
                    .send(Message::Text(m.to_string().into()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        })];
        let messages = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (answers, mut answered) = mpsc::unbounded_channel::<String>();
        let log = messages.clone();
        let pong = out.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(frame)) = stream_in.next().await {
                let Message::Text(text) = frame else { continue };
                let Ok(m) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if m["type"] == "ping" {
                    let _ = pong.send(json!({"v": 1, "type": "pong"}));
                }
                if m["type"] == "answer" {
                    let _ = answers.send(m["sdp"].as_str().unwrap_or_default().to_owned());
                }
                log.lock().expect("not poisoned").push(m);
            }
        }));

        let counters = Arc::new(Counters::default());
        let mut engine = MediaEngine::default();
        engine.register_default_codecs()?;
        let registry = register_default_interceptors(Registry::new(), &mut engine)?;
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Events(counters.clone())))
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .context("a peer connection")?;
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let mut senders = Vec::new();
        match part {
            Part::Present => {
                let audio = track(RtpCodecKind::Audio, "audio/opus", 48_000, 2)?;
                let video = track(RtpCodecKind::Video, "video/VP8", 90_000, 0)?;
                let a = pc.add_track(audio.clone() as Arc<dyn TrackLocal>).await?;
                let v = pc.add_track(video.clone() as Arc<dyn TrackLocal>).await?;
                senders.push((
                    audio,
                    a,
                    Duration::from_millis(20),
                    opus as fn(u64) -> Vec<u8>,
                ));
                senders.push((video, v, Duration::from_millis(33), vp8));
            }
            Part::Receive => {
                for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                    pc.add_transceiver_from_kind(
                        kind,
                        Some(RTCRtpTransceiverInit {
                            direction: RTCRtpTransceiverDirection::Recvonly,
                            ..Default::default()
                        }),
                    )
                    .await?;
                }
            }
        }
        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer).await?;
        let c = counters.clone();
        wait("ICE gathering", Duration::from_secs(10), || {
            c.gathered.load(Ordering::SeqCst)
        })
        .await?;
        let sdp = pc.local_description().await.context("an offer")?.sdp;
        let _ = out.send(json!({"v": 1, "type": "offer", "to": unit, "sdp": sdp}));
        let answer = tokio::time::timeout(Duration::from_secs(10), answered.recv())
            .await
            .context("the unit answers")?
            .context("the connection stays")?;
        let mut relay = None;
        let answer = if relayed {
            let (_, unit) = redirect(&answer, "127.0.0.1:9".parse()?)?;
            let (r, addr) = Relay::start(unit).await?;
            relay = Some(r);
            redirect(&answer, addr)?.0
        } else {
            answer
        };
        pc.set_remote_description(RTCSessionDescription::answer(answer)?)
            .await?;
        for (track, sender, every, sample) in senders {
            tasks.push(stream(track, sender, every, sample));
        }
        Ok(Self {
            relay,
            pc,
            counters,
            welcome,
            messages,
            out,
            tasks,
        })
    }

    /// The welcome as received.
    pub fn welcome(&self) -> &Value {
        &self.welcome
    }

    /// Every server message after the welcome so far.
    pub fn messages(&self) -> Vec<Value> {
        self.messages.lock().expect("not poisoned").clone()
    }

    /// Sends a raw signaling message.
    pub fn send(&self, message: Value) {
        let _ = self.out.send(message);
    }

    /// Whether ICE is connected to the unit.
    pub fn connected(&self) -> bool {
        self.counters.connected.load(Ordering::SeqCst)
    }

    /// RTP packets received so far: (audio, video).
    pub fn received(&self) -> (u64, u64) {
        (
            self.counters.audio_packets.load(Ordering::SeqCst),
            self.counters.video_packets.load(Ordering::SeqCst),
        )
    }

    /// Video RTP packets this peer has sent so far, by its own statistics.
    pub async fn video_sent(&self) -> u64 {
        let report = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        report
            .outbound_rtp_streams()
            .filter(|s| s.sent_rtp_stream_stats.rtp_stream_stats.kind == RtpCodecKind::Video)
            .map(|s| s.sent_rtp_stream_stats.packets_sent)
            .sum()
    }

    /// Waits until at least `audio` and `video` packets have arrived.
    pub async fn receives(&self, audio: u64, video: u64, timeout: Duration) -> anyhow::Result<()> {
        let c = self.counters.clone();
        wait(
            &format!("{audio} audio and {video} video packets"),
            timeout,
            || {
                c.audio_packets.load(Ordering::SeqCst) >= audio
                    && c.video_packets.load(Ordering::SeqCst) >= video
            },
        )
        .await
        .with_context(|| format!("received {:?}", self.received()))
    }

    /// Cuts the link to the unit (see [`MediaPeer::join_via`]): from now on nothing
    /// passes either way, and the peer says nothing.
    pub fn cut(&self) {
        if let Some(r) = &self.relay {
            r.cut.store(true, Ordering::SeqCst);
        }
    }

    /// Closes the peer connection and the WebSocket without a `leave`.
    pub async fn vanish(self) {
        if let Some(r) = self.relay {
            r.task.abort();
        }
        let _ = tokio::time::timeout(crate::CLOSE_WITHIN, self.pc.close()).await;
        for t in self.tasks {
            t.abort();
        }
    }
}
