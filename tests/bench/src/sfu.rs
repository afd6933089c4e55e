//! `duikou-bench sfu`: the forwarding unit of teaching sessions on loopback. One publisher
//! sends about 1.5 Mbit/s of video (30 frames a second) and Opus-sized audio; for each
//! count of receivers the unit runs on a thread of its own with its own UDP socket, and
//! the publisher and receivers (str0m peers, each with a socket) on this thread. Reported:
//! the unit's CPU seconds per forwarded megabit after a warm-up, what that makes in
//! receivers per core at 1.5 Mbit/s, the video frames a receiver missed, and the time
//! from the offers to a receiver's first frame. A benchmark, not a test: it asserts
//! nothing. No other forwarding unit runs here, so LiveKit's published figure is shown for
//! scale, not measured.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use duikou_signaling::sfu::{May, PeerKey, Unit};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// Video frame size: 6 250 bytes 30 times a second is 1.5 Mbit/s.
const FRAME_BYTES: usize = 6_250;
const FRAME_EVERY: Duration = Duration::from_micros(33_333);
const AUDIO_EVERY: Duration = Duration::from_millis(20);
/// Joins and the first key frames happen before this; CPU is counted after.
const WARM_UP: Duration = Duration::from_secs(3);

/// One peer of the unit, on its own socket.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    pending: Option<SdpPendingOffer>,
    due: Instant,
    audio: Option<Mid>,
    video: Option<Mid>,
    first_frame: Option<Instant>,
    /// Video frames received after the warm-up.
    frames: u64,
}

impl Peer {
    fn new(now: Instant) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let mut rtc = Rtc::builder().build(now);
        let _ = rtc.add_local_candidate(Candidate::host(addr, "udp")?);
        Ok(Self {
            rtc,
            socket,
            addr,
            pending: None,
            due: now,
            audio: None,
            video: None,
            first_frame: None,
            frames: 0,
        })
    }

    fn offer(&mut self, send: bool) -> String {
        let dir = if send {
            Direction::SendOnly
        } else {
            Direction::RecvOnly
        };
        let mut api = self.rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, dir, None, None, None);
        let video = api.add_media(MediaKind::Video, dir, None, None, None);
        let (offer, pending) = api.apply().expect("media were added");
        self.pending = Some(pending);
        if send {
            self.audio = Some(audio);
            self.video = Some(video);
        }
        offer.to_sdp_string()
    }

    fn accept(&mut self, answer: &str) -> anyhow::Result<()> {
        let answer = SdpAnswer::from_sdp_string(answer)?;
        let pending = self.pending.take().context("an offer was made")?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        Ok(())
    }

    /// Writes one frame of `codec` on `mid`, and lets str0m packetize it.
    fn write(&mut self, now: Instant, mid: Mid, codec: Codec, time: MediaTime, data: Vec<u8>) {
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
        else {
            return;
        };
        let _ = writer.write(pt, now, time, data);
        let _ = self.rtc.handle_input(Input::Timeout(now));
    }

    /// Reads what arrived, runs due timers and sends what is to be sent to `unit`.
    /// Returns whether anything happened.
    fn turn(&mut self, unit: SocketAddr, buf: &mut [u8], warm: Instant) -> bool {
        let mut busy = false;
        while let Ok((n, from)) = self.socket.recv_from(buf) {
            busy = true;
            let Ok(contents) = buf[..n].try_into() else {
                continue;
            };
            let input = Input::Receive(
                Instant::now(),
                Receive {
                    proto: Protocol::Udp,
                    source: from,
                    destination: self.addr,
                    contents,
                },
            );
            let _ = self.rtc.handle_input(input);
        }
        let now = Instant::now();
        if self.due <= now {
            let _ = self.rtc.handle_input(Input::Timeout(now));
        }
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(due)) => {
                    self.due = due;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    busy = true;
                    let _ = self.socket.send_to(&t.contents, unit);
                }
                Ok(Output::Event(Event::MediaData(d))) if !d.params.spec().codec.is_audio() => {
                    let now = Instant::now();
                    self.first_frame.get_or_insert(now);
                    if now >= warm {
                        self.frames += 1;
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(_) => break,
            }
        }
        busy
    }
}

/// The CPU time this thread has used.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// What one run measured.
struct Report {
    receivers: usize,
    cpu: Duration,
    megabits: f64,
    frames_sent: u64,
    frames_received: Vec<u64>,
    first_frame: Vec<Option<Duration>>,
    nacks: u64,
}

/// Runs the unit on its own thread until `stop`; returns its CPU time and the payload
/// bytes it forwarded after `warm`, and the NACKs its receivers sent.
fn serve_unit(
    mut unit: Unit,
    socket: UdpSocket,
    receivers: Vec<PeerKey>,
    warm: Instant,
    stop: Arc<AtomicBool>,
) -> (Duration, u64, u64) {
    let mut buf = vec![0_u8; 2048];
    let mut start: Option<(Duration, u64)> = None;
    let forwarded = |unit: &Unit| {
        receivers
            .iter()
            .map(|k| unit.forwarded_bytes(k))
            .sum::<u64>()
    };
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if start.is_none() && now >= warm {
            start = Some((thread_cpu(), forwarded(&unit)));
        }
        let wait = unit
            .poll_timeout(now)
            .saturating_duration_since(now)
            .clamp(Duration::from_micros(200), Duration::from_millis(10));
        let _ = socket.set_read_timeout(Some(wait));
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            unit.receive(Instant::now(), from, &buf[..n]);
        }
        let now = Instant::now();
        if unit.poll_timeout(now) <= now {
            unit.handle_timeout(now);
        }
        while let Some(t) = unit.poll_transmit() {
            let _ = socket.send_to(&t.contents, t.destination);
        }
    }
    let (cpu0, bytes0) = start.unwrap_or((thread_cpu(), forwarded(&unit)));
    let nacks = receivers.iter().map(|k| unit.egress(k).0).sum();
    (thread_cpu() - cpu0, forwarded(&unit) - bytes0, nacks)
}

fn run(receivers: usize, duration: Duration) -> anyhow::Result<Report> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let unit_addr = socket.local_addr()?;
    let mut unit = Unit::new(unit_addr);
    let start = Instant::now();
    let key = |identity: String| PeerKey {
        room: "teaching-bench".into(),
        identity,
    };
    let mut publisher = Peer::new(start)?;
    let offer = publisher.offer(true);
    let all = May {
        audio: true,
        video: true,
    };
    let answer = unit.offer(start, key("presenter".into()), all, &offer)?;
    publisher.accept(&answer)?;
    let mut peers = Vec::new();
    let mut keys = Vec::new();
    for i in 0..receivers {
        let mut p = Peer::new(start)?;
        let offer = p.offer(false);
        let k = key(format!("trainee-{i}"));
        let answer = unit.offer(start, k.clone(), May::default(), &offer)?;
        p.accept(&answer)?;
        peers.push(p);
        keys.push(k);
    }
    let warm = start + WARM_UP;
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let unit_thread = std::thread::spawn(move || serve_unit(unit, socket, keys, warm, stopping));

    let end = start + WARM_UP + duration;
    let mut buf = vec![0_u8; 2048];
    let (mut next_video, mut next_audio) = (start, start);
    let (mut video_n, mut audio_n, mut frames_sent) = (0_u64, 0_u64, 0_u64);
    while Instant::now() < end {
        let now = Instant::now();
        if publisher.rtc.is_connected() {
            if now >= next_video {
                next_video += FRAME_EVERY;
                let mut frame = vec![0x5A_u8; FRAME_BYTES];
                // A key frame (P bit clear) every two seconds.
                frame[0] = if video_n % 60 == 0 { 0x10 } else { 0x11 };
                let time = MediaTime::new(video_n * 3_000, Frequency::NINETY_KHZ);
                if let Some(mid) = publisher.video {
                    publisher.write(now, mid, Codec::Vp8, time, frame);
                }
                video_n += 1;
                if now >= warm {
                    frames_sent += 1;
                }
            }
            if now >= next_audio {
                next_audio += AUDIO_EVERY;
                let time = MediaTime::new(audio_n * 960, Frequency::FORTY_EIGHT_KHZ);
                if let Some(mid) = publisher.audio {
                    publisher.write(now, mid, Codec::Opus, time, vec![0xFC; 80]);
                }
                audio_n += 1;
            }
        } else {
            (next_video, next_audio) = (now, now);
        }
        let mut busy = publisher.turn(unit_addr, &mut buf, warm);
        for p in &mut peers {
            busy |= p.turn(unit_addr, &mut buf, warm);
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(300));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (cpu, bytes, nacks) = unit_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the unit's thread panicked"))?;
    Ok(Report {
        receivers,
        cpu,
        megabits: bytes as f64 * 8.0 / 1e6,
        frames_sent,
        frames_received: peers.iter().map(|p| p.frames).collect(),
        first_frame: peers
            .iter()
            .map(|p| p.first_frame.map(|t| t - start))
            .collect(),
        nacks,
    })
}

/// Runs the benchmark for each count of `receivers`, each for `duration` after a warm-up.
pub fn sfu(receivers: &[usize], duration: Duration) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "forwarding unit: 1 publisher, ~1.5 Mbit/s video at 30 frames/s + audio, loopback, \
         {cores} cores, {} s per run after {} s warm-up",
        duration.as_secs(),
        WARM_UP.as_secs()
    );
    println!(
        "{:>9} {:>10} {:>12} {:>14} {:>12} {:>9} {:>15} {:>15}",
        "receivers",
        "unit CPU s",
        "Mbit fwd",
        "CPU s / Mbit",
        "recv / core",
        "missed %",
        "first frame ms",
        "NACKs"
    );
    for &n in receivers {
        let r = run(n, duration)?;
        let per_mbit = r.cpu.as_secs_f64() / r.megabits.max(1e-9);
        // A core forwards 1 / per_mbit Mbit each second; a receiver takes 1.5 Mbit/s.
        let per_core = 1.0 / per_mbit / 1.5;
        let expected = r.frames_sent * r.receivers as u64;
        let got: u64 = r.frames_received.iter().sum();
        // Frames on the way at the warm-up boundary can make this a hair negative.
        let missed = (100.0 * (1.0 - got as f64 / expected.max(1) as f64)).max(0.0);
        let mut firsts: Vec<u128> = r
            .first_frame
            .iter()
            .flatten()
            .map(Duration::as_millis)
            .collect();
        firsts.sort_unstable();
        let median = firsts.get(firsts.len() / 2).copied().unwrap_or(0);
        let never = r.first_frame.iter().filter(|f| f.is_none()).count();
        let first = if never > 0 {
            format!("{median} ({never} none)")
        } else {
            format!("{median}")
        };
        println!(
            "{:>9} {:>10.2} {:>12.1} {:>14.5} {:>12.0} {:>9.2} {:>15} {:>15}",
            r.receivers,
            r.cpu.as_secs_f64(),
            r.megabits,
            per_mbit,
            per_core,
            missed,
            first,
            r.nacks
        );
    }
    println!(
        "target: at least 200 receivers at 1.5 Mbit/s per core; LiveKit publishes about 190 \
         per core for its livestream case (not measured here)"
    );
    println!(
        "the publisher and every receiver run on one thread beside the unit: with many \
         receivers they, not the unit, may be what runs short"
    );
    Ok(())
}
