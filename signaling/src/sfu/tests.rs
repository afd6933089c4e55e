//! The unit with str0m peers on an in-memory network and virtual time.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::{Layer, May, PeerKey, Receiving, Unit};
use str0m::bwe::Bitrate;

const UNIT: &str = "10.0.0.1:5000";

/// A participant's browser, played by str0m.
struct Client {
    key: PeerKey,
    rtc: Rtc,
    addr: SocketAddr,
    pending: Option<SdpPendingOffer>,
    /// Media lines it sends on: audio, video.
    audio: Option<Mid>,
    video: Option<Mid>,
    /// A second video line it sends on: a shared screen.
    screen: Option<Mid>,
    simulcast: bool,
    /// Simulcast layers it has stopped sending (as a browser short of CPU does), by tag.
    paused: Vec<u8>,
    /// Frames received, by kind.
    got: HashMap<MediaKind, usize>,
    /// Video frames received, by the layer they were sent in (`q`, `h`, `f`, or `-`).
    layers: HashMap<u8, usize>,
    /// Audio frames received.
    audio_frames: usize,
    /// A bottleneck on the way from the unit, if any.
    link: Option<Link>,
    /// When its timers are due next.
    due: Instant,
    /// It vanished: it neither sends nor receives any more.
    gone: bool,
    keyframes_asked: usize,
}

impl Client {
    fn new(n: u8, now: Instant) -> Self {
        let addr: SocketAddr = format!("10.0.1.{n}:6000").parse().unwrap();
        let mut rtc = Rtc::builder().build(now);
        let _ = rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        Self {
            key: PeerKey {
                room: "teaching-1".into(),
                identity: format!("u{n}"),
            },
            rtc,
            addr,
            pending: None,
            audio: None,
            video: None,
            screen: None,
            simulcast: false,
            paused: Vec::new(),
            got: HashMap::new(),
            layers: HashMap::new(),
            audio_frames: 0,
            link: None,
            due: now,
            gone: false,
            keyframes_asked: 0,
        }
    }

    /// A datagram from the unit arrives.
    fn receive(&mut self, now: Instant, bytes: &[u8]) {
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: UNIT.parse().unwrap(),
                destination: self.addr,
                contents: bytes.try_into().unwrap(),
            },
        );
        self.rtc.handle_input(input).unwrap();
    }

    /// Offers audio and video to send (video in three layers with `simulcast`).
    fn offer_to_send(&mut self, simulcast: bool) -> String {
        let mut api = self.rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let layers = simulcast.then(|| {
            let mut s = Simulcast::new();
            for rid in ["q", "h", "f"] {
                s.add_send_layer(SimulcastLayer::new(rid));
            }
            s
        });
        let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, layers);
        let (offer, pending) = api.apply().unwrap();
        self.pending = Some(pending);
        self.audio = Some(audio);
        self.video = Some(video);
        self.simulcast = simulcast;
        offer.to_sdp_string()
    }

    /// Offers slots to receive into: one audio, one video.
    fn offer_to_receive(&mut self) -> String {
        self.offer_slots(1)
    }

    /// Offers one audio slot and `videos` video slots to receive into.
    fn offer_slots(&mut self, videos: usize) -> String {
        let mut api = self.rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        for _ in 0..videos {
            api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        }
        let (offer, pending) = api.apply().unwrap();
        self.pending = Some(pending);
        offer.to_sdp_string()
    }

    fn accept(&mut self, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).unwrap();
        let pending = self.pending.take().unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    /// Sends one audio frame and, every other call, one video frame (per layer).
    fn send_media(&mut self, now: Instant, tick: u64) {
        if let (Some(mid), true) = (self.screen, tick % 10 == 0) {
            // A shared screen: five frames a second, tagged `s`.
            let writer = self.rtc.writer(mid).unwrap();
            let pt = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Vp8)
                .unwrap()
                .pt();
            let mut frame = vec![b's'; 1_200];
            frame[0] = if tick % 100 == 0 { 0x10 } else { 0x11 };
            let time = MediaTime::new(tick * 900, Frequency::NINETY_KHZ);
            writer.write(pt, now, time, frame).unwrap();
            self.rtc.handle_input(Input::Timeout(now)).unwrap();
        }
        if let Some(mid) = self.audio {
            let writer = self.rtc.writer(mid).unwrap();
            let pt = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .unwrap()
                .pt();
            let time = MediaTime::new(tick * 960, Frequency::FORTY_EIGHT_KHZ);
            writer.write(pt, now, time, vec![0xFC_u8; 80]).unwrap();
        }
        if let (Some(mid), true) = (self.video, tick % 2 == 0) {
            let rids: Vec<Option<Rid>> = if self.simulcast {
                ["q", "h", "f"]
                    .into_iter()
                    .map(|r| Some(r.into()))
                    .collect()
            } else {
                vec![None]
            };
            for rid in rids {
                let tag = rid.map_or(b'-', |r| r.as_bytes()[0]);
                if self.paused.contains(&tag) {
                    continue;
                }
                let mut writer = self.rtc.writer(mid).unwrap();
                let pt = writer
                    .payload_params()
                    .find(|p| p.spec().codec == Codec::Vp8)
                    .unwrap()
                    .pt();
                if let Some(rid) = rid {
                    writer = writer.rid(rid);
                }
                let time = MediaTime::new(tick * 1800, Frequency::NINETY_KHZ);
                // A VP8 key frame's first byte has the P bit clear.
                // The rest of the frame tells the receiver which layer it was; the sizes
                // make about 120 kbit/s, 480 kbit/s and 1.2 Mbit/s at 25 frames a second.
                let size = match tag {
                    b'q' => 600,
                    b'h' => 2_400,
                    b'f' => 6_000,
                    _ => 900,
                };
                let mut frame = vec![tag; size];
                frame[0] = if tick % 60 == 0 { 0x10 } else { 0x11 };
                writer.write(pt, now, time, frame).unwrap();
                // str0m packetizes one written frame per media line at each timeout.
                self.rtc.handle_input(Input::Timeout(now)).unwrap();
            }
        }
    }
}

/// A link of `rate` bits a second with a queue of at most `depth`: what does not fit is
/// dropped, what fits arrives when the link has carried what was before it.
struct Link {
    rate: u64,
    depth: Duration,
    free_at: Instant,
    queue: VecDeque<(Instant, Vec<u8>)>,
    /// Every this many video datagrams one is lost.
    lose_every: Option<u64>,
    carried: u64,
}

impl Link {
    fn new(rate: u64, now: Instant) -> Self {
        Self {
            rate,
            depth: Duration::from_millis(200),
            free_at: now,
            queue: VecDeque::new(),
            lose_every: None,
            carried: 0,
        }
    }

    fn push(&mut self, now: Instant, bytes: Vec<u8>) {
        // Of the large datagrams (video), every n-th is lost.
        if bytes.len() > 500 {
            self.carried += 1;
            if self.lose_every.is_some_and(|n| self.carried % n == 0) {
                return;
            }
        }
        let start = self.free_at.max(now);
        if start.saturating_duration_since(now) > self.depth {
            return;
        }
        let takes = Duration::from_secs_f64((bytes.len() as f64 * 8.0) / self.rate as f64);
        self.free_at = start + takes;
        self.queue.push_back((self.free_at, bytes));
    }

    fn pop(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.queue.front().is_some_and(|(at, _)| *at <= now) {
            self.queue.pop_front().map(|(_, b)| b)
        } else {
            None
        }
    }
}

/// The unit and its clients on a network that delivers every datagram at once, unless a
/// client's [`Link`] holds it back.
struct Net {
    unit: Unit,
    clients: Vec<Client>,
    now: Instant,
    tick: u64,
    /// When the senders send their next frames.
    next_media: Instant,
}

impl Net {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            unit: Unit::new(UNIT.parse().unwrap()),
            clients: Vec::new(),
            now,
            tick: 0,
            next_media: now,
        }
    }

    fn join_sending(&mut self, n: u8, simulcast: bool, may: May) -> usize {
        let mut c = Client::new(n, self.now);
        let offer = c.offer_to_send(simulcast);
        let answer = self
            .unit
            .offer(self.now, c.key.clone(), may, &offer)
            .unwrap();
        c.accept(&answer);
        self.clients.push(c);
        self.clients.len() - 1
    }

    fn join_receiving(&mut self, n: u8) -> usize {
        let mut c = Client::new(n, self.now);
        let offer = c.offer_to_receive();
        let answer = self
            .unit
            .offer(self.now, c.key.clone(), May::default(), &offer)
            .unwrap();
        c.accept(&answer);
        self.clients.push(c);
        self.clients.len() - 1
    }

    /// Runs `duration` of virtual time, event by event: whatever is due next (a peer's
    /// timer, a datagram leaving a slow link, the senders' next frame every 10 ms) happens
    /// at its time.
    fn run(&mut self, duration: Duration, senders: &[usize]) {
        let end = self.now + duration;
        loop {
            let mut next = self.next_media.min(end);
            next = next.min(self.unit.poll_timeout(self.now));
            for c in self.clients.iter().filter(|c| !c.gone) {
                next = next.min(c.due);
                if let Some((at, _)) = c.link.as_ref().and_then(|l| l.queue.front()) {
                    next = next.min(*at);
                }
            }
            // Time always moves a little, so that nothing spins at one instant.
            self.now = next.max(self.now + Duration::from_micros(50));
            if self.now >= end {
                self.now = end;
                break;
            }
            if self.now >= self.next_media {
                self.next_media += Duration::from_millis(10);
                self.tick += 1;
                for &s in senders {
                    if self.clients[s].rtc.is_connected() {
                        let (now, tick) = (self.now, self.tick);
                        self.clients[s].send_media(now, tick);
                    }
                }
            }
            if self.unit.poll_timeout(self.now) <= self.now {
                self.unit.handle_timeout(self.now);
            }
            for c in self.clients.iter_mut().filter(|c| !c.gone) {
                if c.due <= self.now {
                    c.rtc.handle_input(Input::Timeout(self.now)).unwrap();
                }
                while let Some(bytes) = c.link.as_mut().and_then(|l| l.pop(self.now)) {
                    c.receive(self.now, &bytes);
                }
            }
            self.deliver();
        }
    }

    /// Moves datagrams until nobody has any to send.
    fn deliver(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(t) = self.unit.poll_transmit() {
                moved = true;
                if let Some(c) = self
                    .clients
                    .iter_mut()
                    .find(|c| c.addr == t.destination && !c.gone)
                {
                    if let Some(link) = c.link.as_mut() {
                        link.push(self.now, t.contents);
                        continue;
                    }
                    c.receive(self.now, &t.contents);
                }
            }
            for c in self.clients.iter_mut().filter(|c| !c.gone) {
                loop {
                    match c.rtc.poll_output().unwrap() {
                        Output::Timeout(due) => {
                            c.due = due;
                            break;
                        }
                        Output::Transmit(t) => {
                            moved = true;
                            self.unit.receive(self.now, c.addr, &t.contents);
                        }
                        Output::Event(Event::MediaData(d)) => {
                            let kind = kind_of(d.params.spec().codec);
                            *c.got.entry(kind).or_default() += 1;
                            if kind == MediaKind::Video {
                                *c.layers.entry(d.data[1]).or_default() += 1;
                            } else {
                                c.audio_frames += 1;
                            }
                        }
                        Output::Event(Event::KeyframeRequest(_)) => c.keyframes_asked += 1,
                        Output::Event(_) => {}
                    }
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the network never settled");
    }

    fn got(&self, i: usize, kind: MediaKind) -> usize {
        self.clients[i].got.get(&kind).copied().unwrap_or(0)
    }
}

fn kind_of(c: Codec) -> MediaKind {
    if c.is_audio() {
        MediaKind::Audio
    } else {
        MediaKind::Video
    }
}

const PRESENTER: May = May {
    audio: true,
    video: true,
};

#[test]
fn every_receiver_gets_the_presenters_audio_and_video() {
    let mut net = Net::new();
    let presenter = net.join_sending(1, false, PRESENTER);
    let trainees: Vec<usize> = (2..22).map(|n| net.join_receiving(n)).collect();
    net.run(Duration::from_secs(3), &[presenter]);
    for &t in &trainees {
        assert!(
            net.got(t, MediaKind::Audio) > 50,
            "audio to {}",
            net.clients[t].key.identity
        );
        assert!(
            net.got(t, MediaKind::Video) > 20,
            "video to {}",
            net.clients[t].key.identity
        );
        assert!(net.unit.forwarded_bytes(&net.clients[t].key) > 0);
    }
    assert!(
        net.clients[presenter].keyframes_asked > 0,
        "joining receivers ask for a key frame"
    );
}

/// Video frames by layer and audio frames `i` received while `f` ran.
fn counted(net: &mut Net, i: usize, f: impl FnOnce(&mut Net)) -> (HashMap<char, usize>, usize) {
    let (layers, audio) = (net.clients[i].layers.clone(), net.clients[i].audio_frames);
    f(net);
    let now: HashMap<char, usize> = net.clients[i]
        .layers
        .iter()
        .map(|(k, v)| (*k as char, v - layers.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    (now, net.clients[i].audio_frames - audio)
}

#[test]
fn a_receiver_on_a_slow_link_gets_a_lower_layer_while_the_others_keep_the_high_one() {
    let mut net = Net::new();
    let presenter = net.join_sending(1, true, PRESENTER);
    let fast = net.join_receiving(2);
    let slow = net.join_receiving(3);
    let starved = net.join_receiving(4);
    net.clients[slow].link = Some(Link::new(500_000, net.now));
    net.clients[starved].link = Some(Link::new(120_000, net.now));
    // Every receiver starts low and moves up as its estimate grows.
    net.run(Duration::from_secs(20), &[presenter]);
    let asked = net.clients[presenter].keyframes_asked;
    let keys: Vec<PeerKey> = [fast, slow, starved]
        .iter()
        .map(|i| net.clients[*i].key.clone())
        .collect();
    let layers: Vec<Option<Layer>> = keys.iter().map(|k| net.unit.layer(k)).collect();
    assert_eq!(layers, [Some(Layer::Full), Some(Layer::Quarter), None]);
    let (fast_got, fast_audio) = counted(&mut net, fast, |n| {
        n.run(Duration::from_secs(4), &[presenter])
    });
    assert_eq!(fast_got.keys().collect::<Vec<_>>(), [&'f'], "{fast_got:?}");
    assert!(
        fast_got[&'f'] > 80 && fast_audio > 150,
        "{fast_got:?} {fast_audio}"
    );
    let (slow_got, slow_audio) = counted(&mut net, slow, |n| {
        n.run(Duration::from_secs(4), &[presenter])
    });
    assert_eq!(slow_got.keys().collect::<Vec<_>>(), [&'q'], "{slow_got:?}");
    assert!(
        slow_got[&'q'] > 80 && slow_audio > 150,
        "{slow_got:?} {slow_audio}"
    );
    // Below the lowest layer the audio stays and the video goes.
    let (starved_got, starved_audio) = counted(&mut net, starved, |n| {
        n.run(Duration::from_secs(4), &[presenter])
    });
    assert!(starved_got.is_empty(), "{starved_got:?}");
    assert!(starved_audio > 150, "{starved_audio}");
    assert!(asked > 0, "moving up asked for key frames");
}

#[test]
fn a_receiver_keeps_the_lowest_layer_through_a_dip_and_loses_the_video_only_when_it_lasts() {
    let mut net = Net::new();
    let presenter = net.join_sending(1, true, PRESENTER);
    let trainee = net.join_receiving(2);
    net.run(Duration::from_secs(1), &[presenter]);
    let key = net.clients[trainee].key.clone();
    let id = net.unit.peers.iter().find(|p| p.key == key).unwrap().id;
    assert_eq!(net.unit.layer(&key), Some(Layer::Quarter));
    let at = |ms: u64| net.now + Duration::from_millis(ms);
    let estimates = |unit: &mut Unit, list: &[(u64, u64)]| {
        for &(ms, kbps) in list {
            unit.estimated(at(ms), id, Bitrate::kbps(kbps));
        }
    };
    // Below what moving up to the lowest layer needs, but above the cut, for long: the
    // lowest layer stays (an estimate sinks so while little is being sent).
    let dip: Vec<(u64, u64)> = (0..50).map(|i| (i * 100, 170)).collect();
    estimates(&mut net.unit, &dip);
    assert_eq!(net.unit.layer(&key), Some(Layer::Quarter));
    // Below the cut for a moment, then back up: still the lowest layer.
    estimates(&mut net.unit, &[(5_000, 100), (6_000, 100), (6_500, 400)]);
    assert_eq!(net.unit.layer(&key), Some(Layer::Quarter));
    // Below the cut again: the video goes only once it has lasted.
    estimates(&mut net.unit, &[(7_000, 100), (8_500, 90)]);
    assert_eq!(net.unit.layer(&key), Some(Layer::Quarter));
    estimates(&mut net.unit, &[(9_000, 90)]);
    assert_eq!(net.unit.layer(&key), None);
}

#[test]
fn a_receiver_can_ask_for_audio_only_and_for_video_again() {
    let mut net = Net::new();
    let presenter = net.join_sending(1, false, PRESENTER);
    let trainee = net.join_receiving(2);
    let key = net.clients[trainee].key.clone();
    net.run(Duration::from_secs(2), &[presenter]);
    net.unit.set_audio_only(net.now, &key, true);
    net.run(Duration::from_millis(100), &[presenter]);
    let (video, audio) = counted(&mut net, trainee, |n| {
        n.run(Duration::from_secs(2), &[presenter])
    });
    assert!(video.is_empty() && audio > 80, "{video:?} {audio}");
    let asked = net.clients[presenter].keyframes_asked;
    net.unit.set_audio_only(net.now, &key, false);
    let (video, _) = counted(&mut net, trainee, |n| {
        n.run(Duration::from_secs(2), &[presenter])
    });
    assert!(video.get(&'-').is_some_and(|n| *n > 30), "{video:?}");
    assert!(
        net.clients[presenter].keyframes_asked > asked,
        "video again starts from a key frame"
    );
}

#[test]
fn audio_of_a_participant_without_the_grant_is_not_forwarded_until_granted() {
    let mut net = Net::new();
    let trainee = net.join_sending(1, false, May::default());
    let other = net.join_receiving(2);
    net.run(Duration::from_secs(1), &[trainee]);
    assert_eq!(net.got(other, MediaKind::Audio), 0, "no grant, no audio");
    let key = net.clients[trainee].key.clone();
    net.unit.set_may(
        &key,
        May {
            audio: true,
            video: false,
        },
    );
    net.run(Duration::from_secs(1), &[trainee]);
    assert!(net.got(other, MediaKind::Audio) > 20, "granted, heard");
    assert_eq!(net.got(other, MediaKind::Video), 0, "video was not granted");
}

#[test]
fn a_peer_that_leaves_is_dropped_and_a_bad_offer_is_refused() {
    let mut net = Net::new();
    let presenter = net.join_sending(1, false, PRESENTER);
    let trainee = net.join_receiving(2);
    net.run(Duration::from_millis(500), &[presenter]);
    let key = net.clients[trainee].key.clone();
    assert!(net.unit.has(&key));
    net.unit.leave(&key);
    assert!(!net.unit.has(&key));
    let refused = net.unit.offer(net.now, key, May::default(), "not sdp");
    assert!(matches!(refused, Err(super::SfuError::BadOffer(_))));
    // Stray datagrams are nobody's; damaged ones from a peer's own address do not cost it
    // its connection.
    let stranger: SocketAddr = "10.9.9.9:9".parse().unwrap();
    let junk: [&[u8]; 3] = [b"", b"\x00\x01\x00\x00garbage", &[0x80; 1500]];
    for bytes in junk {
        assert!(!net.unit.receive(net.now, stranger, bytes));
        net.unit
            .receive(net.now, net.clients[presenter].addr, bytes);
    }
    net.run(Duration::from_millis(500), &[presenter]);
    assert!(net.unit.has(&net.clients[presenter].key), "still connected");
}

#[test]
fn media_presence_starts_with_the_first_media_and_ends_when_a_vanished_receiver_is_given_up() {
    let mut net = Net::new();
    let presenter = net.join_sending(1, false, PRESENTER);
    let stays = net.join_receiving(2);
    let vanishes = net.join_receiving(3);
    let t0 = net.now;
    net.run(Duration::from_secs(5), &[presenter]);
    let started: Vec<Receiving> = std::iter::from_fn(|| net.unit.poll_event()).collect();
    let keys: Vec<&PeerKey> = started
        .iter()
        .map(|e| match e {
            Receiving::Started { key, at } => {
                assert!(*at < t0 + Duration::from_secs(2), "{e:?}");
                key
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        keys,
        [&net.clients[stays].key, &net.clients[vanishes].key],
        "the presenter receives nothing"
    );
    // It goes without a word; the unit gives it up once its checks go unanswered.
    net.clients[vanishes].gone = true;
    let gone_at = net.now;
    let mut stopped = None;
    for _ in 0..60 {
        net.run(Duration::from_secs(1), &[presenter]);
        if let Some(e) = net.unit.poll_event() {
            stopped = Some(e);
            break;
        }
    }
    let Some(Receiving::Stopped { key, at, seconds }) = stopped else {
        panic!("not given up: {stopped:?}");
    };
    assert_eq!(key, net.clients[vanishes].key);
    assert!(
        at <= gone_at && at + Duration::from_secs(1) >= gone_at,
        "last heard when it vanished"
    );
    assert!(
        (4..=6).contains(&seconds),
        "about five seconds of media, not the wait: {seconds}"
    );
    assert!(!net.unit.has(&key));
    assert!(net.unit.has(&net.clients[stays].key));
    assert_eq!(
        net.unit.poll_event(),
        None,
        "the one that stays is still receiving"
    );
}

#[test]
fn what_a_lossy_link_drops_is_sent_again() {
    let mut net = Net::new();
    let presenter = net.join_sending(1, false, PRESENTER);
    let trainee = net.join_receiving(2);
    let mut lossy = Link::new(50_000_000, net.now);
    lossy.lose_every = Some(10);
    net.clients[trainee].link = Some(lossy);
    net.run(Duration::from_secs(3), &[presenter]);
    // 50 video frames a second, one datagram each: one in ten is lost on the way, and
    // comes again when the trainee asks (NACK, RTX). Audio is not touched.
    let (video, audio) = counted(&mut net, trainee, |n| {
        n.run(Duration::from_secs(4), &[presenter])
    });
    let frames = video.get(&'-').copied().unwrap_or(0);
    assert!(frames >= 195, "{frames} of 200 video frames");
    assert!(
        audio >= 395,
        "{audio} of 400 audio frames (no audio was lost)"
    );
    let (nacks, _) = net.unit.egress(&net.clients[trainee].key);
    assert!(
        nacks >= 20,
        "the lost ones were asked for again: {nacks} NACKs"
    );
}

#[test]
fn a_shared_screen_reaches_a_receiver_with_a_second_video_slot() {
    let mut net = Net::new();
    let mut presenter = Client::new(1, net.now);
    let offer = {
        let mut api = presenter.rtc.sdp_api();
        presenter.audio =
            Some(api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        presenter.video =
            Some(api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None));
        presenter.screen =
            Some(api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None));
        let (offer, pending) = api.apply().unwrap();
        presenter.pending = Some(pending);
        offer.to_sdp_string()
    };
    let answer = net
        .unit
        .offer(net.now, presenter.key.clone(), PRESENTER, &offer)
        .unwrap();
    presenter.accept(&answer);
    net.clients.push(presenter);
    let mut trainee = Client::new(2, net.now);
    let offer = trainee.offer_slots(2);
    let answer = net
        .unit
        .offer(net.now, trainee.key.clone(), May::default(), &offer)
        .unwrap();
    trainee.accept(&answer);
    net.clients.push(trainee);
    net.run(Duration::from_secs(4), &[0]);
    let got = &net.clients[1].layers;
    assert!(
        got.get(&b'-').is_some_and(|n| *n > 100),
        "the camera: {got:?}"
    );
    assert!(
        got.get(&b's').is_some_and(|n| *n > 10),
        "the screen: {got:?}"
    );
}

#[test]
fn a_receiver_gets_a_lower_layer_when_the_sender_stops_sending_its_own() {
    let mut net = Net::new();
    let presenter = net.join_sending(1, true, PRESENTER);
    let trainee = net.join_receiving(2);
    net.run(Duration::from_secs(12), &[presenter]);
    let key = net.clients[trainee].key.clone();
    assert_eq!(
        net.unit.layer(&key),
        Some(Layer::Full),
        "a fast link has the full layer"
    );
    // The presenter's browser, short of CPU, sends the quarter layer only.
    net.clients[presenter].paused = vec![b'h', b'f'];
    let asked = net.clients[presenter].keyframes_asked;
    let (layers, _) = counted(&mut net, trainee, |net| {
        net.run(Duration::from_secs(3), &[presenter]);
    });
    assert!(
        layers.get(&'q').copied().unwrap_or(0) > 50,
        "the trainee is sent the layer that is still sent: {layers:?}"
    );
    assert!(
        net.clients[presenter].keyframes_asked > asked,
        "with a key frame of it to start from"
    );
    // When the full layer comes back, the trainee gets it again.
    net.clients[presenter].paused.clear();
    let (layers, _) = counted(&mut net, trainee, |net| {
        net.run(Duration::from_secs(2), &[presenter]);
    });
    assert!(layers.get(&'f').copied().unwrap_or(0) > 20, "{layers:?}");
}
