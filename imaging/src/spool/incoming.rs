//! An instance being received: a record appended to a segment as its bytes arrive, sealed
//! and synced, then kept or given back.

use std::os::unix::fs::FileExt as _;
use std::sync::Arc;

use crate::lock;

use super::segment::{HEADER, PAGE, Segment, Sender, record_header};
use super::stored::Stored;
use super::{Shared, Spool, Writer};

/// Every this many bytes received, what has arrived goes to the disk in the background.
pub(super) const WRITE_EVERY: usize = 128 * 1024;
/// Bytes written at once that go to the segment without the buffer: a call for each
/// costs less than copying them into it.
pub(super) const DIRECT_FROM: usize = 32 * 1024;

/// One writer's hold on an instance it keeps ([`Incoming::keeping`]).
#[derive(Debug)]
pub struct Keeping {
    pub(super) shared: Arc<Shared>,
    pub(super) sop_instance_uid: String,
    pub(super) held: Option<tokio::sync::OwnedMutexGuard<()>>,
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
pub(super) enum State {
    /// Bytes are arriving; nothing at the record's place is a record yet.
    Writing,
    /// Its header is written: it may be synced, and it may be indexed.
    Finished,
}

/// An instance being received: a record at the end of a segment.
#[derive(Debug)]
pub struct Incoming {
    pub(super) spool: Spool,
    pub(super) _writer: Writer,
    /// Taken back by [`Incoming::keep`] and [`Incoming::discard`].
    pub(super) segment: Option<Segment>,
    pub(super) sender: Sender,
    /// Where the record's header goes; its bytes follow.
    pub(super) start: u64,
    pub(super) written: u64,
    pub(super) crc: crc32fast::Hasher,
    pub(super) state: State,
}

impl Incoming {
    pub(super) fn segment(&self) -> &Segment {
        self.segment.as_ref().expect("held until kept or discarded")
    }

    pub(super) fn segment_mut(&mut self) -> &mut Segment {
        self.segment.as_mut().expect("held until kept or discarded")
    }

    /// Takes the segment back, knowing how long the file has grown.
    pub(super) fn release(&mut self) -> Option<Segment> {
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
