//! The time the gateway goes by. Every time the store writes or compares (sessions, login
//! delays, deadlines, leases, retries) comes from the [`Clock`] it was opened with: the
//! system's time, moved on by an offset that only a test changes, so that a test of a
//! delay or an expiry moves time instead of waiting for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// The system's time plus an offset; clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system's time.
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// Now, as the gateway goes by it.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Moves this clock (and every clone of it) on by `by`: for tests of delays and
    /// expiries.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_and_its_clones_move_on_together() {
        let clock = Clock::default();
        let clone = clock.clone();
        let before = clock.now();
        clone.advance(std::time::Duration::from_secs(3600));
        let moved = clock.now() - before;
        assert!(moved >= TimeDelta::hours(1), "{moved}");
        assert!(
            moved < TimeDelta::hours(1) + TimeDelta::seconds(10),
            "{moved}"
        );
    }
}
