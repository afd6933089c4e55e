//! Structured input for the SCP's check: CT data sets whose sequences nest as the fuzzer
//! chooses (defined and undefined lengths, siblings, runs of items, far beyond the
//! relay's depth limit), then damaged where it chooses, inspected on a thread with a
//! runtime worker's stack (2 MiB). Random bytes alone almost never nest deeply.
//!
//! Input: one byte for the encoding, then `[levels] [level byte …]`, then pairs of
//! `(position, byte)` to overwrite in the data set.
#![no_main]

use std::sync::OnceLock;

use duikou_imaging::scp::inspect;
use duikou_imaging::spool::Stored;
use duikou_imaging::testing::{CT, Level, nested_ct, part10};
use duikou_imaging::walk::MAX_SEQUENCE_DEPTH;
use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let [encoding, count, rest @ ..] = data else {
        return;
    };
    let explicit = encoding & 1 == 1;
    // Up to twice the limit, and 3,000 levels when the count byte is 255.
    let count = if *count == 255 { 3000 } else { usize::from(*count) % (2 * MAX_SEQUENCE_DEPTH + 1) };
    let (shape, damage) = rest.split_at(rest.len().min(count));
    let levels: Vec<Level> = (0..count)
        .map(|i| {
            let b = shape.get(i).copied().unwrap_or(0);
            Level {
                defined_sequence: b & 1 == 1,
                defined_item: b & 2 == 2,
                siblings: (b >> 2) & 3,
                more_items: u16::from(b >> 4) * 200,
            }
        })
        .collect();
    let sop = "2.25.1";
    let ts = if explicit { "1.2.840.10008.1.2.1" } else { "1.2.840.10008.1.2" };
    let mut data_set = nested_ct(sop, "2.25.2", &levels, explicit);
    for pair in damage.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % data_set.len();
        data_set[at] = pair[2];
    }
    let file = part10(&data_set, sop, ts);
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a directory"));
    let path = dir.path().join("nested.dcm");
    std::fs::write(&path, &file).expect("written");
    let length = file.len() as u64;
    let inspected = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || inspect(&Stored { path, offset: 0, length }, CT, sop, ts))
        .expect("a thread")
        .join()
        .expect("no stack overflow");
    if damage.len() < 3 {
        // Undamaged: read to the limit, refused beyond it.
        assert_eq!(inspected.is_ok(), count <= MAX_SEQUENCE_DEPTH, "{count} levels");
    }
});
