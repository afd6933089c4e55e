//! The P-DATA exchange of an established association (PS3.8 §9.3.5, PS3.7 §9.3): PDUs
//! are received, P-DATA-TF PDUs read in place from the association's buffer, and split
//! into their fragments; command sets are gathered (bounded by [`MAX_COMMAND_BYTES`]) and
//! answered (C-ECHO) or begin an instance (C-STORE), whose data fragments go to ingest
//! until the last, which is answered with the status ingest gives. Anything the caller
//! sends out of turn aborts the association, and an instance cut off leaves nothing.

use std::collections::HashMap;

use dicom_ul::association::Association as _;
use dicom_ul::association::server::AsyncServerAssociation;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};

use super::ingest::{self, Receiving};
use super::{Archive, Caller, ScpConfig};
use crate::AeTitle;
use crate::dimse::{self, status};
use crate::spool::Spool;

/// The longest command set read (PS3.7 §6.3.1): a C-STORE-RQ takes about 200 bytes.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;

/// The messages of an established association, plain or over TLS.
pub(super) async fn exchange<S, A: Archive>(
    mut association: AsyncServerAssociation<S>,
    callers: &HashMap<AeTitle, Caller>,
    config: &ScpConfig,
    spool: &Spool,
    archive: &A,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let calling = association.peer_ae_title().trim().to_owned();
    let institution_id = callers
        .get(calling.as_str())
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
                    r.discard().await;
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
                                        ingest::begin(
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
                            r.write(pdv.data, pdv.is_last, config.max_instance_bytes);
                            if pdv.is_last {
                                let r = current.take().expect("present");
                                let context = r.context_id();
                                let command = r.command().clone();
                                let code = ingest::finish(r, archive, &route).await;
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
        r.discard().await;
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
pub(super) struct Fragment<'a> {
    pub(super) presentation_context_id: u8,
    pub(super) value_type: PDataValueType,
    pub(super) is_last: bool,
    pub(super) data: &'a [u8],
}

/// The presentation data values of a whole P-DATA-TF PDU (PS3.8 9.3.5), or `None` if
/// its items do not fill it exactly.
pub(super) fn fragments(pdu: &[u8]) -> Option<Vec<Fragment<'_>>> {
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
