//! A destination's lanes, each sending its jobs on an association of its own, what they
//! share (the pairs offered, the jobs handed to them, how many are open), and the task
//! that records their outcomes together as they gather, each with the delay before its
//! retry ([`backoff`]). How the lanes take jobs and when they associate is told at
//! [`run`](super::run).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::association::{Link, Unreached, connect};
use super::{Attempt, ForwardConfig, Job, Queue, Target, backoff};

/// How long a lane keeps an association open without a job.
pub const IDLE: Duration = Duration::from_secs(2);
/// How long a lane waits for a job before it ends.
const RETIRE: Duration = Duration::from_secs(600);

/// One job's outcome, and the delay before its retry.
type Outcome = (Job, Attempt, Duration);

/// What the lanes of one destination share.
#[derive(Default)]
pub(super) struct Shared {
    /// The (SOP class, transfer syntax) pairs offered so far: every lane offers them.
    offered: std::sync::Mutex<Vec<(String, String)>>,
    /// Notified when jobs are handed to the lanes.
    arrived: tokio::sync::Notify,
    /// Jobs handed to the lanes and not yet taken by one.
    queued: AtomicUsize,
    /// Lanes with an association open.
    open: AtomicUsize,
}

impl Shared {
    /// Counts a job handed to the lanes, and wakes those waiting for one.
    pub(super) fn handed(&self) {
        self.queued.fetch_add(1, Ordering::SeqCst);
        self.arrived.notify_waiters();
    }

    /// Makes `pairs` the pairs every lane offers from now on.
    pub(super) fn offer(&self, pairs: &[(String, String)]) {
        let mut offered = crate::lock(&self.offered);
        offered.clear();
        offered.extend_from_slice(pairs);
    }

    /// Waits until jobs wait for the lanes (true), or until none came for [`RETIRE`].
    async fn jobs_waiting(&self) -> bool {
        let deadline = tokio::time::Instant::now() + RETIRE;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            // Listening before looking, so that no arrival falls between the two.
            arrived.as_mut().enable();
            if self.queued.load(Ordering::SeqCst) > 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return false;
            }
        }
    }
}

/// Counts a lane's association among its destination's open ones while it is open.
struct Counted<'a> {
    shared: &'a Shared,
    counted: bool,
}

impl Counted<'_> {
    fn update(&mut self, open: bool) {
        if open != self.counted {
            if open {
                self.shared.open.fetch_add(1, Ordering::SeqCst);
            } else {
                self.shared.open.fetch_sub(1, Ordering::SeqCst);
            }
            self.counted = open;
        }
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.update(false);
    }
}

/// Starts the lanes of `target` and the task recording their outcomes; returns where
/// their jobs go.
pub(super) fn start_lanes<Q: Queue>(
    queue: &Arc<Q>,
    config: &Arc<ForwardConfig>,
    target: &Target,
    tasks: &mut tokio::task::JoinSet<()>,
) -> (mpsc::Sender<Job>, Arc<Shared>) {
    let (jobs, waiting) = mpsc::channel(usize::try_from(config.batch).unwrap_or(1).max(1));
    let waiting = Arc::new(tokio::sync::Mutex::new(waiting));
    let shared = Arc::new(Shared::default());
    let (outcomes, done) = mpsc::unbounded_channel();
    tasks.spawn(record(queue.clone(), done));
    for n in 0..config.associations.max(1) {
        tasks.spawn(lane(
            Lane {
                config: config.clone(),
                target: target.clone(),
                waiting: waiting.clone(),
                outcomes: outcomes.clone(),
                shared: shared.clone(),
            },
            n == 0,
        ));
    }
    (jobs, shared)
}

/// What a lane works with.
struct Lane {
    config: Arc<ForwardConfig>,
    target: Target,
    waiting: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    shared: Arc<Shared>,
}

/// How long outcomes gather before they are recorded together.
const GATHER: Duration = Duration::from_millis(20);

/// Records outcomes as they come, whatever has gathered within [`GATHER`] in one go.
/// Unrecorded deliveries are sent again after their lease: a duplicate, never a loss.
async fn record<Q: Queue>(queue: Arc<Q>, mut done: mpsc::UnboundedReceiver<Outcome>) {
    while let Some(first) = done.recv().await {
        tokio::time::sleep(GATHER).await;
        let mut batch = vec![first];
        while let Ok(more) = done.try_recv() {
            batch.push(more);
        }
        if let Err(e) = queue.record(&batch).await {
            tracing::error!(error = %e, "cannot record forwards");
        }
    }
}

/// One lane to its destination: associates when jobs wait, then takes them one at a time
/// and sends each on its association. Only the first lane (`first`) takes the
/// destination's first job before associating (the job says what to offer).
async fn lane(lane: Lane, first: bool) {
    let Lane {
        config,
        target,
        waiting,
        outcomes,
        shared,
    } = lane;
    let mut link = Link::default();
    let mut counted = Counted {
        shared: &shared,
        counted: false,
    };
    let mut quiet_since = Instant::now();
    loop {
        counted.update(link.is_open());
        let offered = crate::lock(&shared.offered).clone();
        // Why this lane could not associate, when it takes a job all the same.
        let mut refused = None;
        if !(link.is_open() || (first && offered.is_empty())) {
            if !shared.jobs_waiting().await {
                break;
            }
            if offered.is_empty() {
                // The first lane has the first job; its association says what to offer.
                tokio::time::sleep(IDLE / 8).await;
                continue;
            }
            match connect(&target, &config, &offered).await {
                Ok(open) => {
                    link.opened(open, offered);
                    counted.update(true);
                }
                // Another lane is delivering (the destination took its association and
                // not this one, or refuses more): this one tries again later.
                Err(_) if shared.open.load(Ordering::SeqCst) > 0 => {
                    tokio::time::sleep(IDLE).await;
                    continue;
                }
                // Nobody delivers: a waiting job is taken, and its attempt says why.
                Err(why) => refused = Some(why),
            }
        }
        let next = {
            let mut waiting = waiting.lock().await;
            if link.is_open() {
                tokio::time::timeout(IDLE, waiting.recv()).await
            } else if refused.is_some() {
                Ok(waiting.try_recv().ok())
            } else {
                // The destination's first job.
                match tokio::time::timeout(RETIRE, waiting.recv()).await {
                    Ok(job) => Ok(job),
                    Err(_) => break,
                }
            }
        };
        let job = match next {
            Ok(Some(job)) => {
                shared.queued.fetch_sub(1, Ordering::SeqCst);
                job
            }
            // Another lane took the job this one would have failed.
            Ok(None) if refused.is_some() => continue,
            Ok(None) => break,
            Err(_) => {
                link.close().await;
                if quiet_since.elapsed() > RETIRE {
                    break;
                }
                continue;
            }
        };
        let attempt = match refused {
            // No pair offered so far was accepted: the job's own is tried.
            Some(r) if r.why == Unreached::NoContext => {
                link.deliver(&target, &config, &job, &shared).await
            }
            Some(r) => Attempt::Retry(r.message),
            None => link.deliver(&target, &config, &job, &shared).await,
        };
        if let Attempt::Retry(e) | Attempt::Failed(e) = &attempt {
            tracing::info!(job = job.id, error = %e, "forward not delivered");
        }
        let delay = backoff(&config, job.attempts);
        let _ = outcomes.send((job, attempt, delay));
        quiet_since = Instant::now();
    }
    link.close().await;
}
