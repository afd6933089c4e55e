//! Reading a spooled instance back, blocking: the walk of its data set's structure
//! ([`crate::walk`], a deflated one bounded against bombs), the attributes the index keeps
//! checked against what the command (or STOW-RS file meta) said it is, read early from
//! the part that has arrived or at the end ([`inspect`]), and the full parse ([`open`]).

use dicom_dictionary_std::{tags, uids};
use dicom_object::OpenFileOptions;

use super::InstanceRecord;
use crate::dimse::status;
use crate::spool::Stored;
use crate::walk::{PART10_HEAD, meta_length};

// `get`, not `element`: dicom-object captures a backtrace for every missing attribute
// `element` is asked for, which cost the relay about 4% of its CPU at ingest.
fn attr(obj: &dicom_object::DefaultDicomObject, tag: dicom_core::Tag) -> String {
    obj.get(tag)
        .and_then(|e| {
            if e.vr() == dicom_core::VR::UN {
                // Some converters write standard attributes as UN; their bytes are the text.
                e.to_bytes()
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            } else {
                e.to_str().ok().map(|s| s.into_owned())
            }
        })
        .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_owned())
        .unwrap_or_default()
}

fn number(obj: &dicom_object::DefaultDicomObject, tag: dicom_core::Tag) -> Option<i32> {
    obj.get(tag).and_then(|e| e.to_int::<i32>().ok())
}

/// Walks the data set of the spooled instance `stored`, whose file meta says
/// `transfer_syntax` (see [`crate::walk`]).
pub(super) fn walk_file(stored: &Stored, transfer_syntax: &str) -> Result<(), u16> {
    use std::io::Read;
    let mut file = stored.open().map_err(|_| status::OUT_OF_RESOURCES)?;
    if stored.length < PART10_HEAD as u64 {
        return Err(status::CANNOT_UNDERSTAND);
    }
    let mut head = [0_u8; PART10_HEAD];
    file.read_exact(&mut head)
        .map_err(|_| status::CANNOT_UNDERSTAND)?;
    let meta_length = meta_length(&head).ok_or(status::CANNOT_UNDERSTAND)?;
    let Some(data_set) = stored.length.checked_sub(PART10_HEAD as u64 + meta_length) else {
        return Err(status::CANNOT_UNDERSTAND);
    };
    file.seek_relative(i64::try_from(meta_length).map_err(|_| status::CANNOT_UNDERSTAND)?)
        .map_err(|_| status::CANNOT_UNDERSTAND)?;
    let encoding = crate::walk::Encoding::of(transfer_syntax);
    let walked = if transfer_syntax == uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN {
        // A deflated data set may not inflate to more than 64 times its size (a bomb).
        // One that does is refused, not walked in part: the parser after the walk would
        // inflate the rest, unchecked.
        let limit = stored.length * 64;
        let mut inflated = flate2::read::DeflateDecoder::new(file.take(data_set)).take(limit + 1);
        let walked = crate::walk::walk(&mut inflated, encoding);
        if inflated.limit() == 0 {
            return Err(status::CANNOT_UNDERSTAND);
        }
        walked
    } else {
        // Values are skipped, not read: the pixel data is not read back.
        crate::walk::walk_seekable(file, data_set, encoding)
    };
    walked.map_err(|_| status::CANNOT_UNDERSTAND)
}

/// Reads back the spooled instance `stored` and checks it against what it should be: the
/// SOP class and instance its C-STORE command (or STOW-RS file meta) named, in
/// `transfer_syntax`. Blocking.
pub fn inspect(
    stored: &Stored,
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax: &str,
) -> Result<InstanceRecord, u16> {
    walk_file(stored, transfer_syntax)?;
    attributes(stored, sop_class_uid, sop_instance_uid)
}

/// The attributes the index keeps, read from `stored` up to its pixel data (which need
/// not have arrived), checked against the SOP class and instance it should be. Only for
/// bytes the walk has passed. Blocking.
fn attributes(
    stored: &Stored,
    sop_class_uid: &str,
    sop_instance_uid: &str,
) -> Result<InstanceRecord, u16> {
    let obj = open(stored, Some(tags::PIXEL_DATA)).map_err(|_| status::CANNOT_UNDERSTAND)?;
    if attr(&obj, tags::SOP_INSTANCE_UID) != sop_instance_uid
        || attr(&obj, tags::SOP_CLASS_UID) != sop_class_uid
    {
        return Err(status::DATA_SET_DOES_NOT_MATCH);
    }
    let study = attr(&obj, tags::STUDY_INSTANCE_UID);
    let series = attr(&obj, tags::SERIES_INSTANCE_UID);
    if study.is_empty() || series.is_empty() {
        return Err(status::DATA_SET_DOES_NOT_MATCH);
    }
    Ok(InstanceRecord {
        sop_instance_uid: sop_instance_uid.to_owned(),
        sop_class_uid: sop_class_uid.to_owned(),
        study_instance_uid: study,
        series_instance_uid: series,
        patient_id: attr(&obj, tags::PATIENT_ID),
        patient_name: attr(&obj, tags::PATIENT_NAME),
        patient_birth_date: attr(&obj, tags::PATIENT_BIRTH_DATE),
        patient_sex: attr(&obj, tags::PATIENT_SEX),
        study_date: attr(&obj, tags::STUDY_DATE),
        study_time: attr(&obj, tags::STUDY_TIME),
        study_description: attr(&obj, tags::STUDY_DESCRIPTION),
        accession_number: attr(&obj, tags::ACCESSION_NUMBER),
        modality: attr(&obj, tags::MODALITY),
        series_number: number(&obj, tags::SERIES_NUMBER),
        instance_number: number(&obj, tags::INSTANCE_NUMBER),
        transfer_syntax: obj
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_owned(),
        ..InstanceRecord::default()
    })
}

/// Reads the attributes of an instance still arriving, from what `so_far` holds of it,
/// if that reaches the pixel data and all before it walks well: then only the pixel data
/// is left to check when the rest has come. `None` otherwise (deflated data sets too):
/// everything is read at the end. Blocking.
pub(super) fn early(
    so_far: &Stored,
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax: &str,
) -> Option<InstanceRecord> {
    use std::io::Read;
    if transfer_syntax == uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN {
        return None;
    }
    let mut file = so_far.open().ok()?;
    let mut head = [0_u8; PART10_HEAD];
    file.read_exact(&mut head).ok()?;
    let meta_length = meta_length(&head)?;
    let skipped = std::io::copy(&mut (&mut file).take(meta_length), &mut std::io::sink()).ok()?;
    if skipped != meta_length {
        return None;
    }
    let at = crate::walk::pixel_data_at(file, crate::walk::Encoding::of(transfer_syntax))?;
    // With the pixel data's element header (12 bytes at most) the parser stops at the tag
    // it was told to read until; without it, it stops at the end of its input, but only
    // after making an error with a backtrace, which costs more than the parse.
    let head = Stored {
        length: (PART10_HEAD as u64 + meta_length + at + 12).min(so_far.length),
        ..so_far.clone()
    };
    attributes(&head, sop_class_uid, sop_instance_uid).ok()
}

/// How many bytes of an instance arrive before its attributes are read early.
pub(super) const EARLY_AT: u64 = 64 * 1024;

/// Parses the stored instance `stored` (up to `until`, if given). Blocking.
pub fn open(
    stored: &Stored,
    until: Option<dicom_core::Tag>,
) -> Result<dicom_object::DefaultDicomObject, String> {
    let mut options =
        OpenFileOptions::new().read_preamble(dicom_object::file::ReadPreamble::Always);
    if let Some(tag) = until {
        options = options.read_until(tag);
    }
    let reader = stored.open().map_err(|e| e.to_string())?;
    options.from_reader(reader).map_err(|e| e.to_string())
}
