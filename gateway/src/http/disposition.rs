//! The file name of an upload, read from its `Content-Disposition` header, and the header
//! a download is sent with. File names may name the patient: in a header they stay out of
//! the URLs that proxies and access logs keep.
//!
//! The header's grammar is RFC 6266 §4.1 (`attachment; filename="…"` or
//! `attachment; filename*=UTF-8''…`); quoted strings and tokens are RFC 9110 §5.6; the
//! `filename*` form is the ext-value of RFC 8187 §3.2, percent-encoded UTF-8. The grammar
//! is read by `parse_net`, which refuses repeated parameters and a `filename*` that does
//! not decode instead of falling back to `filename`; what is ours is the policy on top:
//! one header, ASCII only, `attachment`, UTF-8, and a name that can be kept as it reads.

use axum::http::{HeaderMap, HeaderValue, header::CONTENT_DISPOSITION};
use parse_net::{Charset, DispositionType, ErrorKind, Filename, ParseError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The longest file name kept, in bytes of UTF-8.
pub const MAX_FILENAME_BYTES: usize = 200;

/// Why an upload's `Content-Disposition` gives no file name to keep. The messages are
/// fixed: none repeats the caller's header, which may hold a patient's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadDisposition {
    /// No header at all.
    #[error(
        "send the file name as Content-Disposition: attachment; filename*=UTF-8''<percent-encoded name>"
    )]
    Missing,
    /// More than one header: which one names the file would be a guess.
    #[error("send one Content-Disposition header, not several")]
    Several,
    /// Bytes a header may carry but this one may not: anything beyond visible ASCII.
    #[error(
        "the Content-Disposition header is not ASCII: percent-encode the name as filename*=UTF-8''…"
    )]
    NotAscii,
    /// The header does not follow the grammar.
    #[error("the Content-Disposition header cannot be read: {0}")]
    Syntax(&'static str),
    /// Another disposition type than `attachment`.
    #[error("the Content-Disposition type is not attachment")]
    NotAttachment,
    /// A parameter given twice (RFC 6266 §4.1 forbids it).
    #[error("a Content-Disposition parameter is given more than once")]
    Repeated,
    /// Neither `filename` nor `filename*`.
    #[error("the Content-Disposition header names no filename")]
    NoFilename,
    /// `filename*` in another character set than UTF-8 (RFC 8187 §3.2.1).
    #[error("filename* is not in UTF-8, the only character set read")]
    Charset,
    /// `filename*` whose percent-encoding or UTF-8 is broken.
    #[error("filename* is not percent-encoded UTF-8: {0}")]
    Encoding(&'static str),
    /// A name that cannot be kept as a plain file name.
    #[error(
        "a plain file name of at most {MAX_FILENAME_BYTES} bytes, not . or .., without slashes, \
         control or invisible characters"
    )]
    Name,
}

/// Every byte but the `attr-char`s, percent-encoded in a `filename*`.
const NOT_ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Why the grammar refuses `header`, in words that repeat nothing of it.
fn grammar(header: &str, e: &ParseError) -> BadDisposition {
    use BadDisposition::{Charset, Encoding, Repeated, Syntax};
    let in_ext_value = header
        .to_ascii_lowercase()
        .find("filename*=")
        .is_some_and(|at| e.offset() >= at + "filename*=".len());
    match e.kind() {
        ErrorKind::InvalidByte if in_ext_value => {
            Encoding("a character that must be percent-encoded is not")
        }
        ErrorKind::DuplicateParameter => Repeated,
        ErrorKind::UnsupportedCharset => Charset,
        ErrorKind::InvalidCharset => Encoding("it is not written charset'language'value"),
        ErrorKind::InvalidPercentEncoding => Encoding("a '%' is not followed by two hex digits"),
        ErrorKind::InvalidUtf8 => Encoding("the bytes are not UTF-8"),
        // A name with a control character is not one to keep, however it was written.
        ErrorKind::ControlInDecoded => BadDisposition::Name,
        ErrorKind::UnterminatedQuote => Syntax("a quoted string is not closed"),
        ErrorKind::NotToken | ErrorKind::Empty => Syntax("a type or a name is not a token"),
        ErrorKind::MissingValue => Syntax("a parameter has no '=' and value"),
        ErrorKind::InvalidByte => Syntax("a parameter is name=value, with no spaces around '='"),
        _ => Syntax("parameters are name=value pairs separated by ';'"),
    }
}

/// Characters that change how a name reads without being seen: the bidirectional
/// embeddings, overrides and isolates of Unicode's UAX #9 (with which `扫描件\u{202E}fdp.exe`
/// shows as `扫描件exe.pdf`), the zero-width and other format characters (general category
/// Cf) a name has no use for, and the line and paragraph separators.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'                     // soft hyphen
        | '\u{061C}'                   // Arabic letter mark
        | '\u{180E}'                   // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}'      // zero-width space, (non-)joiner, LRM, RLM
        | '\u{2028}'..='\u{202E}'      // line and paragraph separators, LRE RLE PDF LRO RLO
        | '\u{2060}'..='\u{206F}'      // word joiner, invisible operators, LRI RLI FSI PDI, …
        | '\u{FEFF}'                   // zero-width no-break space (byte order mark)
        | '\u{FFF9}'..='\u{FFFB}'      // interlinear annotation
    )
}

/// The file name an upload's `Content-Disposition: attachment; …` gives: `filename*`
/// when present (RFC 6266 §4.3: it is preferred), else `filename`; trimmed, non-empty,
/// at most [`MAX_FILENAME_BYTES`], not `.` or `..`, without slashes, backslashes, control
/// or invisible characters. More than one `Content-Disposition` header is refused.
pub fn upload_filename(headers: &HeaderMap) -> Result<String, BadDisposition> {
    let mut all = headers.get_all(CONTENT_DISPOSITION).iter();
    let header = all.next().ok_or(BadDisposition::Missing)?;
    if all.next().is_some() {
        return Err(BadDisposition::Several);
    }
    let text = header.to_str().map_err(|_| BadDisposition::NotAscii)?;
    let parsed =
        parse_net::parse_content_disposition(text.as_bytes()).map_err(|e| grammar(text, &e))?;
    if parsed.kind() != DispositionType::Attachment {
        return Err(BadDisposition::NotAttachment);
    }
    let Some(filename) = parsed.filename() else {
        return Err(match parsed.params().get("filename*") {
            // Present but not an ext-value: written in quotes, or without its prefix.
            Some(_) => BadDisposition::Encoding("it is not written charset'language'value"),
            None => BadDisposition::NoFilename,
        });
    };
    if let Filename::Ext(ext) = &filename
        && ext.charset() != Charset::Utf8
    {
        return Err(BadDisposition::Charset);
    }
    // Never longer than the header, which the HTTP server bounds.
    let mut buf = vec![0; filename.max_decoded_len()];
    let name = filename
        .decode_into(&mut buf)
        .map_err(|e| grammar(text, &e))?;
    let name = name.trim();
    if name.is_empty()
        || name.len() > MAX_FILENAME_BYTES
        || name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(|c| c.is_control() || is_invisible(c))
    {
        return Err(BadDisposition::Name);
    }
    Ok(name.to_owned())
}

/// `inline; filename*=UTF-8''<name, percent-encoded>`: a download the browser shows
/// (PDF, JPEG, PNG) and saves under its own name, whatever its characters.
pub fn inline(filename: &str) -> HeaderValue {
    let value = format!(
        "inline; filename*=UTF-8''{}",
        utf8_percent_encode(filename, NOT_ATTR_CHAR)
    );
    // Percent-encoding leaves only visible ASCII.
    HeaderValue::from_str(&value).expect("percent-encoded text is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng as _, SeedableRng as _};

    fn name_of(header: &str) -> Result<String, BadDisposition> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_DISPOSITION, HeaderValue::from_str(header).unwrap());
        upload_filename(&headers)
    }

    #[test]
    fn plain_names_come_as_tokens_or_quoted_strings() {
        assert_eq!(
            name_of("attachment; filename=consent.pdf").unwrap(),
            "consent.pdf"
        );
        assert_eq!(
            name_of("attachment; filename=\"signed consent; page 1.pdf\"").unwrap(),
            "signed consent; page 1.pdf"
        );
        assert_eq!(
            name_of(r#"attachment; filename="the \"final\" scan.png""#).unwrap(),
            r#"the "final" scan.png"#
        );
        // Type and parameter names are case-insensitive; spaces around ';' are allowed, and
        // so is a trailing ';'.
        assert_eq!(
            name_of("Attachment ;FileName=\"  ct.jpg \" ;").unwrap(),
            "ct.jpg"
        );
    }

    #[test]
    fn filename_star_is_decoded_and_preferred() {
        assert_eq!(
            name_of(
                "attachment; filename*=UTF-8''%E7%9F%A5%E6%83%85%E5%90%8C%E6%84%8F%E4%B9%A6.pdf"
            )
            .unwrap(),
            "知情同意书.pdf"
        );
        assert_eq!(
            name_of("attachment; filename=\"fallback.pdf\"; filename*=utf-8'zh-CN'%E7%8E%8B.pdf")
                .unwrap(),
            "王.pdf"
        );
        assert_eq!(
            name_of("attachment; filename*=UTF-8''a%20b.pdf; filename=fallback.pdf").unwrap(),
            "a b.pdf"
        );
    }

    #[test]
    fn what_is_sent_back_reads_as_what_was_sent() {
        for name in [
            "知情同意书 (王某某).pdf",
            "it's 100% * done.png",
            "a;b=\"c\".jpg",
        ] {
            let inline = inline(name);
            let sent = inline.to_str().unwrap();
            assert!(sent.starts_with("inline; filename*=UTF-8''"), "{sent}");
            let attachment = sent.replacen("inline", "attachment", 1);
            assert_eq!(name_of(&attachment).unwrap(), name);
        }
        assert_eq!(
            inline("知情同意书.pdf"),
            "inline; filename*=UTF-8''%E7%9F%A5%E6%83%85%E5%90%8C%E6%84%8F%E4%B9%A6.pdf"
        );
    }

    #[test]
    fn bad_headers_are_refused_saying_why() {
        use BadDisposition::*;
        assert_eq!(upload_filename(&HeaderMap::new()), Err(Missing));
        let raw = HeaderValue::from_bytes("attachment; filename=\"王.pdf\"".as_bytes()).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_DISPOSITION, raw);
        assert_eq!(upload_filename(&headers), Err(NotAscii));
        for (header, expected) in [
            ("inline; filename=a.pdf", NotAttachment),
            ("attachment", NoFilename),
            ("attachment; size=12", NoFilename),
            ("attachment; filename=a.pdf; filename=b.pdf", Repeated),
            ("attachment; filename*=ISO-8859-1''a.pdf", Charset),
            (
                "attachment; filename*=a.pdf",
                Encoding("it is not written charset'language'value"),
            ),
            (
                "attachment; filename*=UTF-8''%E7%9F",
                Encoding("the bytes are not UTF-8"),
            ),
            (
                "attachment; filename*=UTF-8''%ZZ.pdf",
                Encoding("a '%' is not followed by two hex digits"),
            ),
            (
                "attachment; filename*=UTF-8''a%2",
                Encoding("a '%' is not followed by two hex digits"),
            ),
            (
                "attachment; filename*=UTF-8''it's.pdf",
                Encoding("a character that must be percent-encoded is not"),
            ),
            (
                "attachment; filename*=\"UTF-8''a.pdf\"",
                Encoding("it is not written charset'language'value"),
            ),
            (
                "attachment; filename=\"a.pdf",
                Syntax("a quoted string is not closed"),
            ),
            (
                "attachment; filename=a b.pdf",
                Syntax("parameters are name=value pairs separated by ';'"),
            ),
            (
                "attachment; filename = a.pdf",
                Syntax("a parameter is name=value, with no spaces around '='"),
            ),
            (
                "attachment; filename",
                Syntax("a parameter has no '=' and value"),
            ),
            (
                "attachment; filename=",
                Syntax("a parameter has no '=' and value"),
            ),
            (
                "; filename=a.pdf",
                Syntax("a type or a name is not a token"),
            ),
            ("attachment; filename=\"   \"", Name),
            ("attachment; filename=\"../etc/passwd\"", Name),
            ("attachment; filename=\"C:\\\\scan.png\"", Name),
            ("attachment; filename*=UTF-8''a%0Ab.pdf", Name),
            ("attachment; filename*=UTF-8''%2Fetc.pdf", Name),
        ] {
            assert_eq!(name_of(header), Err(expected), "{header}");
        }
        let long = format!("attachment; filename={}.pdf", "x".repeat(197));
        assert_eq!(name_of(&long), Err(Name));
        let just = format!("attachment; filename={}.pdf", "x".repeat(196));
        assert_eq!(name_of(&just).unwrap().len(), 200);
        // 67 three-byte characters: 201 bytes decoded.
        let wide = format!("attachment; filename*=UTF-8''{}", "%E7%8E%8B".repeat(67));
        assert_eq!(name_of(&wide), Err(Name));
        assert!(Name.to_string().contains("at most 200 bytes"), "{Name}");
    }

    #[test]
    fn names_that_read_otherwise_than_they_are_are_refused() {
        // Shown as "扫描件exe.pdf", an executable.
        assert_eq!(
            name_of("attachment; filename*=UTF-8''%E6%89%AB%E6%8F%8F%E4%BB%B6%E2%80%AEfdp.exe"),
            Err(BadDisposition::Name)
        );
        for invisible in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', // embeddings, overrides
            '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', // isolates
            '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', // zero-width, marks
            '\u{FEFF}', '\u{2028}', '\u{2029}', '\u{061C}', '\u{00AD}', '\u{2060}',
        ] {
            let name = format!("scan{invisible}.pdf");
            let header = format!(
                "attachment; filename*=UTF-8''{}",
                utf8_percent_encode(&name, NOT_ATTR_CHAR)
            );
            assert_eq!(
                name_of(&header),
                Err(BadDisposition::Name),
                "U+{:04X}",
                u32::from(invisible)
            );
        }
        for header in [
            "attachment; filename=.",
            "attachment; filename=..",
            "attachment; filename=\" .. \"",
            "attachment; filename*=UTF-8''..",
            "attachment; filename*=UTF-8''%2E",
        ] {
            assert_eq!(name_of(header), Err(BadDisposition::Name), "{header}");
        }
        // Dots inside a name, and names that only start with one, are ordinary.
        assert_eq!(
            name_of("attachment; filename=..scan.pdf").unwrap(),
            "..scan.pdf"
        );
        assert_eq!(name_of("attachment; filename=.pdf").unwrap(), ".pdf");
        assert_eq!(
            name_of("attachment; filename*=UTF-8''CT%E2%80%941.png").unwrap(),
            "CT\u{2014}1.png",
            "an em dash is visible"
        );
    }

    #[test]
    fn more_than_one_header_is_refused() {
        let mut headers = HeaderMap::new();
        headers.append(
            CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=a.pdf"),
        );
        headers.append(
            CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=b.pdf"),
        );
        assert_eq!(upload_filename(&headers), Err(BadDisposition::Several));
    }

    #[test]
    fn refusals_never_repeat_what_the_caller_sent() {
        // A disposition type, a parameter's name and a charset, each a patient's name.
        for header in [
            "wangmoumou; filename=a.pdf",
            "attachment; wangmoumou=1; wangmoumou=2",
            "attachment; filename*=wangmoumou''a.pdf",
        ] {
            let refusal = name_of(header).unwrap_err().to_string();
            assert!(!refusal.contains("wangmoumou"), "{header}: {refusal}");
        }
    }

    #[test]
    fn random_and_damaged_headers_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(6266);
        let alphabet = b"attachment; filename*=UTF-8''%E7\"\\ \t;=,'abc%zz/.";
        for _ in 0..20_000 {
            let len = rng.gen_range(0..48);
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.gen_bool(0.9) {
                        alphabet[rng.gen_range(0..alphabet.len())]
                    } else {
                        rng.gen_range(0x20..=0xff)
                    }
                })
                .collect();
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                let mut headers = HeaderMap::new();
                headers.insert(CONTENT_DISPOSITION, value);
                let _ = upload_filename(&headers);
            }
        }
    }
}
