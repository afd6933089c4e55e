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

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, OpenFileOptions};
use dicom_ul::association::Association as _;
use dicom_ul::association::server::{
    AccessControl, AsyncServerAssociation, ServerAssociationOptions,
};
use dicom_ul::pdu::{
    AssociationRJServiceUserReason, PDataValue, PDataValueType, Pdu, UserIdentity,
};
use tokio::net::{TcpListener, TcpStream};

use crate::dimse::{self, Command, status};
use crate::sop_classes;
use crate::spool::{Incoming, Sender, Spool, Stored};
use crate::walk::{PART10_HEAD, meta_length};

/// The implementation class UID written into the file meta of stored instances (a UUID
/// derived root, PS3.5 B.2).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.167531204611848736125914812046577425519";
/// The implementation version name.
pub const IMPLEMENTATION_VERSION: &str = "DUIKOU_01";

/// Transfer syntaxes accepted for storage: uncompressed, deflate, and the compressed ones
/// stored as they arrive (the relay never decodes pixel data).
pub const TRANSFER_SYNTAXES: &[&str] = &[
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
    uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    // Explicit VR Big Endian: retired from the standard, still sent by old modalities.
    "1.2.840.10008.1.2.2",
    uids::JPEG_BASELINE8_BIT,
    uids::JPEG_EXTENDED12_BIT,
    uids::JPEG_LOSSLESS,
    uids::JPEG_LOSSLESS_SV1,
    uids::JPEGLS_LOSSLESS,
    uids::JPEGLS_NEAR_LOSSLESS,
    uids::JPEG2000_LOSSLESS,
    uids::JPEG2000,
    uids::RLE_LOSSLESS,
];

/// How the SCP behaves.
#[derive(Debug, Clone)]
pub struct ScpConfig {
    /// The relay's own AE title; associations calling another are rejected.
    pub ae_title: String,
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
    fn callers(&self) -> impl Future<Output = Result<HashMap<String, Caller>, String>> + Send;
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

/// Admits registered callers from their hosts, calling this relay's AE title.
struct Registered {
    callers: HashMap<String, Caller>,
    peer: IpAddr,
}

impl AccessControl for Registered {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title.trim() {
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        let peer = self.peer.to_string();
        match self.callers.get(calling_ae_title.trim()) {
            Some(c) if c.hosts.iter().any(|h| h == "*" || *h == peer) => Ok(()),
            _ => Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized),
        }
    }
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
                association(socket, peer.ip(), &config, &spool, archive.as_ref(), tls).await;
            if let Err(e) = outcome {
                tracing::info!(%peer, error = %e, "DICOM association ended");
            }
        });
    }
}

/// An instance being received on an association.
struct Receiving {
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

/// Attributes being read early, on the blocking pool.
struct Early(tokio::task::JoinHandle<Option<InstanceRecord>>);

impl Early {
    async fn get(self) -> Option<InstanceRecord> {
        self.0.await.ok().flatten()
    }
}

async fn association<A: Archive>(
    socket: TcpStream,
    peer: IpAddr,
    config: &ScpConfig,
    spool: &Spool,
    archive: &A,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), String> {
    let callers = archive.callers().await?;
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(Registered {
            callers: callers.clone(),
            peer,
        })
        .ae_title(config.ae_title.clone())
        .max_pdu_length(config.max_pdu_length)
        .strict(true)
        .read_timeout(config.timeout)
        .write_timeout(config.timeout)
        .with_abstract_syntax(uids::VERIFICATION);
    for class in sop_classes::STORAGE {
        options = options.with_abstract_syntax(*class);
    }
    for ts in TRANSFER_SYNTAXES {
        options = options.with_transfer_syntax(*ts);
    }
    // The ARTIM timer (PS3.8 §9.1.5): the association request, TLS handshake included,
    // is complete within the timeout, whatever the peer sends meanwhile, or the
    // connection is closed.
    let artim = |what| format!("no association within {:?}: {what}", config.timeout);
    match tls {
        None => {
            let association = tokio::time::timeout(config.timeout, options.establish_async(socket))
                .await
                .map_err(|_| artim("the request was not complete"))?
                .map_err(|e| format!("association refused: {e}"))?;
            exchange(association, &callers, config, spool, archive).await
        }
        Some(tls) => {
            let options = options.tls_config(tls);
            let association =
                tokio::time::timeout(config.timeout, options.establish_tls_async(socket))
                    .await
                    .map_err(|_| artim("the handshake or the request was not complete"))?
                    .map_err(|e| format!("association refused: {e}"))?;
            exchange(association, &callers, config, spool, archive).await
        }
    }
}

/// The longest command set read (PS3.7 §6.3.1): a C-STORE-RQ takes about 200 bytes.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;

/// The messages of an established association, plain or over TLS.
async fn exchange<S, A: Archive>(
    mut association: AsyncServerAssociation<S>,
    callers: &HashMap<String, Caller>,
    config: &ScpConfig,
    spool: &Spool,
    archive: &A,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let calling = association.peer_ae_title().trim().to_owned();
    let institution_id = callers
        .get(&calling)
        .map(|c| c.institution_id)
        .ok_or("the caller is not registered")?;
    let route = archive.route(institution_id).await;
    tracing::info!(calling, "DICOM association accepted");
    let mut command_bytes = Vec::new();
    let mut current: Option<Receiving> = None;
    let outcome = loop {
        let pdu = match receive(&mut association, config).await {
            Ok(pdu) => pdu,
            Err(e) => {
                // A PDU larger than negotiated, a malformed one, a timeout: abort.
                if let Some(r) = current.take() {
                    if let Some(incoming) = r.incoming {
                        incoming.discard().await;
                    }
                }
                let _ = association.abort().await;
                return Err(format!("receive failed: {e}"));
            }
        };
        match pdu {
            Received::PData(bytes) => {
                let Some(data) = fragments(&bytes) else {
                    let _ = association.abort().await;
                    return Err("a malformed P-DATA-TF PDU".into());
                };
                for pdv in data {
                    match pdv.value_type {
                        PDataValueType::Command => {
                            // A command set is a few hundred bytes; fragments beyond the
                            // bound are an abuse, not a command.
                            if command_bytes.len() + pdv.data.len() > MAX_COMMAND_BYTES {
                                let _ = association.abort().await;
                                return Err(format!(
                                    "a command set longer than {MAX_COMMAND_BYTES} bytes"
                                ));
                            }
                            command_bytes.extend_from_slice(pdv.data);
                            if !pdv.is_last {
                                continue;
                            }
                            let bytes = std::mem::take(&mut command_bytes);
                            let command = match dimse::parse_command(&bytes) {
                                Ok(c) => c,
                                Err(e) => {
                                    let _ = association.abort().await;
                                    return Err(e);
                                }
                            };
                            let reply = match command.field {
                                dimse::C_ECHO_RQ => Some(dimse::response(
                                    dimse::C_ECHO_RSP,
                                    &command,
                                    status::SUCCESS,
                                )),
                                dimse::C_STORE_RQ if command.has_data_set => {
                                    let ts = association
                                        .presentation_contexts()
                                        .iter()
                                        .find(|pc| pc.id == pdv.presentation_context_id)
                                        .map(|pc| pc.transfer_syntax.clone())
                                        .unwrap_or_default();
                                    current = Some(
                                        begin(
                                            spool,
                                            command,
                                            pdv.presentation_context_id,
                                            &ts,
                                            &calling,
                                            institution_id,
                                        )
                                        .await,
                                    );
                                    None
                                }
                                _ => Some(dimse::response(
                                    command.field | 0x8000,
                                    &command,
                                    status::UNRECOGNIZED_OPERATION,
                                )),
                            };
                            if let Some(reply) = reply {
                                send(&mut association, pdv.presentation_context_id, reply).await?;
                            }
                        }
                        PDataValueType::Data => {
                            let Some(r) = current.as_mut() else {
                                let _ = association.abort().await;
                                return Err("data without a C-STORE command".into());
                            };
                            if r.failure.is_none() {
                                if let Some(incoming) = r.incoming.as_mut() {
                                    // Too large, or the disk refuses: out of resources.
                                    let too_large = incoming.written() + pdv.data.len() as u64
                                        > config.max_instance_bytes;
                                    if too_large || incoming.write(pdv.data).is_err() {
                                        r.failure = Some(status::OUT_OF_RESOURCES);
                                    } else if r.early.is_none()
                                        && !pdv.is_last
                                        && incoming.written() >= EARLY_AT
                                    {
                                        r.early =
                                            read_early(incoming, &r.command, &r.transfer_syntax);
                                    }
                                }
                            }
                            if pdv.is_last {
                                let r = current.take().expect("present");
                                let context = r.context_id;
                                let command = r.command.clone();
                                let code = finish(r, archive, &route).await;
                                let reply = dimse::response(dimse::C_STORE_RSP, &command, code);
                                send(&mut association, context, reply).await?;
                            }
                        }
                    }
                }
            }
            Received::Other(Pdu::ReleaseRQ) => {
                let _ = association.send(&Pdu::ReleaseRP).await;
                break Ok(());
            }
            Received::Other(Pdu::AbortRQ { .. }) => break Err("the caller aborted".into()),
            Received::Other(other) => {
                let _ = association.abort().await;
                return Err(format!("unexpected {}", other.short_description()));
            }
        }
    };
    // An instance cut off by an abort or a dropped connection leaves nothing.
    if let Some(r) = current.take() {
        if let Some(incoming) = r.incoming {
            incoming.discard().await;
        }
    }
    outcome
}

/// A PDU from the caller.
enum Received {
    /// A P-DATA-TF PDU, whole, split off the association's read buffer (its values are
    /// not copied out as dicom-ul would).
    PData(bytes::BytesMut),
    /// Any other PDU, as dicom-ul reads it.
    Other(Pdu),
}

/// Receives the next PDU: P-DATA-TF (by far the most) straight from the association's
/// read buffer, anything else through dicom-ul. A PDU longer than the negotiated maximum
/// is an error, as in dicom-ul.
async fn receive<S>(
    association: &mut AsyncServerAssociation<S>,
    config: &ScpConfig,
) -> Result<Received, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    use bytes::BufMut as _;
    use dicom_ul::association::AsyncAssociation as _;
    use tokio::io::AsyncReadExt as _;
    loop {
        let (stream, buffer) = association.get_mut();
        // Reads stop at the end of the PDU, so that nothing of the next is left over to
        // be copied when room is made for it. (Six bytes first: its header.)
        let mut wanted = 6 - buffer.len().min(6);
        if buffer.len() >= 6 {
            if buffer[0] != 0x04 {
                return association
                    .receive()
                    .await
                    .map(Received::Other)
                    .map_err(|e| e.to_string());
            }
            let length = u32::from_be_bytes([buffer[2], buffer[3], buffer[4], buffer[5]]);
            if length > config.max_pdu_length {
                return Err(format!(
                    "a PDU of {length} bytes, more than the {} negotiated",
                    config.max_pdu_length
                ));
            }
            let whole = 6 + length as usize;
            if buffer.len() >= whole {
                return Ok(Received::PData(buffer.split_to(whole)));
            }
            wanted = whole - buffer.len();
        }
        buffer.reserve(wanted);
        let read = tokio::time::timeout(config.timeout, stream.read_buf(&mut buffer.limit(wanted)))
            .await
            .map_err(|_| "the caller went silent".to_owned())?
            .map_err(|e| format!("reading a PDU: {e}"))?;
        if read == 0 {
            return Err("the connection was closed".into());
        }
    }
}

/// One presentation data value of a P-DATA-TF PDU, borrowed from it.
struct Fragment<'a> {
    presentation_context_id: u8,
    value_type: PDataValueType,
    is_last: bool,
    data: &'a [u8],
}

/// The presentation data values of a whole P-DATA-TF PDU (PS3.8 9.3.5), or `None` if
/// its items do not fill it exactly.
fn fragments(pdu: &[u8]) -> Option<Vec<Fragment<'_>>> {
    let mut items = Vec::new();
    let mut rest = pdu.get(6..)?;
    while !rest.is_empty() {
        let length = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let item = rest.get(4..4 + length)?;
        let (&[context, control], data) = item.split_first_chunk::<2>()?;
        items.push(Fragment {
            presentation_context_id: context,
            value_type: if control & 0x01 == 0x01 {
                PDataValueType::Command
            } else {
                PDataValueType::Data
            },
            is_last: control & 0x02 == 0x02,
            data,
        });
        rest = &rest[4 + length..];
    }
    Some(items)
}

async fn send<S>(
    association: &mut AsyncServerAssociation<S>,
    context: u8,
    command: Vec<u8>,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    association
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command,
            }],
        })
        .await
        .map_err(|e| format!("cannot send a response: {e}"))
}

/// Starts the spool record of a C-STORE with the preamble and file meta. Whether the
/// instance is stored already is found when it is indexed.
async fn begin(
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

// `get`, not `element`: dicom-object captures a backtrace for every missing attribute
// `element` is asked for, which cost the relay about 4% of its CPU at ingest.
fn attr(obj: &dicom_object::DefaultDicomObject, tag: dicom_core::Tag) -> String {
    obj.get(tag)
        .and_then(|e| {
            if e.vr() == dicom_core::VR::UN {
                // Some converters write standard attributes as UN; their bytes are the text.
                e.to_bytes()
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            } else {
                e.to_str().ok().map(|s| s.into_owned())
            }
        })
        .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_owned())
        .unwrap_or_default()
}

fn number(obj: &dicom_object::DefaultDicomObject, tag: dicom_core::Tag) -> Option<i32> {
    obj.get(tag).and_then(|e| e.to_int::<i32>().ok())
}

/// Walks the data set of the spooled instance `stored`, whose file meta says
/// `transfer_syntax` (see [`crate::walk`]).
fn walk_file(stored: &Stored, transfer_syntax: &str) -> Result<(), u16> {
    use std::io::Read;
    let mut file = stored.open().map_err(|_| status::OUT_OF_RESOURCES)?;
    if stored.length < PART10_HEAD as u64 {
        return Err(status::CANNOT_UNDERSTAND);
    }
    let mut head = [0_u8; PART10_HEAD];
    file.read_exact(&mut head)
        .map_err(|_| status::CANNOT_UNDERSTAND)?;
    let meta_length = meta_length(&head).ok_or(status::CANNOT_UNDERSTAND)?;
    let Some(data_set) = stored.length.checked_sub(PART10_HEAD as u64 + meta_length) else {
        return Err(status::CANNOT_UNDERSTAND);
    };
    file.seek_relative(i64::try_from(meta_length).map_err(|_| status::CANNOT_UNDERSTAND)?)
        .map_err(|_| status::CANNOT_UNDERSTAND)?;
    let encoding = crate::walk::Encoding::of(transfer_syntax);
    let walked = if transfer_syntax == uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN {
        // A deflated data set may not inflate to more than 64 times its size (a bomb).
        // One that does is refused, not walked in part: the parser after the walk would
        // inflate the rest, unchecked.
        let limit = stored.length * 64;
        let mut inflated = flate2::read::DeflateDecoder::new(file.take(data_set)).take(limit + 1);
        let walked = crate::walk::walk(&mut inflated, encoding);
        if inflated.limit() == 0 {
            return Err(status::CANNOT_UNDERSTAND);
        }
        walked
    } else {
        // Values are skipped, not read: the pixel data is not read back.
        crate::walk::walk_seekable(file, data_set, encoding)
    };
    walked.map_err(|_| status::CANNOT_UNDERSTAND)
}

/// Reads back the spooled instance `stored` and checks it against what it should be: the
/// SOP class and instance its C-STORE command (or STOW-RS file meta) named, in
/// `transfer_syntax`. Blocking.
pub fn inspect(
    stored: &Stored,
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax: &str,
) -> Result<InstanceRecord, u16> {
    walk_file(stored, transfer_syntax)?;
    attributes(stored, sop_class_uid, sop_instance_uid)
}

/// The attributes the index keeps, read from `stored` up to its pixel data (which need
/// not have arrived), checked against the SOP class and instance it should be. Only for
/// bytes the walk has passed. Blocking.
fn attributes(
    stored: &Stored,
    sop_class_uid: &str,
    sop_instance_uid: &str,
) -> Result<InstanceRecord, u16> {
    let obj = open(stored, Some(tags::PIXEL_DATA)).map_err(|_| status::CANNOT_UNDERSTAND)?;
    if attr(&obj, tags::SOP_INSTANCE_UID) != sop_instance_uid
        || attr(&obj, tags::SOP_CLASS_UID) != sop_class_uid
    {
        return Err(status::DATA_SET_DOES_NOT_MATCH);
    }
    let study = attr(&obj, tags::STUDY_INSTANCE_UID);
    let series = attr(&obj, tags::SERIES_INSTANCE_UID);
    if study.is_empty() || series.is_empty() {
        return Err(status::DATA_SET_DOES_NOT_MATCH);
    }
    Ok(InstanceRecord {
        sop_instance_uid: sop_instance_uid.to_owned(),
        sop_class_uid: sop_class_uid.to_owned(),
        study_instance_uid: study,
        series_instance_uid: series,
        patient_id: attr(&obj, tags::PATIENT_ID),
        patient_name: attr(&obj, tags::PATIENT_NAME),
        patient_birth_date: attr(&obj, tags::PATIENT_BIRTH_DATE),
        patient_sex: attr(&obj, tags::PATIENT_SEX),
        study_date: attr(&obj, tags::STUDY_DATE),
        study_time: attr(&obj, tags::STUDY_TIME),
        study_description: attr(&obj, tags::STUDY_DESCRIPTION),
        accession_number: attr(&obj, tags::ACCESSION_NUMBER),
        modality: attr(&obj, tags::MODALITY),
        series_number: number(&obj, tags::SERIES_NUMBER),
        instance_number: number(&obj, tags::INSTANCE_NUMBER),
        transfer_syntax: obj
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_owned(),
        ..InstanceRecord::default()
    })
}

/// Reads the attributes of an instance still arriving, from what `so_far` holds of it,
/// if that reaches the pixel data and all before it walks well: then only the pixel data
/// is left to check when the rest has come. `None` otherwise (deflated data sets too):
/// everything is read at the end. Blocking.
fn early(
    so_far: &Stored,
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax: &str,
) -> Option<InstanceRecord> {
    use std::io::Read;
    if transfer_syntax == uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN {
        return None;
    }
    let mut file = so_far.open().ok()?;
    let mut head = [0_u8; PART10_HEAD];
    file.read_exact(&mut head).ok()?;
    let meta_length = meta_length(&head)?;
    let skipped = std::io::copy(&mut (&mut file).take(meta_length), &mut std::io::sink()).ok()?;
    if skipped != meta_length {
        return None;
    }
    let at = crate::walk::pixel_data_at(file, crate::walk::Encoding::of(transfer_syntax))?;
    // With the pixel data's element header (12 bytes at most) the parser stops at the tag
    // it was told to read until; without it, it stops at the end of its input, but only
    // after making an error with a backtrace, which costs more than the parse.
    let head = Stored {
        length: (PART10_HEAD as u64 + meta_length + at + 12).min(so_far.length),
        ..so_far.clone()
    };
    attributes(&head, sop_class_uid, sop_instance_uid).ok()
}

/// How many bytes of an instance arrive before its attributes are read early.
const EARLY_AT: u64 = 64 * 1024;

/// Parses the stored instance `stored` (up to `until`, if given). Blocking.
pub fn open(
    stored: &Stored,
    until: Option<dicom_core::Tag>,
) -> Result<dicom_object::DefaultDicomObject, String> {
    let mut options =
        OpenFileOptions::new().read_preamble(dicom_object::file::ReadPreamble::Always);
    if let Some(tag) = until {
        options = options.read_until(tag);
    }
    let reader = stored.open().map_err(|e| e.to_string())?;
    options.from_reader(reader).map_err(|e| e.to_string())
}

/// Finishes a C-STORE: sync while checking and indexing. Returns the status.
async fn finish<A: Archive>(r: Receiving, archive: &A, route: &A::Route) -> u16 {
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
    sync_and_index(
        archive,
        route,
        incoming,
        &uid,
        inspected,
        std::future::ready(Ok(())),
    )
    .await
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
    sync_and_index(
        archive,
        route,
        incoming,
        &uid,
        inspected,
        std::future::ready(Ok(())),
    )
    .await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock;
    use crate::testing::CT;

    const SOP: &str = "2.25.4242";

    /// A CT with a sequence before 200 KB of pixel data, as a Part 10 file.
    fn large_ct() -> Vec<u8> {
        crate::testing::ct(SOP, 100, 1000)
    }

    #[test]
    fn p_data_fragments_are_read_in_place_as_dicom_ul_writes_them() {
        let pdu = Pdu::PData {
            data: vec![
                PDataValue {
                    presentation_context_id: 1,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: vec![1, 2, 3],
                },
                PDataValue {
                    presentation_context_id: 3,
                    value_type: PDataValueType::Data,
                    is_last: false,
                    data: vec![],
                },
                PDataValue {
                    presentation_context_id: 3,
                    value_type: PDataValueType::Data,
                    is_last: true,
                    data: vec![9; 1000],
                },
            ],
        };
        let mut bytes = Vec::new();
        dicom_ul::write_pdu(&mut bytes, &pdu).unwrap();
        let Pdu::PData { data } = pdu else {
            unreachable!()
        };
        let read = fragments(&bytes).expect("well formed");
        assert_eq!(read.len(), data.len());
        for (ours, theirs) in read.iter().zip(&data) {
            assert_eq!(ours.presentation_context_id, theirs.presentation_context_id);
            assert_eq!(ours.value_type, theirs.value_type);
            assert_eq!(ours.is_last, theirs.is_last);
            assert_eq!(ours.data, &theirs.data[..]);
        }
        // Items that overrun the PDU, are too short for their header, or leave bytes over.
        let mut overrun = bytes.clone();
        overrun[6..10].copy_from_slice(&5000_u32.to_be_bytes());
        assert!(fragments(&overrun).is_none());
        let mut short = bytes.clone();
        short[6..10].copy_from_slice(&1_u32.to_be_bytes());
        assert!(fragments(&short).is_none());
        let mut over = bytes.clone();
        over.extend_from_slice(&[0, 0]);
        assert!(fragments(&over).is_none());
        assert!(fragments(&bytes[..4]).is_none());
    }

    #[test]
    fn attributes_read_early_are_those_read_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ct.dcm");
        let bytes = large_ct();
        std::fs::write(&path, &bytes).unwrap();
        let whole = Stored {
            path,
            offset: 0,
            length: bytes.len() as u64,
        };
        let ts = uids::EXPLICIT_VR_LITTLE_ENDIAN;
        let at_end = inspect(&whole, CT, SOP, ts).expect("a sound instance");
        assert_eq!(at_end.patient_name, "Test^Patient");
        // The first 64 KiB hold everything before the pixel data.
        let so_far = Stored {
            length: EARLY_AT,
            ..whole.clone()
        };
        assert_eq!(early(&so_far, CT, SOP, ts), Some(at_end));
        // Not yet at the pixel data, another instance, or deflated: read at the end.
        let little = Stored {
            length: 300,
            ..whole.clone()
        };
        assert_eq!(early(&little, CT, SOP, ts), None);
        assert_eq!(early(&so_far, CT, "2.25.1", ts), None);
        let deflated = uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN;
        assert_eq!(early(&so_far, CT, SOP, deflated), None);
    }

    /// An index in memory: what it names, and what was taken out of it.
    #[derive(Default)]
    struct Index {
        named: std::sync::Mutex<Vec<String>>,
        taken_out: std::sync::Mutex<Vec<String>>,
    }

    impl Archive for Index {
        type Route = ();
        async fn callers(&self) -> Result<HashMap<String, Caller>, String> {
            Ok(HashMap::new())
        }
        async fn route(&self, _institution_id: i64) {}
        async fn indexed_ends(&self) -> Result<HashMap<String, u64>, String> {
            Ok(HashMap::new())
        }
        async fn last_indexed(&self) -> Result<Vec<LastIndexed>, String> {
            Ok(Vec::new())
        }
        async fn index(
            &self,
            record: impl Future<Output = Option<InstanceRecord>> + Send,
            _route: &(),
            sound: impl Future<Output = bool> + Send,
        ) -> Result<Option<Indexed>, String> {
            let Some(record) = record.await else {
                return Ok(None);
            };
            if lock(&self.named).contains(&record.sop_instance_uid) {
                return Ok(Some(Indexed::Duplicate));
            }
            if !sound.await {
                return Err("not sound".into());
            }
            lock(&self.named).push(record.sop_instance_uid);
            Ok(Some(Indexed::New))
        }
        async fn unindex(&self, sop_instance_uid: &str) -> Result<(), String> {
            lock(&self.named).retain(|named| named != sop_instance_uid);
            lock(&self.taken_out).push(sop_instance_uid.to_owned());
            Ok(())
        }
    }

    /// An empty spool in `dir`, open for writing.
    /// A disk whose next syncs fail, as many as it is told.
    #[derive(Debug, Default)]
    struct Failing(std::sync::atomic::AtomicUsize);

    impl Failing {
        fn fail_next(&self, n: usize) {
            self.0.store(n, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl crate::spool::Disk for Failing {
        fn sync_data(&self, file: &std::fs::File) -> std::io::Result<()> {
            use std::sync::atomic::Ordering;
            if self
                .0
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(std::io::Error::other("a failing disk"));
            }
            file.sync_data()
        }
    }

    /// A spool in `dir`, on a disk the test can make fail.
    fn spool_in(dir: &tempfile::TempDir) -> (Spool, Arc<Failing>) {
        let disk = Arc::new(Failing::default());
        let spool =
            Spool::open_on(dir.path(), crate::spool::Layout::default(), disk.clone()).unwrap();
        spool.recover(&HashMap::new()).unwrap();
        (spool, disk)
    }

    /// An instance received from Taishan's CT, with `bytes` for its Part 10 file.
    async fn received(spool: &Spool, bytes: &[u8]) -> Incoming {
        let sender = Sender {
            institution_id: 1,
            calling_ae: "TAISHAN_CT".into(),
        };
        let mut incoming = spool.begin(sender).await.unwrap();
        incoming.write(bytes).unwrap();
        incoming
    }

    /// What the index is given for the instance `uid`.
    fn record(uid: &str) -> InstanceRecord {
        InstanceRecord {
            sop_instance_uid: uid.into(),
            ..InstanceRecord::default()
        }
    }

    #[tokio::test]
    async fn an_instance_whose_sync_fails_is_taken_out_of_the_index_and_its_bytes_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, disk) = spool_in(&dir);
        let index = Index::default();
        let synced = received(&spool, b"the first instance").await;
        assert_eq!(
            keep(&index, &(), synced, record("2.25.1")).await,
            status::SUCCESS
        );

        // The disk fails: the index committed the second while its sync ran, and takes it
        // out again; the answer is a failure.
        disk.fail_next(1);
        let unsynced = received(&spool, b"the second instance").await;
        let bytes = unsynced.stored();
        assert_eq!(
            keep(&index, &(), unsynced, record("2.25.2")).await,
            status::OUT_OF_RESOURCES
        );
        assert_eq!(*lock(&index.named), ["2.25.1"]);
        assert_eq!(*lock(&index.taken_out), ["2.25.2"]);
        // A forward that took it meanwhile may still read it: no record goes over it.
        let next = received(&spool, b"the third instance").await;
        assert_ne!(next.stored().path, bytes.path);
        assert_eq!(bytes.read().unwrap(), b"the second instance");
    }

    #[tokio::test]
    async fn a_second_copy_is_answered_once_the_first_is_kept_or_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, disk) = spool_in(&dir);
        let index = Index::default();
        // Two copies at once; the first's sync fails after the index has named it. The
        // second is not answered as a duplicate of it: it is kept itself.
        let first = received(&spool, b"first copy").await;
        let second = received(&spool, b"second copy").await;
        disk.fail_next(1);
        let (first, second) = tokio::join!(
            keep(&index, &(), first, record("2.25.7")),
            keep(&index, &(), second, record("2.25.7"))
        );
        assert_eq!(first, status::OUT_OF_RESOURCES);
        assert_eq!(second, status::SUCCESS);
        assert_eq!(*lock(&index.named), ["2.25.7"]);
        assert_eq!(*lock(&index.taken_out), ["2.25.7"]);
        // Kept after all, a third copy is a duplicate, answered at once.
        let third = received(&spool, b"third copy").await;
        assert_eq!(
            keep(&index, &(), third, record("2.25.7")).await,
            status::SUCCESS
        );
        assert_eq!(*lock(&index.named), ["2.25.7"]);
        assert_eq!(spool.kept_now(), 0);
    }
}
