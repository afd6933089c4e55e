//! [`Store`] operations for the imaging relay (`sql/imaging.rs`).

use chrono::{DateTime, Utc};
use duikou_imaging::AeTitle;
use duikou_imaging::dicomweb::Indexed;
use duikou_imaging::scp::InstanceRecord;

use super::{Store, StoreError, postgres, sqlite};
use crate::domain::named_enum;

/// A DICOM node allowed to send to the relay.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DicomNode {
    /// Node id.
    pub id: i64,
    /// Its institution.
    pub institution_id: i64,
    /// Calling AE title.
    #[sqlx(try_from = "String")]
    pub ae_title: AeTitle,
    /// The address it calls from, or `*`.
    pub host: String,
    /// What it is: "CT室 GE Revolution"; may be empty.
    pub description: String,
}

/// Where an institution receives the studies it reads (as a DICOM storage SCP).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ImagingDestination {
    /// The institution.
    pub institution_id: i64,
    /// Called AE title.
    #[sqlx(try_from = "String")]
    pub ae_title: AeTitle,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Over TLS.
    pub tls: bool,
}

/// Where one forward goes (a snapshot of the destination when it was queued).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardTarget {
    /// The destination institution, when there is one.
    pub institution_id: Option<i64>,
    /// Called AE title.
    pub ae_title: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
    /// TLS.
    pub tls: bool,
}

/// The forward queued with a new instance.
#[derive(Debug, Clone, Default)]
pub struct NewForward {
    /// Where to.
    pub target: ForwardTarget,
    /// Why it cannot go anywhere (then it is queued as failed, for an operator).
    pub error: Option<String>,
}

/// What indexing an instance did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexing {
    /// It was there already, sent by the same institution; nothing was written.
    Duplicate,
    /// Another institution holds an instance of this SOP Instance UID; nothing was
    /// written.
    HeldByOther,
    /// Indexed, with its forward queued as this job.
    New {
        /// The forward's queue id.
        forward_job: i64,
    },
}

/// A claimed forward with what sending needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedForward {
    /// Queue id.
    pub id: i64,
    /// Attempts so far.
    pub attempts: i32,
    /// The segment holding it, relative to the spool.
    pub path: String,
    /// Where its bytes start there.
    pub byte_offset: i64,
    /// How many there are.
    pub size: i64,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Stored transfer syntax.
    pub transfer_syntax: String,
    /// Called AE title.
    #[sqlx(try_from = "String")]
    pub ae_title: AeTitle,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
    /// TLS.
    pub tls: bool,
}

named_enum! {
    /// Where a forward stands in the queue.
    ForwardState {
        /// Waiting for the worker (a first try or a retry at its time).
        Pending = "pending",
        /// Claimed by a process, being sent under its lease.
        Sending = "sending",
        /// The destination answered success.
        Delivered = "delivered",
        /// Given up: the destination refused it, or there is nowhere to send it.
        Failed = "failed",
        /// Cancelled by an operator.
        Cancelled = "cancelled",
    }
}

/// A forward as its operators see it (no patient data).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ForwardView {
    /// Queue id.
    pub id: i64,
    /// The instance.
    pub sop_instance_uid: String,
    /// Its study.
    pub study_instance_uid: String,
    /// The sending institution.
    pub source_institution_id: i64,
    /// The receiving institution.
    pub destination_institution_id: Option<i64>,
    /// Called AE title.
    pub ae_title: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
    /// TLS.
    pub tls: bool,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub state: ForwardState,
    /// Attempts so far.
    pub attempts: i32,
    /// When it is due (while sending: when the claim runs out).
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Queued.
    pub created_at: DateTime<Utc>,
    /// Delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// How one forward attempt ended, to record.
#[derive(Debug, Clone)]
pub struct ForwardOutcome {
    /// The job.
    pub id: i64,
    /// None when delivered; else why not.
    pub error: Option<String>,
    /// Whether to try again (at `next`), or give up.
    pub retry: bool,
    /// When a retry is due.
    pub next: DateTime<Utc>,
}

/// Which forwards to list.
#[derive(Debug, Clone, Default)]
pub struct ForwardFilter {
    /// Sent by or to this institution.
    pub institution_id: Option<i64>,
    /// In this state.
    pub state: Option<ForwardState>,
    /// This one.
    pub id: Option<i64>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// An indexed instance with its file, for DICOMweb.
#[derive(Clone, Debug)]
pub struct VisibleInstance {
    /// What QIDO-RS matches and answers.
    pub indexed: Indexed,
    /// The segment holding it, relative to the spool.
    pub path: String,
    /// Where its bytes start there.
    pub byte_offset: i64,
    /// How many there are.
    pub size: i64,
}

impl<'r, R> sqlx::FromRow<'r, R> for VisibleInstance
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i32>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            indexed: Indexed {
                study_instance_uid: row.try_get("study_instance_uid")?,
                series_instance_uid: row.try_get("series_instance_uid")?,
                sop_instance_uid: row.try_get("sop_instance_uid")?,
                sop_class_uid: row.try_get("sop_class_uid")?,
                patient_name: row.try_get("patient_name")?,
                patient_id: row.try_get("patient_id")?,
                patient_birth_date: row.try_get("patient_birth_date")?,
                patient_sex: row.try_get("patient_sex")?,
                study_date: row.try_get("study_date")?,
                study_time: row.try_get("study_time")?,
                study_description: row.try_get("study_description")?,
                accession_number: row.try_get("accession_number")?,
                modality: row.try_get("modality")?,
                series_number: row.try_get("series_number")?,
                instance_number: row.try_get("instance_number")?,
                transfer_syntax: row.try_get("transfer_syntax")?,
            },
            path: row.try_get("path")?,
            byte_offset: row.try_get("byte_offset")?,
            size: row.try_get("size")?,
        })
    }
}

/// An instance forwarded to an institution, for its worklist.
#[derive(Clone, sqlx::FromRow)]
pub struct Forwarded {
    /// Study Instance UID.
    pub study_instance_uid: String,
    /// Accession Number.
    pub accession_number: String,
    /// Modality.
    pub modality: String,
    /// Study Date.
    pub study_date: String,
    /// Patient's Name.
    pub patient_name: String,
    /// The sending institution.
    pub source_institution_id: i64,
    /// The forward's state.
    #[sqlx(try_from = "String")]
    pub state: ForwardState,
    /// When the relay received it.
    pub received_at: DateTime<Utc>,
}

impl Store {
    /// Instances forwarded to an institution.
    pub async fn forwarded_to(&self, institution_id: i64) -> Result<Vec<Forwarded>, StoreError> {
        dispatch!(self, imaging::forwarded_to(institution_id))
    }

    /// Instances visible to an institution (sent by it, or forwarded to it).
    pub async fn visible_instances(
        &self,
        institution_id: i64,
        study: Option<&str>,
        series: Option<&str>,
    ) -> Result<Vec<VisibleInstance>, StoreError> {
        dispatch!(
            self,
            imaging::visible_instances(institution_id, study, series)
        )
    }

    /// Whether a study is stored at all.
    pub async fn study_exists(&self, study: &str) -> Result<bool, StoreError> {
        dispatch!(self, imaging::study_exists(study))
    }

    /// Sets an institution's imaging destination.
    pub async fn set_destination(&self, d: &ImagingDestination) -> Result<(), StoreError> {
        dispatch!(self, forwarding::set_destination(d, self.now()))
    }

    /// An institution's imaging destination.
    pub async fn destination(
        &self,
        institution_id: i64,
    ) -> Result<Option<ImagingDestination>, StoreError> {
        dispatch!(self, forwarding::destination(institution_id))
    }

    /// Claims due forwards for `lease`.
    pub async fn claim_forwards(
        &self,
        limit: i64,
        lease: std::time::Duration,
    ) -> Result<Vec<ClaimedForward>, StoreError> {
        let now = self.now();
        let lease = chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::seconds(30));
        // A claim lost in a crash only makes its jobs due again.
        dispatch_relaxed!(self, forwarding::claim(now, now + lease, limit))
    }

    /// Records the outcomes of attempts, in one transaction. (An outcome lost in a crash
    /// only makes its job due again after its lease: a re-send, never a loss.)
    pub async fn record_forwards(&self, outcomes: &[ForwardOutcome]) -> Result<(), StoreError> {
        dispatch_relaxed!(self, forwarding::record(outcomes, self.now()))
    }

    /// Lists forwards.
    pub async fn forwards(&self, filter: &ForwardFilter) -> Result<Vec<ForwardView>, StoreError> {
        dispatch!(self, forwarding::forwards(filter))
    }

    /// Makes a forward due now (to a new target when given); false when it cannot be.
    pub async fn retry_forward(
        &self,
        id: i64,
        target: Option<&ForwardTarget>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, forwarding::retry(id, target, self.now()))
    }

    /// Cancels a pending or failed forward; false when it cannot be.
    pub async fn cancel_forward(&self, id: i64) -> Result<bool, StoreError> {
        dispatch!(self, forwarding::cancel(id))
    }

    /// Registers a calling AE title for an institution.
    pub async fn add_dicom_node(
        &self,
        institution_id: i64,
        ae_title: &AeTitle,
        host: &str,
        description: &str,
    ) -> Result<DicomNode, StoreError> {
        dispatch!(
            self,
            imaging::add_dicom_node(
                institution_id,
                ae_title.as_str(),
                host,
                description,
                self.now()
            )
        )
    }

    /// Changes node `node` of `institution_id` to call as `ae_title` from `host`, described
    /// as `description`; `None` when the institution has no such node.
    pub async fn change_dicom_node(
        &self,
        institution_id: i64,
        node: i64,
        ae_title: &AeTitle,
        host: &str,
        description: &str,
    ) -> Result<Option<DicomNode>, StoreError> {
        dispatch!(
            self,
            imaging::change_dicom_node(institution_id, node, ae_title.as_str(), host, description)
        )
    }

    /// Removes node `node` of `institution_id`; false when the institution has no such
    /// node.
    pub async fn remove_dicom_node(
        &self,
        institution_id: i64,
        node: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, imaging::remove_dicom_node(institution_id, node))
    }

    /// The registered nodes, of one institution or all.
    pub async fn dicom_nodes(
        &self,
        institution_id: Option<i64>,
    ) -> Result<Vec<DicomNode>, StoreError> {
        dispatch!(self, imaging::dicom_nodes(institution_id))
    }

    /// For each spool segment with indexed instances, where the last of them ends.
    pub async fn indexed_ends(&self) -> Result<Vec<(String, i64)>, StoreError> {
        dispatch!(self, imaging::indexed_ends())
    }

    /// For each spool segment with indexed instances, the last of them: its segment,
    /// offset, size and SOP Instance UID.
    pub async fn last_indexed(&self) -> Result<Vec<(String, i64, i64, String)>, StoreError> {
        dispatch!(self, imaging::last_indexed())
    }

    /// Takes the instance `sop_instance_uid` and its forwards out of the index.
    pub async fn unindex(&self, sop_instance_uid: &str) -> Result<(), StoreError> {
        dispatch!(self, imaging::unindex(sop_instance_uid))
    }

    /// Indexes the stored instance `record` gives and queues its forward in one
    /// transaction, committed once `sound` says its data set is sound (given up if it
    /// says not), while its spool record is synced; `None` when `record` gave nothing.
    /// Given a `lease`, the forward is claimed for it at once (the caller hands it to the
    /// forward worker itself).
    pub async fn index_instance(
        &self,
        record: impl std::future::Future<Output = Option<InstanceRecord>> + Send,
        forward: &NewForward,
        lease: Option<std::time::Duration>,
        sound: impl std::future::Future<Output = bool> + Send,
    ) -> Result<Option<Indexing>, StoreError> {
        // SQLite commits these without a sync (see `Store::Sqlite`); PostgreSQL syncs
        // them: a database server that crashes while the gateway runs would otherwise
        // lose rows nobody restores until the gateway's next start.
        let now = self.now();
        let until = lease.map(|l| {
            now + chrono::TimeDelta::from_std(l).unwrap_or(chrono::TimeDelta::seconds(30))
        });
        match &self.db {
            super::Db::Sqlite { unsynced, .. } => {
                sqlite::imaging::index_instance(unsynced, record, forward, now, until, sound).await
            }
            super::Db::Postgres(pool) => {
                postgres::imaging::index_instance(pool, record, forward, now, until, sound).await
            }
        }
    }
}
