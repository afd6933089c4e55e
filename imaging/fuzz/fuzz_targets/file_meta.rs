//! The file meta of a STOW-RS part, and the multipart content type around it.
#![no_main]

use duikou_imaging::stow::{boundary, read_meta};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_meta(data);
    let _ = boundary(&String::from_utf8_lossy(data));
});
