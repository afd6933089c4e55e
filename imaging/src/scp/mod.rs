//! The storage SCP: C-ECHO and C-STORE over DICOM associations (dicom-ul does the upper
//! layer; the DIMSE service layer is here). Each instance streams into the spool as its
//! PDUs arrive (see [`crate::spool`]); at its last fragment the record is synced while it
//! is parsed and checked against the command, then indexed, and only then does the
//! response say success. Anything else gets a failure status and leaves nothing behind.
//!
//! ## What an instance waits for
//!
//! The attributes the index needs are read once the first 64 KiB are in, while the pixel
//! data still arrives (`early`). At the last fragment four things run at once
//! (`sync_and_index`): the record's sync; the walk of the data set's structure
//! ([`crate::walk`], values skipped by seeking, not read back); the check against the
//! command; and the index, sent to the database as one command as soon as the walk has
//! found the data set sound. The answer waits for all of them. Should the sync fail, the
//! instance is taken out of the index again and the answer is a failure. Two copies of one
//! instance arriving at once are kept one after the other, so that the second is answered
//! as a duplicate only once the first is synced ([`Incoming::keeping`]).
//!
//! ## After a crash
//!
//! Because the index commits before the sync is done, it may name a record that a crash
//! of the machine then takes. That can only be the last record its segment has (one
//! writer at a time appends to a segment and answers before the next record), so at
//! start [`recover`] first checks the last record the index names in each segment and
//! takes one that is not whole out of the index, with its forward (it was never answered
//! with success); then it indexes every record beyond what the index names, so a crash
//! loses nothing that was answered.
//!
//! ## Layout
//!
//! - `association`: accepting an association: the ARTIM timer, the presentation contexts
//!   offered (storage SOP classes and [`TRANSFER_SYNTAXES`]), and access control by the
//!   registered callers' AE titles and hosts.
//! - `exchange`: the P-DATA exchange of an established association: PDUs read in place,
//!   command sets, the fragments of data sets handed to ingest, and the responses.
//! - `ingest`: the path from a C-STORE's bytes to a durable, indexed instance: the spool
//!   record begun, the sync and the index at the last fragment, [`keep`] for STOW-RS, and
//!   [`recover`] at start.
//! - `reading`: reading a spooled instance back: the walk of its structure, the attributes
//!   the index keeps (early or at the end), the full parse ([`inspect`], [`open`]).
//!
//! [`Incoming::keeping`]: crate::spool::Incoming::keeping

mod association;
mod exchange;
mod ingest;
mod reading;
#[cfg(test)]
mod tests;

pub use association::TRANSFER_SYNTAXES;
pub use exchange::MAX_COMMAND_BYTES;
pub use ingest::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION, keep, recover};
pub use reading::{inspect, open};

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::AeTitle;
use crate::spool::Spool;

/// How the SCP behaves.
#[derive(Debug, Clone)]
pub struct ScpConfig {
    /// The relay's own AE title; associations calling another are rejected.
    pub ae_title: AeTitle,
    /// Largest PDU accepted.
    pub max_pdu_length: u32,
    /// Largest instance accepted, in bytes; larger ones get "out of resources".
    pub max_instance_bytes: u64,
    /// How long a peer may stay silent within an association.
    pub timeout: Duration,
}

/// A registered caller: the institution whose modality or PACS it is, and the hosts it may
/// call from (`*` for any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The institution.
    pub institution_id: i64,
    /// Addresses it may connect from.
    pub hosts: Vec<String>,
}

/// What is indexed about each instance at ingest.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InstanceRecord {
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// Study Instance UID.
    pub study_instance_uid: String,
    /// Series Instance UID.
    pub series_instance_uid: String,
    /// Patient ID.
    pub patient_id: String,
    /// Patient's Name.
    pub patient_name: String,
    /// Patient's Birth Date (DA).
    pub patient_birth_date: String,
    /// Patient's Sex.
    pub patient_sex: String,
    /// Study Date (DA).
    pub study_date: String,
    /// Study Time (TM).
    pub study_time: String,
    /// Study Description.
    pub study_description: String,
    /// Accession Number.
    pub accession_number: String,
    /// Modality.
    pub modality: String,
    /// Series Number.
    pub series_number: Option<i32>,
    /// Instance Number.
    pub instance_number: Option<i32>,
    /// The transfer syntax it was received (and is stored) in.
    pub transfer_syntax: String,
    /// Size of its Part 10 bytes.
    pub size: i64,
    /// The segment holding it, relative to the spool.
    pub path: String,
    /// Where its bytes start in the segment.
    pub offset: i64,
    /// The calling AE title.
    pub calling_ae: String,
    /// The sending institution.
    pub institution_id: i64,
}

impl std::fmt::Debug for InstanceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Patient data never reaches logs.
        f.debug_struct("InstanceRecord")
            .field("sop_instance_uid", &self.sop_instance_uid)
            .field("sop_class_uid", &self.sop_class_uid)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Whether an instance was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexed {
    /// Stored and indexed now.
    New,
    /// The same SOP Instance UID was stored before, by the same sender's institution;
    /// this copy was dropped.
    Duplicate,
    /// Another institution holds an instance of this SOP Instance UID, or the study it
    /// belongs to: this copy was dropped, and the sender is refused (it may neither
    /// replace another's instance nor put images into another's study).
    HeldByOther,
}

/// The last instance the index names in a spool segment ([`Archive::last_indexed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastIndexed {
    /// The segment, relative to the spool.
    pub path: String,
    /// Where the instance's bytes start in it.
    pub offset: u64,
    /// How many there are.
    pub length: u64,
    /// Its SOP Instance UID.
    pub sop_instance_uid: String,
}

/// What the SCP needs from the gateway: who may call, where their instances go, and the
/// index.
pub trait Archive: Send + Sync + 'static {
    /// Where the instances of one sending institution go; decided once per association
    /// (or STOW-RS request) rather than for every instance.
    type Route: Send + Sync;
    /// The registered callers by AE title.
    fn callers(&self) -> impl Future<Output = Result<HashMap<AeTitle, Caller>, String>> + Send;
    /// The route of `institution_id`'s instances.
    fn route(&self, institution_id: i64) -> impl Future<Output = Self::Route> + Send;
    /// For each segment (relative to the spool) with indexed instances, where the last
    /// of them ends: the index names everything before.
    fn indexed_ends(&self) -> impl Future<Output = Result<HashMap<String, u64>, String>> + Send;
    /// For each segment (relative to the spool) with indexed instances, the last of them:
    /// its place and SOP Instance UID. Only it can have been indexed before its record was
    /// synced (see [`Archive::index`]).
    fn last_indexed(&self) -> impl Future<Output = Result<Vec<LastIndexed>, String>> + Send;
    /// Indexes the stored instance that `record` gives and queues it on `route`, in one
    /// transaction committed once `sound` says its data set is sound (if it says not,
    /// nothing is indexed and the answer is an error). The instance's spool record is
    /// synced meanwhile, and the caller answers only when both are done; should the sync
    /// fail, the caller takes the instance out again with [`Archive::unindex`]. The index
    /// may get ready (a connection, a transaction) while `record` is still being worked
    /// out; if it gives nothing, nothing is written and the answer is `None`. A duplicate
    /// may be answered before `sound`.
    fn index(
        &self,
        record: impl Future<Output = Option<InstanceRecord>> + Send,
        route: &Self::Route,
        sound: impl Future<Output = bool> + Send,
    ) -> impl Future<Output = Result<Option<Indexed>, String>> + Send;
    /// Takes the instance `sop_instance_uid` and its forwards out of the index, in one
    /// transaction: its spool record was not kept after all.
    fn unindex(&self, sop_instance_uid: &str) -> impl Future<Output = Result<(), String>> + Send;
}

/// Accepts associations on `listener` until the task is dropped; with `tls`, every
/// connection must open with a TLS handshake (DICOM over TLS, PS3.15 B.1).
pub async fn serve<A: Archive>(
    listener: TcpListener,
    config: Arc<ScpConfig>,
    spool: Spool,
    archive: Arc<A>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a DICOM connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // dicom-ul leaves Nagle on; without this every response waits for a delayed ACK.
        let _ = socket.set_nodelay(true);
        let (config, spool, archive, tls) =
            (config.clone(), spool.clone(), archive.clone(), tls.clone());
        tokio::spawn(async move {
            let outcome =
                association::accept(socket, peer.ip(), &config, &spool, archive.as_ref(), tls)
                    .await;
            if let Err(e) = outcome {
                tracing::info!(%peer, error = %e, "DICOM association ended");
            }
        });
    }
}
