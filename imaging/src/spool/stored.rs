//! Reading a stored instance back: a byte range of its segment (or a whole file).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::PathBuf;

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
    pub(super) file: File,
    pub(super) start: u64,
    pub(super) length: u64,
    /// Where the next read starts, from `start`.
    pub(super) at: u64,
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
