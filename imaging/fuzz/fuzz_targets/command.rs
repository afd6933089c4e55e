//! DIMSE command sets as a peer sends them in P-DATA.
#![no_main]

use duikou_imaging::dimse::parse_command;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_command(data);
});
