//! Ingest: the path from a C-STORE's bytes to a durable, indexed instance. A spool record
//! is begun with the preamble and file meta the relay writes; the data fragments are
//! written to it as they arrive, and its attributes are read early once enough is in; at
//! the last fragment the record is sealed and synced while the data set is checked and
//! the instance indexed, and kept only if all of that succeeds ([`sync_and_index`]).
//! STOW-RS keeps its instances the same way ([`keep`]), and [`recover`] puts right at
//! start what a crash left between the spool and the index.

use std::collections::HashMap;
use std::future::Future;

use dicom_object::FileMetaTableBuilder;

use super::reading::{EARLY_AT, early, inspect, walk_file};
use super::{Archive, Indexed, InstanceRecord};
use crate::dimse::{Command, status};
use crate::sop_classes;
use crate::spool::{Incoming, Sender, Spool, Stored};

/// The implementation class UID written into the file meta of stored instances (a UUID
/// derived root, PS3.5 B.2).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.167531204611848736125914812046577425519";
/// The implementation version name.
pub const IMPLEMENTATION_VERSION: &str = "DUIKOU_01";

/// An instance being received on an association.
pub(super) struct Receiving {
    command: Command,
    context_id: u8,
    transfer_syntax: String,
    calling_ae: String,
    institution_id: i64,
    incoming: Option<Incoming>,
    failure: Option<u16>,
    /// The attributes read while the rest arrives (see [`early`]).
    early: Option<Early>,
}

impl Receiving {
    /// The presentation context its C-STORE came on, which the response goes back on.
    pub(super) fn context_id(&self) -> u8 {
        self.context_id
    }

    /// Its C-STORE command.
    pub(super) fn command(&self) -> &Command {
        &self.command
    }

    /// Writes the data fragment `fragment` to the instance's spool record, unless the
    /// instance has failed already; past `max_instance_bytes`, or refused by the disk, it
    /// fails with "out of resources". Once [`EARLY_AT`] bytes are in and more is to come
    /// (not `last`), its attributes start being read early.
    pub(super) fn write(&mut self, fragment: &[u8], last: bool, max_instance_bytes: u64) {
        if self.failure.is_some() {
            return;
        }
        let Some(incoming) = self.incoming.as_mut() else {
            return;
        };
        // Too large, or the disk refuses: out of resources.
        let too_large = incoming.written() + fragment.len() as u64 > max_instance_bytes;
        if too_large || incoming.write(fragment).is_err() {
            self.failure = Some(status::OUT_OF_RESOURCES);
        } else if self.early.is_none() && !last && incoming.written() >= EARLY_AT {
            self.early = read_early(incoming, &self.command, &self.transfer_syntax);
        }
    }

    /// Gives the instance up (cut off by an abort or a dropped connection): its record
    /// goes, and nothing is left behind.
    pub(super) async fn discard(self) {
        if let Some(incoming) = self.incoming {
            incoming.discard().await;
        }
    }
}

/// Attributes being read early, on the blocking pool.
struct Early(tokio::task::JoinHandle<Option<InstanceRecord>>);

impl Early {
    async fn get(self) -> Option<InstanceRecord> {
        self.0.await.ok().flatten()
    }
}

/// Starts the spool record of a C-STORE with the preamble and file meta. Whether the
/// instance is stored already is found when it is indexed.
pub(super) async fn begin(
    spool: &Spool,
    command: Command,
    context_id: u8,
    ts: &str,
    calling: &str,
    institution_id: i64,
) -> Receiving {
    let mut r = Receiving {
        command,
        context_id,
        transfer_syntax: ts.to_owned(),
        calling_ae: calling.to_owned(),
        institution_id,
        incoming: None,
        failure: None,
        early: None,
    };
    if !sop_classes::STORAGE.contains(&r.command.sop_class_uid.as_str()) {
        r.failure = Some(status::SOP_CLASS_NOT_SUPPORTED);
        return r;
    }
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(r.command.sop_class_uid.as_str())
        .media_storage_sop_instance_uid(r.command.sop_instance_uid.as_str())
        .transfer_syntax(ts)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION)
        .source_application_entity_title(calling)
        .build();
    let mut header = vec![0_u8; 128];
    header.extend_from_slice(b"DICM");
    let written = match meta {
        Ok(meta) => meta.write(&mut header).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if written.is_err() {
        r.failure = Some(status::CANNOT_UNDERSTAND);
        return r;
    }
    let sender = Sender {
        institution_id,
        calling_ae: calling.to_owned(),
    };
    match spool.begin(sender).await {
        Ok(mut incoming) => {
            if incoming.write(&header).is_err() {
                incoming.discard().await;
                r.failure = Some(status::OUT_OF_RESOURCES);
            } else {
                r.incoming = Some(incoming);
            }
        }
        Err(_) => r.failure = Some(status::OUT_OF_RESOURCES),
    }
    r
}

/// Finishes a C-STORE: sync while checking and indexing. Returns the status.
pub(super) async fn finish<A: Archive>(r: Receiving, archive: &A, route: &A::Route) -> u16 {
    let Some(mut incoming) = r.incoming else {
        return r.failure.unwrap_or(status::OUT_OF_RESOURCES);
    };
    if let Some(code) = r.failure {
        incoming.discard().await;
        return code;
    }
    if incoming.flush().is_err() {
        incoming.discard().await;
        return status::OUT_OF_RESOURCES;
    }
    // The data set is checked while the record is synced: both read what is written.
    // If its attributes were read early, only the walk is left, and the index rows are
    // written meanwhile.
    let stored = incoming.stored();
    let command = r.command.clone();
    let uid = r.command.sop_instance_uid.clone();
    let ts = r.transfer_syntax.clone();
    let early = match r.early {
        Some(early) => early.get().await,
        None => None,
    };
    let (calling_ae, institution_id) = (r.calling_ae, r.institution_id);
    let sender = move |mut record: InstanceRecord| {
        record.calling_ae = calling_ae;
        record.institution_id = institution_id;
        record
    };
    // Both read on the blocking pool once the sync has started (they are polled after the
    // record is sealed).
    if let Some(record) = early {
        let walked = async move {
            tokio::task::spawn_blocking(move || walk_file(&stored, &ts))
                .await
                .unwrap_or(Err(status::CANNOT_UNDERSTAND))
        };
        let inspected = std::future::ready(Ok(sender(record)));
        return sync_and_index(archive, route, incoming, &uid, inspected, walked).await;
    }
    let inspected = async move {
        let checked = tokio::task::spawn_blocking(move || {
            inspect(
                &stored,
                &command.sop_class_uid,
                &command.sop_instance_uid,
                &ts,
            )
        });
        let record = checked.await.unwrap_or(Err(status::CANNOT_UNDERSTAND))?;
        Ok(sender(record))
    };
    // The walk is part of the inspection.
    let walked = std::future::ready(Ok(()));
    sync_and_index(archive, route, incoming, &uid, inspected, walked).await
}

/// Starts reading an arriving instance's attributes early (see [`early`]), on the
/// blocking pool.
fn read_early(incoming: &mut Incoming, command: &Command, transfer_syntax: &str) -> Option<Early> {
    incoming.flush().ok()?;
    let so_far = incoming.stored();
    let (class, instance) = (
        command.sop_class_uid.clone(),
        command.sop_instance_uid.clone(),
    );
    let ts = transfer_syntax.to_owned();
    Some(Early(tokio::task::spawn_blocking(move || {
        early(&so_far, &class, &instance, &ts)
    })))
}

/// Seals the record of `incoming` and, while it is synced, indexes it (queued on
/// `route`) with what `inspected` finds, committing once `walked` has found the data set
/// sound. The answer waits for both: a new instance is kept if its record was synced, and
/// taken out of the index again if not. A duplicate (its SOP Instance UID is stored
/// already) is dropped and the answer is success; anything else fails, and the record
/// goes again. Returns the status.
///
/// The commit does not wait for the sync: on a 2-core machine that saved about an eighth
/// of the time `storescu` takes to send a series. So the index may name a record that a
/// crash of the machine then takes; such a record can only be the last its segment has
/// (one writer at a time appends to a segment, and answers before the next record), and
/// [`recover`] checks those at start.
async fn sync_and_index<A: Archive>(
    archive: &A,
    route: &A::Route,
    mut incoming: Incoming,
    sop_instance_uid: &str,
    inspected: impl Future<Output = Result<InstanceRecord, u16>> + Send,
    walked: impl Future<Output = Result<(), u16>> + Send,
) -> u16 {
    let syncing = match incoming.seal() {
        Ok(syncing) => syncing,
        Err(_) => {
            incoming.discard().await;
            return status::OUT_OF_RESOURCES;
        }
    };
    let size = i64::try_from(incoming.written()).unwrap_or(i64::MAX);
    let (path, offset) = incoming.place();
    // Another copy of this instance being kept is answered for first (its sync runs on).
    let _keeping = incoming.keeping(sop_instance_uid).await;
    // Four things at once: the sync; the walk; the check; the index, given the record the
    // check finds and committed once the walk is done (the gateway's store writes it all
    // in one command then).
    let syncing = async move { syncing.wait().await.is_ok() };
    let (tell_walked, sound) = tokio::sync::oneshot::channel();
    let walking = async move {
        let result = walked.await;
        let _ = tell_walked.send(result.is_ok());
        result
    };
    let (give, given) = tokio::sync::oneshot::channel();
    let checking = async move {
        let mut record = inspected.await?;
        (record.size, record.path, record.offset) = (size, path, offset);
        let _ = give.send(record);
        Ok::<(), u16>(())
    };
    let sound = async move { sound.await.unwrap_or(false) };
    let indexing = archive.index(async move { given.await.ok() }, route, sound);
    let (synced, walked, checked, indexed) = tokio::join!(syncing, walking, checking, indexing);
    let indexed = indexed.map_err(|e| tracing::error!(error = %e, "cannot index an instance"));
    match (synced, walked.and(checked), indexed) {
        (true, Ok(()), Ok(Some(Indexed::New))) => {
            incoming.keep();
            status::SUCCESS
        }
        // Indexed, but its record was not synced: out of the index again. A forward may
        // be reading it meanwhile, so its bytes stay as they are: dropped unfinished, the
        // record closes its segment to further records.
        (false, Ok(()), Ok(Some(Indexed::New))) => {
            if let Err(e) = archive.unindex(sop_instance_uid).await {
                // The start after the next crash takes it out ([`recover`]).
                tracing::error!(error = %e, "cannot take an unsynced instance out of the index");
            }
            drop(incoming);
            status::OUT_OF_RESOURCES
        }
        // Stored before: this copy is not needed, synced or not. (The duplicate is found
        // before the walk of this copy ends; the copy stored is the one answered for.)
        (_, Ok(()), Ok(Some(Indexed::Duplicate))) => {
            incoming.discard().await;
            status::SUCCESS
        }
        // Success would tell the sender it can read and forward what it sent, and it
        // cannot: the instance kept under this UID is another institution's.
        (_, Ok(()), Ok(Some(Indexed::HeldByOther))) => {
            incoming.discard().await;
            status::NOT_AUTHORIZED
        }
        (_, Err(code), _) => {
            incoming.discard().await;
            code
        }
        // The index failed (and committed nothing).
        _ => {
            incoming.discard().await;
            status::OUT_OF_RESOURCES
        }
    }
}

/// Keeps an inspected instance (STOW-RS): syncs and indexes it, queued on `route`.
/// Returns the status to answer with; on failure nothing is left behind. `record` names
/// the sender (`calling_ae`, `institution_id`); its size and place are filled in here. If
/// the instance is stored already, this copy is dropped and the answer is success.
pub async fn keep<A: Archive>(
    archive: &A,
    route: &A::Route,
    incoming: Incoming,
    record: InstanceRecord,
) -> u16 {
    let uid = record.sop_instance_uid.clone();
    let inspected = std::future::ready(Ok(record));
    // Inspected by the caller, the walk included.
    let walked = std::future::ready(Ok(()));
    sync_and_index(archive, route, incoming, &uid, inspected, walked).await
}

/// Takes out of the index the instances whose spool records a crash took (indexed while
/// their sync ran, never answered for); then indexes the records a crash left in the
/// spool beyond what the index names (synced, so perhaps answered with success, but not
/// indexed), and opens the spool's segments for appending. Run once at start, before any
/// association. Returns how many were indexed now.
pub async fn recover<A: Archive>(spool: &Spool, archive: &A) -> Result<usize, String> {
    // First what a crash took that the index names: the last record of a segment,
    // committed while its sync ran and never answered for.
    for last in archive.last_indexed().await? {
        let stored = Stored {
            path: spool.path(std::path::Path::new(&last.path)),
            offset: last.offset,
            length: last.length,
        };
        let held = tokio::task::spawn_blocking(move || Spool::holds(&stored))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("reading the spool: {e}"))?;
        if !held {
            tracing::warn!(segment = %last.path, offset = last.offset, "an indexed instance's spool record was not kept; taken out of the index");
            archive.unindex(&last.sop_instance_uid).await?;
        }
    }
    let ends = archive.indexed_ends().await?;
    let opened = spool.clone();
    let found = tokio::task::spawn_blocking(move || opened.recover(&ends))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("reading the spool: {e}"))?;
    let mut routes: HashMap<i64, A::Route> = HashMap::new();
    let mut indexed = 0;
    for f in found {
        let stored = f.stored.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let meta =
                crate::stow::read_meta(stored.open().map_err(|_| status::OUT_OF_RESOURCES)?)?;
            inspect(
                &stored,
                &meta.sop_class_uid,
                &meta.sop_instance_uid,
                &meta.transfer_syntax,
            )
        })
        .await
        .map_err(|e| e.to_string())?;
        // A record is synced only after it was checked like this; one that fails now
        // was damaged since, and is left out.
        let Ok(mut record) = checked else {
            tracing::warn!(segment = %f.relative, offset = f.stored.offset, "a spool record cannot be read; left out");
            continue;
        };
        record.calling_ae = f.sender.calling_ae.clone();
        record.institution_id = f.sender.institution_id;
        record.size = i64::try_from(f.stored.length).unwrap_or(i64::MAX);
        record.path = f.relative.clone();
        record.offset = i64::try_from(f.stored.offset).unwrap_or(i64::MAX);
        let route = match routes.entry(record.institution_id) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(new) => {
                new.insert(archive.route(record.institution_id).await)
            }
        };
        let outcome = archive
            .index(
                std::future::ready(Some(record)),
                route,
                std::future::ready(true),
            )
            .await?;
        if outcome == Some(Indexed::New) {
            indexed += 1;
        }
    }
    Ok(indexed)
}
