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

mod incoming;
mod prepare;
mod segment;
mod stored;
#[cfg(test)]
mod tests;

pub use incoming::{Incoming, Keeping, Syncing};
pub use segment::{Found, HEADER, Sender};
pub use stored::{Stored, Within};

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// Tokio's clock (the system's, unless a test pauses it): the quiet the preparer waits
// for is measured on the same clock as its timers.
use tokio::time::Instant;

use crate::lock;

use incoming::{State, WRITE_EVERY};
use segment::{
    Segment, create_segment, open_segment, scan, scan_upto, segment_name, segment_numbers,
};

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
}
