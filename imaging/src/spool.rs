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
}

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
        Ok(Incoming {
            path,
            file: tokio::io::BufWriter::with_capacity(256 * 1024, file),
            written: 0,
        })
    }

    /// Moves a finished instance to `relative` and syncs the directories on the way, so
    /// that it is on disk when this returns.
    pub async fn commit(&self, incoming: Incoming, relative: &Path) -> std::io::Result<()> {
        let from = incoming.path.clone();
        let to = self.root.join(relative);
        let incoming_dir = self.root.join("incoming");
        tokio::task::spawn_blocking(move || {
            let dir = to.parent().expect("a parent");
            let created = !dir.exists();
            std::fs::create_dir_all(dir)?;
            std::fs::rename(&from, &to)?;
            sync_dir(dir)?;
            sync_dir(&incoming_dir)?;
            if created {
                sync_dir(dir.parent().expect("objects/"))?;
            }
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

impl Incoming {
    /// Appends bytes.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes).await?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Where the partial file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and syncs the file.
    pub async fn finish(&mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        self.file.get_ref().sync_all().await
    }

    /// Drops the partial file.
    pub async fn discard(self) {
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}
