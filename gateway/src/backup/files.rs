//! Copying files with their checksum, syncing them, and the paths a backup may name.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The folders of a backup directory, each the root of what it holds.
pub(super) const DATABASE: &str = "database";
/// The spool's files.
pub(super) const DICOM: &str = "dicom";
/// The requests' attachments.
pub(super) const ATTACHMENTS: &str = "attachments";

/// Whether `dir` is missing or holds nothing.
pub(super) fn empty_or_missing(dir: &Path) -> io::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Copies `from` (its first `length` bytes, or all of it) into the new file `to`,
/// making its folders, syncs it, and returns its size and SHA-256. Blocking.
pub(super) fn copy_hashed(
    from: &Path,
    length: Option<u64>,
    to: &Path,
) -> io::Result<(u64, String)> {
    let source = File::open(from)?;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut target = File::options().write(true).create_new(true).open(to)?;
    let mut reader: Box<dyn io::Read> = match length {
        Some(n) => Box::new(source.take(n)),
        None => Box::new(source),
    };
    let (mut hasher, mut buffer, mut size) = (Sha256::new(), vec![0_u8; 1 << 20], 0_u64);
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        target.write_all(&buffer[..n])?;
        size += n as u64;
    }
    if let Some(n) = length.filter(|n| *n != size) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "{} holds {size} bytes, not the {n} expected",
                from.display()
            ),
        ));
    }
    target.sync_all()?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// The size and SHA-256 of `path`. Blocking.
pub(super) fn hash_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let (mut hasher, mut buffer, mut size) = (Sha256::new(), vec![0_u8; 1 << 20], 0_u64);
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Syncs `dir` and every folder under it, so that the names of the files in them last.
/// Blocking.
pub(super) fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        }
    }
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `dir/name` durably: a temporary file, synced, renamed, and the
/// directory synced. Blocking.
pub(super) fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temporary = dir.join(format!(".{name}.partial"));
    {
        let mut f = File::create(&temporary)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&temporary, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// `relative` (`/`-separated, from a database or a manifest) under `root`, if it is a
/// plain relative path: no root, no `..`, no `.`, nothing empty.
pub(super) fn under(root: &Path, relative: &str) -> Option<PathBuf> {
    let path = Path::new(relative);
    let plain = !relative.is_empty()
        && !relative.contains('\\')
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && relative
            .split('/')
            .all(|part| !part.is_empty() && part != ".");
    plain.then(|| root.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_taken() {
        let root = Path::new("/backup");
        assert_eq!(
            under(root, "dicom/segments/00000001.seg"),
            Some(PathBuf::from("/backup/dicom/segments/00000001.seg"))
        );
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "dicom/../../x",
            "a//b",
            "a/./b",
            "a\\b",
        ] {
            assert_eq!(under(root, bad), None, "{bad}");
        }
    }

    #[test]
    fn a_copy_takes_the_bytes_asked_for_and_their_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("segment");
        std::fs::write(&from, [b"records".as_slice(), &[0_u8; 100]].concat()).unwrap();
        let to = dir.path().join("copy/segment");
        let (size, sha) = copy_hashed(&from, Some(7), &to).unwrap();
        assert_eq!(size, 7);
        assert_eq!(std::fs::read(&to).unwrap(), b"records");
        assert_eq!(sha, hex::encode(Sha256::digest(b"records")));
        assert_eq!(hash_file(&to).unwrap(), (7, sha));
        let short = copy_hashed(&from, Some(1000), &dir.path().join("short"));
        assert!(short.is_err(), "a file shorter than asked is an error");
    }
}
