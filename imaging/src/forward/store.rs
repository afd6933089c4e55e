//! One C-STORE on an open association (PS3.7 §9.3.1): the command through dicom-ul, then
//! the stored data set, without its file meta, in P-DATA-TF PDUs (PS3.8 §9.3.5) the relay
//! frames itself and writes a piece at a time in vectored writes, read from the spool in
//! large pieces; then the destination's response.

use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::time::Duration;

use dicom_ul::association::client::AsyncClientAssociation;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu, PresentationContextResultReason};

use super::Job;
use crate::dimse;
use crate::walk::PART10_HEAD;

/// Sends `job` on `association` if a context for its pair was accepted (`None` if not):
/// the destination's status, or why the association broke.
pub(super) async fn store_on<S>(
    association: &mut AsyncClientAssociation<S>,
    job: &Job,
    message_id: u16,
    timeout: Duration,
    buffers: &mut Buffers,
) -> Option<Result<u16, String>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let context = association.presentation_contexts().iter().find(|pc| {
        pc.reason == PresentationContextResultReason::Acceptance
            && pc.abstract_syntax.trim_end_matches('\0') == job.sop_class_uid
            && pc.transfer_syntax.trim_end_matches('\0') == job.transfer_syntax
    })?;
    let context = context.id;
    let max_pdv = (association.acceptor_max_pdu_length().max(4096) as usize).saturating_sub(6);
    let sent = store_one(
        association,
        Fragments { context, max_pdv },
        message_id,
        job,
        timeout,
        buffers,
    );
    Some(sent.await)
}

/// How much of a stored instance is read at once when it is sent.
const PIECE: u64 = 4 * 1024 * 1024;

/// The buffers a lane keeps from one instance to the next: memory fresh from the system
/// for every instance costs more than sending it.
#[derive(Default)]
pub(super) struct Buffers {
    /// Stored bytes as read.
    read: Vec<u8>,
    /// The headers of the P-DATA-TF PDUs that carry them.
    headers: Vec<[u8; 12]>,
}

/// How a data set is cut into PDUs on one presentation context.
#[derive(Clone, Copy)]
pub(super) struct Fragments {
    pub(super) context: u8,
    /// The most data bytes in one PDU (the acceptor's largest PDU less the headers).
    pub(super) max_pdv: usize,
}

impl Fragments {
    /// `data` as P-DATA-TF PDUs of one data fragment each (PS3.8 9.3.5), the last of them
    /// marked last when `last`; an empty `data` that is `last` still makes one, empty,
    /// fragment. Each PDU is its header (kept in `headers`) and its slice of `data`, to
    /// be written together without copying `data`.
    pub(super) fn frame<'a>(
        self,
        headers: &'a mut Vec<[u8; 12]>,
        data: &'a [u8],
        last: bool,
    ) -> Vec<std::io::IoSlice<'a>> {
        let size = self.max_pdv.max(1);
        let count = data.len().div_ceil(size).max(usize::from(last));
        let chunk = |n: usize| {
            data.get(n * size..data.len().min((n + 1) * size))
                .unwrap_or(&[])
        };
        headers.clear();
        headers.extend((0..count).map(|n| {
            let item = u32::try_from(chunk(n).len() + 2).unwrap_or(u32::MAX);
            let control = if last && n + 1 == count { 0x02 } else { 0x00 };
            let mut h = [0_u8; 12];
            h[0] = 0x04;
            h[2..6].copy_from_slice(&(item + 4).to_be_bytes());
            h[6..10].copy_from_slice(&item.to_be_bytes());
            h[10] = self.context;
            h[11] = control;
            h
        }));
        headers
            .iter()
            .enumerate()
            .flat_map(|(n, h)| [std::io::IoSlice::new(h), std::io::IoSlice::new(chunk(n))])
            .filter(|slice| !slice.is_empty())
            .collect()
    }
}

/// Writes all of `slices` to `stream`, as few calls as the system allows.
pub(super) async fn write_all_vectored<S>(
    stream: &mut S,
    mut slices: &mut [std::io::IoSlice<'_>],
) -> std::io::Result<()>
where
    S: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt as _;
    while !slices.is_empty() {
        let written = stream.write_vectored(slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        std::io::IoSlice::advance_slices(&mut slices, written);
    }
    stream.flush().await
}

/// One C-STORE: the command, then the stored data set in fragments; returns the status.
/// The data set's PDUs are framed here and written to the association's stream a piece
/// at a time, between dicom-ul's PDUs (so at PDU boundaries): one vectored write per
/// piece instead of an encoded copy and a write for every PDU.
async fn store_one<S>(
    association: &mut AsyncClientAssociation<S>,
    fragments: Fragments,
    message_id: u16,
    job: &Job,
    timeout: Duration,
    buffers: &mut Buffers,
) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let unreadable = |e: std::io::Error| format!("cannot read the stored instance: {e}");
    let broke = |e: String| format!("the association broke: {e}");
    // Read in large pieces, each in one blocking call (no thread hop per PDU).
    let file = Arc::new(std::fs::File::open(&job.stored.path).map_err(unreadable)?);
    let (start, end) = (job.stored.offset, job.stored.offset + job.stored.length);
    let mut at = start;
    let mut first = true;
    loop {
        let length = usize::try_from((end - at).min(PIECE)).unwrap_or(0);
        if buffers.read.len() < length {
            buffers.read.resize(length, 0);
        }
        let (file, mut piece) = (file.clone(), std::mem::take(&mut buffers.read));
        buffers.read = tokio::task::spawn_blocking(move || {
            file.read_exact_at(&mut piece[..length], at)?;
            Ok::<_, std::io::Error>(piece)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|read| read)
        .map_err(unreadable)?;
        at += length as u64;
        let last_piece = at >= end;
        let mut bytes = &buffers.read[..length];
        if first {
            // The file meta stays here: the data set alone goes out.
            let Some(data_set) = crate::walk::meta_length(bytes)
                .and_then(|m| usize::try_from(m).ok())
                .map(|m| PART10_HEAD + m)
                .filter(|&d| d <= bytes.len())
            else {
                return Err("the stored instance is cut short".into());
            };
            bytes = &bytes[data_set..];
            first = false;
            let command = Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: fragments.context,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: dimse::store_request(
                        message_id,
                        &job.sop_class_uid,
                        &job.sop_instance_uid,
                    ),
                }],
            };
            association
                .send(&command)
                .await
                .map_err(|e| broke(e.to_string()))?;
        }
        let mut slices = fragments.frame(&mut buffers.headers, bytes, last_piece);
        let stream = association.inner_stream();
        match tokio::time::timeout(timeout, write_all_vectored(stream, &mut slices)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(broke(e.to_string())),
            Err(_) => return Err(broke("timed out writing".into())),
        }
        if last_piece {
            break;
        }
    }
    match association.receive().await {
        Ok(Pdu::PData { data }) if !data.is_empty() => dimse::parse_command(&data[0].data)
            .ok()
            .and_then(|c| c.status)
            .ok_or_else(|| "an unreadable response".to_owned()),
        Ok(Pdu::AbortRQ { .. }) => Err("the destination aborted".into()),
        Ok(other) => Err(format!("unexpected {}", other.short_description())),
        Err(e) => Err(format!("no response: {e}")),
    }
}
