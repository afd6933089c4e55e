//! Finding what is held about one patient. Compiled once per backend (see
//! `store/mod.rs`).

use super::{Db, Pool};
use crate::store::StoreError;
use crate::store::patients::PatientInstance;

/// The ids of the requests whose content mentions `text`, taken literally.
pub async fn requests_mentioning(pool: &Pool, text: &str) -> Result<Vec<i64>, StoreError> {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Ok(sqlx::query_scalar::<Db, i64>(
        "select id from consult_request where content like $1 escape '\\' order by id",
    )
    .bind(format!("%{escaped}%"))
    .fetch_all(pool)
    .await?)
}

/// The indexed instances of patients born on `birth_date`.
pub async fn instances_born(
    pool: &Pool,
    birth_date: &str,
) -> Result<Vec<PatientInstance>, StoreError> {
    Ok(sqlx::query_as::<Db, PatientInstance>(
        "select study_instance_uid, series_instance_uid, sop_instance_uid, patient_id,
                patient_name, patient_birth_date, study_date, study_description, modality,
                institution_id
         from dicom_instance where patient_birth_date = $1
         order by study_instance_uid, series_instance_uid, instance_number, id",
    )
    .bind(birth_date)
    .fetch_all(pool)
    .await?)
}
