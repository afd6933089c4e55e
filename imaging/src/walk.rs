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

/// The deepest nesting of sequences a data set may have. A general parser (dicom-object
/// among them) descends once per level, on the stack of the thread that reads: 3,000
/// levels in 108 KB overflowed a runtime worker's stack and took the process down. Real
/// data sets stay far below this (structured reports nest content items a few levels
/// deep); `a_data_set_at_the_limit_parses_on_a_worker_thread_stack` in the tests proves
/// that this many levels parse within a 2 MiB stack, a runtime worker's, in a debug build.
pub const MAX_SEQUENCE_DEPTH: usize = 64;

/// The most elements (headers, items and delimiters included) a data set may have: each
/// costs a parser memory far beyond its 8 bytes. An enhanced multi-frame instance with
/// per-frame functional groups of thousands of frames has a few hundred thousand.
pub const MAX_ELEMENTS: u64 = 2_000_000;

/// Why the walk stopped.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The data set goes beyond a limit ([`MAX_SEQUENCE_DEPTH`], [`MAX_ELEMENTS`]).
    #[error("data set beyond the relay's limits at byte {at}: {what}")]
    Limit {
        /// Offset.
        at: u64,
        /// Which limit.
        what: &'static str,
    },
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
    let mut walker = Walker::new(input, encoding);
    walker.run(false)?;
    if walker.elements == 0 {
        return Err(WalkError::Malformed {
            at: 0,
            what: "an empty data set",
        });
    }
    Ok(())
}

/// Where the top-level pixel data element of a data set starts, if `input` (the start of
/// the data set, perhaps cut anywhere) reaches it with every element before it well
/// formed and within the limits: the attributes before it can then be read from the
/// first that many bytes while the rest still arrives. `None` when the input ends first,
/// or anything looks odd; the whole data set is walked and read at its end then, as
/// always.
pub fn pixel_data_at(input: impl Read, encoding: Encoding) -> Option<u64> {
    Walker::new(Stream(input), encoding)
        .run(true)
        .ok()
        .flatten()
}

/// A sequence or item the walk is inside, with where it ends (`None`: undefined length,
/// ended by its delimiter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Sequence(Option<u64>),
    Item(Option<u64>),
}

impl Open {
    fn end(self) -> Option<u64> {
        match self {
            Open::Sequence(end) | Open::Item(end) => end,
        }
    }
}

struct Walker<R> {
    c: Cursor<R>,
    explicit: bool,
    /// The sequences and items the walk is in, outermost first.
    open: Vec<Open>,
    /// How many of `open` are sequences.
    depth: usize,
    elements: u64,
}

impl<R: Source> Walker<R> {
    fn new(input: R, encoding: Encoding) -> Self {
        Walker {
            c: Cursor {
                r: input,
                at: 0,
                big: encoding == Encoding::ExplicitBig,
            },
            explicit: encoding != Encoding::ImplicitLittle,
            open: Vec::new(),
            depth: 0,
            elements: 0,
        }
    }

    fn malformed<T>(&self, what: &'static str) -> Result<T, WalkError> {
        Err(WalkError::Malformed {
            at: self.c.at,
            what,
        })
    }

    /// Enters a sequence ending at `end`, within [`MAX_SEQUENCE_DEPTH`].
    fn enter(&mut self, end: Option<u64>) -> Result<(), WalkError> {
        if self.depth == MAX_SEQUENCE_DEPTH {
            return Err(WalkError::Limit {
                at: self.c.at,
                what: "sequences nested deeper than the relay reads",
            });
        }
        self.depth += 1;
        self.open.push(Open::Sequence(end));
        Ok(())
    }

    /// Leaves the innermost sequence or item.
    fn leave(&mut self) {
        if let Some(Open::Sequence(_)) = self.open.pop() {
            self.depth -= 1;
        }
    }

    /// Walks to the end of the input; or, with `to_pixel_data`, until the top-level pixel
    /// data element, whose offset it returns (`None` if the input ends before it or the
    /// data set has none).
    fn run(&mut self, to_pixel_data: bool) -> Result<Option<u64>, WalkError> {
        // Inside encapsulated pixel data, items are fragments to skip whole.
        let mut fragments = false;
        loop {
            // Sequences and items of defined length that end here are left.
            while let Some(end) = self.open.last().and_then(|o| o.end()) {
                if self.c.at < end {
                    break;
                }
                if self.c.at > end {
                    return self.malformed("an element crosses the end of its sequence or item");
                }
                if fragments {
                    return self.malformed("encapsulated pixel data without its delimiter");
                }
                self.leave();
            }
            let start = self.c.at;
            let mut head = [0_u8; 8];
            if !self.c.fill(&mut head)? {
                break;
            }
            self.elements += 1;
            if self.elements > MAX_ELEMENTS {
                return Err(WalkError::Limit {
                    at: start,
                    what: "more elements than the relay reads",
                });
            }
            let tag = (
                self.c.u16([head[0], head[1]]),
                self.c.u16([head[2], head[3]]),
            );
            if tag.0 == 0xFFFE {
                let len = self.c.u32([head[4], head[5], head[6], head[7]]);
                match tag {
                    ITEM if fragments => {
                        if len == UNDEFINED {
                            return self.malformed("a fragment of undefined length");
                        }
                        self.c.skip(len)?;
                    }
                    ITEM => match self.open.last() {
                        Some(Open::Sequence(_)) => self.open.push(Open::Item(
                            (len != UNDEFINED).then(|| self.c.at + u64::from(len)),
                        )),
                        _ => return self.malformed("an item outside a sequence"),
                    },
                    SEQUENCE_END if fragments => fragments = false,
                    // Encapsulated pixel data holds fragments and its delimiter only: a
                    // parser takes anything else there as the end of the pixel data,
                    // and would then be in a sequence the walk has left.
                    _ if fragments => {
                        return self.malformed("encapsulated pixel data holds something else");
                    }
                    ITEM_END => match self.open.last() {
                        Some(Open::Item(None)) => self.leave(),
                        _ => return self.malformed("an item delimiter outside its item"),
                    },
                    SEQUENCE_END => match self.open.last() {
                        Some(Open::Sequence(None)) => self.leave(),
                        _ => return self.malformed("a sequence delimiter outside its sequence"),
                    },
                    _ => return self.malformed("an unknown delimiter"),
                }
                continue;
            }
            if fragments {
                return self.malformed("encapsulated pixel data without its delimiter");
            }
            if matches!(self.open.last(), Some(Open::Sequence(_))) {
                return self.malformed("an element in a sequence outside its items");
            }
            if to_pixel_data && self.open.is_empty() && tag >= PIXEL_DATA {
                return Ok((tag == PIXEL_DATA).then_some(start));
            }
            let (vr, len) = if self.explicit {
                let vr = [head[4], head[5]];
                if LONG_VRS.contains(&&vr) {
                    let mut rest = [0_u8; 4];
                    if !self.c.fill(&mut rest)? {
                        return self.malformed("the data set ends inside an element header");
                    }
                    (Some(vr), self.c.u32(rest))
                } else if SHORT_VRS.contains(&&vr) {
                    (Some(vr), u32::from(self.c.u16([head[6], head[7]])))
                } else {
                    return self.malformed("an unknown value representation");
                }
            } else {
                (None, self.c.u32([head[4], head[5], head[6], head[7]]))
            };
            // Implicit VR: a parser takes the VR from the dictionary, so an element the
            // dictionary calls a sequence is one, whatever its length.
            let sequence = match vr {
                Some(vr) => vr == *b"SQ",
                None => len == UNDEFINED || implicit_sequence(tag),
            };
            if len == UNDEFINED {
                // A parser takes an element with VR SQ as a sequence whatever its tag,
                // the pixel data's too.
                if tag == PIXEL_DATA && vr != Some(*b"SQ") {
                    fragments = true;
                } else if sequence || vr == Some(*b"UN") {
                    // A sequence of undefined length: its items follow.
                    self.enter(None)?;
                } else {
                    return self.malformed("undefined length on a value that cannot have one");
                }
            } else if sequence {
                // Defined-length sequence: descend into its items.
                self.enter(Some(self.c.at + u64::from(len)))?;
            } else {
                self.c.skip(len)?;
            }
        }
        if fragments {
            return self.malformed("encapsulated pixel data without its delimiter");
        }
        if to_pixel_data {
            return Ok(None);
        }
        if !self.open.is_empty() {
            return self.malformed("the data set ends inside a sequence");
        }
        Ok(None)
    }
}

/// Whether the standard dictionary has `tag` as a sequence: a parser reading Implicit VR
/// descends into its value.
fn implicit_sequence((group, element): (u16, u16)) -> bool {
    use dicom_core::dictionary::{DataDictionary as _, DataDictionaryEntry as _};
    // As dicom-encoding's Implicit VR decoder resolves it.
    let tag = dicom_core::Tag(group, element);
    tag != dicom_core::Tag(0x7FE0, 0x0010)
        && dicom_dictionary_std::StandardDataDictionary
            .by_tag(tag)
            .is_some_and(|entry| entry.vr().relaxed() == dicom_core::VR::SQ)
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

    /// A CT data set whose Content Sequence nests `depth` levels, all of defined or all
    /// of undefined lengths.
    fn nested(depth: usize, explicit: bool, defined: bool) -> Vec<u8> {
        let level = crate::testing::Level {
            defined_sequence: defined,
            defined_item: defined,
            ..Default::default()
        };
        crate::testing::nested_ct("1.2.3.4", "2.25.1", &vec![level; depth], explicit)
    }

    #[test]
    fn a_data_set_at_the_limit_parses_on_a_worker_thread_stack() {
        use dicom_encoding::TransferSyntaxIndex as _;
        use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
        for (explicit, defined) in [(true, false), (true, true), (false, false), (false, true)] {
            let (encoding, ts) = if explicit {
                (Encoding::ExplicitLittle, "1.2.840.10008.1.2.1")
            } else {
                (Encoding::ImplicitLittle, "1.2.840.10008.1.2")
            };
            let case = format!("explicit {explicit}, defined lengths {defined}");
            let at_limit = nested(MAX_SEQUENCE_DEPTH, explicit, defined);
            walk(at_limit.as_slice(), encoding).unwrap_or_else(|e| panic!("{case}: {e}"));
            let at_limit_copy = at_limit.clone();
            // What the walk lets through, a general parser reads on a stack the size of a
            // runtime worker's (tokio's default, 2 MiB), in this (debug) build.
            let parsed = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || {
                    let ts = TransferSyntaxRegistry.get(ts).expect("known");
                    dicom_object::InMemDicomObject::read_dataset_with_ts(at_limit.as_slice(), ts)
                        .map(|obj| obj.iter().count())
                        .map_err(|e| e.to_string())
                })
                .unwrap()
                .join()
                .expect("no stack overflow");
            assert_eq!(parsed, Ok(7), "{case}");
            let at_limit = at_limit_copy;
            // One level more is refused, by the walk and by the early read.
            let beyond = nested(MAX_SEQUENCE_DEPTH + 1, explicit, defined);
            assert!(
                matches!(
                    walk(beyond.as_slice(), encoding),
                    Err(WalkError::Limit { .. })
                ),
                "{case}"
            );
            assert!(
                pixel_data_at(at_limit.as_slice(), encoding).is_some(),
                "{case}"
            );
            assert_eq!(pixel_data_at(beyond.as_slice(), encoding), None, "{case}");
            // The attack: 3,000 levels in about 100 KB, refused in far less than a second.
            let attack = nested(3000, explicit, defined);
            let t = std::time::Instant::now();
            assert!(walk(attack.as_slice(), encoding).is_err(), "{case}");
            assert!(t.elapsed() < std::time::Duration::from_secs(1));
        }
    }

    #[test]
    fn nesting_hidden_in_pixel_data_is_refused() {
        // An item delimiter inside encapsulated pixel data: a parser ends the pixel data
        // there and stays a sequence and an item deeper than a walk that took the
        // delimiter as closing the item. Repeated, it nests without bound.
        let unit: [&[u8]; 7] = [
            &[
                0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ],
            &[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF],
            &[
                0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ],
            &[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0],
            &[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0],
            &[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0],
            &[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0],
        ];
        let mut ds = element_le(0x0008, 0x0018, b"UI", b"1.2.3.4\0");
        for _ in 0..3000 {
            ds.extend(unit.concat());
        }
        assert!(walk(ds.as_slice(), Encoding::ExplicitLittle).is_err());
        // Pixel data with VR SQ is a sequence to a parser: its items are walked, and
        // their nesting counts.
        let mut deep = element_le(0x0008, 0x0018, b"UI", b"1.2.3.4\0");
        deep.extend_from_slice(&[
            0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        deep.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        let inner = nested(MAX_SEQUENCE_DEPTH, true, false);
        let item = [
            &[
                0xE0, 0x7F, 0x10, 0x00, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
            ][..],
            &[0xFE, 0xFF, 0x00, 0xE0],
            &(inner.len() as u32).to_le_bytes(),
            &inner,
            &[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0],
        ]
        .concat();
        deep.extend(item);
        deep.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        deep.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        assert!(matches!(
            walk(deep.as_slice(), Encoding::ExplicitLittle),
            Err(WalkError::Limit { .. })
        ));
    }

    #[test]
    fn the_walk_stops_at_its_element_limit() {
        // Empty private elements, 8 bytes each: one over the limit is refused.
        let n = MAX_ELEMENTS as usize;
        let mut ds = Vec::with_capacity((n + 1) * 8);
        for _ in 0..n {
            ds.extend_from_slice(&[0x09, 0x00, 0x10, 0x00, 0, 0, 0, 0]);
        }
        assert!(walk(ds.as_slice(), Encoding::ImplicitLittle).is_ok());
        ds.extend_from_slice(&[0x09, 0x00, 0x10, 0x00, 0, 0, 0, 0]);
        assert!(matches!(
            walk(ds.as_slice(), Encoding::ImplicitLittle),
            Err(WalkError::Limit { .. })
        ));
    }

    #[test]
    fn items_and_delimiters_must_be_where_they_belong() {
        let uid = element_le(0x0008, 0x0018, b"UI", b"1.2.3.4\0");
        let cases: [(&str, Vec<u8>); 4] = [
            (
                "an item outside a sequence",
                [0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0].to_vec(),
            ),
            (
                "an item end outside an item",
                [0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0].to_vec(),
            ),
            (
                "a sequence end outside a sequence",
                [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0].to_vec(),
            ),
            (
                "an element straight in a sequence",
                [
                    &[
                        0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
                    ][..],
                    &element_le(0x0008, 0x0018, b"UI", b"1.2\0"),
                ]
                .concat(),
            ),
        ];
        for (case, tail) in cases {
            let ds = [uid.as_slice(), &tail].concat();
            assert!(
                walk(ds.as_slice(), Encoding::ExplicitLittle).is_err(),
                "{case}"
            );
        }
        // A sequence left open at the end (before the pixel data).
        let open = nested(2, true, false);
        let pixels = open.len() - 20;
        let cut = [&open[..pixels - 8], &open[pixels..]].concat();
        assert!(walk(cut.as_slice(), Encoding::ExplicitLittle).is_err());
        // A defined-length item whose element runs past it.
        let whole = nested(1, true, true);
        assert!(walk(whole.as_slice(), Encoding::ExplicitLittle).is_ok());
        let item = whole
            .windows(4)
            .position(|w| w == [0xFE, 0xFF, 0x00, 0xE0])
            .expect("an item");
        let mut crossing = whole.clone();
        crossing[item + 4] -= 2;
        assert!(walk(crossing.as_slice(), Encoding::ExplicitLittle).is_err());
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
