//! The unit with str0m peers on an in-memory network and virtual time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::{Layer, May, PeerKey, Unit};

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
    simulcast: bool,
    /// Frames received, by kind.
    got: HashMap<MediaKind, usize>,
    /// Video frames received, by the layer they were sent in (`q`, `h`, `f`, or `-`).
    layers: HashMap<u8, usize>,
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
            simulcast: false,
            got: HashMap::new(),
            layers: HashMap::new(),
            keyframes_asked: 0,
        }
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
        let mut api = self.rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
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
                // The rest of the frame tells the receiver which layer it was.
                let mut frame = vec![tag; 900];
                frame[0] = if tick % 60 == 0 { 0x10 } else { 0x11 };
                writer.write(pt, now, time, frame).unwrap();
            }
        }
    }
}

/// The unit and its clients on a network that delivers every datagram at once.
struct Net {
    unit: Unit,
    clients: Vec<Client>,
    now: Instant,
    tick: u64,
}

impl Net {
    fn new() -> Self {
        Self {
            unit: Unit::new(UNIT.parse().unwrap()),
            clients: Vec::new(),
            now: Instant::now(),
            tick: 0,
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

    /// Runs `duration` of virtual time in 10 ms steps; the first client sends media
    /// once connected.
    fn run(&mut self, duration: Duration, senders: &[usize]) {
        let steps = duration.as_millis() / 10;
        for _ in 0..steps {
            self.now += Duration::from_millis(10);
            self.tick += 1;
            for &s in senders {
                if self.clients[s].rtc.is_connected() {
                    let (now, tick) = (self.now, self.tick);
                    self.clients[s].send_media(now, tick);
                }
            }
            self.unit.handle_timeout(self.now);
            for c in &mut self.clients {
                c.rtc.handle_input(Input::Timeout(self.now)).unwrap();
            }
            self.deliver();
        }
    }

    /// Moves datagrams until nobody has any to send.
    fn deliver(&mut self) {
        let unit: SocketAddr = UNIT.parse().unwrap();
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(t) = self.unit.poll_transmit() {
                moved = true;
                if let Some(c) = self.clients.iter_mut().find(|c| c.addr == t.destination) {
                    let input = Input::Receive(
                        self.now,
                        Receive {
                            proto: Protocol::Udp,
                            source: unit,
                            destination: c.addr,
                            contents: t.contents.as_slice().try_into().unwrap(),
                        },
                    );
                    c.rtc.handle_input(input).unwrap();
                }
            }
            for c in &mut self.clients {
                loop {
                    match c.rtc.poll_output().unwrap() {
                        Output::Timeout(_) => break,
                        Output::Transmit(t) => {
                            moved = true;
                            self.unit.receive(self.now, c.addr, &t.contents);
                        }
                        Output::Event(Event::MediaData(d)) => {
                            let kind = kind_of(d.params.spec().codec);
                            *c.got.entry(kind).or_default() += 1;
                            if kind == MediaKind::Video {
                                *c.layers.entry(d.data[1]).or_default() += 1;
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

#[test]
fn each_receiver_gets_the_layer_set_for_it_and_a_key_frame_when_it_changes() {
    let mut net = Net::new();
    let presenter = net.join_sending(1, true, PRESENTER);
    let high = net.join_receiving(2);
    let low = net.join_receiving(3);
    let low_key = net.clients[low].key.clone();
    net.unit.set_layer(net.now, &low_key, Layer::Quarter);
    net.run(Duration::from_secs(2), &[presenter]);
    let layers = |net: &Net, i: usize| {
        let mut l: Vec<(char, usize)> = net.clients[i]
            .layers
            .iter()
            .map(|(k, v)| (*k as char, *v))
            .collect();
        l.sort();
        l
    };
    let high_layers = layers(&net, high);
    assert_eq!(high_layers.len(), 1, "{high_layers:?}");
    assert_eq!(high_layers[0].0, 'f', "{high_layers:?}");
    assert!(high_layers[0].1 > 50, "{high_layers:?}");
    let low_layers = layers(&net, low);
    assert_eq!(low_layers.len(), 1, "{low_layers:?}");
    assert_eq!(low_layers[0].0, 'q', "{low_layers:?}");
    assert!(low_layers[0].1 > 50, "{low_layers:?}");
    let asked = net.clients[presenter].keyframes_asked;
    net.unit.set_layer(net.now, &low_key, Layer::Full);
    net.run(Duration::from_secs(1), &[presenter]);
    assert!(
        net.clients[presenter].keyframes_asked > asked,
        "a layer change asks for a key frame"
    );
    let switched = layers(&net, low);
    assert!(
        switched.iter().any(|(l, n)| *l == 'f' && *n > 20),
        "{switched:?}"
    );
    let quarter_after = switched.iter().find(|(l, _)| *l == 'q').map_or(0, |x| x.1);
    assert!(
        quarter_after <= low_layers[0].1 + 2,
        "after the switch no more quarter frames than were on the way: {switched:?}"
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
}
