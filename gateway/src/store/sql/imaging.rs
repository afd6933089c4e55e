//! DICOM nodes and the index of stored instances. Compiled once per backend (see
//! `store/mod.rs`).

use chrono::{DateTime, Utc};
use duikou_imaging::scp::InstanceRecord;
use sqlx::Row as _;

use super::{Db, Pool};
use crate::store::{DicomNode, Indexing, NewForward, StoreError};

/// Registers a calling AE title.
pub async fn add_dicom_node(
    pool: &Pool,
    institution_id: i64,
    ae_title: &str,
    host: &str,
    description: &str,
    now: DateTime<Utc>,
) -> Result<DicomNode, StoreError> {
    let result = sqlx::query_as::<Db, DicomNode>(
        "insert into dicom_node (institution_id, ae_title, host, description, created_at)
         values ($1, $2, $3, $4, $5)
         returning id, institution_id, ae_title, host, description",
    )
    .bind(institution_id)
    .bind(ae_title)
    .bind(host)
    .bind(description)
    .bind(now)
    .fetch_one(pool)
    .await;
    match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::Conflict(format!("the AE title {ae_title}")))
        }
        other => Ok(other?),
    }
}

/// Changes the AE title, the calling host and the description of node `node` of
/// `institution_id`; `None` when the institution has no such node.
pub async fn change_dicom_node(
    pool: &Pool,
    institution_id: i64,
    node: i64,
    ae_title: &str,
    host: &str,
    description: &str,
) -> Result<Option<DicomNode>, StoreError> {
    sqlx::query_as::<Db, DicomNode>(
        "update dicom_node set ae_title = $3, host = $4, description = $5
         where id = $2 and institution_id = $1
         returning id, institution_id, ae_title, host, description",
    )
    .bind(institution_id)
    .bind(node)
    .bind(ae_title)
    .bind(host)
    .bind(description)
    .fetch_optional(pool)
    .await
    .map_err(|e| StoreError::unique(e, format!("the AE title {ae_title}")))
}

/// Removes node `node` of `institution_id`; false when the institution has no such node.
pub async fn remove_dicom_node(
    pool: &Pool,
    institution_id: i64,
    node: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query::<Db>("delete from dicom_node where id = $2 and institution_id = $1")
        .bind(institution_id)
        .bind(node)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The registered nodes, of one institution or all.
pub async fn dicom_nodes(
    pool: &Pool,
    institution_id: Option<i64>,
) -> Result<Vec<DicomNode>, StoreError> {
    Ok(sqlx::query_as::<Db, DicomNode>(
        "select id, institution_id, ae_title, host, description from dicom_node
         where ($1 is null or institution_id = $1) order by id",
    )
    .bind(institution_id)
    .fetch_all(pool)
    .await?)
}

/// For each spool segment with indexed instances, where the last of them ends.
pub async fn indexed_ends(pool: &Pool) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(sqlx::query_as::<Db, (String, i64)>(
        "select path, max(byte_offset + size) from dicom_instance
         where path like 'segments/%' group by path",
    )
    .fetch_all(pool)
    .await?)
}

/// For each spool segment with indexed instances, the last of them: its segment,
/// offset, size and SOP Instance UID.
pub async fn last_indexed(pool: &Pool) -> Result<Vec<(String, i64, i64, String)>, StoreError> {
    Ok(sqlx::query_as::<Db, (String, i64, i64, String)>(
        "select i.path, i.byte_offset, i.size, i.sop_instance_uid from dicom_instance i
         where i.path like 'segments/%'
           and i.byte_offset = (select max(l.byte_offset) from dicom_instance l
                                where l.path = i.path)
         order by i.path",
    )
    .fetch_all(pool)
    .await?)
}

/// Takes the instance `sop_instance_uid` and its forwards out of the index, in one
/// transaction (nothing else refers to an instance's row).
pub async fn unindex(pool: &Pool, sop_instance_uid: &str) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "delete from forward_job where instance_id in
            (select id from dicom_instance where sop_instance_uid = $1)",
    )
    .bind(sop_instance_uid)
    .execute(&mut *tx)
    .await?;
    sqlx::query("delete from dicom_instance where sop_instance_uid = $1")
        .bind(sop_instance_uid)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts an instance's index row, nothing for a SOP Instance UID stored already. Bound
/// by [`bind_instance`].
macro_rules! insert_instance {
    () => {
        "insert into dicom_instance (sop_instance_uid, sop_class_uid, study_instance_uid,
            series_instance_uid, patient_id, patient_name, patient_birth_date, patient_sex,
            study_date, study_time, study_description, accession_number, modality,
            series_number, instance_number, transfer_syntax, size, path, calling_ae,
            institution_id, received_at, byte_offset)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
            $18, $19, $20, $21, $22)
         on conflict (sop_instance_uid) do nothing"
    };
}

/// An instance's row and its forward in one command to the database, made by the
/// backend's `index_command!`. Returns the forward's id, no row for a duplicate.
const INDEX_COMMAND: &str = index_command!(
    insert_instance!(),
    "insert into forward_job (instance_id, source_institution_id,
        destination_institution_id, ae_title, host, port, tls, state, last_error,
        next_attempt_at, created_at)",
    "$23, $24, $25, $26, $27, $28, $29, $30, $31, $32"
);

type Query<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

/// Binds `r` to [`insert_instance`]'s parameters, the first 22 of `query`'s.
fn bind_instance<'q>(query: Query<'q>, r: &'q InstanceRecord, now: DateTime<Utc>) -> Query<'q> {
    query
        .bind(&r.sop_instance_uid)
        .bind(&r.sop_class_uid)
        .bind(&r.study_instance_uid)
        .bind(&r.series_instance_uid)
        .bind(&r.patient_id)
        .bind(&r.patient_name)
        .bind(&r.patient_birth_date)
        .bind(&r.patient_sex)
        .bind(&r.study_date)
        .bind(&r.study_time)
        .bind(&r.study_description)
        .bind(&r.accession_number)
        .bind(&r.modality)
        .bind(r.series_number)
        .bind(r.instance_number)
        .bind(&r.transfer_syntax)
        .bind(r.size)
        .bind(&r.path)
        .bind(&r.calling_ae)
        .bind(r.institution_id)
        .bind(now)
        .bind(r.offset)
}

/// Binds the forward of an instance from `institution_id` to [`INDEX_COMMAND`]'s
/// parameters 23 to 32. A forward with somewhere to go is pending, or, given a lease,
/// already being sent by this process (claimed at birth); one without is failed, for an
/// operator.
fn bind_forward<'q>(
    query: Query<'q>,
    institution_id: i64,
    forward: &'q NewForward,
    now: DateTime<Utc>,
    lease_until: Option<DateTime<Utc>>,
) -> Query<'q> {
    let (state, next) = match (&forward.error, lease_until) {
        (Some(_), _) => ("failed", now),
        (None, Some(until)) => ("sending", until),
        (None, None) => ("pending", now),
    };
    let t = &forward.target;
    query
        .bind(institution_id)
        .bind(t.institution_id)
        .bind(&t.ae_title)
        .bind(&t.host)
        .bind(t.port)
        .bind(t.tls)
        .bind(state)
        .bind(forward.error.as_deref())
        .bind(next)
        .bind(now)
}

/// Indexes the stored instance `record` gives and queues its forward, in one
/// transaction; [`Indexing::Duplicate`] or [`Indexing::HeldByOther`] when its SOP
/// Instance UID was there already (nothing is queued then), `None` when `record` gives nothing. Nothing is written unless `sound` says the
/// instance's data set is. This runs while the instance's spool record is being synced:
/// the relay takes the instance out again if the sync fails, and at start if a crash
/// took its record (`duikou_imaging::scp`). (On SQLite `pool` commits without a sync;
/// see `Store::Sqlite`.)
///
/// The answer waits for this and for the sync, for the longer of the two. So everything
/// goes to the database as one command, once `record` and `sound` are known: on SQLite
/// every statement is a round trip to the connection's own thread (two thread
/// switches), on PostgreSQL to the server, and the four of a transaction statement by
/// statement took longer than the sync.
pub async fn index_instance(
    pool: &Pool,
    record: impl std::future::Future<Output = Option<InstanceRecord>> + Send,
    forward: &NewForward,
    now: DateTime<Utc>,
    lease_until: Option<DateTime<Utc>>,
    sound: impl std::future::Future<Output = bool> + Send,
) -> Result<Option<Indexing>, StoreError> {
    let Some(r) = record.await else {
        return Ok(None);
    };
    if !sound.await {
        return Err(StoreError::Abandoned(
            "the instance's data set is not sound".into(),
        ));
    }
    let (pool, forward) = (pool.clone(), forward.clone());
    // In a task of its own: a caller that goes away (an association aborted) cannot stop
    // it between SQLite's `begin` and `commit`, which would leave the connection holding
    // the write lock.
    let indexing = tokio::spawn(async move {
        let mut connection = pool.acquire().await?;
        let query = bind_instance(sqlx::query(INDEX_COMMAND), &r, now);
        // All rows: on SQLite, a fetch that stops at the first row stops before `commit`.
        let rows = bind_forward(query, r.institution_id, &forward, now, lease_until)
            .fetch_all(&mut *connection)
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                // SQLite's transaction, begun, is ended here (PostgreSQL's single
                // statement ended its own); the connection is closed if that fails.
                if sqlx::query("rollback")
                    .execute(&mut *connection)
                    .await
                    .is_err()
                {
                    connection.close_on_drop();
                }
                return Err(e.into());
            }
        };
        match rows.as_slice() {
            // Nothing was written; the copy is dropped whether or not it was synced. It
            // was the sender's own again, or an instance another institution holds under
            // the same UID, which this sender may neither replace nor read.
            [] => {
                let holder: Option<i64> = sqlx::query_scalar(
                    "select institution_id from dicom_instance where sop_instance_uid = $1",
                )
                .bind(&r.sop_instance_uid)
                .fetch_optional(&mut *connection)
                .await?;
                match holder {
                    Some(holder) if holder == r.institution_id => Ok(Some(Indexing::Duplicate)),
                    Some(_) => Ok(Some(Indexing::HeldByOther)),
                    // Taken out of the index between the two: the sender tries again.
                    None => Err(StoreError::Abandoned(
                        "an instance left the index while a copy of it arrived".into(),
                    )),
                }
            }
            [job] => Ok(Some(Indexing::New {
                forward_job: job.try_get::<i64, _>(0)?,
            })),
            more => Err(StoreError::Abandoned(format!(
                "indexing an instance gave {} rows",
                more.len()
            ))),
        }
    });
    indexing
        .await
        .map_err(|e| StoreError::Abandoned(format!("indexing an instance: {e}")))?
}

/// Instances visible to `institution_id`: those it sent, and those forwarded to it;
/// optionally of one study and series.
pub async fn visible_instances(
    pool: &Pool,
    institution_id: i64,
    study: Option<&str>,
    series: Option<&str>,
) -> Result<Vec<crate::store::VisibleInstance>, StoreError> {
    Ok(sqlx::query_as::<Db, crate::store::VisibleInstance>(
        "select i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid, i.sop_class_uid,
                i.patient_name, i.patient_id, i.patient_birth_date, i.patient_sex, i.study_date,
                i.study_time, i.study_description, i.accession_number, i.modality, i.series_number,
                i.instance_number, i.transfer_syntax, i.path, i.byte_offset, i.size
         from dicom_instance i
         where (i.institution_id = $1 or exists (select 1 from forward_job f
                where f.instance_id = i.id and f.destination_institution_id = $1))
           and ($2 is null or i.study_instance_uid = $2)
           and ($3 is null or i.series_instance_uid = $3)
         order by i.study_instance_uid, i.series_instance_uid, i.instance_number, i.id",
    )
    .bind(institution_id)
    .bind(study)
    .bind(series)
    .fetch_all(pool)
    .await?)
}

/// Whether any instance of `study` is stored, visible or not.
pub async fn study_exists(pool: &Pool, study: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar::<Db, i64>(
        "select count(*) from dicom_instance where study_instance_uid = $1",
    )
    .bind(study)
    .fetch_one(pool)
    .await?
        > 0)
}

/// Instances forwarded to `institution_id`, for its worklist.
pub async fn forwarded_to(
    pool: &Pool,
    institution_id: i64,
) -> Result<Vec<crate::store::Forwarded>, StoreError> {
    Ok(sqlx::query_as::<Db, crate::store::Forwarded>(
        "select i.study_instance_uid, i.accession_number, i.modality, i.study_date,
                i.patient_name, f.source_institution_id, f.state, i.received_at
         from forward_job f join dicom_instance i on i.id = f.instance_id
         where f.destination_institution_id = $1
         order by i.received_at, i.id",
    )
    .bind(institution_id)
    .fetch_all(pool)
    .await?)
}
