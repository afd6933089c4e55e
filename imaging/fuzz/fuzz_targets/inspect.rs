//! What the storage SCP and STOW-RS run on a received instance before answering: the
//! walk, then dicom-object on what the walk let through. Input is a Part 10 file.
#![no_main]

use std::sync::OnceLock;

use duikou_imaging::scp::inspect;
use duikou_imaging::spool::Stored;
use libfuzzer_sys::fuzz_target;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a directory"));
    let path = dir.path().join("instance.dcm");
    std::fs::write(&path, data).expect("written");
    for ts in ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99"] {
        let stored = Stored {
            path: path.clone(),
            offset: 0,
            length: data.len() as u64,
        };
        let _ = inspect(&stored, "1.2.840.10008.5.1.4.1.1.2", "2.25.1", ts);
    }
});
