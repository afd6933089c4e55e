//! [`Store`] operations for the imaging relay (`sql/imaging.rs`).

use chrono::Utc;
use duikou_imaging::scp::InstanceRecord;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Store, StoreError, postgres, sqlite};

/// A DICOM node allowed to send to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct DicomNode {
    /// Node id.
    pub id: i64,
    /// Its institution.
    pub institution_id: i64,
    /// Calling AE title.
    pub ae_title: String,
    /// The address it calls from, or `*`.
    pub host: String,
}

impl Store {
    /// Registers a calling AE title for an institution.
    pub async fn add_dicom_node(
        &self,
        institution_id: i64,
        ae_title: &str,
        host: &str,
    ) -> Result<DicomNode, StoreError> {
        dispatch!(
            self,
            imaging::add_dicom_node(institution_id, ae_title, host, Utc::now())
        )
    }

    /// The registered nodes, of one institution or all.
    pub async fn dicom_nodes(
        &self,
        institution_id: Option<i64>,
    ) -> Result<Vec<DicomNode>, StoreError> {
        dispatch!(self, imaging::dicom_nodes(institution_id))
    }

    /// Whether an instance is stored.
    pub async fn instance_known(&self, sop_instance_uid: &str) -> Result<bool, StoreError> {
        dispatch!(self, imaging::instance_known(sop_instance_uid))
    }

    /// Indexes a stored instance; false when it was there already.
    pub async fn index_instance(&self, record: &InstanceRecord) -> Result<bool, StoreError> {
        dispatch!(self, imaging::index_instance(record, Utc::now()))
    }
}
