//! The worker that drains the forward queue: jobs handed over as the index queues them,
//! and the rest claimed from the queue when due, wait here per destination until that
//! destination's lanes (`lane`) have room, so that a destination that is slow or hangs
//! holds up only its own jobs.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::lane::{Shared, start_lanes};
use super::{ForwardConfig, Job, Queue, Target};

/// Drains the queue until the task is dropped. New instances come as jobs already claimed
/// on `handed` (the index claims them as it queues them, which spares a claim per instance
/// and starts forwarding while a study is still arriving); every [`CLAIM_EVERY`], and at
/// once when `wake` is notified, the queue is asked for the rest that is due (retries, jobs
/// whose lease ran out, jobs queued while `handed` was full). Each destination gets
/// `config.associations` lanes; a lane keeps its association open while jobs keep coming
/// and closes it after [`IDLE`](super::IDLE) without any, and outcomes are recorded
/// together as they gather. Jobs wait in the worker until their destination's lanes have
/// room, so a destination that is slow or hangs holds up only its own. A lane associates
/// first and takes jobs only once accepted, so that a destination taking one association at
/// a time (DCMTK's `storescp`, small PACS) keeps no job waiting behind an association it
/// will not accept yet; only the destination's very first job, which says what to offer, is
/// taken before. A lane that cannot associate while no other lane of its destination is
/// open takes a job to fail, so that the queue shows why.
pub async fn run<Q: Queue>(
    queue: Arc<Q>,
    config: Arc<ForwardConfig>,
    wake: Arc<tokio::sync::Notify>,
    mut handed: mpsc::Receiver<Job>,
) {
    let mut lanes: HashMap<Target, (mpsc::Sender<Job>, Arc<Shared>)> = HashMap::new();
    // Jobs not yet taken by their destination's lanes. A destination that is slow or
    // hangs keeps its own jobs waiting here, not the others'.
    let mut waiting: HashMap<Target, VecDeque<Job>> = HashMap::new();
    // The lanes and their recorders end with this task.
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_claim = tokio::time::Instant::now();
    loop {
        while tasks.try_join_next().is_some() {}
        let held: usize = waiting.values().map(VecDeque::len).sum();
        if tokio::time::Instant::now() >= next_claim && held < MOST_WAITING {
            let claimed = match queue.claim(config.batch, config.lease).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim forwards");
                    Vec::new()
                }
            };
            // A full batch suggests more is due.
            let full = i64::try_from(claimed.len()).unwrap_or(i64::MAX) >= config.batch;
            next_claim =
                tokio::time::Instant::now() + if full { Duration::ZERO } else { CLAIM_EVERY };
            for job in claimed {
                waiting
                    .entry(job.target.clone())
                    .or_default()
                    .push_back(job);
            }
        }
        while let Ok(job) = handed.try_recv() {
            waiting
                .entry(job.target.clone())
                .or_default()
                .push_back(job);
        }
        // Each destination's lanes take what they have room for.
        waiting.retain(|target, jobs| {
            while let Some(job) = jobs.pop_front() {
                let (lane, shared) = lanes
                    .entry(target.clone())
                    .or_insert_with(|| start_lanes(&queue, &config, target, &mut tasks));
                match lane.try_send(job) {
                    Ok(()) => shared.handed(),
                    Err(mpsc::error::TrySendError::Full(job)) => {
                        jobs.push_front(job);
                        break;
                    }
                    // Its lanes retired after a long quiet: they start again.
                    Err(mpsc::error::TrySendError::Closed(job)) => {
                        lanes.remove(target);
                        jobs.push_front(job);
                    }
                }
            }
            !jobs.is_empty()
        });
        let mut until = next_claim;
        if !waiting.is_empty() {
            until = until.min(tokio::time::Instant::now() + FEED_EVERY);
        }
        tokio::select! {
            Some(job) = handed.recv() => {
                waiting.entry(job.target.clone()).or_default().push_back(job);
            }
            () = tokio::time::sleep_until(until) => {}
            () = wake.notified() => next_claim = tokio::time::Instant::now(),
        }
    }
}

/// While jobs wait for full lanes, how often the lanes are offered them again.
const FEED_EVERY: Duration = Duration::from_millis(20);

/// The queue is not asked for more while this many jobs wait for lanes.
const MOST_WAITING: usize = 1024;

/// How often the queue is asked for due jobs when nothing wakes the worker.
pub const CLAIM_EVERY: Duration = Duration::from_millis(500);
