//! Durable storage of received instances. An instance is written into a file in
//! `incoming/` as its PDUs arrive (files made ahead of time, so that none is created while
//! a sender waits), moved under `objects/` to a name derived from its SOP Instance UID
//! (never over another copy), then synced with its directory: after that it survives a
//! crash. It is indexed only after that, so a file under `objects/` that the index does
//! not name is one a crash interrupted, and the next copy of that instance replaces it.
//! A failed or aborted transfer leaves nothing; leftovers in `incoming/` are removed at
//! start.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::RngCore as _;
use sha1::{Digest as _, Sha1};
use tokio::io::AsyncWriteExt as _;

/// The spool's directories.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
    /// Empty files in `incoming/`, made in the background: creating a file costs ext4 a
    /// search for a free inode, which is better spent while nobody waits.
    ready: Arc<Mutex<Vec<(PathBuf, std::fs::File)>>>,
    /// Objects moved into place whose instance is not settled yet (synced and indexed, or
    /// removed again): another copy of the same instance waits for them.
    placing: Arc<Mutex<HashSet<PathBuf>>>,
}

/// How many empty incoming files are kept ready.
const READY: usize = 4;

/// Where an instance is placed.
#[derive(Debug, PartialEq, Eq)]
pub enum Placed {
    /// Moved to its name under `objects/`.
    Placed,
    /// A file is there already (stored before, or left by a crash); the incoming file is
    /// still in `incoming/`.
    Occupied,
    /// Another copy of the same instance is being placed right now.
    Busy,
}

/// An instance being received.
#[derive(Debug)]
pub struct Incoming {
    path: PathBuf,
    /// Set once moved into place: the object's key in [`Spool::placing`] and whether its
    /// directory was made for it.
    placed: Option<Settling>,
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

/// An object in place but not yet settled; dropping it lets other copies in.
#[derive(Debug)]
struct Settling {
    placing: Arc<Mutex<HashSet<PathBuf>>>,
    relative: PathBuf,
    new_dir: bool,
}

impl Drop for Settling {
    fn drop(&mut self) {
        lock(&self.placing).remove(&self.relative);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Makes an empty file with a random name in `incoming/`.
fn create_incoming(root: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let mut name = [0_u8; 12];
    rand::thread_rng().fill_bytes(&mut name);
    let path = root
        .join("incoming")
        .join(format!("{}.part", hex::encode(name)));
    let file = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}

/// Renames `from` to `to` unless something is at `to` (returns false then).
fn rename_new(from: &Path, to: &Path) -> std::io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST) => Ok(false),
        // A file system without RENAME_NOREPLACE: a link never replaces either.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            match std::fs::hard_link(from, to) {
                Ok(()) => std::fs::remove_file(from).map(|()| true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e.into()),
    }
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
        let ready = (0..READY)
            .map(|_| create_incoming(root))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self {
            root: root.to_path_buf(),
            ready: Arc::new(Mutex::new(ready)),
            placing: Arc::default(),
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

    /// Starts receiving an instance, in a file made ahead of time if one is ready.
    pub async fn begin(&self) -> std::io::Result<Incoming> {
        let taken = lock(&self.ready).pop();
        let (path, file) = match taken {
            Some(ready) => ready,
            None => {
                let root = self.root.clone();
                tokio::task::spawn_blocking(move || create_incoming(&root))
                    .await
                    .map_err(std::io::Error::other)??
            }
        };
        let (root, ready) = (self.root.clone(), self.ready.clone());
        tokio::task::spawn_blocking(move || {
            if lock(&ready).len() < READY {
                if let Ok(made) = create_incoming(&root) {
                    lock(&ready).push(made);
                }
            }
        });
        let syncer = std::sync::Arc::new(file.try_clone()?);
        Ok(Incoming {
            path,
            placed: None,
            file: tokio::io::BufWriter::with_capacity(
                SYNC_EVERY as usize,
                tokio::fs::File::from_std(file),
            ),
            written: 0,
            syncer,
            syncing: None,
            synced: 0,
        })
    }

    /// Moves a received instance to `relative` under `objects/`, unless a file is there
    /// or another copy is being placed there. Nothing is synced yet: [`Incoming::finish`]
    /// does that, and until then the object is the incoming file's to remove again
    /// ([`Incoming::discard`]).
    pub async fn place(&self, incoming: &mut Incoming, relative: &Path) -> std::io::Result<Placed> {
        self.move_into_place(incoming, relative, false).await
    }

    /// Moves a received instance to `relative`, replacing the file there: one that a crash
    /// left before it was indexed.
    pub async fn replace(
        &self,
        incoming: &mut Incoming,
        relative: &Path,
    ) -> std::io::Result<Placed> {
        self.move_into_place(incoming, relative, true).await
    }

    async fn move_into_place(
        &self,
        incoming: &mut Incoming,
        relative: &Path,
        replace: bool,
    ) -> std::io::Result<Placed> {
        if !lock(&self.placing).insert(relative.to_path_buf()) {
            return Ok(Placed::Busy);
        }
        // Until the move is done, this holds the place (and gives it back if it fails).
        let mut settling = Settling {
            placing: self.placing.clone(),
            relative: relative.to_path_buf(),
            new_dir: false,
        };
        let from = incoming.path.clone();
        let to = self.root.join(relative);
        let moved = tokio::task::spawn_blocking(move || {
            let dir = to.parent().expect("a parent");
            let new_dir = !dir.exists();
            if new_dir {
                std::fs::create_dir_all(dir)?;
            }
            let moved = if replace {
                std::fs::rename(&from, &to).map(|()| true)?
            } else {
                rename_new(&from, &to)?
            };
            Ok::<_, std::io::Error>(moved.then_some((to, new_dir)))
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(match moved {
            Some((to, new_dir)) => {
                incoming.path = to;
                settling.new_dir = new_dir;
                incoming.placed = Some(settling);
                Placed::Placed
            }
            None => Placed::Occupied,
        })
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

    /// Flushes and syncs the file, and once it is in place its directory: when this
    /// returns, all of it is on disk where it belongs.
    pub async fn finish(&mut self) -> std::io::Result<()> {
        self.file.flush().await?;
        self.settle().await?;
        let file = self.syncer.clone();
        let dir = self.placed.as_ref().map(|s| {
            (
                self.path.parent().expect("a parent").to_path_buf(),
                s.new_dir,
            )
        });
        tokio::task::spawn_blocking(move || {
            // Synced after the move, the file's metadata and its new name go to the
            // journal together, and the directory's sync finds little left to do.
            file.sync_all()?;
            if let Some((dir, new_dir)) = dir {
                sync_dir(&dir)?;
                if new_dir {
                    sync_dir(dir.parent().expect("objects/"))?;
                }
            }
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Drops the file, in `incoming/` or in place.
    pub async fn discard(mut self) {
        let _ = self.settle().await;
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.path).await;
        // Only now may another copy take the place.
        drop(self.placed.take());
    }
}
