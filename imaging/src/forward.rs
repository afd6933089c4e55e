//! Forwarding: the storage SCU that carries stored instances to the supporting hospital,
//! and the worker that drains the forward queue. The queue itself lives in the gateway's
//! database (behind [`Queue`]): each instance is pending, then sending under a lease, then
//! delivered; a failure is retried with exponential backoff, and a lease that runs out (a
//! crash, `kill -9`) makes the instance due again, so nothing is lost and a duplicate can
//! only be a re-send of the same instance.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dicom_ul::association::client::{AsyncClientAssociation, ClientAssociationOptions};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu, PresentationContextResultReason};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::dimse::{self, status};
use crate::spool::Stored;

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
}

/// The delay before retry number `attempts + 1`.
pub fn backoff(config: &ForwardConfig, attempts: i32) -> Duration {
    let factor = 2_u32.saturating_pow(u32::try_from(attempts.clamp(0, 20)).unwrap_or(20));
    config
        .retry_base
        .saturating_mul(factor)
        .min(config.retry_max)
}

/// Drains the queue until the task is dropped; `wake` is notified when something is
/// queued, so that forwarding starts while a study is still arriving.
pub async fn run<Q: Queue>(
    queue: Arc<Q>,
    config: Arc<ForwardConfig>,
    wake: Arc<tokio::sync::Notify>,
) {
    loop {
        let jobs = match queue.claim(config.batch, config.lease).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim forwards");
                Vec::new()
            }
        };
        if jobs.is_empty() {
            let _ = tokio::time::timeout(Duration::from_millis(500), wake.notified()).await;
            continue;
        }
        let mut by_target: BTreeMap<Target, Vec<Job>> = BTreeMap::new();
        for job in jobs {
            by_target.entry(job.target.clone()).or_default().push(job);
        }
        let mut running = tokio::task::JoinSet::new();
        for (target, jobs) in by_target {
            let per = jobs.len().div_ceil(config.associations.max(1));
            for chunk in jobs.chunks(per.max(1)) {
                let (queue, config, target, chunk) = (
                    queue.clone(),
                    config.clone(),
                    target.clone(),
                    chunk.to_vec(),
                );
                running.spawn(async move {
                    let results = send(&target, &chunk, &config).await;
                    let mut outcomes = Vec::with_capacity(chunk.len());
                    for (job, attempt) in chunk.into_iter().zip(results) {
                        if let Attempt::Retry(e) | Attempt::Failed(e) = &attempt {
                            tracing::info!(job = job.id, error = %e, "forward not delivered");
                        }
                        let delay = backoff(&config, job.attempts);
                        outcomes.push((job, attempt, delay));
                    }
                    // Unrecorded deliveries are sent again after the lease: a duplicate,
                    // never a loss.
                    if let Err(e) = queue.record(&outcomes).await {
                        tracing::error!(error = %e, "cannot record forwards");
                    }
                });
            }
        }
        while running.join_next().await.is_some() {}
    }
}

/// Sends `jobs` to `target` on one association; one outcome per job, in order.
pub async fn send(target: &Target, jobs: &[Job], config: &ForwardConfig) -> Vec<Attempt> {
    let mut options = ClientAssociationOptions::new()
        .calling_ae_title(config.calling_ae_title.as_str())
        .called_ae_title(target.ae_title.as_str())
        .max_pdu_length(config.max_pdu_length)
        .connection_timeout(config.timeout)
        .read_timeout(config.timeout)
        .write_timeout(config.timeout);
    let mut contexts: Vec<(String, String)> = Vec::new();
    for job in jobs {
        let pair = (job.sop_class_uid.clone(), job.transfer_syntax.clone());
        if !contexts.contains(&pair) {
            contexts.push(pair);
        }
    }
    for (class, ts) in &contexts {
        options = options.with_presentation_context(class.as_str(), vec![ts.as_str()]);
    }
    let address = format!("{}:{}", target.host, target.port);
    let refused = |e: &dicom_ul::association::Error| {
        if matches!(
            e,
            dicom_ul::association::Error::NoAcceptedPresentationContexts { .. }
        ) {
            // Retrying cannot help: the destination takes none of these as stored.
            return jobs
                .iter()
                .map(|job| {
                    Attempt::Failed(format!(
                        "{} accepts neither the SOP class {} nor it in the transfer syntax {}",
                        target.ae_title, job.sop_class_uid, job.transfer_syntax
                    ))
                })
                .collect();
        }
        let why = format!(
            "cannot associate with {} at {address}: {e}",
            target.ae_title
        );
        jobs.iter().map(|_| Attempt::Retry(why.clone())).collect()
    };
    if !target.tls {
        return match options.establish_async(address.as_str()).await {
            Ok(mut a) => {
                let _ = a.inner_stream().set_nodelay(true);
                exchange(a, target, jobs).await
            }
            Err(e) => refused(&e),
        };
    }
    let Some(tls) = config.tls.clone() else {
        return jobs
            .iter()
            .map(|_| {
                Attempt::Retry(
                    "the destination speaks TLS and no certificate authority is configured to trust"
                        .into(),
                )
            })
            .collect();
    };
    match options
        .tls_config(tls)
        .server_name(&target.host)
        .establish_tls_async(address.as_str())
        .await
    {
        Ok(mut a) => {
            let _ = a.inner_stream().get_mut().0.set_nodelay(true);
            exchange(a, target, jobs).await
        }
        Err(e) => refused(&e),
    }
}

/// The C-STOREs of `jobs` on an established association, plain or over TLS.
async fn exchange<S>(
    mut association: AsyncClientAssociation<S>,
    target: &Target,
    jobs: &[Job],
) -> Vec<Attempt>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let max_pdv = (association.acceptor_max_pdu_length().max(4096) as usize).saturating_sub(6);
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut broken: Option<String> = None;
    for (n, job) in jobs.iter().enumerate() {
        if let Some(why) = &broken {
            outcomes.push(Attempt::Retry(why.clone()));
            continue;
        }
        let accepted = association.presentation_contexts().iter().find(|pc| {
            pc.reason == PresentationContextResultReason::Acceptance
                && pc.abstract_syntax.trim_end_matches('\0') == job.sop_class_uid
                && pc.transfer_syntax.trim_end_matches('\0') == job.transfer_syntax
        });
        let Some(context) = accepted.map(|pc| pc.id) else {
            outcomes.push(Attempt::Failed(format!(
                "{} accepts neither the SOP class {} nor it in the transfer syntax {}",
                target.ae_title, job.sop_class_uid, job.transfer_syntax
            )));
            continue;
        };
        let message_id = u16::try_from(n % 65_000 + 1).unwrap_or(1);
        match store_one(&mut association, context, message_id, job, max_pdv).await {
            Ok(status::SUCCESS) | Ok(0xB000..=0xBFFF) => outcomes.push(Attempt::Delivered),
            Ok(code) => outcomes.push(Attempt::Retry(format!(
                "{} answered status {code:#06x}",
                target.ae_title
            ))),
            Err(e) => {
                broken = Some(e.clone());
                outcomes.push(Attempt::Retry(e));
            }
        }
    }
    if broken.is_none() {
        let _ = association.release().await;
    }
    outcomes
}

/// One C-STORE: the command, then the stored data set in fragments; returns the status.
async fn store_one<S>(
    association: &mut AsyncClientAssociation<S>,
    context: u8,
    message_id: u16,
    job: &Job,
    max_pdv: usize,
) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let mut file = tokio::fs::File::open(&job.stored.path)
        .await
        .map_err(|e| format!("cannot read the stored instance: {e}"))?;
    file.seek(std::io::SeekFrom::Start(job.stored.offset))
        .await
        .map_err(|e| format!("cannot read the stored instance: {e}"))?;
    let mut file = file.take(job.stored.length);
    let mut head = [0_u8; 144];
    file.read_exact(&mut head)
        .await
        .map_err(|e| format!("cannot read the stored instance: {e}"))?;
    let meta = u32::from_le_bytes([head[140], head[141], head[142], head[143]]);
    let mut skip = vec![0_u8; meta as usize];
    file.read_exact(&mut skip)
        .await
        .map_err(|e| format!("cannot read the stored instance: {e}"))?;
    let command = dimse::store_request(message_id, &job.sop_class_uid, &job.sop_instance_uid);
    let pdv = |value_type, is_last, data| Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: context,
            value_type,
            is_last,
            data,
        }],
    };
    association
        .send(&pdv(PDataValueType::Command, true, command))
        .await
        .map_err(|e| format!("the association broke: {e}"))?;
    let mut chunk = vec![0_u8; max_pdv];
    let mut pending: Option<Vec<u8>> = None;
    loop {
        let mut filled = 0;
        while filled < chunk.len() {
            let n = file
                .read(&mut chunk[filled..])
                .await
                .map_err(|e| format!("cannot read the stored instance: {e}"))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if let Some(previous) = pending.take() {
            let last = filled == 0;
            association
                .send(&pdv(PDataValueType::Data, last, previous))
                .await
                .map_err(|e| format!("the association broke: {e}"))?;
        }
        if filled == 0 {
            break;
        }
        pending = Some(chunk[..filled].to_vec());
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
        };
        let delays: Vec<u64> = (0..7).map(|a| backoff(&config, a).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60]);
    }
}
