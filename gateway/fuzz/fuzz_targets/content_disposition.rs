//! An upload's `Content-Disposition` header: any bytes give a file name or a refusal,
//! never a panic; a name given keeps the rules, and comes back the same from the header a
//! download is sent with.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header::CONTENT_DISPOSITION};
use duikou::http::disposition::{MAX_FILENAME_BYTES, inline, upload_filename};
use libfuzzer_sys::fuzz_target;

fn headers(value: HeaderValue) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_DISPOSITION, value);
    h
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let Ok(name) = upload_filename(&headers(value)) else {
        return;
    };
    assert!(!name.is_empty() && name.len() <= MAX_FILENAME_BYTES);
    assert!(!name.contains(['/', '\\']) && !name.chars().any(char::is_control));
    let sent = inline(&name);
    let again = sent
        .to_str()
        .expect("ASCII")
        .replacen("inline", "attachment", 1);
    let back = upload_filename(&headers(HeaderValue::from_str(&again).expect("valid")));
    assert_eq!(back.as_deref(), Ok(name.as_str()));
});
