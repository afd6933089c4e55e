//! Password checks for requests, bounded: at most `concurrent` argon2id computations run
//! at once, each in a work area of its own that is kept and used again, so the memory
//! they take (19 MiB each at the default cost) is bounded and allocated once, whatever
//! arrives. A request that cannot get a work area within the wait is refused as busy (503
//! with `Retry-After`) rather than queued without end.
//!
//! Allocating the memory for every check, as argon2's own `verify_password` does, took a
//! gateway from 236 MiB to 2 GiB under 96 concurrent logins, and the allocator kept it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::Block;
use tokio::sync::Semaphore;

/// All work areas are in use, and none came free within the wait.
#[derive(Debug, thiserror::Error)]
#[error("every password check is busy")]
pub struct Busy;

/// The bounded password hasher (see the module).
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    areas: Arc<Mutex<Vec<Vec<Block>>>>,
    wait: Duration,
}

impl Hasher {
    /// At most `concurrent` (at least one) checks at once; a request waits at most `wait`
    /// for its turn.
    pub fn new(concurrent: usize, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
            areas: Arc::new(Mutex::new(Vec::new())),
            wait,
        }
    }

    /// Whether `password` matches the stored PHC `hash`.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, Busy> {
        self.run(move |area| super::password::verify_in(&password, &hash, area))
            .await
    }

    /// A new argon2id hash of `password`.
    pub async fn hash(&self, password: String) -> Result<anyhow::Result<String>, Busy> {
        self.run(move |area| super::password::hash_in(&password, area))
            .await
    }

    /// Runs `work` on the blocking pool with a work area, once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let areas = self.areas.clone();
        let done = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let take = || areas.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let mut area = take().unwrap_or_default();
            let out = work(&mut area);
            areas
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(area);
            out
        })
        .await;
        // The work does not panic; should it, the permit went with it.
        done.map_err(|_| Busy)
    }

    /// How many work areas exist (for tests: never more than `concurrent`).
    pub fn areas(&self) -> usize {
        self.areas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_run_two_at_a_time_in_two_areas_and_the_rest_wait_or_are_refused() {
        let hasher = Hasher::new(2, Duration::from_secs(30));
        let hash = hasher.hash("correct horse".into()).await.unwrap().unwrap();
        let checks: Vec<_> = (0..8)
            .map(|i| {
                let (hasher, hash) = (hasher.clone(), hash.clone());
                let password = if i % 2 == 0 { "correct horse" } else { "wrong" };
                tokio::spawn(async move { hasher.verify(password.into(), hash).await })
            })
            .collect();
        for (i, check) in checks.into_iter().enumerate() {
            assert_eq!(check.await.unwrap().unwrap(), i % 2 == 0);
        }
        assert!(hasher.areas() <= 2, "{} areas", hasher.areas());
        // With no wait at all, a check finding the permit taken is refused.
        let impatient = Hasher::new(1, Duration::ZERO);
        let held = impatient.permits.clone().try_acquire_owned().unwrap();
        assert!(impatient.verify("x".into(), hash.clone()).await.is_err());
        drop(held);
        assert!(impatient.verify("x".into(), hash).await.is_ok());
    }
}
