//! The structural walk of a data set, in each encoding: any bytes give Ok or an error.
#![no_main]

use duikou_imaging::walk::{Encoding, walk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for encoding in [
        Encoding::ImplicitLittle,
        Encoding::ExplicitLittle,
        Encoding::ExplicitBig,
    ] {
        let _ = walk(data, encoding);
    }
});
