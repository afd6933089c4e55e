//! Durable storage of received instances. An instance is written into `incoming/` as its
//! PDUs arrive, synced, then renamed into `objects/` under a name derived from its SOP
//! Instance UID, and the directory is synced too: after that it survives a crash. A
//! failed or aborted transfer leaves nothing under `objects/`; leftovers in `incoming/`
//! are removed at start.

use std::path::{Path, PathBuf};

use rand::RngCore as _;
use sha1::{Digest as _, Sha1};
use tokio::io::AsyncWriteExt as _;

/// The spool's directories.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

/// An instance being received.
#[derive(Debug)]
pub struct Incoming {
    path: PathBuf,
    file: tokio::io::BufWriter<tokio::fs::File>,
    written: u64,
    /// The same file, for syncs in the background while the rest arrives.
    syncer: std::sync::Arc<std::fs::File>,
    syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// Bytes handed to a sync so far.
    synced: u64,
}

/// Every this many bytes received, what has arrived is synced in the background, so
/// that the sync before the answer waits only for the tail.
const SYNC_EVERY: u64 = 128 * 1024;

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Spool {
    /// Opens (creating) the spool under `root` and clears what an interrupted run left in
    /// `incoming/`.
    pub fn open(root: &Path) -> std::io::Result<Self> {
        let incoming = root.join("incoming");
        if incoming.exists() {
            std::fs::remove_dir_all(&incoming)?;
        }
        std::fs::create_dir_all(&incoming)?;
        std::fs::create_dir_all(root.join("objects"))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Where the instance `sop_instance_uid` lives, relative to the spool: spread over 256
    /// directories by a hash of the UID, so no directory grows too large.
    pub fn relative_path(sop_instance_uid: &str) -> PathBuf {
        let hash = hex::encode(Sha1::digest(sop_instance_uid.as_bytes()));
        PathBuf::from("objects")
            .join(&hash[..2])
            .join(format!("{hash}.dcm"))
    }

    /// The absolute path of a relative one.
    pub fn path(&self, relative: &Path) -> PathBuf {
        self.root.join(relative)
    }

    /// Starts receiving an instance.
    pub async fn begin(&self) -> std::io::Result<Incoming> {
        let mut name = [0_u8; 12];
        rand::thread_rng().fill_bytes(&mut name);
        let path = self
            .root
            .join("incoming")
            .join(format!("{}.part", hex::encode(name)));
        let file = tokio::fs::File::create(&path).await?;
        let syncer = std::sync::Arc::new(file.try_clone().await?.into_std().await);
        Ok(Incoming {
            path,
            file: tokio::io::BufWriter::with_capacity(SYNC_EVERY as usize, file),
            written: 0,
            syncer,
            syncing: None,
            synced: 0,
        })
    }

    /// Moves a finished instance to `relative` unless a file is there already, and syncs
    /// the directory, so that it is on disk when this returns. Returns whether it was
    /// placed; when it was not, the incoming file is still there (see [`Spool::replace`]
    /// and [`Incoming::discard`]).
    pub async fn commit(&self, incoming: &Incoming, relative: &Path) -> std::io::Result<bool> {
        let from = incoming.path.clone();
        let to = self.root.join(relative);
        tokio::task::spawn_blocking(move || {
            let dir = to.parent().expect("a parent");
            let created = !dir.exists();
            std::fs::create_dir_all(dir)?;
            // A link, unlike a rename, never replaces what is there: of two copies of one
            // instance arriving at once, the first stays.
            match std::fs::hard_link(&from, &to) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(e),
            }
            sync_dir(dir)?;
            if created {
                sync_dir(dir.parent().expect("objects/"))?;
            }
            // The incoming name goes; that need not be durable, `open` clears leftovers.
            std::fs::remove_file(&from)?;
            Ok(true)
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Moves a finished instance to `relative`, replacing what is there (a file that a
    /// crash left unindexed), and syncs the directory.
    pub async fn replace(&self, incoming: Incoming, relative: &Path) -> std::io::Result<()> {
        let from = incoming.path.clone();
        let to = self.root.join(relative);
        drop(incoming);
        tokio::task::spawn_blocking(move || {
            std::fs::rename(&from, &to)?;
            sync_dir(to.parent().expect("a parent"))
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

impl Incoming {
    /// Appends bytes; now and then starts syncing what has arrived, in the background.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes).await?;
        self.written += bytes.len() as u64;
        let idle = self.syncing.as_ref().is_none_or(|s| s.is_finished());
        if self.written - self.synced >= SYNC_EVERY && idle {
            self.settle().await?;
            self.file.flush().await?;
            let file = self.syncer.clone();
            self.syncing = Some(tokio::task::spawn_blocking(move || file.sync_data()));
            self.synced = self.written;
        }
        Ok(())
    }

    /// Waits for the background sync, if any.
    async fn settle(&mut self) -> std::io::Result<()> {
        match self.syncing.take() {
            Some(sync) => sync.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Where the partial file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands what is buffered to the operating system, so that the file can be read.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush().await
    }

    /// Flushes and syncs the file: when this returns, all of it is on disk.
    pub async fn finish(&mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        self.settle().await?;
        self.file.get_ref().sync_all().await
    }

    /// Drops the partial file.
    pub async fn discard(mut self) {
        let _ = self.settle().await;
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}
