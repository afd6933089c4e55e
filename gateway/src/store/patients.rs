//! [`Store`] operations: finding what is held about one patient (`sql/patients.rs`), for
//! the patient's copy of their records.

use super::{Store, StoreError, postgres, sqlite};

/// An indexed instance of a patient's study, as the copy lists it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct PatientInstance {
    /// Study Instance UID.
    pub study_instance_uid: String,
    /// Series Instance UID.
    pub series_instance_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Patient ID, as the modality wrote it.
    pub patient_id: String,
    /// Patient's Name, as the modality wrote it.
    pub patient_name: String,
    /// Patient's Birth Date (`YYYYMMDD`).
    pub patient_birth_date: String,
    /// Study Date.
    pub study_date: String,
    /// Study Description.
    pub study_description: String,
    /// Modality.
    pub modality: String,
    /// The institution that sent it.
    pub institution_id: i64,
}

impl Store {
    /// The ids of the requests whose content mentions `text` (to be checked one by one).
    pub async fn requests_mentioning(&self, text: &str) -> Result<Vec<i64>, StoreError> {
        dispatch!(self, patients::requests_mentioning(text))
    }

    /// The indexed instances of patients born on `birth_date` (`YYYYMMDD`).
    pub async fn instances_born(
        &self,
        birth_date: &str,
    ) -> Result<Vec<PatientInstance>, StoreError> {
        dispatch!(self, patients::instances_born(birth_date))
    }
}
