//! A structural check of a data set before any full parse: every element header is read
//! and every length must fit in what remains. A general DICOM parser given garbage may
//! spend a long time on absurd lengths (dicom-object took 45 s on 4 KB of noise here);
//! this walk rejects such input in microseconds and keeps the SCP responsive.
//!
//! It descends into sequences and items, skips values, and treats the items of
//! encapsulated pixel data as opaque fragments. It does not check values.

use std::io::{self, BufReader, Read, Seek};

/// How a data set is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Implicit VR Little Endian.
    ImplicitLittle,
    /// Explicit VR Little Endian (and every compressed syntax).
    ExplicitLittle,
    /// Explicit VR Big Endian.
    ExplicitBig,
}

impl Encoding {
    /// The encoding of a transfer syntax's data set (after inflating a deflated one).
    pub fn of(transfer_syntax: &str) -> Self {
        match transfer_syntax {
            "1.2.840.10008.1.2" => Self::ImplicitLittle,
            "1.2.840.10008.1.2.2" => Self::ExplicitBig,
            _ => Self::ExplicitLittle,
        }
    }
}

/// The bytes of a Part 10 file up to its file meta group's length: the 128-byte preamble,
/// `DICM`, the group length element's header (8 bytes) and its value (4).
pub const PART10_HEAD: usize = 144;

/// How long the file meta group of a Part 10 file is past its length element, from its
/// first [`PART10_HEAD`] bytes; its data set starts that many bytes after them. `None`
/// if `head` is shorter.
pub fn meta_length(head: &[u8]) -> Option<u64> {
    let value = head.get(PART10_HEAD - 4..PART10_HEAD)?;
    Some(u64::from(u32::from_le_bytes(value.try_into().ok()?)))
}

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);

/// VRs with a 4-byte length in explicit VR encodings.
const LONG_VRS: [&[u8; 2]; 13] = [
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV",
];
const SHORT_VRS: [&[u8; 2]; 21] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN",
    b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
];

/// Why the walk stopped.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The bytes are not a data set.
    #[error("malformed data set at byte {at}: {what}")]
    Malformed {
        /// Offset.
        at: u64,
        /// What was wrong.
        what: &'static str,
    },
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Where the walk reads from: values it passes over are read and dropped, or, in a file,
/// skipped by seeking.
trait Source: Read {
    /// Passes over up to `n` bytes; returns how many there were.
    fn pass(&mut self, n: u64) -> io::Result<u64>;
}

/// A stream: values are read and dropped.
struct Stream<R>(R);

impl<R: Read> Read for Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Source for Stream<R> {
    fn pass(&mut self, n: u64) -> io::Result<u64> {
        io::copy(&mut (&mut self.0).take(n), &mut io::sink())
    }
}

/// A seekable input of known length: values are skipped (within the buffer when they
/// are short).
struct Seeking<R> {
    r: BufReader<R>,
    left: u64,
}

impl<R: Read> Read for Seeking<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let most = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.r.read(&mut buf[..most])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Source for Seeking<R> {
    fn pass(&mut self, n: u64) -> io::Result<u64> {
        let n = n.min(self.left);
        self.r
            .seek_relative(i64::try_from(n).map_err(io::Error::other)?)?;
        self.left -= n;
        Ok(n)
    }
}

struct Cursor<R> {
    r: R,
    at: u64,
    big: bool,
}

impl<R: Source> Cursor<R> {
    /// Reads exactly `buf`, or reports whether the input ended cleanly before it.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, WalkError> {
        let mut got = 0;
        while got < buf.len() {
            let n = self.r.read(&mut buf[got..])?;
            if n == 0 {
                if got == 0 {
                    return Ok(false);
                }
                return Err(WalkError::Malformed {
                    at: self.at,
                    what: "the data set ends inside an element header",
                });
            }
            got += n;
        }
        self.at += buf.len() as u64;
        Ok(true)
    }

    fn u16(&self, b: [u8; 2]) -> u16 {
        if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32(&self, b: [u8; 4]) -> u32 {
        if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn skip(&mut self, len: u32) -> Result<(), WalkError> {
        let skipped = self.r.pass(u64::from(len))?;
        self.at += skipped;
        if skipped < u64::from(len) {
            return Err(WalkError::Malformed {
                at: self.at,
                what: "a value is longer than what remains",
            });
        }
        Ok(())
    }
}

/// Walks the data set in `input` (everything after the file meta). Big endian data sets
/// still encode item and delimiter tags the same way, so they are read with the data
/// set's byte order too.
pub fn walk(input: impl Read, encoding: Encoding) -> Result<(), WalkError> {
    walk_source(Stream(input), encoding)
}

/// [`walk`] over `length` bytes of a seekable input (a file) from where it stands: values
/// are skipped rather than read.
pub fn walk_seekable<R: Read + Seek>(
    input: BufReader<R>,
    length: u64,
    encoding: Encoding,
) -> Result<(), WalkError> {
    walk_source(
        Seeking {
            r: input,
            left: length,
        },
        encoding,
    )
}

fn walk_source(input: impl Source, encoding: Encoding) -> Result<(), WalkError> {
    let mut c = Cursor {
        r: input,
        at: 0,
        big: encoding == Encoding::ExplicitBig,
    };
    let explicit = encoding != Encoding::ImplicitLittle;
    // Inside encapsulated pixel data, items are fragments to skip whole.
    let mut fragments = false;
    let mut elements = 0_u64;
    loop {
        let mut head = [0_u8; 8];
        if !c.fill(&mut head)? {
            break;
        }
        elements += 1;
        let tag = (c.u16([head[0], head[1]]), c.u16([head[2], head[3]]));
        let delimiter = tag.0 == 0xFFFE;
        if delimiter {
            let len = c.u32([head[4], head[5], head[6], head[7]]);
            match tag {
                ITEM if fragments => {
                    if len == UNDEFINED {
                        return Err(WalkError::Malformed {
                            at: c.at,
                            what: "a fragment of undefined length",
                        });
                    }
                    c.skip(len)?;
                }
                ITEM => {
                    // Descend: an item's elements follow (its length is checked by the
                    // elements fitting the input).
                }
                ITEM_END => {}
                SEQUENCE_END => fragments = false,
                _ => {
                    return Err(WalkError::Malformed {
                        at: c.at,
                        what: "an unknown delimiter",
                    });
                }
            }
            continue;
        }
        if fragments {
            return Err(WalkError::Malformed {
                at: c.at,
                what: "encapsulated pixel data without its delimiter",
            });
        }
        let (vr, len) = if explicit {
            let vr = [head[4], head[5]];
            if LONG_VRS.contains(&&vr) {
                let mut rest = [0_u8; 4];
                if !c.fill(&mut rest)? {
                    return Err(WalkError::Malformed {
                        at: c.at,
                        what: "the data set ends inside an element header",
                    });
                }
                (Some(vr), c.u32(rest))
            } else if SHORT_VRS.contains(&&vr) {
                (Some(vr), u32::from(c.u16([head[6], head[7]])))
            } else {
                return Err(WalkError::Malformed {
                    at: c.at,
                    what: "an unknown value representation",
                });
            }
        } else {
            (None, c.u32([head[4], head[5], head[6], head[7]]))
        };
        if len == UNDEFINED {
            if tag == PIXEL_DATA {
                fragments = true;
            } else if !(vr.is_none() || vr == Some(*b"SQ") || vr == Some(*b"UN")) {
                return Err(WalkError::Malformed {
                    at: c.at,
                    what: "undefined length on a value that cannot have one",
                });
            }
            // A sequence of undefined length: its items follow.
            continue;
        }
        if vr == Some(*b"SQ") {
            // Defined-length sequence: descend into its items.
            continue;
        }
        c.skip(len)?;
    }
    if fragments {
        return Err(WalkError::Malformed {
            at: c.at,
            what: "encapsulated pixel data without its delimiter",
        });
    }
    if elements == 0 {
        return Err(WalkError::Malformed {
            at: 0,
            what: "an empty data set",
        });
    }
    Ok(())
}

/// Where the top-level pixel data element of a data set starts, if `input` (the start of
/// the data set, perhaps cut anywhere) reaches it with every element before it well
/// formed: the attributes before it can then be read from the first that many bytes while
/// the rest still arrives. `None` when the input ends first, or anything looks odd; the
/// whole data set is walked and read at its end then, as always.
pub fn pixel_data_at(input: impl Read, encoding: Encoding) -> Option<u64> {
    let mut c = Cursor {
        r: Stream(input),
        at: 0,
        big: encoding == Encoding::ExplicitBig,
    };
    let explicit = encoding != Encoding::ImplicitLittle;
    // The sequences and items we are in: where each ends, or `None` for undefined length.
    let mut open: Vec<Option<u64>> = Vec::new();
    loop {
        while let Some(Some(end)) = open.last() {
            if c.at < *end {
                break;
            }
            if c.at > *end {
                return None;
            }
            open.pop();
        }
        let start = c.at;
        let mut head = [0_u8; 8];
        if !c.fill(&mut head).ok()? {
            return None;
        }
        let tag = (c.u16([head[0], head[1]]), c.u16([head[2], head[3]]));
        if tag.0 == 0xFFFE {
            let len = c.u32([head[4], head[5], head[6], head[7]]);
            match tag {
                ITEM if !open.is_empty() => {
                    open.push((len != UNDEFINED).then(|| c.at + u64::from(len)));
                }
                ITEM_END | SEQUENCE_END if open.last() == Some(&None) => {
                    open.pop();
                }
                _ => return None,
            }
            continue;
        }
        if open.is_empty() && tag >= PIXEL_DATA {
            return (tag == PIXEL_DATA).then_some(start);
        }
        let (vr, len) = if explicit {
            let vr = [head[4], head[5]];
            if LONG_VRS.contains(&&vr) {
                let mut rest = [0_u8; 4];
                if !c.fill(&mut rest).ok()? {
                    return None;
                }
                (Some(vr), c.u32(rest))
            } else if SHORT_VRS.contains(&&vr) {
                (Some(vr), u32::from(c.u16([head[6], head[7]])))
            } else {
                return None;
            }
        } else {
            (None, c.u32([head[4], head[5], head[6], head[7]]))
        };
        let sequence = vr == Some(*b"SQ") || (vr.is_none() && len == UNDEFINED);
        if len == UNDEFINED {
            if !(sequence || vr == Some(*b"UN")) {
                return None;
            }
            open.push(None);
        } else if sequence {
            open.push(Some(c.at + u64::from(len)));
        } else {
            c.skip(len).ok()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element_le(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(vr);
        if LONG_VRS.contains(&vr) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(value);
        out
    }

    #[test]
    fn a_well_formed_data_set_passes_and_noise_fails_fast() {
        let mut ds = element_le(0x0008, 0x0018, b"UI", b"1.2.3.4\0");
        ds.extend(element_le(0x0010, 0x0010, b"PN", b"Doe^John"));
        ds.extend(element_le(0x7FE0, 0x0010, b"OW", &[0; 16]));
        assert!(walk(ds.as_slice(), Encoding::ExplicitLittle).is_ok());
        // Cut in the middle of the pixel data.
        assert!(walk(&ds[..ds.len() - 3], Encoding::ExplicitLittle).is_err());
        // Noise.
        let noise: Vec<u8> = (0..4000_u32).map(|i| (i * 7919 % 251) as u8).collect();
        let t = std::time::Instant::now();
        assert!(walk(noise.as_slice(), Encoding::ExplicitLittle).is_err());
        assert!(walk(noise.as_slice(), Encoding::ImplicitLittle).is_err());
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        assert!(walk(&[][..], Encoding::ExplicitLittle).is_err());
        // Skipping by seeking answers the same.
        let seek = |b: &[u8]| {
            let input = BufReader::new(io::Cursor::new(b));
            walk_seekable(input, b.len() as u64, Encoding::ExplicitLittle).is_ok()
        };
        assert!(seek(&ds));
        assert!(!seek(&ds[..ds.len() - 3]));
        assert!(!seek(&noise));
        let mut padded = ds.clone();
        padded.extend_from_slice(&[0xFF; 5]);
        assert!(
            walk_seekable(
                BufReader::new(io::Cursor::new(&padded)),
                ds.len() as u64,
                Encoding::ExplicitLittle
            )
            .is_ok(),
            "only `length` bytes are walked"
        );
    }

    #[test]
    fn the_pixel_data_is_found_past_nested_sequences_and_not_inside_them() {
        let mut ds = element_le(0x0008, 0x0018, b"UI", b"1.2.3.4\0");
        // A sequence of undefined length whose item (defined length) holds an icon's
        // pixel data, then a defined-length sequence with an undefined-length item.
        let icon = element_le(0x7FE0, 0x0010, b"OW", &[7; 4]);
        ds.extend_from_slice(&[
            0x88, 0x00, 0x00, 0x02, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        ds.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        ds.extend_from_slice(&(icon.len() as u32).to_le_bytes());
        ds.extend_from_slice(&icon);
        ds.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let inner = element_le(0x0008, 0x1150, b"UI", b"1.2\0");
        let item_len = 8 + inner.len() + 8;
        ds.extend_from_slice(&[0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0]);
        ds.extend_from_slice(&(item_len as u32).to_le_bytes());
        ds.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        ds.extend_from_slice(&inner);
        ds.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        let at = ds.len() as u64;
        ds.extend(element_le(0x7FE0, 0x0010, b"OW", &[0; 64]));
        assert!(walk(ds.as_slice(), Encoding::ExplicitLittle).is_ok());
        assert_eq!(
            pixel_data_at(ds.as_slice(), Encoding::ExplicitLittle),
            Some(at)
        );
        // Cut before the pixel data: not reached; cut inside it: reached.
        assert_eq!(
            pixel_data_at(&ds[..at as usize - 3], Encoding::ExplicitLittle),
            None
        );
        assert_eq!(
            pixel_data_at(&ds[..at as usize + 20], Encoding::ExplicitLittle),
            Some(at)
        );
        // Noise: not reached.
        let noise: Vec<u8> = (0..4000_u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert_eq!(
            pixel_data_at(noise.as_slice(), Encoding::ExplicitLittle),
            None
        );
        assert_eq!(
            pixel_data_at(noise.as_slice(), Encoding::ImplicitLittle),
            None
        );
    }

    #[test]
    fn encapsulated_pixel_data_is_walked_as_fragments() {
        let mut ds = element_le(0x0008, 0x0016, b"UI", b"1.2\0");
        ds.extend_from_slice(&[
            0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        // Basic offset table (empty), one fragment of 6 bytes, sequence delimiter.
        ds.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        ds.extend_from_slice(&[
            0xFE, 0xFF, 0x00, 0xE0, 6, 0, 0, 0, 0xFF, 0xD8, 0xFF, 0xE0, 0xFE, 0xFF,
        ]);
        ds.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        assert!(walk(ds.as_slice(), Encoding::ExplicitLittle).is_ok());
        assert!(
            walk(&ds[..ds.len() - 8], Encoding::ExplicitLittle).is_err(),
            "no delimiter"
        );
    }
}
