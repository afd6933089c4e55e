//! The forwarding unit of teaching sessions and ward rounds: what a presenter (or a
//! trainee given the microphone) publishes is carried to everyone else in the room, without mixing or
//! transcoding. Sans-I/O around str0m (see `README.md` for why str0m): every peer
//! connection of the process shares one UDP socket, and the shell feeds datagrams and
//! time in and sends out what [`Unit::poll_transmit`] returns.
//!
//! Each participant offers first (Chrome fixes its RTP header-extension ids from its own
//! offer): the presenter with its tracks to send, a trainee with empty slots to receive
//! into (audio, camera, screen). The unit answers with its one candidate in the SDP.
//! Incoming tracks are given, per receiver, the first free slot of their kind. Of a
//! simulcast video track each receiver gets one layer ([`Layer`]), the highest its link
//! carries by the unit's bandwidth estimate for it (transport-wide congestion control
//! feedback, str0m's port of GoogCC): down at once when the estimate falls, up only after
//! it has held for [`UPGRADE_AFTER`]. Below the lowest layer for good (under
//! [`VIDEO_CUT_BELOW`] for [`VIDEO_CUT_AFTER`]: estimates dip for a moment, as a
//! connection starts or a busy machine delays its feedback) a receiver keeps the audio
//! and loses the video, as it does when it asks for audio only. A receiver that starts or
//! changes layer has a key frame asked for it; what a receiver lost is sent again when it
//! asks (NACK, RTX, str0m's send buffer).
//!
//! What a participant may send ([`May`]) comes from its room token and the moderator's
//! microphone grants (the room decides; the unit obeys). When media first reaches a
//! receiver, and when its connection goes, [`Unit::poll_event`] says so ([`Receiving`]):
//! that is a trainee's attendance.
//!
//! Cost: a datagram is handled by the one connection it belongs to (found by its source
//! address), and only connections that got input or media are polled afterwards, so the
//! work per forwarded frame grows with the receivers of that frame, not with everyone.
//!
//! This module holds the unit's types and its peer connections; how a receiver's layer
//! follows its link is in `layer`, and how a frame reaches the receivers (and a key frame
//! is asked for) in `forward`.

mod forward;
mod layer;

pub use layer::{Layer, UPGRADE_AFTER, VIDEO_CUT_AFTER, VIDEO_CUT_BELOW};

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaData, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::room::RoomId;

/// Why an offer was refused.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    /// The SDP could not be parsed.
    #[error("the offer is not valid SDP: {0}")]
    BadOffer(String),
    /// str0m refused the offer (no common codec, a malformed media section).
    #[error("the offer cannot be answered: {0}")]
    Refused(String),
}

/// The estimate each receiver's link starts from, and what the unit probes towards.
const START_ESTIMATE: Bitrate = Bitrate::kbps(300);
const DESIRED_ESTIMATE: Bitrate = Bitrate::kbps(2_000);

/// What a participant may send through the unit, from its room token's grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct May {
    /// Its audio is forwarded.
    pub audio: bool,
    /// Its video (camera, screen) is forwarded.
    pub video: bool,
}

/// A participant: its room and identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerKey {
    /// The room.
    pub room: RoomId,
    /// The participant's identity.
    pub identity: String,
}

/// When a participant actually receives media: the evidence of attendance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receiving {
    /// The first media was forwarded to it (after it connected, or came back).
    Started {
        /// Who.
        key: PeerKey,
        /// When.
        at: Instant,
    },
    /// Its connection is gone (it left, was removed, or stopped answering).
    Stopped {
        /// Who.
        key: PeerKey,
        /// The last time it was heard from.
        at: Instant,
        /// Seconds in which media was forwarded to it while it was still heard from.
        seconds: u64,
    },
}

/// A datagram to send.
#[derive(Debug)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// The bytes.
    pub contents: Vec<u8>,
}

/// One incoming track: who sends it and on which of its media lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TrackKey {
    origin: u64,
    mid: Mid,
}

struct Peer {
    id: u64,
    key: PeerKey,
    rtc: Rtc,
    may: May,
    /// Slots this peer receives into, by kind, in the order of its offer.
    slots: Vec<(Mid, MediaKind)>,
    /// Which incoming track each used slot carries.
    carrying: HashMap<Mid, TrackKey>,
    /// The layer of each simulcast track it is being sent (its own, or the nearest the
    /// sender sends).
    track_layers: HashMap<TrackKey, Layer>,
    /// The simulcast layer this peer receives; `None`: its link carries audio only.
    layer: Option<Layer>,
    /// A higher layer the estimate allows, and since when.
    better: Option<(Layer, Instant)>,
    /// Since when its estimate has been below [`VIDEO_CUT_BELOW`].
    starved_since: Option<Instant>,
    /// It asked for audio only.
    audio_only: bool,
    /// Media lines this peer sends on, and their kind.
    sending: HashMap<Mid, MediaKind>,
    /// Those of them that are simulcast.
    simulcast: Vec<Mid>,
    /// Payload bytes forwarded to this peer.
    forwarded_bytes: u64,
    /// When its connection's timers are due next.
    due: Instant,
    /// Since when media reaches it, and the seconds (counted from then) in which some did.
    receiving: Option<(Instant, std::collections::BTreeSet<u64>)>,
    /// The last time a datagram came from it.
    heard: Instant,
    /// What it reported of what the unit sends it, per media line: NACKs (packets it
    /// asked to have sent again) and the fraction lost.
    egress: HashMap<Mid, (u64, f32)>,
}

/// Every forwarded peer connection of the process.
pub struct Unit {
    local: SocketAddr,
    peers: Vec<Peer>,
    next_id: u64,
    out: VecDeque<Transmit>,
    /// Who started or stopped receiving.
    events: VecDeque<Receiving>,
    /// Peers (by index) with new input or media since they were last polled.
    touched: Vec<usize>,
    /// Which peer (by index) datagrams from an address went to last.
    by_source: HashMap<SocketAddr, usize>,
    /// Key frame requests already sent, per (origin, mid, layer), to throttle them.
    asked: HashMap<(u64, Mid, Option<Rid>), Instant>,
    /// When each simulcast layer of a track last brought a packet: a sender's browser
    /// stops sending layers its CPU or link cannot keep up, and a receiver must not wait
    /// for one that does not come.
    seen: HashMap<(u64, Mid, Layer), Instant>,
}

impl Unit {
    /// A unit whose socket is at `local` (the address peers reach, in the answers).
    pub fn new(local: SocketAddr) -> Self {
        Self {
            local,
            peers: Vec::new(),
            next_id: 0,
            out: VecDeque::new(),
            events: VecDeque::new(),
            touched: Vec::new(),
            by_source: HashMap::new(),
            asked: HashMap::new(),
            seen: HashMap::new(),
        }
    }

    /// Answers `key`'s offer, replacing an earlier connection of the same participant.
    pub fn offer(
        &mut self,
        now: Instant,
        key: PeerKey,
        may: May,
        sdp: &str,
    ) -> Result<String, SfuError> {
        let offer =
            SdpOffer::from_sdp_string(sdp).map_err(|e| SfuError::BadOffer(e.to_string()))?;
        let mut rtc = Rtc::builder()
            .enable_bwe(Some(START_ESTIMATE))
            .set_stats_interval(Some(Duration::from_secs(1)))
            .build(now);
        rtc.bwe().set_desired_bitrate(DESIRED_ESTIMATE);
        let candidate =
            Candidate::host(self.local, "udp").map_err(|e| SfuError::Refused(e.to_string()))?;
        let _ = rtc.add_local_candidate(candidate);
        let answer: SdpAnswer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::Refused(e.to_string()))?;
        self.leave(&key);
        self.next_id += 1;
        self.peers.push(Peer {
            id: self.next_id,
            key,
            rtc,
            may,
            slots: Vec::new(),
            carrying: HashMap::new(),
            track_layers: HashMap::new(),
            layer: Layer::for_estimate(START_ESTIMATE),
            better: None,
            starved_since: None,
            audio_only: false,
            sending: HashMap::new(),
            simulcast: Vec::new(),
            forwarded_bytes: 0,
            due: now,
            receiving: None,
            heard: now,
            egress: HashMap::new(),
        });
        self.touched.push(self.peers.len() - 1);
        self.drive(now);
        Ok(answer.to_sdp_string())
    }

    /// A candidate `key` trickled (`candidate:…`, RFC 8839). Ones that cannot be used
    /// here (mDNS names, other protocols) are ignored: the peer's checks reach the unit
    /// anyway, and the unit learns its address from them.
    pub fn candidate(&mut self, now: Instant, key: &PeerKey, candidate: &str) {
        let line = candidate.strip_prefix("a=").unwrap_or(candidate);
        let Ok(c) = Candidate::from_sdp_string(line) else {
            return;
        };
        if let Some(i) = self.peers.iter().position(|p| p.key == *key) {
            self.peers[i].rtc.add_remote_candidate(c);
            self.touched.push(i);
        }
        self.drive(now);
    }

    /// Drops `key`'s connection, if any.
    pub fn leave(&mut self, key: &PeerKey) {
        if let Some(i) = self.peers.iter().position(|p| p.key == *key) {
            let mut peer = self.peers.remove(i);
            self.by_source.clear();
            peer.rtc.disconnect();
            let gone = peer.id;
            for p in &mut self.peers {
                p.carrying.retain(|_, t| t.origin != gone);
            }
            self.stopped(peer);
        }
    }

    /// Changes what `key` may send (a grant or revoke of the microphone).
    pub fn set_may(&mut self, key: &PeerKey, may: May) {
        if let Some(p) = self.peers.iter_mut().find(|p| p.key == *key) {
            p.may = may;
        }
    }

    /// `key` asks for audio only (`true`) or for video again.
    pub fn set_audio_only(&mut self, now: Instant, key: &PeerKey, audio_only: bool) {
        let Some(p) = self.peers.iter_mut().find(|p| p.key == *key) else {
            return;
        };
        p.audio_only = audio_only;
        let layer = p.layer;
        let id = p.id;
        if !audio_only {
            self.keyframes_for(now, id, layer);
        }
        self.drive(now);
    }

    /// Whether `key` is connected here.
    pub fn has(&self, key: &PeerKey) -> bool {
        self.peers.iter().any(|p| p.key == *key && p.rtc.is_alive())
    }

    /// Payload bytes forwarded to `key` so far.
    pub fn forwarded_bytes(&self, key: &PeerKey) -> u64 {
        self.peers
            .iter()
            .find(|p| p.key == *key)
            .map_or(0, |p| p.forwarded_bytes)
    }

    /// A datagram arrived from `source`; returns whether a peer took it.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, contents: &[u8]) -> bool {
        let Ok(contents) = contents.try_into() else {
            return false;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        // Most datagrams come from an address seen before; a scan finds the others (STUN
        // checks from a new address, by their username).
        let known = self
            .by_source
            .get(&source)
            .copied()
            .filter(|&i| i < self.peers.len() && self.peers[i].rtc.accepts(&input));
        let Some(i) = known.or_else(|| self.peers.iter().position(|p| p.rtc.accepts(&input)))
        else {
            return false;
        };
        self.by_source.insert(source, i);
        let peer = &mut self.peers[i];
        peer.heard = now;
        if peer.rtc.handle_input(input).is_err() {
            peer.rtc.disconnect();
        }
        self.touched.push(i);
        self.drive(now);
        true
    }

    /// Time passed: timers of every peer connection run.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (i, p) in self.peers.iter_mut().enumerate() {
            if p.due > now {
                continue;
            }
            if p.rtc.handle_input(Input::Timeout(now)).is_err() {
                p.rtc.disconnect();
            }
            self.touched.push(i);
        }
        self.drive(now);
    }

    /// What `key` reported of the media the unit sends it: the packets it asked to have
    /// sent again (NACK, answered from the send buffer over RTX), and the largest
    /// fraction lost on one of its media lines.
    pub fn egress(&self, key: &PeerKey) -> (u64, f32) {
        self.peers
            .iter()
            .find(|p| p.key == *key)
            .map_or((0, 0.0), |p| {
                p.egress
                    .values()
                    .fold((0, 0.0_f32), |(n, l), (nacks, loss)| {
                        (n + nacks, l.max(*loss))
                    })
            })
    }

    /// The next start or end of someone receiving media.
    pub fn poll_event(&mut self) -> Option<Receiving> {
        self.events.pop_front()
    }

    /// `peer` is gone: if it was receiving, say so, up to when it was last heard from.
    fn stopped(&mut self, peer: Peer) {
        let Some((since, seconds)) = peer.receiving else {
            return;
        };
        let at = peer.heard.max(since);
        let last = at.saturating_duration_since(since).as_secs();
        self.events.push_back(Receiving::Stopped {
            key: peer.key,
            at,
            seconds: seconds.range(..=last).count() as u64,
        });
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// When [`Unit::handle_timeout`] is due next.
    pub fn poll_timeout(&self, now: Instant) -> Instant {
        self.peers
            .iter()
            .map(|p| p.due)
            .fold(now + Duration::from_millis(100), Instant::min)
    }

    /// Polls the peers that got input or media until each waits for time or input again;
    /// forwards what publishers sent (which gives their receivers media to send, so they
    /// are polled next), and drops the peers whose connection is gone.
    fn drive(&mut self, now: Instant) {
        let mut any_dead = false;
        loop {
            let mut todo = std::mem::take(&mut self.touched);
            todo.sort_unstable();
            todo.dedup();
            todo.retain(|&i| i < self.peers.len());
            if todo.is_empty() {
                break;
            }
            let mut media: Vec<(u64, MediaData)> = Vec::new();
            let mut keyframes = Vec::new();
            let mut estimates = Vec::new();
            for &i in &todo {
                let p = &mut self.peers[i];
                while p.rtc.is_alive() {
                    match p.rtc.poll_output() {
                        Ok(Output::Timeout(due)) => {
                            p.due = due;
                            break;
                        }
                        Ok(Output::Transmit(t)) => self.out.push_back(Transmit {
                            destination: t.destination,
                            contents: t.contents.to_vec(),
                        }),
                        Ok(Output::Event(event)) => match event {
                            Event::MediaAdded(m) => {
                                if m.simulcast.is_some() {
                                    p.simulcast.push(m.mid);
                                }
                                match m.direction {
                                    Direction::RecvOnly => {
                                        p.sending.insert(m.mid, m.kind);
                                    }
                                    Direction::SendOnly => p.slots.push((m.mid, m.kind)),
                                    _ => {
                                        p.sending.insert(m.mid, m.kind);
                                        p.slots.push((m.mid, m.kind));
                                    }
                                }
                            }
                            Event::MediaData(data) => media.push((p.id, data)),
                            Event::KeyframeRequest(r) => {
                                if let Some(track) = p.carrying.get(&r.mid) {
                                    let layer = p.track_layers.get(track).copied().or(p.layer);
                                    keyframes.push((track.clone(), layer));
                                }
                            }
                            Event::EgressBitrateEstimate(BweKind::Twcc(estimate)) => {
                                estimates.push((p.id, estimate));
                            }
                            Event::MediaEgressStats(stats) => {
                                let loss = stats.loss.unwrap_or(0.0);
                                p.egress.insert(stats.mid, (stats.nacks, loss));
                            }
                            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                                p.rtc.disconnect();
                            }
                            _ => {}
                        },
                        Err(_) => p.rtc.disconnect(),
                    }
                }
                any_dead |= !p.rtc.is_alive();
            }
            for (id, estimate) in estimates {
                self.estimated(now, id, estimate);
            }
            for (origin, data) in media {
                self.forward(now, origin, &data);
            }
            for (track, layer) in keyframes {
                self.ask_keyframe(now, &track, layer);
            }
        }
        if !any_dead {
            return;
        }
        self.by_source.clear();
        let alive: Vec<u64> = self
            .peers
            .iter()
            .filter(|p| p.rtc.is_alive())
            .map(|p| p.id)
            .collect();
        let (live, dead): (Vec<Peer>, Vec<Peer>) = std::mem::take(&mut self.peers)
            .into_iter()
            .partition(|p| p.rtc.is_alive());
        self.peers = live;
        for peer in dead {
            self.stopped(peer);
        }
        self.seen.retain(|(origin, _, _), _| alive.contains(origin));
        for p in &mut self.peers {
            p.carrying.retain(|_, t| alive.contains(&t.origin));
            p.track_layers.retain(|t, _| alive.contains(&t.origin));
        }
    }
}

#[cfg(test)]
mod tests;
