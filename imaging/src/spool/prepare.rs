//! Room prepared ahead of the writers: while no instance arrives, new segments are written
//! full of zeros and synced, a piece at a time, whenever the spool is quiet.

use std::fs::File;

use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::lock;

use super::segment::{HEADER, Segment, create_segment};
use super::{QUIET, Shared, Spool};

/// Zeros are written this many at a time, each piece waited for, so that a writer that
/// comes meanwhile finds at most one piece in the disk's queue before its own.
pub(super) const ZEROS_AT_ONCE: usize = 4 * 1024 * 1024;

/// Preparing stops while less than this would stay free on the spool's file system.
pub(super) const KEEP_FREE: u64 = 1024 * 1024 * 1024;

/// Marks the preparer gone when its task ends or is aborted.
pub(super) struct Preparer(Arc<Shared>);

impl Drop for Preparer {
    fn drop(&mut self) {
        self.0.preparing.store(false, Ordering::SeqCst);
        self.0.preparer.store(false, Ordering::SeqCst);
    }
}

/// Bytes available to us on the file system holding `path`.
pub(super) fn available(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Writes `length` zeros into `file` from `offset` and waits until they are on the disk.
/// Blocking.
pub(super) fn write_zeros(file: &File, offset: u64, length: usize) -> std::io::Result<()> {
    file.write_all_at(&vec![0_u8; length], offset)?;
    file.sync_data()
}

impl Spool {
    /// Waits until no instance is being received and none has been for [`QUIET`].
    pub(super) async fn quiet(&self) {
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

    /// Keeps [`super::Layout::prepared_bytes`] of room prepared, a new segment at a time, while
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
    pub(super) async fn prepare_segment(&self) -> (Option<Segment>, std::io::Result<()>) {
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
