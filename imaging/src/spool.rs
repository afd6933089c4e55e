//! Durable storage of received instances: append-only segment files under `segments/`.
//!
//! Each instance is one record in a segment: a 64-byte header, then the instance's Part 10
//! file (preamble, file meta, data set) exactly as the gateway keeps it; no file is made
//! per instance. The bytes are written to the segment (the page cache) as they arrive, in
//! writes of at least 128 KiB, and one `fdatasync` before the answer takes them to the
//! disk. The header is written last: it
//! holds the record's length, a CRC-32 of its bytes, the sender, and the segment's random
//! nonce; a record whose header does not check out is not a record. Once a record is
//! synced it survives a crash, and it holds all the index needs, so the index is rebuilt
//! from the segments' records beyond what it already names ([`Spool::recover`]).
//!
//! One writer appends to a segment at a time (an association, or a STOW-RS part); other
//! writers get other segments. A record that fails (refused, cut off, a duplicate) is
//! given back: the next record is written over it, and one that was already synced has
//! its header wiped first. A segment is closed once it passes [`Layout::segment_bytes`].
//!
//! Segments are prepared ahead of the writers ([`Spool::prepare`]): while no instance
//! arrives, new segments are written full of zeros and synced, as PostgreSQL fills its WAL
//! segments. A record written there changes no file size and allocates no block, so the
//! sync before its answer writes its own bytes and nothing of the file system's: without
//! that, each sync also waits for a journal commit. Writers take the segment with the most
//! room prepared; when none has any, records grow their segment as before. Old bytes
//! beyond the last record (zeros, or a record given back) are never read as records: a
//! record's header must carry its segment's nonce and a CRC of its bytes. Writes end on
//! page boundaries and reads stop at a record's end, so that zeros pushed out of the page
//! cache are never read back from the disk.
//!
//! Instances are read back as a byte range of a segment ([`Stored`]); an instance kept as a
//! whole file (offset 0, its length) reads the same way.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::lock;

use rand::RngCore as _;

/// How large segments grow and how much room is prepared ahead of the writers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// A segment takes no more records once one ends beyond this many bytes; a prepared
    /// segment has room for this many after its header.
    pub segment_bytes: u64,
    /// Room kept prepared (zeros written and synced) ahead of the writers, in whole
    /// segments; 0 prepares none.
    pub prepared_bytes: u64,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            segment_bytes: 256 * 1024 * 1024,
            prepared_bytes: 512 * 1024 * 1024,
        }
    }
}

/// Preparing waits until no instance has arrived for this long.
pub const QUIET: Duration = Duration::from_secs(1);

/// Zeros are written this many at a time, each piece waited for, so that a writer that
/// comes meanwhile finds at most one piece in the disk's queue before its own.
const ZEROS_AT_ONCE: usize = 4 * 1024 * 1024;

/// Preparing stops while less than this would stay free on the spool's file system.
const KEEP_FREE: u64 = 1024 * 1024 * 1024;

/// Every this many bytes received, what has arrived goes to the disk in the background.
const WRITE_EVERY: usize = 128 * 1024;
/// Bytes written at once that go to the segment without the buffer: a call for each
/// costs less than copying them into it.
const DIRECT_FROM: usize = 32 * 1024;

/// Writes end on multiples of this, but for a record's last (see [`Incoming::write`]).
const PAGE: u64 = 4096;

/// The length of a segment's header and of a record's.
pub const HEADER: u64 = 64;

const SEGMENT_MAGIC: &[u8; 8] = b"DKSEGMT1";
const RECORD_MAGIC: &[u8; 8] = b"DKRECRD1";

/// Where a stored instance's Part 10 bytes are: `length` bytes from `offset` in `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The segment (or whole file) holding it.
    pub path: PathBuf,
    /// Where its bytes start.
    pub offset: u64,
    /// How many bytes it has.
    pub length: u64,
}

impl Stored {
    /// A buffered reader over the instance's bytes, which seeks within them. Blocking.
    pub fn open(&self) -> std::io::Result<std::io::BufReader<Within>> {
        Ok(std::io::BufReader::new(Within {
            file: File::open(&self.path)?,
            start: self.offset,
            length: self.length,
            at: 0,
        }))
    }

    /// All of the instance's bytes. Blocking.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        let file = File::open(&self.path)?;
        let length = usize::try_from(self.length).map_err(std::io::Error::other)?;
        let mut bytes = vec![0_u8; length];
        file.read_exact_at(&mut bytes, self.offset)?;
        Ok(bytes)
    }
}

/// The bytes of one stored instance in its file, read with `pread` and never beyond them.
/// A buffered reader over the whole file would read on past a record's end into what
/// follows (prepared zeros, not in the page cache once pushed out), and the kernel's
/// readahead with it, megabytes for each instance.
#[derive(Debug)]
pub struct Within {
    file: File,
    start: u64,
    length: u64,
    /// Where the next read starts, from `start`.
    at: u64,
}

impl Read for Within {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.length.saturating_sub(self.at);
        let n = usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len()));
        if n == 0 {
            return Ok(0);
        }
        let read = self.file.read_at(&mut buf[..n], self.start + self.at)?;
        self.at += read as u64;
        Ok(read)
    }
}

impl Seek for Within {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let at = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(n) => self.length.checked_add_signed(n),
            SeekFrom::Current(n) => self.at.checked_add_signed(n),
        };
        self.at = at.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "before the start")
        })?;
        Ok(self.at)
    }
}

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
struct Segment {
    file: Arc<File>,
    /// Relative to the spool: `segments/00000001.seg`.
    relative: String,
    nonce: [u8; 8],
    /// Where the next record goes.
    end: u64,
    /// The file's length: bytes before it are written (zeros or old records), so a record
    /// there changes no file size and allocates nothing.
    length: u64,
    /// The bytes of the record being written that are not in the file yet (kept with the
    /// segment, so that each record does not allocate its own).
    buffer: Vec<u8>,
}

impl Segment {
    /// Bytes prepared ahead of the next record.
    fn room(&self) -> u64 {
        self.length.saturating_sub(self.end)
    }

    /// Writes the buffer, which ends at `end` in the file, to the segment: all of it, or
    /// (`all` false) up to the last page boundary.
    fn write_out(&mut self, end: u64, all: bool) -> std::io::Result<()> {
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

/// What makes a record's bytes durable. The spool's is [`FileSystem`]; tests put a disk
/// that fails in its place ([`Spool::open_on`]).
pub trait Disk: std::fmt::Debug + Send + Sync + 'static {
    /// Returns once `file`'s written bytes are on the disk.
    fn sync_data(&self, file: &File) -> std::io::Result<()>;
}

/// Syncs through the file system (`fdatasync`).
#[derive(Debug, Clone, Copy)]
pub struct FileSystem;

impl Disk for FileSystem {
    fn sync_data(&self, file: &File) -> std::io::Result<()> {
        file.sync_data()
    }
}

/// The spool.
#[derive(Debug, Clone)]
pub struct Spool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    layout: Layout,
    /// Segments nobody is appending to right now.
    idle: Mutex<Vec<Segment>>,
    /// The number of the next new segment.
    next: AtomicU64,
    /// Instances being received now.
    writers: AtomicUsize,
    /// When the last one ended.
    last_written: Mutex<Instant>,
    /// Told when a writer ends.
    ended: tokio::sync::Notify,
    /// Whether a segment is being prepared now.
    preparing: AtomicBool,
    /// Whether [`Spool::prepare`] runs (once per spool).
    preparer: AtomicBool,
    /// Instances (by SOP Instance UID) being kept now: indexed while their records are
    /// synced, one writer at a time ([`Incoming::keeping`]).
    keeping: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// What syncs records.
    disk: Arc<dyn Disk>,
}

/// Marks the preparer gone when its task ends or is aborted.
struct Preparer(Arc<Shared>);

impl Drop for Preparer {
    fn drop(&mut self) {
        self.0.preparing.store(false, Ordering::SeqCst);
        self.0.preparer.store(false, Ordering::SeqCst);
    }
}

/// One instance being received, counted while it lives.
#[derive(Debug)]
struct Writer(Arc<Shared>);

impl Writer {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.writers.fetch_add(1, Ordering::SeqCst);
        Self(shared.clone())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        *lock(&self.0.last_written) = Instant::now();
        self.0.writers.fetch_sub(1, Ordering::SeqCst);
        self.0.ended.notify_one();
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The record header: magic, nonce, length, CRC-32, institution, calling AE title.
fn record_header(nonce: &[u8; 8], length: u64, crc: u32, sender: &Sender) -> [u8; 64] {
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
fn segment_name(number: u64) -> String {
    format!("segments/{number:08}.seg")
}

/// Bytes available to us on the file system holding `path`.
fn available(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Writes `length` zeros into `file` from `offset` and waits until they are on the disk.
/// Blocking.
fn write_zeros(file: &File, offset: u64, length: usize) -> std::io::Result<()> {
    file.write_all_at(&vec![0_u8; length], offset)?;
    file.sync_data()
}

/// Makes segment `number` and syncs it and its directory. Blocking.
fn create_segment(root: &Path, number: u64) -> std::io::Result<Segment> {
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
type Scanned = (u64, u64, Sender);

/// The records of `file` from `from` on, while they check out, and where the last one
/// ends. Blocking.
fn scan(file: &File, nonce: &[u8; 8], from: u64) -> std::io::Result<(Vec<Scanned>, u64)> {
    scan_upto(file, nonce, from, file.metadata()?.len())
}

/// [`scan`] of a file `size` bytes long.
fn scan_upto(
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
fn open_segment(path: &Path) -> std::io::Result<Option<(File, [u8; 8])>> {
    let file = File::options().read(true).write(true).open(path)?;
    let mut header = [0_u8; HEADER as usize];
    if file.read_exact_at(&mut header, 0).is_err() || &header[0..8] != SEGMENT_MAGIC {
        return Ok(None);
    }
    let nonce = header[16..24].try_into().expect("8 bytes");
    Ok(Some((file, nonce)))
}

/// The segments under `root`, by number.
fn segment_numbers(root: &Path) -> std::io::Result<Vec<u64>> {
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

impl Spool {
    /// Opens (creating) the spool under `root`. No segment takes records until
    /// [`Spool::recover`] has found where each one ends.
    pub fn open(root: &Path, layout: Layout) -> std::io::Result<Self> {
        Self::open_on(root, layout, Arc::new(FileSystem))
    }

    /// [`Spool::open`], with records synced by `disk`.
    pub fn open_on(root: &Path, layout: Layout, disk: Arc<dyn Disk>) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("segments"))?;
        let next = segment_numbers(root)?.last().map_or(1, |n| n + 1);
        Ok(Self {
            shared: Arc::new(Shared {
                root: root.to_path_buf(),
                layout,
                idle: Mutex::default(),
                next: AtomicU64::new(next),
                writers: AtomicUsize::new(0),
                last_written: Mutex::new(Instant::now()),
                ended: tokio::sync::Notify::new(),
                preparing: AtomicBool::new(false),
                preparer: AtomicBool::new(false),
                keeping: Mutex::default(),
                disk,
            }),
        })
    }

    /// Reads every segment beyond `indexed` (segment → where the last record the index
    /// names ends) and returns the records found there, which the index lacks: ones a
    /// crash kept from being indexed. The segments are then open for appending after
    /// their last record. Blocking.
    pub fn recover(&self, indexed: &HashMap<String, u64>) -> std::io::Result<Vec<Found>> {
        let mut found = Vec::new();
        for number in segment_numbers(&self.shared.root)? {
            let relative = segment_name(number);
            let path = self.shared.root.join(&relative);
            let Some((file, nonce)) = open_segment(&path)? else {
                std::fs::remove_file(&path)?;
                continue;
            };
            let from = indexed
                .get(&relative)
                .copied()
                .unwrap_or(HEADER)
                .max(HEADER);
            let length = file.metadata()?.len();
            let (records, end) = scan_upto(&file, &nonce, from, length)?;
            found.extend(records.into_iter().map(|(offset, length, sender)| Found {
                stored: Stored {
                    path: path.clone(),
                    offset,
                    length,
                },
                relative: relative.clone(),
                sender,
            }));
            if end < self.shared.layout.segment_bytes {
                lock(&self.shared.idle).push(Segment {
                    file: Arc::new(file),
                    relative,
                    nonce,
                    end,
                    length,
                    buffer: Vec::new(),
                });
            }
        }
        Ok(found)
    }

    /// Whether `stored` is a whole record of its segment: its header is there, with the
    /// segment's nonce, its length, and the CRC of its bytes. The index may name a record
    /// before its sync is done (see [`crate::scp`]), so at start the last record the
    /// index names in each segment is checked with this. Blocking.
    pub fn holds(stored: &Stored) -> std::io::Result<bool> {
        let Some(start) = stored.offset.checked_sub(HEADER) else {
            return Ok(false);
        };
        let Some((file, nonce)) = open_segment(&stored.path)? else {
            return Ok(false);
        };
        let end = start + HEADER + stored.length;
        if start < HEADER || file.metadata()?.len() < end {
            return Ok(false);
        }
        let (records, _) = scan_upto(&file, &nonce, start, end)?;
        Ok(records
            .first()
            .is_some_and(|&(offset, length, _)| offset == stored.offset && length == stored.length))
    }

    /// How many instances are being kept now ([`Incoming::keeping`]).
    #[cfg(test)]
    pub(crate) fn kept_now(&self) -> usize {
        lock(&self.shared.keeping).len()
    }

    /// Every record in the spool's segments. Blocking; for checks and tests.
    pub fn records(root: &Path) -> std::io::Result<Vec<Stored>> {
        let mut all = Vec::new();
        for number in segment_numbers(root)? {
            let path = root.join(segment_name(number));
            if let Some((file, nonce)) = open_segment(&path)? {
                let (records, _) = scan(&file, &nonce, HEADER)?;
                all.extend(records.into_iter().map(|(offset, length, _)| Stored {
                    path: path.clone(),
                    offset,
                    length,
                }));
            }
        }
        Ok(all)
    }

    /// The absolute path of one relative to the spool.
    pub fn path(&self, relative: &Path) -> PathBuf {
        self.shared.root.join(relative)
    }

    /// Where an indexed instance is: `relative` (to the spool), from `offset`, `length`
    /// bytes.
    pub fn stored(&self, relative: &str, offset: i64, length: i64) -> Stored {
        Stored {
            path: self.shared.root.join(relative),
            offset: u64::try_from(offset).unwrap_or(0),
            length: u64::try_from(length).unwrap_or(0),
        }
    }

    /// Starts receiving an instance from `sender`, at the end of the idle segment with the
    /// most room prepared, or in a new one.
    pub async fn begin(&self, sender: Sender) -> std::io::Result<Incoming> {
        let writer = Writer::new(&self.shared);
        let taken = {
            let mut idle = lock(&self.shared.idle);
            let most = (0..idle.len()).max_by_key(|&i| idle[i].room());
            most.map(|i| idle.swap_remove(i))
        };
        let mut segment = match taken {
            Some(segment) => segment,
            None => {
                let root = self.shared.root.clone();
                let number = self.shared.next.fetch_add(1, Ordering::Relaxed);
                tokio::task::spawn_blocking(move || create_segment(&root, number))
                    .await
                    .map_err(std::io::Error::other)??
            }
        };
        let start = segment.end;
        segment.buffer.clear();
        segment.buffer.reserve(WRITE_EVERY);
        Ok(Incoming {
            spool: self.clone(),
            _writer: writer,
            segment: Some(segment),
            sender,
            start,
            written: 0,
            crc: crc32fast::Hasher::new(),
            state: State::Writing,
        })
    }

    fn give_back(&self, segment: Segment) {
        if segment.end < self.shared.layout.segment_bytes {
            lock(&self.shared.idle).push(segment);
        }
    }

    /// Room prepared in the idle segments, ahead of their last records.
    pub fn prepared(&self) -> u64 {
        lock(&self.shared.idle).iter().map(Segment::room).sum()
    }

    /// Whether a segment is being prepared now.
    pub fn preparing(&self) -> bool {
        self.shared.preparing.load(Ordering::SeqCst)
    }

    /// Waits until no instance is being received and none has been for [`QUIET`].
    async fn quiet(&self) {
        loop {
            let ended = self.shared.ended.notified();
            if self.shared.writers.load(Ordering::SeqCst) > 0 {
                // A permit left by an earlier end may wake this at once; then it looks again.
                let _ = tokio::time::timeout(QUIET, ended).await;
                continue;
            }
            let since = lock(&self.shared.last_written).elapsed();
            if since >= QUIET {
                return;
            }
            tokio::time::sleep(QUIET - since).await;
        }
    }

    /// Keeps [`Layout::prepared_bytes`] of room prepared, a new segment at a time, while
    /// the spool is quiet and the file system has room. Runs until dropped (a task to
    /// abort); returns at once if nothing is to be prepared or another call runs.
    pub async fn prepare(self) {
        let layout = self.shared.layout;
        if layout.prepared_bytes == 0 || self.shared.preparer.swap(true, Ordering::SeqCst) {
            return;
        }
        let _running = Preparer(self.shared.clone());
        loop {
            if self.prepared() >= layout.prepared_bytes {
                let _ = tokio::time::timeout(QUIET, self.shared.ended.notified()).await;
                continue;
            }
            self.quiet().await;
            if self.prepared() >= layout.prepared_bytes {
                continue;
            }
            let root = self.shared.root.clone();
            let free = tokio::task::spawn_blocking(move || available(&root))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r);
            match free {
                Ok(free) if free >= layout.segment_bytes.saturating_add(KEEP_FREE) => {}
                Ok(free) => {
                    tracing::warn!(free, "too little disk free to prepare a spool segment");
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot tell the spool's free disk");
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    continue;
                }
            }
            self.shared.preparing.store(true, Ordering::SeqCst);
            let prepared = self.prepare_segment().await;
            let (segment, outcome) = prepared;
            if let Err(e) = &outcome {
                tracing::warn!(error = %e, "preparing a spool segment");
            }
            // One cut short is still a segment, with the room it got.
            if let Some(segment) = segment {
                lock(&self.shared.idle).push(segment);
            }
            let failed = outcome.is_err();
            self.shared.preparing.store(false, Ordering::SeqCst);
            if failed {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
        }
    }

    /// Makes a new segment and fills it with zeros, a piece at a time whenever the spool
    /// is quiet, then syncs it. Gives back the segment as far as it got, and how it ended.
    async fn prepare_segment(&self) -> (Option<Segment>, std::io::Result<()>) {
        let root = self.shared.root.clone();
        let number = self.shared.next.fetch_add(1, Ordering::Relaxed);
        let made = tokio::task::spawn_blocking(move || create_segment(&root, number))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        let mut segment = match made {
            Ok(segment) => segment,
            Err(e) => return (None, Err(e)),
        };
        tracing::debug!(segment = %segment.relative, "preparing a spool segment");
        let length = self.shared.layout.segment_bytes + HEADER;
        while segment.length < length {
            self.quiet().await;
            let (file, at) = (segment.file.clone(), segment.length);
            let n = usize::try_from((length - at).min(ZEROS_AT_ONCE as u64)).expect("small");
            let written = tokio::task::spawn_blocking(move || write_zeros(&file, at, n))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r);
            if let Err(e) = written {
                segment.length = segment.file.metadata().map_or(at, |m| m.len());
                return (Some(segment), Err(e));
            }
            segment.length += n as u64;
        }
        let file = segment.file.clone();
        let synced = tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
        tracing::debug!(segment = %segment.relative, "spool segment prepared");
        (Some(segment), synced)
    }
}

/// One writer's hold on an instance it keeps ([`Incoming::keeping`]).
#[derive(Debug)]
pub struct Keeping {
    shared: Arc<Shared>,
    sop_instance_uid: String,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Keeping {
    fn drop(&mut self) {
        let mut keeping = lock(&self.shared.keeping);
        drop(self.held.take());
        // Nobody else waits for it (the map's is the only reference left): forgotten.
        if keeping
            .get(&self.sop_instance_uid)
            .is_some_and(|one| Arc::strong_count(one) == 1)
        {
            keeping.remove(&self.sop_instance_uid);
        }
    }
}

/// A record's sync under way.
#[derive(Debug)]
pub struct Syncing(tokio::task::JoinHandle<std::io::Result<()>>);

impl Syncing {
    /// Waits until the record is on disk, or the sync failed.
    pub async fn wait(self) -> std::io::Result<()> {
        self.0.await.map_err(std::io::Error::other)?
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes are arriving; nothing at the record's place is a record yet.
    Writing,
    /// Its header is written: it may be synced, and it may be indexed.
    Finished,
}

/// An instance being received: a record at the end of a segment.
#[derive(Debug)]
pub struct Incoming {
    spool: Spool,
    _writer: Writer,
    /// Taken back by [`Incoming::keep`] and [`Incoming::discard`].
    segment: Option<Segment>,
    sender: Sender,
    /// Where the record's header goes; its bytes follow.
    start: u64,
    written: u64,
    crc: crc32fast::Hasher,
    state: State,
}

impl Incoming {
    fn segment(&self) -> &Segment {
        self.segment.as_ref().expect("held until kept or discarded")
    }

    fn segment_mut(&mut self) -> &mut Segment {
        self.segment.as_mut().expect("held until kept or discarded")
    }

    /// Takes the segment back, knowing how long the file has grown.
    fn release(&mut self) -> Option<Segment> {
        let end = self.start + HEADER + self.written;
        let mut segment = self.segment.take()?;
        segment.length = segment.length.max(end);
        Some(segment)
    }

    /// Appends bytes. They go to the segment (the page cache, not the disk) every 128 KiB,
    /// from the calling task: a thread hop would cost more than the copy. Large pieces (a
    /// PDU's value, with the PDU sizes senders use) go there straight, not through the
    /// buffer.
    ///
    /// Until the record is complete, its bytes reach the segment in writes that end on a
    /// page boundary (the rest waits in the buffer): a write that covers a page whole never
    /// makes the kernel read the page's old bytes first, as it must for a partial page no
    /// longer in the page cache (prepared zeros pushed out of it).
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        let at = self.start + HEADER + self.written;
        self.written += bytes.len() as u64;
        let end = at + bytes.len() as u64;
        let segment = self.segment.as_mut().expect("held until kept or discarded");
        if bytes.len() < DIRECT_FROM {
            segment.buffer.extend_from_slice(bytes);
            if segment.buffer.len() >= WRITE_EVERY {
                segment.write_out(end, false)?;
            }
            return Ok(());
        }
        // What is buffered, completed to a page boundary; then the bytes up to the last
        // boundary straight from `bytes`; what follows waits.
        let aligned = usize::try_from(end - end % PAGE - at).expect("within bytes");
        let mut from = 0;
        if !segment.buffer.is_empty() {
            let to_boundary = usize::try_from((PAGE - at % PAGE) % PAGE).expect("small");
            from = to_boundary.min(aligned);
            segment.buffer.extend_from_slice(&bytes[..from]);
            segment.write_out(at + from as u64, true)?;
        }
        segment
            .file
            .write_all_at(&bytes[from..aligned], at + from as u64)?;
        segment.buffer.extend_from_slice(&bytes[aligned..]);
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Hands what is buffered to the segment, so that it can be read back.
    pub fn flush(&mut self) -> std::io::Result<()> {
        let end = self.start + HEADER + self.written;
        self.segment_mut().write_out(end, true)
    }

    /// Where the instance's bytes are (all of them once flushed).
    pub fn stored(&self) -> Stored {
        Stored {
            path: self.spool.shared.root.join(&self.segment().relative),
            offset: self.start + HEADER,
            length: self.written,
        }
    }

    /// The segment relative to the spool, and the offset: what the index records.
    pub fn place(&self) -> (String, i64) {
        (
            self.segment().relative.clone(),
            i64::try_from(self.start + HEADER).unwrap_or(i64::MAX),
        )
    }

    /// Writes the record's header and starts syncing the segment; once the returned
    /// [`Syncing`] says so, the instance survives a crash (and is found again by
    /// [`Spool::recover`] if never indexed).
    pub fn seal(&mut self) -> std::io::Result<Syncing> {
        self.flush()?;
        let header = record_header(
            &self.segment().nonce,
            self.written,
            self.crc.clone().finalize(),
            &self.sender,
        );
        self.segment().file.write_all_at(&header, self.start)?;
        self.state = State::Finished;
        let (file, disk) = (self.segment().file.clone(), self.spool.shared.disk.clone());
        Ok(Syncing(tokio::task::spawn_blocking(move || {
            disk.sync_data(&file)
        })))
    }

    /// [`Incoming::seal`], and waits for the sync.
    pub async fn finish(&mut self) -> std::io::Result<()> {
        self.seal()?.wait().await
    }

    /// Waits until no other writer is keeping the instance `sop_instance_uid` (indexing
    /// it while its record is synced), and keeps the others waiting until the answer is
    /// dropped. The index commits before the sync is done, so without this a second copy
    /// could find the first indexed, be answered with success as a duplicate, and then
    /// the first's sync fail (or the machine crash) and take the instance out again.
    pub async fn keeping(&self, sop_instance_uid: &str) -> Keeping {
        let shared = self.spool.shared.clone();
        let one = lock(&shared.keeping)
            .entry(sop_instance_uid.to_owned())
            .or_default()
            .clone();
        let held = one.lock_owned().await;
        Keeping {
            shared,
            sop_instance_uid: sop_instance_uid.to_owned(),
            held: Some(held),
        }
    }

    /// Keeps the record: the segment's next record goes after it.
    pub fn keep(mut self) {
        if let Some(mut segment) = self.release() {
            segment.end = self.start + HEADER + self.written;
            self.spool.give_back(segment);
        }
    }

    /// Drops the record: the segment's next record is written over it. A finished one
    /// has its header wiped and synced first, so that it is not found again. If that
    /// fails, the segment is closed instead.
    pub async fn discard(mut self) {
        let Some(segment) = self.release() else {
            return;
        };
        if self.state == State::Finished {
            let (file, start) = (segment.file.clone(), self.start);
            let wiped = tokio::task::spawn_blocking(move || {
                file.write_all_at(&[0_u8; HEADER as usize], start)?;
                file.sync_data()
            })
            .await
            .map_err(std::io::Error::other);
            if !matches!(wiped, Ok(Ok(()))) {
                return;
            }
        }
        self.spool.give_back(segment);
    }
}

impl Drop for Incoming {
    /// Given up without a word (its task was cancelled): an unfinished record is written
    /// over; a finished one might be indexed, so its segment takes no more records.
    fn drop(&mut self) {
        if let Some(segment) = self.release() {
            if self.state == State::Writing {
                self.spool.give_back(segment);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Sender {
        Sender {
            institution_id: 7,
            calling_ae: "COUNTY_CT".into(),
        }
    }

    /// Writes `bytes` in pieces of several sizes: small ones are buffered, large ones go
    /// straight to the segment when nothing is buffered, through the buffer otherwise.
    async fn put(spool: &Spool, bytes: &[u8]) -> Incoming {
        let mut incoming = spool.begin(sender()).await.unwrap();
        let mut rest = bytes;
        for size in [16 * 1024, 40 * 1024, 7, 130 * 1024, 40 * 1024]
            .iter()
            .cycle()
        {
            if rest.is_empty() {
                break;
            }
            let (piece, after) = rest.split_at((*size).min(rest.len()));
            incoming.write(piece).unwrap();
            rest = after;
            // Large pieces leave the segment's bytes ending on a page boundary.
            let buffered = incoming.segment().buffer.len() as u64;
            let end = incoming.start + HEADER + incoming.written;
            if piece.len() >= DIRECT_FROM || buffered >= WRITE_EVERY as u64 {
                assert!(buffered < PAGE && (end - buffered) % PAGE == 0);
            }
        }
        incoming.finish().await.unwrap();
        incoming
    }

    #[tokio::test]
    async fn kept_records_read_back_and_are_found_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), Layout::default()).unwrap();
        assert!(spool.recover(&HashMap::new()).unwrap().is_empty());
        let first: Vec<u8> = (0..700_000_u32).map(|i| (i % 251) as u8).collect();
        let second = b"a small one".to_vec();
        let a = put(&spool, &first).await;
        let stored_a = a.stored();
        let place_a = a.place();
        a.keep();
        let b = put(&spool, &second).await;
        let stored_b = b.stored();
        b.keep();
        assert_eq!(stored_a.read().unwrap(), first);
        // The reader of a record stops at its end, though the file goes on, and seeks
        // within it.
        let mut reader = stored_a.open().unwrap();
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert!(all == first);
        reader.seek(SeekFrom::Start(10)).unwrap();
        reader.seek_relative(5).unwrap();
        let mut some = [0_u8; 4];
        reader.read_exact(&mut some).unwrap();
        assert_eq!(some[..], first[15..19]);
        reader.seek(SeekFrom::End(-2)).unwrap();
        all.clear();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, first[first.len() - 2..]);
        reader.seek(SeekFrom::Start(0)).unwrap();
        assert!(reader.seek(SeekFrom::Current(-1)).is_err());
        let mut read = Vec::new();
        stored_b.open().unwrap().read_to_end(&mut read).unwrap();
        assert_eq!(read, second);
        assert_eq!(
            Spool::records(dir.path()).unwrap(),
            vec![stored_a.clone(), stored_b.clone()]
        );

        // After a restart, what the index names is skipped and the rest found again.
        let again = Spool::open(dir.path(), Layout::default()).unwrap();
        let indexed = HashMap::from([(place_a.0.clone(), stored_a.offset + stored_a.length)]);
        let found = again.recover(&indexed).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].stored, stored_b);
        assert_eq!(found[0].sender, sender());
        assert_eq!(found[0].relative, place_a.0);
        // New records go after the last one.
        let c = put(&again, b"third").await;
        assert_eq!(
            c.stored().offset,
            stored_b.offset + stored_b.length + HEADER
        );
        c.keep();
        assert_eq!(Spool::records(dir.path()).unwrap().len(), 3);
    }

    #[tokio::test]
    async fn discarded_unfinished_and_damaged_records_are_not_records() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), Layout::default()).unwrap();
        spool.recover(&HashMap::new()).unwrap();
        // Finished, then discarded (a duplicate, or the index refused it): wiped.
        let a = put(&spool, &[1_u8; 200_000]).await;
        a.discard().await;
        assert!(Spool::records(dir.path()).unwrap().is_empty());
        // Cut off while arriving: nothing; the next record takes its place.
        let mut b = spool.begin(sender()).await.unwrap();
        b.write(&[2_u8; 300_000]).unwrap();
        let start_b = b.stored().offset;
        drop(b);
        let c = put(&spool, &[3_u8; 1000]).await;
        assert_eq!(c.stored().offset, start_b);
        c.keep();
        assert_eq!(Spool::records(dir.path()).unwrap().len(), 1);
        // A record whose bytes do not match its CRC (torn by a crash) ends the segment.
        let d = put(&spool, &[4_u8; 5000]).await;
        let stored_d = d.stored();
        d.keep();
        let e = put(&spool, &[5_u8; 5000]).await;
        e.keep();
        assert_eq!(Spool::records(dir.path()).unwrap().len(), 3);
        let file = File::options().write(true).open(&stored_d.path).unwrap();
        file.write_all_at(&[9_u8], stored_d.offset + 10).unwrap();
        assert_eq!(Spool::records(dir.path()).unwrap().len(), 1);
        // And a restart appends after the last good record.
        let again = Spool::open(dir.path(), Layout::default()).unwrap();
        assert!(again.recover(&HashMap::new()).unwrap().len() == 1);
        let f = put(&again, b"after").await;
        assert_eq!(f.stored().offset, stored_d.offset);
    }

    const MIB: u64 = 1024 * 1024;

    /// Waits until `spool` has `bytes` prepared and prepares nothing more.
    async fn until_prepared(spool: &Spool, bytes: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while spool.prepared() < bytes || spool.preparing() {
            assert!(
                Instant::now() < deadline,
                "only {} prepared",
                spool.prepared()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn lengths(root: &Path) -> Vec<u64> {
        segment_numbers(root)
            .unwrap()
            .into_iter()
            .map(|n| std::fs::metadata(root.join(segment_name(n))).unwrap().len())
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn segments_are_prepared_while_quiet_and_records_fill_them_without_growing_them() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout {
            segment_bytes: MIB,
            prepared_bytes: MIB + MIB / 2,
        };
        let spool = Spool::open(dir.path(), layout).unwrap();
        spool.recover(&HashMap::new()).unwrap();
        let preparer = tokio::spawn(spool.clone().prepare());
        until_prepared(&spool, MIB + MIB / 2).await;
        // A second preparer of the same spool does nothing.
        tokio::time::timeout(Duration::from_secs(1), spool.clone().prepare())
            .await
            .expect("returns at once");
        // Two segments, each with a MiB of zeros after its header.
        assert_eq!(lengths(dir.path()), vec![MIB + HEADER, MIB + HEADER]);
        let bytes = std::fs::read(dir.path().join(segment_name(1))).unwrap();
        assert!(bytes[HEADER as usize..].iter().all(|&b| b == 0));
        assert!(Spool::records(dir.path()).unwrap().is_empty());
        assert_eq!(spool.prepared(), 2 * MIB);

        // A record goes into a prepared segment, which does not grow.
        let first: Vec<u8> = (0..600_000_u32).map(|i| (i % 253) as u8).collect();
        let mut a = spool.begin(sender()).await.unwrap();
        a.write(&first).unwrap();
        // Nothing is prepared while an instance arrives, nor for a second after.
        tokio::time::sleep(QUIET + Duration::from_millis(300)).await;
        assert!(!spool.preparing());
        assert_eq!(lengths(dir.path()).len(), 2);
        a.finish().await.unwrap();
        let stored_a = a.stored();
        a.keep();
        assert_eq!(stored_a.read().unwrap(), first);
        assert_eq!(
            std::fs::metadata(&stored_a.path).unwrap().len(),
            MIB + HEADER
        );
        assert_eq!(Spool::records(dir.path()).unwrap(), vec![stored_a.clone()]);
        // Less than 1.5 MiB of room is left: once quiet, a third segment is prepared.
        assert!(spool.prepared() < MIB + MIB / 2);
        until_prepared(&spool, MIB + MIB / 2).await;
        assert_eq!(lengths(dir.path()), vec![MIB + HEADER; 3]);
        preparer.abort();
        let _ = preparer.await;
        assert!(!spool.preparing());

        // After a restart the room is known again from the files, and the next record
        // goes where the most is.
        let again = Spool::open(dir.path(), layout).unwrap();
        let found = again.recover(&HashMap::new()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].stored, stored_a);
        assert_eq!(again.prepared(), spool.prepared());
        let b = put(&again, b"second").await;
        assert_ne!(b.stored().path, stored_a.path);
        b.keep();
        // A record that passes a segment's end grows it, and closes it.
        let big = vec![7_u8; (MIB + MIB / 2) as usize];
        let c = put(&again, &big).await;
        let stored_c = c.stored();
        c.keep();
        assert_eq!(stored_c.read().unwrap(), big);
        assert!(std::fs::metadata(&stored_c.path).unwrap().len() > MIB + HEADER);
        let d = put(&again, b"fourth").await;
        assert_ne!(d.stored().path, stored_c.path);
        d.keep();
        assert_eq!(Spool::records(dir.path()).unwrap().len(), 4);
    }

    #[tokio::test]
    async fn a_record_is_held_while_its_header_and_bytes_check_out() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), Layout::default()).unwrap();
        spool.recover(&HashMap::new()).unwrap();
        let a = put(&spool, b"the first instance").await;
        let stored_a = a.stored();
        a.keep();
        let b = put(&spool, b"the second instance").await;
        let stored_b = b.stored();
        b.keep();
        assert!(Spool::holds(&stored_a).unwrap());
        assert!(Spool::holds(&stored_b).unwrap());
        // Not a record's place, or longer than it.
        let elsewhere = Stored {
            offset: stored_b.offset + 1,
            ..stored_b.clone()
        };
        assert!(!Spool::holds(&elsewhere).unwrap());
        let longer = Stored {
            length: stored_a.length + 1,
            ..stored_a.clone()
        };
        assert!(!Spool::holds(&longer).unwrap());
        // A byte that never reached the disk, and then a header that never did.
        let file = File::options().write(true).open(&stored_b.path).unwrap();
        file.write_all_at(b"X", stored_b.offset + 4).unwrap();
        assert!(!Spool::holds(&stored_b).unwrap());
        file.write_all_at(&[0; HEADER as usize], stored_a.offset - HEADER)
            .unwrap();
        assert!(!Spool::holds(&stored_a).unwrap());
    }

    #[tokio::test]
    async fn concurrent_writers_use_their_own_segments() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), Layout::default()).unwrap();
        spool.recover(&HashMap::new()).unwrap();
        let mut a = spool.begin(sender()).await.unwrap();
        let mut b = spool.begin(sender()).await.unwrap();
        assert_ne!(a.place().0, b.place().0);
        a.write(b"one").unwrap();
        b.write(b"two").unwrap();
        a.finish().await.unwrap();
        b.finish().await.unwrap();
        let (sa, sb) = (a.stored(), b.stored());
        a.keep();
        b.keep();
        assert_eq!(sa.read().unwrap(), b"one");
        assert_eq!(sb.read().unwrap(), b"two");
        // A segment header a crash cut short is removed at the next start.
        std::fs::write(dir.path().join("segments/00000009.seg"), b"DKSEG").unwrap();
        let again = Spool::open(dir.path(), Layout::default()).unwrap();
        assert_eq!(again.recover(&HashMap::new()).unwrap().len(), 2);
        assert!(!dir.path().join("segments/00000009.seg").exists());
    }
}
