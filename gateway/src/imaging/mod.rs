//! The imaging relay wired to the gateway: the storage SCP answers to the AE titles
//! registered for institutions and indexes what it stores; every instance is queued, in
//! the same transaction, for the DICOM destination of the sending institution's
//! designated imaging supporter; the forward worker drains the queue. Who may see and
//! manage what of it is decided in [`access`]; [`setup`] keeps each institution's
//! destination and nodes, [`echo`] tests a destination, [`queue`] shows the forwards and
//! each reader's worklist.

pub mod access;
pub mod echo;
pub mod queue;
pub mod setup;

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::Duration;

use duikou_imaging::AeTitle;
use duikou_imaging::forward::{self, Attempt, ForwardConfig, Job, Queue, Target};
use duikou_imaging::scp::{self, Archive, Caller, Indexed, InstanceRecord, LastIndexed, ScpConfig};
use duikou_imaging::spool::Spool;
use tokio::sync::{Notify, mpsc};

use crate::config::ImagingConfig;
use crate::domain::Service;
use crate::registry::{supporter_chain, today_in_china};
use crate::startup::Prepared;
use crate::store::{ForwardOutcome, ForwardTarget, Indexing, NewForward, Store};

/// Where studies from `institution_id` go today: its designated imaging supporter's
/// destination, or why there is none.
pub async fn forward_target(store: &Store, institution_id: i64) -> NewForward {
    let chain = match supporter_chain(
        store,
        institution_id,
        Service::ImagingRead,
        today_in_china(),
    )
    .await
    {
        Ok(chain) => chain,
        Err(e) => {
            return NewForward {
                error: Some(format!("cannot look up the imaging supporter: {e}")),
                ..NewForward::default()
            };
        }
    };
    let Some(link) = chain.designated() else {
        return NewForward {
            error: Some("the sending institution has no designated imaging supporter".into()),
            ..NewForward::default()
        };
    };
    let supporter = link.institution_id;
    match store.destination(supporter).await {
        Ok(Some(d)) => NewForward {
            target: ForwardTarget {
                institution_id: Some(supporter),
                ae_title: d.ae_title.into(),
                host: d.host,
                port: d.port,
                tls: d.tls,
            },
            error: None,
        },
        Ok(None) => NewForward {
            target: ForwardTarget {
                institution_id: Some(supporter),
                ..ForwardTarget::default()
            },
            error: Some(format!("{} has no DICOM destination", link.name)),
        },
        Err(e) => NewForward {
            error: Some(format!("cannot read the destination: {e}")),
            ..NewForward::default()
        },
    }
}

/// The index, the registry and the queue, for the SCP.
pub struct StoreArchive {
    store: Store,
    spool: Spool,
    /// Where new instances' forwards go, claimed as they are queued.
    handoff: mpsc::Sender<Job>,
    /// How long such a claim holds.
    lease: Duration,
    /// Tells the forward worker to ask the queue (for what did not fit `handoff`).
    wake: Arc<Notify>,
}

/// How many claimed forwards of new instances may wait for the forward worker; beyond
/// them, new instances are queued as pending and claimed from the queue.
const HANDOFF: usize = 64;

impl StoreArchive {
    /// The archive over `store` and `spool`, which hands up to `handoff` claimed forwards
    /// (claimed for `lease`) to the forward worker through the returned receiver, and
    /// wakes it through the returned notify for the rest.
    pub fn new(
        store: Store,
        spool: Spool,
        handoff: usize,
        lease: Duration,
    ) -> (Self, mpsc::Receiver<Job>, Arc<Notify>) {
        let wake = Arc::new(Notify::new());
        let (handoff, handed) = mpsc::channel(handoff.max(1));
        let archive = Self {
            store,
            spool,
            handoff,
            lease,
            wake: wake.clone(),
        };
        (archive, handed, wake)
    }
}

/// Whether `institution` may add instances to `study`: a study nobody holds yet, or one
/// it sees (sent by it or forwarded to it). Another's study would otherwise take in
/// images of some other patient, shown to whoever reads it.
pub async fn may_add_to(
    store: &Store,
    institution: i64,
    study: &str,
) -> Result<bool, crate::store::StoreError> {
    Ok(!store.study_exists(study).await?
        || !store
            .visible_instances(institution, Some(study), None)
            .await?
            .is_empty())
}

/// Where one sender's instances go, and the studies it was found to add to (checked
/// once per association or STOW-RS request).
pub struct Route {
    /// The forward every instance gets.
    pub forward: NewForward,
    institution_id: i64,
    studies: std::sync::Mutex<HashMap<String, bool>>,
}

impl Route {
    /// The route of `institution_id`'s instances, each forwarded as `forward`.
    pub fn new(forward: NewForward, institution_id: i64) -> Self {
        Self {
            forward,
            institution_id,
            studies: std::sync::Mutex::default(),
        }
    }
}

impl StoreArchive {
    /// Whether the sender of `route` may add to `study` ([`may_add_to`]), remembered.
    async fn admits(&self, route: &Route, study: &str) -> Result<bool, String> {
        if let Some(&known) = lock_studies(&route.studies).get(study) {
            return Ok(known);
        }
        let allowed = may_add_to(&self.store, route.institution_id, study)
            .await
            .map_err(|e| e.to_string())?;
        lock_studies(&route.studies).insert(study.to_owned(), allowed);
        Ok(allowed)
    }
}

fn lock_studies<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Archive for StoreArchive {
    type Route = Route;

    async fn callers(&self) -> Result<HashMap<AeTitle, Caller>, String> {
        let nodes = self
            .store
            .dicom_nodes(None)
            .await
            .map_err(|e| e.to_string())?;
        let mut callers: HashMap<AeTitle, Caller> = HashMap::new();
        for n in nodes {
            let entry = callers.entry(n.ae_title).or_insert(Caller {
                institution_id: n.institution_id,
                hosts: Vec::new(),
            });
            entry.hosts.push(n.host);
        }
        Ok(callers)
    }

    async fn indexed_ends(&self) -> Result<HashMap<String, u64>, String> {
        let ends = self.store.indexed_ends().await.map_err(|e| e.to_string())?;
        Ok(ends
            .into_iter()
            .map(|(path, end)| (path, u64::try_from(end).unwrap_or(0)))
            .collect())
    }

    async fn last_indexed(&self) -> Result<Vec<LastIndexed>, String> {
        let last = self.store.last_indexed().await.map_err(|e| e.to_string())?;
        Ok(last
            .into_iter()
            .map(|(path, offset, length, sop_instance_uid)| LastIndexed {
                path,
                offset: u64::try_from(offset).unwrap_or(0),
                length: u64::try_from(length).unwrap_or(0),
                sop_instance_uid,
            })
            .collect())
    }

    async fn unindex(&self, sop_instance_uid: &str) -> Result<(), String> {
        self.store
            .unindex(sop_instance_uid)
            .await
            .map_err(|e| e.to_string())
    }

    async fn route(&self, institution_id: i64) -> Route {
        Route::new(
            forward_target(&self.store, institution_id).await,
            institution_id,
        )
    }

    async fn index(
        &self,
        record: impl std::future::Future<Output = Option<InstanceRecord>> + Send,
        route: &Route,
        sound: impl std::future::Future<Output = bool> + Send,
    ) -> Result<Option<Indexed>, String> {
        let (study_refused, route) = (std::sync::atomic::AtomicBool::new(false), route);
        let admitted = async {
            let record = record.await?;
            match self.admits(route, &record.study_instance_uid).await {
                Ok(true) => Some(record),
                Ok(false) => {
                    study_refused.store(true, std::sync::atomic::Ordering::Relaxed);
                    None
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot check the study of an instance");
                    None
                }
            }
        };
        let indexed = self.index_admitted(admitted, &route.forward, sound).await;
        if study_refused.load(std::sync::atomic::Ordering::Relaxed) {
            self.audit_refusal(route.institution_id, "a study another institution holds")
                .await;
            return Ok(Some(Indexed::HeldByOther));
        }
        indexed
    }
}

impl StoreArchive {
    /// An audit entry for an instance refused because of another institution's data:
    /// without its UIDs (the holder's study is not the sender's to learn of) or any
    /// patient data.
    async fn audit_refusal(&self, institution_id: i64, what: &str) {
        let event = crate::audit::Event::unauthenticated("dicom_instance", "store")
            .institution(institution_id)
            .denied()
            .detail(format!("refused: {what}"));
        if let Err(e) = event.record(&self.store).await {
            tracing::error!(error = %e, "cannot audit a refused instance");
        }
    }

    /// [`Archive::index`] of an instance whose study was admitted.
    async fn index_admitted(
        &self,
        record: impl std::future::Future<Output = Option<InstanceRecord>> + Send,
        route: &NewForward,
        sound: impl std::future::Future<Output = bool> + Send,
    ) -> Result<Option<Indexed>, String> {
        // A place among the jobs handed to the forward worker is taken first: with one, the
        // forward is claimed in the same transaction and handed over after the commit,
        // without a claim of its own; without one (the worker is behind), it is pending.
        let target = route
            .error
            .is_none()
            .then(|| job_target(&route.target))
            .flatten();
        let permit = if target.is_some() {
            self.handoff.try_reserve().ok()
        } else {
            None
        };
        let lease = permit.as_ref().map(|_| self.lease);
        let mut kept = None;
        let record = async {
            let record = record.await;
            kept.clone_from(&record);
            record
        };
        let indexed = self
            .store
            .index_instance(record, route, lease, sound)
            .await
            .map_err(|e| e.to_string())?;
        if let (Some(Indexing::HeldByOther), Some(r)) = (indexed, &kept) {
            self.audit_refusal(
                r.institution_id,
                &format!(
                    "a SOP Instance UID another institution holds, sent as {}",
                    r.calling_ae
                ),
            )
            .await;
        }
        Ok(indexed.map(|indexing| match (indexing, kept) {
            (Indexing::Duplicate, _) => Indexed::Duplicate,
            (Indexing::HeldByOther, _) => Indexed::HeldByOther,
            (Indexing::New { forward_job }, Some(r)) => {
                match (permit, target) {
                    (Some(permit), Some(target)) => permit.send(Job {
                        id: forward_job,
                        attempts: 0,
                        stored: self.spool.stored(&r.path, r.offset, r.size),
                        sop_class_uid: r.sop_class_uid,
                        sop_instance_uid: r.sop_instance_uid,
                        transfer_syntax: r.transfer_syntax,
                        target,
                    }),
                    (None, Some(_)) => self.wake.notify_one(),
                    _ => {}
                }
                Indexed::New
            }
            (Indexing::New { .. }, None) => Indexed::New,
        }))
    }
}

/// Where the forward worker sends to `t`, when it names a destination.
fn job_target(t: &ForwardTarget) -> Option<Target> {
    Some(Target {
        ae_title: AeTitle::parse(&t.ae_title).ok()?,
        host: t.host.clone(),
        port: u16::try_from(t.port).ok()?,
        tls: t.tls,
    })
}

/// The forward queue in the database.
pub struct StoreQueue {
    store: Store,
    spool: Spool,
}

impl Queue for StoreQueue {
    async fn claim(&self, limit: i64, lease: Duration) -> Result<Vec<Job>, String> {
        let claimed = self
            .store
            .claim_forwards(limit, lease)
            .await
            .map_err(|e| e.to_string())?;
        Ok(claimed
            .into_iter()
            .map(|c| Job {
                id: c.id,
                attempts: c.attempts,
                stored: self.spool.stored(&c.path, c.byte_offset, c.size),
                sop_class_uid: c.sop_class_uid,
                sop_instance_uid: c.sop_instance_uid,
                transfer_syntax: c.transfer_syntax,
                target: Target {
                    ae_title: c.ae_title,
                    host: c.host,
                    port: u16::try_from(c.port).unwrap_or(0),
                    tls: c.tls,
                },
            })
            .collect())
    }

    async fn record(&self, outcomes: &[(Job, Attempt, Duration)]) -> Result<(), String> {
        let now = chrono::Utc::now();
        let outcomes: Vec<ForwardOutcome> = outcomes
            .iter()
            .map(|(job, attempt, retry_in)| {
                let (error, retry) = match attempt {
                    Attempt::Delivered => (None, false),
                    Attempt::Retry(e) => (Some(e.clone()), true),
                    Attempt::Failed(e) => (Some(e.clone()), false),
                };
                ForwardOutcome {
                    id: job.id,
                    error,
                    retry,
                    next: now
                        + chrono::TimeDelta::from_std(*retry_in)
                            .unwrap_or(chrono::TimeDelta::seconds(60)),
                }
            })
            .collect();
        self.store
            .record_forwards(&outcomes)
            .await
            .map_err(|e| e.to_string())
    }
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading certificates from {}", path.display()))
}

fn roots(path: &Path) -> anyhow::Result<Arc<rustls::RootCertStore>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certificates(path)? {
        roots.add(c)?;
    }
    Ok(Arc::new(roots))
}

/// The TLS configuration of the DICOM-over-TLS port, with client certificates required
/// when `tls_client_ca` is set.
fn server_tls(c: &ImagingConfig) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    crate::tls::install_crypto_provider();
    let (Some(cert), Some(key)) = (&c.tls_cert, &c.tls_key) else {
        anyhow::bail!("imaging.tls_listen needs imaging.tls_cert and imaging.tls_key");
    };
    let chain = certificates(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let builder = rustls::ServerConfig::builder();
    let config = match &c.tls_client_ca {
        Some(ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder(roots(ca)?).build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    }
    .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// Whom forwarding trusts when a destination speaks TLS.
fn client_tls(c: &ImagingConfig) -> anyhow::Result<Option<Arc<rustls::ClientConfig>>> {
    crate::tls::install_crypto_provider();
    let Some(trust) = &c.tls_trust else {
        return Ok(None);
    };
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots(trust)?)
        .with_no_client_auth();
    Ok(Some(Arc::new(config)))
}

/// The relay's spool and index, shared by the storage SCP and STOW-RS: both keep
/// instances the same way, and each new one wakes the forward worker.
#[derive(Clone)]
pub struct Relay {
    /// Where instances are kept.
    pub spool: Spool,
    /// The index, the registry and the forward queue.
    pub archive: Arc<StoreArchive>,
    wake: Arc<Notify>,
    /// The forwards the archive hands over, for the forward worker once it starts.
    handed: Arc<std::sync::Mutex<Option<mpsc::Receiver<Job>>>>,
    /// How the relay reaches destinations: for the forward worker, and for a C-ECHO.
    pub forwarding: Arc<ForwardConfig>,
}

impl Relay {
    /// Opens the spool and indexes what a crash kept from the index (see
    /// [`scp::recover`]).
    pub async fn open(prepared: &Prepared) -> anyhow::Result<Self> {
        let root = prepared.config.imaging.spool(&prepared.config.data.dir);
        let spool = Spool::open(&root, prepared.config.imaging.spool_layout())
            .with_context(|| format!("opening the DICOM spool {}", root.display()))?;
        let (archive, handed, wake) = StoreArchive::new(
            prepared.store.clone(),
            spool.clone(),
            HANDOFF,
            Duration::from_secs(prepared.config.imaging.forward_lease_seconds.max(1)),
        );
        let archive = Arc::new(archive);
        let recovered = scp::recover(&spool, archive.as_ref())
            .await
            .map_err(|e| anyhow::anyhow!("recovering the DICOM spool {}: {e}", root.display()))?;
        if recovered > 0 {
            tracing::warn!(
                recovered,
                "instances stored before a crash were indexed now"
            );
        }
        Ok(Self {
            spool,
            archive,
            wake,
            handed: Arc::new(std::sync::Mutex::new(Some(handed))),
            forwarding: Arc::new(forward_config(&prepared.config)?),
        })
    }
}

/// How the relay reaches destinations, from the configuration.
fn forward_config(config: &crate::config::Config) -> anyhow::Result<ForwardConfig> {
    let c = &config.imaging;
    Ok(ForwardConfig {
        calling_ae_title: c.ae_title.clone(),
        associations: c.forward_associations.max(1),
        batch: c.forward_batch.max(1),
        lease: Duration::from_secs(c.forward_lease_seconds.max(1)),
        retry_base: Duration::from_millis(c.forward_retry_base_ms.max(1)),
        retry_max: Duration::from_secs(c.forward_retry_max_seconds.max(1)),
        timeout: Duration::from_secs(c.timeout_seconds),
        max_pdu_length: c.max_pdu_length,
        tls: client_tls(c)?,
        outbound: config.outbound_policy(),
    })
}

/// Starts the forward worker and, given `listener`, the storage SCP on it (and on
/// `tls_listener` over TLS); all run until aborted.
pub fn start(
    prepared: &Prepared,
    relay: &Relay,
    listener: Option<std::net::TcpListener>,
    tls_listener: Option<std::net::TcpListener>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let c = &prepared.config.imaging;
    let config = Arc::new(ScpConfig {
        ae_title: c.ae_title.clone(),
        max_pdu_length: c.max_pdu_length,
        max_instance_bytes: c.max_instance_bytes,
        timeout: Duration::from_secs(c.timeout_seconds),
    });
    let queue = Arc::new(StoreQueue {
        store: prepared.store.clone(),
        spool: relay.spool.clone(),
    });
    let mut tasks = Vec::new();
    if let Some(tls_listener) = tls_listener {
        let tls = server_tls(c)?;
        let tls_listener = tokio::net::TcpListener::from_std(tls_listener)?;
        tracing::info!(addr = %tls_listener.local_addr()?, "DICOM TLS listening");
        tasks.push(tokio::spawn(scp::serve(
            tls_listener,
            config.clone(),
            relay.spool.clone(),
            relay.archive.clone(),
            Some(tls),
        )));
    }
    if let Some(listener) = listener {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tracing::info!(addr = %listener.local_addr()?, ae_title = %c.ae_title, "DICOM listening");
        tasks.push(tokio::spawn(scp::serve(
            listener,
            config,
            relay.spool.clone(),
            relay.archive.clone(),
            None,
        )));
    }
    // Spool segments are prepared while no instance arrives (once per relay).
    tasks.push(tokio::spawn(relay.spool.clone().prepare()));
    // Started once per relay; a second start claims from the queue alone.
    let handed = relay
        .handed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
        .unwrap_or_else(|| mpsc::channel(1).1);
    tasks.push(tokio::spawn(forward::run(
        queue,
        relay.forwarding.clone(),
        relay.wake.clone(),
        handed,
    )));
    Ok(tasks)
}
