//! Forwarding: a frame a publisher sent is written to every other peer of its room that
//! has a free slot of its kind (or already carries that track), in the layer each
//! receives; a receiver that starts on a track or changes layer has a key frame asked
//! of the sender, no more often than [`KEYFRAME_INTERVAL`]. The first media to reach a
//! receiver is the start of its attendance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::{KeyframeRequestKind, MediaData, MediaKind};

use super::{Layer, Receiving, TrackKey, Unit};

/// A simulcast layer without a packet for this long counts as not being sent.
const LAYER_SILENT: Duration = Duration::from_millis(500);

/// Key frame requests for the same layer are sent at most this often.
const KEYFRAME_INTERVAL: Duration = Duration::from_millis(500);

impl Unit {
    /// Writes one frame of `origin` to every other peer of its room that has a slot for
    /// it, in the layer each receives.
    pub(super) fn forward(&mut self, now: Instant, origin: u64, data: &MediaData) {
        let Some(from) = self.peers.iter().find(|p| p.id == origin) else {
            return;
        };
        let Some(&kind) = from.sending.get(&data.mid) else {
            return;
        };
        let allowed = match kind {
            MediaKind::Audio => from.may.audio,
            MediaKind::Video => from.may.video,
        };
        if !allowed {
            return;
        }
        let room = from.key.room.clone();
        let track = TrackKey {
            origin,
            mid: data.mid,
        };
        let layer = data.rid.and_then(Layer::of);
        // The layers of this track the sender is sending now.
        let mut sent = Vec::new();
        if let Some(l) = layer {
            self.seen.insert((origin, data.mid, l), now);
            sent = Layer::ALL
                .into_iter()
                .filter(|&x| {
                    self.seen
                        .get(&(origin, data.mid, x))
                        .is_some_and(|t| now.saturating_duration_since(*t) < LAYER_SILENT)
                })
                .collect();
        }
        let mut wanted = Vec::new();
        for (i, p) in self.peers.iter_mut().enumerate() {
            if p.id == origin || p.key.room != room || !p.rtc.is_alive() {
                continue;
            }
            if kind == MediaKind::Video && (p.audio_only || p.layer.is_none()) {
                continue;
            }
            if let (Some(l), Some(own)) = (layer, p.layer) {
                // The receiver's layer if it is being sent, else the highest below it, else
                // the lowest being sent.
                let gets = sent
                    .iter()
                    .rev()
                    .find(|&&x| x <= own)
                    .or(sent.first())
                    .copied()
                    .unwrap_or(own);
                if l != gets {
                    continue;
                }
                // A change of layer (the receiver's, or what the sender sends) needs a key
                // frame of the new one to decode from.
                if p.track_layers.insert(track.clone(), gets) != Some(gets) {
                    wanted.push(Some(gets));
                }
            }
            let slot = match p.carrying.iter().find(|(_, t)| **t == track) {
                Some((mid, _)) => *mid,
                None => {
                    let free = p
                        .slots
                        .iter()
                        .find(|(mid, k)| *k == kind && !p.carrying.contains_key(mid))
                        .map(|(mid, _)| *mid);
                    let Some(mid) = free else { continue };
                    p.carrying.insert(mid, track.clone());
                    if kind == MediaKind::Video {
                        wanted.push(p.layer);
                    }
                    mid
                }
            };
            let Some(writer) = p.rtc.writer(slot) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                continue;
            };
            let bytes = data.data.len() as u64;
            if writer
                .write(pt, data.network_time, data.time, Arc::clone(&data.data))
                .is_ok()
            {
                p.forwarded_bytes += bytes;
                self.touched.push(i);
                match &mut p.receiving {
                    Some((since, seconds)) => {
                        seconds.insert(now.saturating_duration_since(*since).as_secs());
                    }
                    None => {
                        p.receiving = Some((now, [0].into()));
                        self.events.push_back(Receiving::Started {
                            key: p.key.clone(),
                            at: now,
                        });
                    }
                }
            }
        }
        // A receiver that just started on this track needs a key frame to decode.
        for layer in wanted {
            self.ask_keyframe(now, &track, layer);
        }
    }

    /// Asks the sender of `track` for a key frame (of `layer`, if it sends simulcast), at
    /// most every [`KEYFRAME_INTERVAL`].
    pub(super) fn ask_keyframe(&mut self, now: Instant, track: &TrackKey, layer: Option<Layer>) {
        let simulcast = self
            .peers
            .iter()
            .find(|p| p.id == track.origin)
            .is_some_and(|p| p.simulcast.contains(&track.mid));
        let rid = if simulcast {
            match layer {
                Some(l) => Some(l.rid()),
                None => return,
            }
        } else {
            None
        };
        let key = (track.origin, track.mid, rid);
        if self
            .asked
            .get(&key)
            .is_some_and(|t| now.saturating_duration_since(*t) < KEYFRAME_INTERVAL)
        {
            return;
        }
        let Some(i) = self.peers.iter().position(|p| p.id == track.origin) else {
            return;
        };
        let Some(mut writer) = self.peers[i].rtc.writer(track.mid) else {
            return;
        };
        if writer
            .request_keyframe(rid, KeyframeRequestKind::Pli)
            .is_ok()
        {
            self.asked.insert(key, now);
            self.touched.push(i);
        }
    }
}
