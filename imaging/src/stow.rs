//! STOW-RS (PS3.18 §10.5) without the HTTP: the request's content type, the file meta of
//! each uploaded part checked before anything is kept, and the answer listing what was
//! stored and what failed, and why. The gateway streams each part into the spool and then
//! keeps it exactly as the storage SCP keeps a C-STORE ([`crate::scp::inspect`],
//! [`crate::scp::keep`]).

use std::io::Read;

use dicom_object::FileMetaTable;
use serde_json::{Map, Value, json};

use crate::dimse::status;
use crate::scp::TRANSFER_SYNTAXES;
use crate::sop_classes;
use crate::spool::Stored;
use crate::walk::{PART10_HEAD, meta_length};

/// Failure reasons of STOW-RS beyond the DIMSE statuses (PS3.18 Table 10.5.3-1).
pub mod reason {
    /// Refused: not authorized (the study belongs to an institution the caller is not).
    pub const NOT_AUTHORIZED: u16 = 0x0124;
    /// The instance's transfer syntax is not one the relay stores.
    pub const TRANSFER_SYNTAX_NOT_SUPPORTED: u16 = 0xC122;
}

/// The boundary of a `multipart/related; type="application/dicom"` request, or why the
/// content type cannot be stored. The media type is read by the `mime` crate (RFC 9110
/// §8.3.1: parameters, quoted strings and their escapes).
pub fn boundary(content_type: &str) -> Result<String, String> {
    let expected = "expected multipart/related; type=\"application/dicom\"";
    let media: mime::Mime = content_type
        .parse()
        .map_err(|_| format!("{expected}: the content type cannot be read"))?;
    if media.type_() != mime::MULTIPART || media.subtype() != "related" {
        return Err(format!("{expected}, not {}", media.essence_str()));
    }
    if let Some(parts) = media.get_param("type") {
        if !parts.as_str().eq_ignore_ascii_case("application/dicom") {
            return Err(format!(
                "only application/dicom parts are stored, not {:?}",
                parts.as_str()
            ));
        }
    }
    match media.get_param(mime::BOUNDARY) {
        Some(b) if (1..=70).contains(&b.as_str().len()) => Ok(b.as_str().to_owned()),
        _ => Err("the multipart boundary is missing".into()),
    }
}

/// What the file meta of an uploaded part says it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// Media Storage SOP Class UID.
    pub sop_class_uid: String,
    /// Media Storage SOP Instance UID.
    pub sop_instance_uid: String,
    /// Transfer Syntax UID.
    pub transfer_syntax: String,
}

/// Reads the file meta of the spooled Part 10 file `stored` and checks that the relay
/// stores its SOP class and transfer syntax; otherwise the failure reason. Blocking.
pub fn meta(stored: &Stored) -> Result<Meta, u16> {
    read_meta(stored.open().map_err(|_| status::OUT_OF_RESOURCES)?)
}

/// The largest file meta group read, in bytes.
const MAX_META: usize = 64 * 1024;

/// [`meta`] from a reader at the start of a Part 10 file. The meta must begin with its
/// group length, as PS3.10 requires, for the data set walk to find its start; the group
/// is walked before it is parsed, so that a damaged length is refused rather than
/// allocated.
pub fn read_meta(mut input: impl Read) -> Result<Meta, u16> {
    let mut head = [0_u8; PART10_HEAD];
    input
        .read_exact(&mut head)
        .map_err(|_| status::CANNOT_UNDERSTAND)?;
    if &head[128..132] != b"DICM" || head[132..140] != *b"\x02\x00\x00\x00UL\x04\x00" {
        return Err(status::CANNOT_UNDERSTAND);
    }
    let length = meta_length(&head)
        .and_then(|l| usize::try_from(l).ok())
        .ok_or(status::CANNOT_UNDERSTAND)?;
    if length > MAX_META {
        return Err(status::CANNOT_UNDERSTAND);
    }
    let mut group = head[128..].to_vec();
    group.resize(16 + length, 0);
    input
        .read_exact(&mut group[16..])
        .map_err(|_| status::CANNOT_UNDERSTAND)?;
    crate::walk::walk(&group[4..], crate::walk::Encoding::ExplicitLittle)
        .map_err(|_| status::CANNOT_UNDERSTAND)?;
    let table =
        FileMetaTable::from_reader(group.as_slice()).map_err(|_| status::CANNOT_UNDERSTAND)?;
    let clean = |s: &str| s.trim_end_matches(['\0', ' ']).to_owned();
    let meta = Meta {
        sop_class_uid: clean(&table.media_storage_sop_class_uid),
        sop_instance_uid: clean(&table.media_storage_sop_instance_uid),
        transfer_syntax: clean(&table.transfer_syntax),
    };
    if !sop_classes::STORAGE.contains(&meta.sop_class_uid.as_str()) {
        return Err(status::SOP_CLASS_NOT_SUPPORTED);
    }
    if !TRANSFER_SYNTAXES.contains(&meta.transfer_syntax.as_str()) {
        return Err(reason::TRANSFER_SYNTAX_NOT_SUPPORTED);
    }
    Ok(meta)
}

/// How one uploaded instance fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// SOP Class UID, when known.
    pub sop_class_uid: String,
    /// SOP Instance UID, when known.
    pub sop_instance_uid: String,
    /// Success (0) or the failure reason.
    pub status: u16,
    /// Where a stored instance can be retrieved.
    pub retrieve_url: Option<String>,
}

fn uid(value: &str) -> Value {
    if value.is_empty() {
        json!({"vr": "UI"})
    } else {
        json!({"vr": "UI", "Value": [value]})
    }
}

/// The STOW-RS response (PS3.18 §10.5.3): Retrieve URL of the study, Referenced SOP
/// Sequence of the stored instances, Failed SOP Sequence with each Failure Reason.
pub fn response(study_url: Option<&str>, outcomes: &[Outcome]) -> Value {
    let mut stored = Vec::new();
    let mut failed = Vec::new();
    for o in outcomes {
        let mut item = Map::new();
        item.insert("00081150".into(), uid(&o.sop_class_uid));
        item.insert("00081155".into(), uid(&o.sop_instance_uid));
        if o.status == status::SUCCESS {
            if let Some(url) = &o.retrieve_url {
                item.insert("00081190".into(), json!({"vr": "UR", "Value": [url]}));
            }
            stored.push(Value::Object(item));
        } else {
            item.insert("00081197".into(), json!({"vr": "US", "Value": [o.status]}));
            failed.push(Value::Object(item));
        }
    }
    let mut body = Map::new();
    if let Some(url) = study_url {
        body.insert("00081190".into(), json!({"vr": "UR", "Value": [url]}));
    }
    if !failed.is_empty() {
        body.insert("00081198".into(), json!({"vr": "SQ", "Value": failed}));
    }
    body.insert("00081199".into(), json!({"vr": "SQ", "Value": stored}));
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_type_must_be_dicom_parts_with_a_boundary() {
        assert_eq!(
            boundary("multipart/related; type=\"application/dicom\"; boundary=abc").unwrap(),
            "abc"
        );
        assert_eq!(
            boundary("Multipart/Related; boundary=\"x y\"").unwrap(),
            "x y"
        );
        assert!(boundary("application/dicom").is_err());
        assert!(
            boundary("multipart/related; type=\"application/dicom+json\"; boundary=a").is_err()
        );
        assert!(boundary("multipart/related; type=\"application/dicom\"").is_err());
        // Quoted parameters may hold what separates parameters.
        assert_eq!(
            boundary(
                "multipart/related; start=\"<a;b>\"; type=\"application/dicom\"; boundary=\"q;r=s\""
            )
            .unwrap(),
            "q;r=s"
        );
        assert!(boundary("multipart/related; type=\"application/dicom;x\"; boundary=a").is_err());
        assert!(boundary("not a media type").is_err());
    }

    #[test]
    fn the_response_lists_stored_and_failed_instances() {
        let r = response(
            Some("http://x/dicomweb/studies/1"),
            &[
                Outcome {
                    sop_class_uid: "1.2".into(),
                    sop_instance_uid: "1.2.3".into(),
                    status: 0,
                    retrieve_url: Some("http://x/i".into()),
                },
                Outcome {
                    sop_class_uid: String::new(),
                    sop_instance_uid: String::new(),
                    status: status::CANNOT_UNDERSTAND,
                    retrieve_url: None,
                },
            ],
        );
        assert_eq!(r["00081199"]["Value"][0]["00081155"]["Value"][0], "1.2.3");
        assert_eq!(r["00081198"]["Value"][0]["00081197"]["Value"][0], 0xC000);
        assert_eq!(r["00081190"]["Value"][0], "http://x/dicomweb/studies/1");
    }
}
