//! Simulcast layers, and which one each receiver gets: the highest its link carries by the
//! unit's bandwidth estimate for it, down at once when the estimate falls, up only after
//! it has held for [`UPGRADE_AFTER`], and no video at all below [`VIDEO_CUT_BELOW`] for
//! [`VIDEO_CUT_AFTER`]. A receiver that changes layer has key frames of the new one asked
//! for it.

use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::media::Rid;

use super::{PeerKey, TrackKey, Unit};

/// Simulcast layers, as the presenter's page names them (RIDs), lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// A quarter of the resolution (`q`).
    Quarter,
    /// Half the resolution (`h`).
    Half,
    /// Full resolution (`f`).
    Full,
}

impl Layer {
    /// Every layer, lowest first.
    pub(super) const ALL: [Layer; 3] = [Layer::Quarter, Layer::Half, Layer::Full];

    /// The RID of this layer.
    pub fn rid(self) -> Rid {
        match self {
            Layer::Quarter => "q".into(),
            Layer::Half => "h".into(),
            Layer::Full => "f".into(),
        }
    }

    pub(super) fn of(rid: Rid) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.rid() == rid)
    }

    /// The estimate a receiver's link needs for this layer (with the audio), from what
    /// the presenter's page sends: about 150 kbit/s, 500 kbit/s and 1.2 Mbit/s.
    pub fn needs(self) -> Bitrate {
        match self {
            Layer::Quarter => Bitrate::kbps(200),
            Layer::Half => Bitrate::kbps(650),
            Layer::Full => Bitrate::kbps(1_400),
        }
    }

    /// The highest layer `estimate` carries; `None` when not even the lowest.
    pub fn for_estimate(estimate: Bitrate) -> Option<Layer> {
        [Layer::Full, Layer::Half, Layer::Quarter]
            .into_iter()
            .find(|l| estimate.as_f64() >= l.needs().as_f64())
    }
}

/// How long a higher estimate must hold before a receiver moves up a layer.
pub const UPGRADE_AFTER: Duration = Duration::from_secs(3);

/// A receiver loses the video (keeps the audio) once its estimate has stayed below this
/// for [`VIDEO_CUT_AFTER`]; until then, and between this and what the lowest layer needs
/// to be moved up to, it keeps the lowest layer.
pub const VIDEO_CUT_BELOW: Bitrate = Bitrate::kbps(150);

/// See [`VIDEO_CUT_BELOW`].
pub const VIDEO_CUT_AFTER: Duration = Duration::from_secs(2);

impl Unit {
    /// The layer `key` receives now (`None`: audio only).
    pub fn layer(&self, key: &PeerKey) -> Option<Layer> {
        self.peers
            .iter()
            .find(|p| p.key == *key)
            .and_then(|p| if p.audio_only { None } else { p.layer })
    }

    /// A new estimate of what peer `id`'s link carries: its layer follows.
    pub(super) fn estimated(&mut self, now: Instant, id: u64, estimate: Bitrate) {
        let Some(p) = self.peers.iter_mut().find(|p| p.id == id) else {
            return;
        };
        let fits = Layer::for_estimate(estimate);
        let starved = estimate.as_f64() < VIDEO_CUT_BELOW.as_f64();
        if !starved {
            p.starved_since = None;
        }
        let changed = if fits < p.layer {
            p.better = None;
            let lowest = Some(Layer::Quarter);
            if fits.is_some() {
                p.layer = fits;
                true
            } else if starved
                && now.saturating_duration_since(*p.starved_since.get_or_insert(now))
                    >= VIDEO_CUT_AFTER
            {
                p.layer = None;
                p.starved_since = None;
                true
            } else if p.layer > lowest {
                p.layer = lowest;
                true
            } else {
                false
            }
        } else if fits > p.layer {
            let target = fits.expect("above None");
            match p.better {
                Some((l, since))
                    if l == target && now.saturating_duration_since(since) >= UPGRADE_AFTER =>
                {
                    p.layer = fits;
                    p.better = None;
                    true
                }
                Some((l, _)) if l == target => false,
                _ => {
                    p.better = Some((target, now));
                    false
                }
            }
        } else {
            p.better = None;
            false
        };
        if changed {
            let layer = p.layer;
            self.keyframes_for(now, id, layer);
        }
    }

    /// Asks for key frames of `layer` of every video track peer `id` receives.
    pub(super) fn keyframes_for(&mut self, now: Instant, id: u64, layer: Option<Layer>) {
        let (Some(p), Some(layer)) = (self.peers.iter().find(|p| p.id == id), layer) else {
            return;
        };
        let wanted: Vec<TrackKey> = p.carrying.values().cloned().collect();
        for track in wanted {
            self.ask_keyframe(now, &track, Some(layer));
        }
    }
}
