//! Forwarding: the storage SCU that carries stored instances to the supporting hospital,
//! and the worker that drains the forward queue. The queue itself lives in the gateway's
//! database (behind [`Queue`]): each instance is pending, then sending under a lease, then
//! delivered; a failure is retried with exponential backoff, and a lease that runs out (a
//! crash, `kill -9`) makes the instance due again, so nothing is lost and a duplicate can
//! only be a re-send of the same instance.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dicom_ul::association::client::{AsyncClientAssociation, ClientAssociationOptions};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu, PresentationContextResultReason};
use tokio::sync::mpsc;

use crate::dimse::{self, status};
use crate::spool::Stored;
use crate::walk::PART10_HEAD;

/// Where an instance goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// Called AE title.
    pub ae_title: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Over TLS.
    pub tls: bool,
}

/// One claimed forward.
#[derive(Debug, Clone)]
pub struct Job {
    /// Queue id.
    pub id: i64,
    /// Attempts so far.
    pub attempts: i32,
    /// The stored instance.
    pub stored: Stored,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// The transfer syntax it is stored in.
    pub transfer_syntax: String,
    /// Where it goes.
    pub target: Target,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The destination stored it.
    Delivered,
    /// Try again later (refused, unreachable, broken off).
    Retry(String),
    /// Trying again cannot help (e.g. no transfer syntax in common); an operator may.
    Failed(String),
}

/// The forward queue, kept by the gateway.
pub trait Queue: Send + Sync + 'static {
    /// Claims up to `limit` due jobs, leasing them for `lease`.
    fn claim(
        &self,
        limit: i64,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Job>, String>> + Send;
    /// Records the outcomes of attempts (each with the delay before its retry), together.
    fn record(
        &self,
        outcomes: &[(Job, Attempt, Duration)],
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// How forwarding behaves.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// The relay's AE title, calling.
    pub calling_ae_title: String,
    /// Associations at once per destination.
    pub associations: usize,
    /// Jobs claimed per pass.
    pub batch: i64,
    /// How long a claim holds before the job is due again.
    pub lease: Duration,
    /// The first retry delay; it doubles with each attempt.
    pub retry_base: Duration,
    /// The longest retry delay.
    pub retry_max: Duration,
    /// Connection, read and write timeout.
    pub timeout: Duration,
    /// Largest PDU proposed.
    pub max_pdu_length: u32,
    /// Whom to trust when a destination speaks TLS (and the relay's client certificate,
    /// if it has one).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Where destinations may be ([`crate::outbound`]).
    pub outbound: crate::outbound::Policy,
}

/// What kind of failure a forward's error is, in words that tell an operator what to do
/// and nothing of what answered at the destination's address: the whole error names
/// the address and repeats what the peer said, which is for administrators only.
pub fn error_class(error: &str) -> &'static str {
    if error.starts_with("not connecting to") {
        "the destination's address is not one the relay may connect to (outbound policy)"
    } else if error.starts_with("cannot associate with") {
        "the destination cannot be reached, or refuses the relay's association"
    } else if error.contains(" answered status ") {
        "the destination refused the instance"
    } else if error.contains("accepts neither the SOP class") {
        "the destination takes neither the instance's SOP class nor its transfer syntax"
    } else if error.starts_with("cannot read the stored instance")
        || error.starts_with("the stored instance")
    {
        "the relay cannot read the stored instance"
    } else if error.contains("no certificate authority") {
        "the destination speaks TLS and the relay trusts no certificate authority"
    } else if error.contains("imaging supporter")
        || error.contains("has no DICOM destination")
        || error.starts_with("cannot read the destination")
    {
        // The gateway's own routing errors (`duikou::imaging::forward_target`).
        "the study has nowhere to go: see the pairing and the supporter's destination"
    } else {
        "the association with the destination broke"
    }
}

/// The delay before retry number `attempts + 1`.
pub fn backoff(config: &ForwardConfig, attempts: i32) -> Duration {
    let factor = 2_u32.saturating_pow(u32::try_from(attempts.clamp(0, 20)).unwrap_or(20));
    config
        .retry_base
        .saturating_mul(factor)
        .min(config.retry_max)
}

/// Drains the queue until the task is dropped. New instances come as jobs already
/// claimed on `handed` (the index claims them as it queues them, which spares a claim per
/// instance and starts forwarding while a study is still arriving); every [`CLAIM_EVERY`],
/// and at once when `wake` is notified, the queue is asked for the rest that is due
/// (retries, jobs whose lease ran out, jobs queued while `handed` was full). Each
/// destination gets `config.associations` lanes; a lane keeps its association open while
/// jobs keep coming and closes it after [`IDLE`] without any, and outcomes are recorded
/// together as they gather. Jobs wait in the worker until their destination's lanes have
/// room, so a destination that is slow or hangs holds up only its own. A lane associates
/// first and takes jobs only once accepted, so that a destination taking one association
/// at a time (DCMTK's `storescp`, small PACS) keeps no job waiting behind an association
/// it will not accept yet; only the destination's very first job, which says what to
/// offer, is taken before. A lane that cannot associate while no other lane of its
/// destination is open takes a job to fail, so that the queue shows why.
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
                    Ok(()) => {
                        shared.queued.fetch_add(1, Ordering::SeqCst);
                        shared.arrived.notify_waiters();
                    }
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

/// How long a lane keeps an association open without a job.
pub const IDLE: Duration = Duration::from_secs(2);
/// How long a lane waits for a job before it ends.
const RETIRE: Duration = Duration::from_secs(600);

/// One job's outcome, and the delay before its retry.
type Outcome = (Job, Attempt, Duration);

/// What the lanes of one destination share.
#[derive(Default)]
struct Shared {
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
fn start_lanes<Q: Queue>(
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
        counted.update(link.open.is_some());
        let offered = crate::lock(&shared.offered).clone();
        // Why this lane could not associate, when it takes a job all the same.
        let mut refused = None;
        if link.open.is_none() && !(first && offered.is_empty()) {
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
                    (link.open, link.offered) = (Some(open), offered);
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
            if link.open.is_some() {
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
            Some(Refusal::Other(why)) => Attempt::Retry(why),
            // No pair offered so far was accepted: the job's own is tried.
            Some(Refusal::NoContext) | None => link.deliver(&target, &config, &job, &shared).await,
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

/// An open association, plain or over TLS.
enum Open {
    Plain(Box<AsyncClientAssociation<tokio::net::TcpStream>>),
    Tls(Box<AsyncClientAssociation<dicom_ul::association::client::AsyncTlsStream>>),
}

/// A lane's association to its destination, opened when needed, with the (SOP class,
/// transfer syntax) pairs it was offered.
#[derive(Default)]
struct Link {
    open: Option<Open>,
    /// Pairs offered on the open association (and offered again on the next one).
    offered: Vec<(String, String)>,
    messages: u16,
    buffers: Buffers,
}

/// At most this many pairs are offered on one association (DICOM allows 128 contexts).
const MOST_PAIRS: usize = 64;

impl Link {
    /// Sends `job`, opening an association (offering its pair) if none is open that was
    /// offered it.
    async fn deliver(
        &mut self,
        target: &Target,
        config: &ForwardConfig,
        job: &Job,
        shared: &Shared,
    ) -> Attempt {
        let pair = (job.sop_class_uid.clone(), job.transfer_syntax.clone());
        if !self.offered.contains(&pair) {
            self.close().await;
            if self.offered.len() >= MOST_PAIRS {
                self.offered.clear();
            }
            self.offered.push(pair.clone());
            crate::lock(&shared.offered).clone_from(&self.offered);
        }
        if self.open.is_none() {
            match connect(target, config, &self.offered).await {
                Ok(open) => self.open = Some(open),
                Err(Refusal::NoContext) => return not_accepted(target, job),
                Err(Refusal::Other(why)) => return Attempt::Retry(why),
            }
        }
        let Some(open) = self.open.as_mut() else {
            return Attempt::Retry("no association".into());
        };
        self.messages = self.messages % 65_000 + 1;
        let message_id = self.messages;
        let (buffers, timeout) = (&mut self.buffers, config.timeout);
        let sent = match open {
            Open::Plain(a) => store_on(a.as_mut(), job, message_id, timeout, buffers).await,
            Open::Tls(a) => store_on(a.as_mut(), job, message_id, timeout, buffers).await,
        };
        match sent {
            Some(Ok(status::SUCCESS | 0xB000..=0xBFFF)) => Attempt::Delivered,
            Some(Ok(code)) => {
                Attempt::Retry(format!("{} answered status {code:#06x}", target.ae_title))
            }
            Some(Err(e)) => {
                // Broken: the next job opens another.
                self.open = None;
                Attempt::Retry(e)
            }
            None => not_accepted(target, job),
        }
    }

    /// Releases the association, if one is open.
    async fn close(&mut self) {
        match self.open.take() {
            Some(Open::Plain(a)) => {
                let _ = a.release().await;
            }
            Some(Open::Tls(a)) => {
                let _ = a.release().await;
            }
            None => {}
        }
    }
}

fn not_accepted(target: &Target, job: &Job) -> Attempt {
    Attempt::Failed(format!(
        "{} accepts neither the SOP class {} nor it in the transfer syntax {}",
        target.ae_title, job.sop_class_uid, job.transfer_syntax
    ))
}

/// Why an association was not opened.
enum Refusal {
    /// The destination accepted none of the offered pairs: retrying cannot help.
    NoContext,
    /// Anything else (unreachable, rejected): try again later.
    Other(String),
}

/// Opens an association to `target` offering `pairs`.
async fn connect(
    target: &Target,
    config: &ForwardConfig,
    pairs: &[(String, String)],
) -> Result<Open, Refusal> {
    let mut options = ClientAssociationOptions::new()
        .calling_ae_title(config.calling_ae_title.as_str())
        .called_ae_title(target.ae_title.as_str())
        .max_pdu_length(config.max_pdu_length)
        .connection_timeout(config.timeout)
        .read_timeout(config.timeout)
        .write_timeout(config.timeout);
    for (class, ts) in pairs {
        options = options.with_presentation_context(class.as_str(), vec![ts.as_str()]);
    }
    // The association goes to an address the outbound policy checked, never to a
    // second lookup of the name.
    let address = format!("{}:{}", target.host, target.port);
    let checked = match config.outbound.resolve(&target.host, target.port).await {
        Ok(addresses) => addresses[0],
        Err(e) => return Err(Refusal::Other(format!("not connecting to {address}: {e}"))),
    };
    let refused = |e: dicom_ul::association::Error| {
        if matches!(
            e,
            dicom_ul::association::Error::NoAcceptedPresentationContexts { .. }
        ) {
            return Refusal::NoContext;
        }
        Refusal::Other(format!(
            "cannot associate with {} at {address}: {e}",
            target.ae_title
        ))
    };
    if !target.tls {
        let mut a = options.establish_async(checked).await.map_err(refused)?;
        // dicom-ul leaves Nagle on; without this every message waits for a delayed ACK.
        let _ = a.inner_stream().set_nodelay(true);
        return Ok(Open::Plain(Box::new(a)));
    }
    let Some(tls) = config.tls.clone() else {
        return Err(Refusal::Other(
            "the destination speaks TLS and no certificate authority is configured to trust".into(),
        ));
    };
    let mut a = options
        .tls_config(tls)
        .server_name(&target.host)
        .establish_tls_async(checked)
        .await
        .map_err(refused)?;
    let _ = a.inner_stream().get_mut().0.set_nodelay(true);
    Ok(Open::Tls(Box::new(a)))
}

/// Sends `job` on `association` if a context for its pair was accepted (`None` if not):
/// the destination's status, or why the association broke.
async fn store_on<S>(
    association: &mut AsyncClientAssociation<S>,
    job: &Job,
    message_id: u16,
    timeout: Duration,
    buffers: &mut Buffers,
) -> Option<Result<u16, String>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let context = association.presentation_contexts().iter().find(|pc| {
        pc.reason == PresentationContextResultReason::Acceptance
            && pc.abstract_syntax.trim_end_matches('\0') == job.sop_class_uid
            && pc.transfer_syntax.trim_end_matches('\0') == job.transfer_syntax
    })?;
    let context = context.id;
    let max_pdv = (association.acceptor_max_pdu_length().max(4096) as usize).saturating_sub(6);
    let sent = store_one(
        association,
        Fragments { context, max_pdv },
        message_id,
        job,
        timeout,
        buffers,
    );
    Some(sent.await)
}

/// How much of a stored instance is read at once when it is sent.
const PIECE: u64 = 4 * 1024 * 1024;

/// The buffers a lane keeps from one instance to the next: memory fresh from the system
/// for every instance costs more than sending it.
#[derive(Default)]
struct Buffers {
    /// Stored bytes as read.
    read: Vec<u8>,
    /// The headers of the P-DATA-TF PDUs that carry them.
    headers: Vec<[u8; 12]>,
}

/// How a data set is cut into PDUs on one presentation context.
#[derive(Clone, Copy)]
struct Fragments {
    context: u8,
    /// The most data bytes in one PDU (the acceptor's largest PDU less the headers).
    max_pdv: usize,
}

impl Fragments {
    /// `data` as P-DATA-TF PDUs of one data fragment each (PS3.8 9.3.5), the last of them
    /// marked last when `last`; an empty `data` that is `last` still makes one, empty,
    /// fragment. Each PDU is its header (kept in `headers`) and its slice of `data`, to
    /// be written together without copying `data`.
    fn frame<'a>(
        self,
        headers: &'a mut Vec<[u8; 12]>,
        data: &'a [u8],
        last: bool,
    ) -> Vec<std::io::IoSlice<'a>> {
        let size = self.max_pdv.max(1);
        let count = data.len().div_ceil(size).max(usize::from(last));
        let chunk = |n: usize| {
            data.get(n * size..data.len().min((n + 1) * size))
                .unwrap_or(&[])
        };
        headers.clear();
        headers.extend((0..count).map(|n| {
            let item = u32::try_from(chunk(n).len() + 2).unwrap_or(u32::MAX);
            let control = if last && n + 1 == count { 0x02 } else { 0x00 };
            let mut h = [0_u8; 12];
            h[0] = 0x04;
            h[2..6].copy_from_slice(&(item + 4).to_be_bytes());
            h[6..10].copy_from_slice(&item.to_be_bytes());
            h[10] = self.context;
            h[11] = control;
            h
        }));
        headers
            .iter()
            .enumerate()
            .flat_map(|(n, h)| [std::io::IoSlice::new(h), std::io::IoSlice::new(chunk(n))])
            .filter(|slice| !slice.is_empty())
            .collect()
    }
}

/// Writes all of `slices` to `stream`, as few calls as the system allows.
async fn write_all_vectored<S>(
    stream: &mut S,
    mut slices: &mut [std::io::IoSlice<'_>],
) -> std::io::Result<()>
where
    S: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt as _;
    while !slices.is_empty() {
        let written = stream.write_vectored(slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        std::io::IoSlice::advance_slices(&mut slices, written);
    }
    stream.flush().await
}

/// One C-STORE: the command, then the stored data set in fragments; returns the status.
/// The data set's PDUs are framed here and written to the association's stream a piece
/// at a time, between dicom-ul's PDUs (so at PDU boundaries): one vectored write per
/// piece instead of an encoded copy and a write for every PDU.
async fn store_one<S>(
    association: &mut AsyncClientAssociation<S>,
    fragments: Fragments,
    message_id: u16,
    job: &Job,
    timeout: Duration,
    buffers: &mut Buffers,
) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let unreadable = |e: std::io::Error| format!("cannot read the stored instance: {e}");
    let broke = |e: String| format!("the association broke: {e}");
    // Read in large pieces, each in one blocking call (no thread hop per PDU).
    let file = Arc::new(std::fs::File::open(&job.stored.path).map_err(unreadable)?);
    let (start, end) = (job.stored.offset, job.stored.offset + job.stored.length);
    let mut at = start;
    let mut first = true;
    loop {
        let length = usize::try_from((end - at).min(PIECE)).unwrap_or(0);
        if buffers.read.len() < length {
            buffers.read.resize(length, 0);
        }
        let (file, mut piece) = (file.clone(), std::mem::take(&mut buffers.read));
        buffers.read = tokio::task::spawn_blocking(move || {
            file.read_exact_at(&mut piece[..length], at)?;
            Ok::<_, std::io::Error>(piece)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|read| read)
        .map_err(unreadable)?;
        at += length as u64;
        let last_piece = at >= end;
        let mut bytes = &buffers.read[..length];
        if first {
            // The file meta stays here: the data set alone goes out.
            let Some(data_set) = crate::walk::meta_length(bytes)
                .and_then(|m| usize::try_from(m).ok())
                .map(|m| PART10_HEAD + m)
                .filter(|&d| d <= bytes.len())
            else {
                return Err("the stored instance is cut short".into());
            };
            bytes = &bytes[data_set..];
            first = false;
            let command = Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: fragments.context,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: dimse::store_request(
                        message_id,
                        &job.sop_class_uid,
                        &job.sop_instance_uid,
                    ),
                }],
            };
            association
                .send(&command)
                .await
                .map_err(|e| broke(e.to_string()))?;
        }
        let mut slices = fragments.frame(&mut buffers.headers, bytes, last_piece);
        let stream = association.inner_stream();
        match tokio::time::timeout(timeout, write_all_vectored(stream, &mut slices)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(broke(e.to_string())),
            Err(_) => return Err(broke("timed out writing".into())),
        }
        if last_piece {
            break;
        }
    }
    match association.receive().await {
        Ok(Pdu::PData { data }) if !data.is_empty() => dimse::parse_command(&data[0].data)
            .ok()
            .and_then(|c| c.status)
            .ok_or_else(|| "an unreadable response".to_owned()),
        Ok(Pdu::AbortRQ { .. }) => Err("the destination aborted".into()),
        Ok(other) => Err(format!("unexpected {}", other.short_description())),
        Err(e) => Err(format!("no response: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A queue with nothing due; it keeps the outcomes.
    #[derive(Default)]
    struct Outcomes(std::sync::Mutex<Vec<(i64, Attempt)>>);

    impl Queue for Outcomes {
        async fn claim(&self, _limit: i64, _lease: Duration) -> Result<Vec<Job>, String> {
            Ok(Vec::new())
        }

        async fn record(&self, outcomes: &[(Job, Attempt, Duration)]) -> Result<(), String> {
            let mut kept = crate::lock(&self.0);
            kept.extend(outcomes.iter().map(|(job, a, _)| (job.id, a.clone())));
            Ok(())
        }
    }

    impl Outcomes {
        fn of(&self, id: i64) -> Option<Attempt> {
            let kept = crate::lock(&self.0);
            kept.iter().find(|(i, _)| *i == id).map(|(_, a)| a.clone())
        }
    }

    /// DCMTK's `storescp` as `ae_title`, storing into `dir`; killed on drop.
    struct Storescp(std::process::Child);

    impl Storescp {
        fn start(ae_title: &str, dir: &Path) -> (Self, u16) {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let child = std::process::Command::new("storescp")
                .args(["-aet", ae_title, "-od"])
                .arg(dir)
                .arg(port.to_string())
                .env("TCP_NODELAY", "1")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("DCMTK's storescp (tests/run installs it)");
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "storescp listens");
                std::thread::sleep(Duration::from_millis(10));
            }
            (Self(child), port)
        }
    }

    impl Drop for Storescp {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn job(id: i64, dir: &Path, target: &Target) -> Job {
        let sop = format!("2.25.{}", 1000 + id);
        let path = dir.join(format!("{id}.dcm"));
        let bytes = crate::testing::ct(&sop, 100, 100);
        std::fs::write(&path, &bytes).unwrap();
        Job {
            id,
            attempts: 0,
            stored: Stored {
                path,
                offset: 0,
                length: bytes.len() as u64,
            },
            sop_class_uid: crate::testing::CT.into(),
            sop_instance_uid: sop,
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            target: target.clone(),
        }
    }

    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A directory for the jobs' files, and a DCMTK `storescp` as PACS storing into the
    /// other directory, with its target.
    fn pacs() -> (tempfile::TempDir, tempfile::TempDir, Storescp, Target) {
        let stored = tempfile::tempdir().unwrap();
        let received = tempfile::tempdir().unwrap();
        let (scp, port) = Storescp::start("PACS", received.path());
        let target = Target {
            ae_title: "PACS".into(),
            host: "127.0.0.1".into(),
            port,
            tls: false,
        };
        (stored, received, scp, target)
    }

    /// A forward worker with `associations` lanes per destination taking `batch` jobs,
    /// retrying after `retry_base`; its outcomes, where jobs go to it, and its task.
    fn worker(
        associations: usize,
        batch: i64,
        retry_base: Duration,
    ) -> (
        Arc<Outcomes>,
        mpsc::Sender<Job>,
        tokio::task::JoinHandle<()>,
    ) {
        let config = Arc::new(ForwardConfig {
            calling_ae_title: "DUIKOU".into(),
            associations,
            batch,
            lease: Duration::from_secs(60),
            retry_base,
            retry_max: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
            max_pdu_length: 65536,
            tls: None,
            outbound: crate::outbound::Policy {
                allow: vec!["127.0.0.0/8".parse().unwrap()],
                ..Default::default()
            },
        });
        let queue = Arc::new(Outcomes::default());
        let (handoff, handed) = mpsc::channel(64);
        let worker = tokio::spawn(run(
            queue.clone(),
            config,
            Arc::new(tokio::sync::Notify::new()),
            handed,
        ));
        (queue, handoff, worker)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_destination_that_hangs_holds_up_its_own_jobs_only() {
        let (stored, received, _scp, working) = pacs();
        // Takes connections and never answers an association request.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hanging = Target {
            ae_title: "SILENT".into(),
            host: "127.0.0.1".into(),
            port: silent.local_addr().unwrap().port(),
            tls: false,
        };
        std::thread::spawn(move || {
            let held: Vec<_> = silent.incoming().take(8).collect();
            std::thread::sleep(Duration::from_secs(120));
            drop(held);
        });
        let (queue, handoff, worker) = worker(1, 2, Duration::from_secs(1));
        // More jobs for the silent destination than its lanes hold, then three for the
        // working one: those arrive although the first still wait.
        for id in 0..8 {
            handoff
                .send(job(id, stored.path(), &hanging))
                .await
                .unwrap();
        }
        for id in 100..103 {
            handoff
                .send(job(id, stored.path(), &working))
                .await
                .unwrap();
        }
        let count = || std::fs::read_dir(received.path()).unwrap().count();
        until("the working destination gets its jobs", || {
            (100..103).all(|id| queue.of(id) == Some(Attempt::Delivered))
        })
        .await;
        assert_eq!(count(), 3);
        assert!((0..8).all(|id| queue.of(id).is_none()), "still associating");

        worker.abort();
    }

    /// A destination gets as many associations at once as configured: each lane opens its
    /// own, and no more than the lanes. (Destinations that never answer hold each
    /// connection open, so that the connections counted are the lanes'.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_destination_gets_the_configured_number_of_associations_at_once() {
        let stored = tempfile::tempdir().unwrap();
        for associations in [1, 3] {
            let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let target = Target {
                ae_title: "SILENT".into(),
                host: "127.0.0.1".into(),
                port: silent.local_addr().unwrap().port(),
                tls: false,
            };
            let connected = Arc::new(AtomicUsize::new(0));
            let counting = connected.clone();
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for c in silent.incoming() {
                    held.push(c);
                    counting.fetch_add(1, Ordering::SeqCst);
                }
            });
            let (_queue, handoff, worker) = worker(associations, 2, Duration::from_secs(60));
            for id in 0..10 {
                handoff.send(job(id, stored.path(), &target)).await.unwrap();
            }
            until("every lane connects", || {
                connected.load(Ordering::SeqCst) >= associations
            })
            .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(connected.load(Ordering::SeqCst), associations);
            worker.abort();
        }
    }

    /// DCMTK's `storescp` takes one association at a time: a second lane's association
    /// waits until the first lane's ends. No job may wait with it: while one lane is
    /// delivering, every job goes through that lane, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_destination_taking_one_association_at_a_time_keeps_no_job_behind_it() {
        let (stored, _received, _scp, target) = pacs();
        let (queue, handoff, worker) = worker(2, 4, Duration::from_secs(60));
        let delivered = |id: i64| queue.of(id) == Some(Attempt::Delivered);
        // Two jobs a moment apart: the second lane asks to associate while the first
        // delivers; the first lane's association ends after a quiet [`IDLE`], and the
        // second lane's is accepted.
        handoff.send(job(1, stored.path(), &target)).await.unwrap();
        until("the first job", || delivered(1)).await;
        handoff.send(job(2, stored.path(), &target)).await.unwrap();
        until("the second job", || delivered(2)).await;
        tokio::time::sleep(IDLE + IDLE / 4).await;
        // Jobs keep coming for longer than IDLE: whichever lane holds the association
        // delivers them all, and none is held by the lane waiting to associate.
        for id in 10..40 {
            handoff.send(job(id, stored.path(), &target)).await.unwrap();
            tokio::time::sleep(IDLE / 20).await;
        }
        until("the last job", || delivered(39)).await;
        let behind: Vec<i64> = (10..39).filter(|&id| !delivered(id)).collect();
        assert!(behind.is_empty(), "jobs still waiting: {behind:?}");
        worker.abort();
    }

    #[test]
    fn framed_fragments_are_the_pdus_dicom_ul_would_write() {
        let fragments = Fragments {
            context: 3,
            max_pdv: 10,
        };
        let data: Vec<u8> = (0..35_u8).collect();
        for (length, last) in [(0, true), (1, true), (10, true), (11, false), (35, true)] {
            let mut headers = Vec::new();
            let ours: Vec<u8> = fragments
                .frame(&mut headers, &data[..length], last)
                .iter()
                .flat_map(|slice| slice.to_vec())
                .collect();
            // dicom-ul's encoding of the same fragments, PDU by PDU.
            let mut theirs = Vec::new();
            let chunks: Vec<&[u8]> = if length == 0 {
                vec![&[][..]]
            } else {
                data[..length].chunks(10).collect()
            };
            for (n, chunk) in chunks.iter().enumerate() {
                let pdu = Pdu::PData {
                    data: vec![PDataValue {
                        presentation_context_id: 3,
                        value_type: PDataValueType::Data,
                        is_last: last && n + 1 == chunks.len(),
                        data: chunk.to_vec(),
                    }],
                };
                dicom_ul::write_pdu(&mut theirs, &pdu).unwrap();
            }
            assert_eq!(ours, theirs, "{length} bytes, last: {last}");
        }
    }

    #[tokio::test]
    async fn vectored_writes_go_out_whole_however_the_stream_takes_them() {
        let fragments = Fragments {
            context: 1,
            max_pdv: 7,
        };
        let data: Vec<u8> = (0..=255_u8).cycle().take(5000).collect();
        let mut headers = Vec::new();
        let expected: Vec<u8> = fragments
            .frame(&mut headers, &data, true)
            .iter()
            .flat_map(|slice| slice.to_vec())
            .collect();
        // A pipe whose far end reads slowly takes the slices a few bytes at a time.
        let (mut near, mut far) = tokio::io::duplex(13);
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut far, &mut got)
                .await
                .unwrap();
            got
        });
        let mut slices = fragments.frame(&mut headers, &data, true);
        write_all_vectored(&mut near, &mut slices).await.unwrap();
        drop(near);
        assert_eq!(reading.await.unwrap(), expected);
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_limit() {
        let config = ForwardConfig {
            calling_ae_title: "DUIKOU".into(),
            associations: 2,
            batch: 10,
            lease: Duration::from_secs(30),
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            max_pdu_length: 65536,
            tls: None,
            outbound: crate::outbound::Policy::default(),
        };
        let delays: Vec<u64> = (0..7).map(|a| backoff(&config, a).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60]);
    }
}
