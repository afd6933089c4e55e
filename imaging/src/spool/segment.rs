//! The segment format: a segment's header and nonce, the records in it (a 64-byte header
//! with length, CRC-32 and sender, then the instance's bytes), and reading them back.

use std::fs::File;

use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Arc;

use super::stored::Stored;

use rand::RngCore as _;

/// Writes end on multiples of this, but for a record's last (see [`Incoming::write`]).
pub(super) const PAGE: u64 = 4096;

/// The length of a segment's header and of a record's.
pub const HEADER: u64 = 64;

pub(super) const SEGMENT_MAGIC: &[u8; 8] = b"DKSEGMT1";
pub(super) const RECORD_MAGIC: &[u8; 8] = b"DKRECRD1";

/// Who sent a record: kept in its header so that the index can be rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The sending institution.
    pub institution_id: i64,
    /// The calling AE title (or `STOW-RS`), at most 16 characters.
    pub calling_ae: String,
}

/// A record found in a segment beyond what the index names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where it is.
    pub stored: Stored,
    /// The segment, relative to the spool, and the offset: what the index records.
    pub relative: String,
    /// Who sent it.
    pub sender: Sender,
}

/// A segment open for appending.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) file: Arc<File>,
    /// Relative to the spool: `segments/00000001.seg`.
    pub(super) relative: String,
    pub(super) nonce: [u8; 8],
    /// Where the next record goes.
    pub(super) end: u64,
    /// The file's length: bytes before it are written (zeros or old records), so a record
    /// there changes no file size and allocates nothing.
    pub(super) length: u64,
    /// The bytes of the record being written that are not in the file yet (kept with the
    /// segment, so that each record does not allocate its own).
    pub(super) buffer: Vec<u8>,
}

impl Segment {
    /// Bytes prepared ahead of the next record.
    pub(super) fn room(&self) -> u64 {
        self.length.saturating_sub(self.end)
    }

    /// Writes the buffer, which ends at `end` in the file, to the segment: all of it, or
    /// (`all` false) up to the last page boundary.
    pub(super) fn write_out(&mut self, end: u64, all: bool) -> std::io::Result<()> {
        let at = end - self.buffer.len() as u64;
        let upto = if all {
            self.buffer.len()
        } else {
            usize::try_from(end - end % PAGE).map_or(0, |e| e.saturating_sub(at as usize))
        };
        if upto == 0 {
            return Ok(());
        }
        self.file.write_all_at(&self.buffer[..upto], at)?;
        self.buffer.drain(..upto);
        Ok(())
    }
}

pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The record header: magic, nonce, length, CRC-32, institution, calling AE title.
pub(super) fn record_header(nonce: &[u8; 8], length: u64, crc: u32, sender: &Sender) -> [u8; 64] {
    let mut h = [0_u8; 64];
    h[0..8].copy_from_slice(RECORD_MAGIC);
    h[8..16].copy_from_slice(nonce);
    h[16..24].copy_from_slice(&length.to_le_bytes());
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h[28..36].copy_from_slice(&sender.institution_id.to_le_bytes());
    let ae = sender.calling_ae.as_bytes();
    let n = ae.len().min(16);
    h[36..36 + n].copy_from_slice(&ae[..n]);
    h
}

/// The segment file `number`'s name.
pub(super) fn segment_name(number: u64) -> String {
    format!("segments/{number:08}.seg")
}

/// Makes segment `number` and syncs it and its directory. Blocking.
pub(super) fn create_segment(root: &Path, number: u64) -> std::io::Result<Segment> {
    let relative = segment_name(number);
    let path = root.join(&relative);
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let mut nonce = [0_u8; 8];
    rand::thread_rng().fill_bytes(&mut nonce);
    let mut header = [0_u8; HEADER as usize];
    header[0..8].copy_from_slice(SEGMENT_MAGIC);
    header[16..24].copy_from_slice(&nonce);
    file.write_all_at(&header, 0)?;
    file.sync_all()?;
    sync_dir(&root.join("segments"))?;
    Ok(Segment {
        file: Arc::new(file),
        relative,
        nonce,
        end: HEADER,
        length: HEADER,
        buffer: Vec::new(),
    })
}

/// A record found by [`scan`]: where its Part 10 bytes start, their length, the sender.
pub(super) type Scanned = (u64, u64, Sender);

/// The records of `file` from `from` on, while they check out, and where the last one
/// ends. Blocking.
pub(super) fn scan(
    file: &File,
    nonce: &[u8; 8],
    from: u64,
) -> std::io::Result<(Vec<Scanned>, u64)> {
    scan_upto(file, nonce, from, file.metadata()?.len())
}

/// [`scan`] of a file `size` bytes long.
pub(super) fn scan_upto(
    file: &File,
    nonce: &[u8; 8],
    from: u64,
    size: u64,
) -> std::io::Result<(Vec<Scanned>, u64)> {
    let mut records = Vec::new();
    let mut at = from;
    let mut buffer = vec![0_u8; 1024 * 1024];
    while at + HEADER <= size {
        let mut h = [0_u8; HEADER as usize];
        file.read_exact_at(&mut h, at)?;
        let length = u64::from_le_bytes(h[16..24].try_into().expect("8 bytes"));
        if &h[0..8] != RECORD_MAGIC || h[8..16] != nonce[..] || length > size - at - HEADER {
            break;
        }
        let crc = u32::from_le_bytes(h[24..28].try_into().expect("4 bytes"));
        let mut hasher = crc32fast::Hasher::new();
        let mut read = 0;
        while read < length {
            let n = usize::try_from((length - read).min(buffer.len() as u64)).expect("small");
            file.read_exact_at(&mut buffer[..n], at + HEADER + read)?;
            hasher.update(&buffer[..n]);
            read += n as u64;
        }
        if hasher.finalize() != crc {
            break;
        }
        let sender = Sender {
            institution_id: i64::from_le_bytes(h[28..36].try_into().expect("8 bytes")),
            calling_ae: String::from_utf8_lossy(&h[36..52])
                .trim_end_matches(['\0', ' '])
                .to_owned(),
        };
        records.push((at + HEADER, length, sender));
        at += HEADER + length;
    }
    Ok((records, at))
}

/// Opens an existing segment: its file and nonce, or `None` if its header is not one (a
/// crash while it was made; nothing was ever stored in it). Blocking.
pub(super) fn open_segment(path: &Path) -> std::io::Result<Option<(File, [u8; 8])>> {
    let file = File::options().read(true).write(true).open(path)?;
    let mut header = [0_u8; HEADER as usize];
    if file.read_exact_at(&mut header, 0).is_err() || &header[0..8] != SEGMENT_MAGIC {
        return Ok(None);
    }
    let nonce = header[16..24].try_into().expect("8 bytes");
    Ok(Some((file, nonce)))
}

/// The segments under `root`, by number.
pub(super) fn segment_numbers(root: &Path) -> std::io::Result<Vec<u64>> {
    let mut numbers: Vec<u64> = std::fs::read_dir(root.join("segments"))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}
