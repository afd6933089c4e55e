//! The parsers that read what peers send — the data set walk, DIMSE command sets, the
//! file meta of STOW-RS parts, the inspection the SCP runs before it answers — given
//! random bytes and random damage to valid input: they answer Ok or an error, never panic
//! and never hang. The fuzz targets under `imaging/fuzz/` explore the same functions for
//! longer (see the README).

use std::io::Cursor;

use dicom_dictionary_std::uids;
use duikou_imaging::walk::{Encoding, walk};
use duikou_imaging::{dimse, scp, stow};
use proptest::prelude::*;

use duikou_imaging::testing::{CT, Level, nested_ct, part10 as wrap};
use duikou_imaging::walk::MAX_SEQUENCE_DEPTH;
const SOP: &str = "2.25.987654321";

/// A small CT instance with a sequence and native pixel data, as a Part 10 file.
fn part10() -> Vec<u8> {
    duikou_imaging::testing::ct(SOP, 4, 4)
}

/// The data set part of a Part 10 file.
fn data_set(file: &[u8]) -> &[u8] {
    let group = u32::from_le_bytes(file[140..144].try_into().unwrap());
    &file[144 + group as usize..]
}

/// Runs the SCP's inspection on bytes, as it runs on a spooled file.
fn inspect(bytes: &[u8]) -> Result<scp::InstanceRecord, u16> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("part.dcm");
    std::fs::write(&path, bytes).unwrap();
    let stored = duikou_imaging::spool::Stored {
        path,
        offset: 0,
        length: bytes.len() as u64,
    };
    scp::inspect(&stored, CT, SOP, uids::EXPLICIT_VR_LITTLE_ENDIAN)
}

#[test]
fn valid_input_passes_every_parser() {
    let file = part10();
    walk(Cursor::new(data_set(&file)), Encoding::ExplicitLittle).expect("the data set walks");
    let meta = stow::read_meta(Cursor::new(&file)).expect("the file meta reads");
    assert_eq!(meta.sop_instance_uid, SOP);
    let record = inspect(&file).expect("the instance inspects");
    assert_eq!(record.modality, "CT");
    let command = dimse::store_request(7, CT, SOP);
    let parsed = dimse::parse_command(&command).expect("the command parses");
    assert_eq!(parsed.sop_instance_uid, SOP);
}

#[test]
fn a_cut_data_set_is_refused() {
    let file = part10();
    // Cut inside the pixel data, inside the sequence, inside a header.
    for keep in [file.len() - 5, file.len() - 40, 150] {
        assert!(inspect(&file[..keep]).is_err(), "cut at {keep}");
    }
}

/// A deflated instance of `padding` empty private elements after its pixel data.
fn deflated(padding: usize) -> Vec<u8> {
    use std::io::Write as _;
    let mut ds = nested_ct(SOP, "2.25.1", &[Level::default(); 3], true);
    for _ in 0..padding {
        ds.extend_from_slice(&[0xE1, 0x7F, 0x10, 0x00, b'L', b'O', 0, 0]);
    }
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&ds).unwrap();
    wrap(
        &z.finish().unwrap(),
        SOP,
        uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    )
}

#[test]
fn a_deflated_data_set_that_inflates_beyond_the_bound_is_refused_whole() {
    let check = |file: Vec<u8>| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part.dcm");
        std::fs::write(&path, &file).unwrap();
        let stored = duikou_imaging::spool::Stored {
            path,
            offset: 0,
            length: file.len() as u64,
        };
        scp::inspect(&stored, CT, SOP, uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    };
    assert_eq!(
        check(deflated(10)).map(|r| r.sop_instance_uid),
        Ok(SOP.to_owned())
    );
    // A million empty elements compress several hundred times: past 64 times the
    // stored size the whole is refused, wherever the bound falls.
    assert_eq!(check(deflated(1_000_000)).map(|_| ()), Err(0xC000));
}

/// Damage to valid input: bytes overwritten, then the tail cut.
fn damaged(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    (
        proptest::collection::vec((0..len, any::<u8>()), 1..8),
        0..=len,
    )
        .prop_map(move |(edits, keep)| {
            let mut bytes = valid.clone();
            for (at, byte) in edits {
                bytes[at] = byte;
            }
            bytes.truncate(keep.max(1));
            bytes
        })
}

/// Levels of nesting as peers may send them: defined and undefined lengths mixed,
/// siblings, runs of items, from none to well beyond [`MAX_SEQUENCE_DEPTH`].
fn levels() -> impl Strategy<Value = Vec<Level>> {
    let level = (
        any::<bool>(),
        any::<bool>(),
        0_u8..=3,
        prop_oneof![9 => Just(0_u16), 1 => 0_u16..3000],
    )
        .prop_map(
            |(defined_sequence, defined_item, siblings, more_items)| Level {
                defined_sequence,
                defined_item,
                siblings,
                more_items,
            },
        );
    proptest::collection::vec(level, 0..=MAX_SEQUENCE_DEPTH + 40)
}

/// Runs `f` on a thread with a runtime worker's stack (2 MiB): a parser that recursed
/// too deep would overflow it and abort the test.
fn on_a_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .expect("no stack overflow")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn nesting_is_read_to_its_limit_and_refused_beyond(levels in levels(), explicit in any::<bool>()) {
        let ts = if explicit { uids::EXPLICIT_VR_LITTLE_ENDIAN } else { uids::IMPLICIT_VR_LITTLE_ENDIAN };
        let file = wrap(&nested_ct(SOP, "2.25.1", &levels, explicit), SOP, ts);
        let depth = levels.len();
        let inspected = on_a_worker_stack(move || {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("part.dcm");
            std::fs::write(&path, &file).unwrap();
            let stored = duikou_imaging::spool::Stored { path, offset: 0, length: file.len() as u64 };
            scp::inspect(&stored, CT, SOP, ts).map(|r| r.sop_instance_uid)
        });
        if depth <= MAX_SEQUENCE_DEPTH {
            prop_assert_eq!(inspected, Ok(SOP.to_owned()), "depth {}", depth);
        } else {
            prop_assert_eq!(inspected, Err(0xC000), "depth {}", depth);
        }
    }

    #[test]
    fn damaged_nesting_never_overflows_a_parser(
        levels in levels(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        keep in any::<prop::sample::Index>(),
    ) {
        let mut file = wrap(&nested_ct(SOP, "2.25.1", &levels, true), SOP, uids::EXPLICIT_VR_LITTLE_ENDIAN);
        // Past the file meta: the damage lands in the data set.
        let start = 144 + u32::from_le_bytes(file[140..144].try_into().unwrap()) as usize;
        let span = file.len() - start;
        for (at, byte) in edits {
            file[start + at.index(span)] = byte;
        }
        file.truncate(start + 1 + keep.index(span));
        on_a_worker_stack(move || {
            let _ = inspect(&file);
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn noise_never_panics_a_parser(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for encoding in [Encoding::ImplicitLittle, Encoding::ExplicitLittle, Encoding::ExplicitBig] {
            let _ = walk(Cursor::new(&bytes), encoding);
        }
        let _ = dimse::parse_command(&bytes);
        let _ = stow::read_meta(Cursor::new(&bytes));
        let _ = stow::boundary(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn a_damaged_instance_is_inspected_or_refused(bytes in damaged(part10())) {
        let _ = stow::read_meta(Cursor::new(&bytes));
        if let Ok(record) = inspect(&bytes) {
            // Whatever passes names the instance its command named.
            prop_assert_eq!(record.sop_instance_uid, SOP);
        }
    }

    #[test]
    fn a_damaged_command_is_parsed_or_refused(bytes in damaged(dimse::store_request(1, CT, SOP))) {
        let _ = dimse::parse_command(&bytes);
    }
}
