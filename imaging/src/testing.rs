//! What the tests share (the crate's unit tests and its integration tests) and the
//! benchmark's input; not for use in service.

pub mod series;

use dicom_core::{DataElement, PrimitiveValue, VR, dicom_value};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

/// The CT Image Storage SOP class.
pub const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

/// A CT instance `sop` of `rows` × `columns` 16-bit pixels, with a sequence before its
/// native pixel data, as a Part 10 file in explicit VR little endian.
pub fn ct(sop: &str, rows: u16, columns: u16) -> Vec<u8> {
    let text = |tag, vr, value: &str| DataElement::new(tag, vr, PrimitiveValue::from(value));
    let number = |tag, value: u16| DataElement::new(tag, VR::US, dicom_value!(U16, [value]));
    let pixels = usize::from(rows) * usize::from(columns) * 2;
    let mut item = InMemDicomObject::new_empty();
    item.put(text(tags::CODE_VALUE, VR::SH, "T-A0100"));
    let obj = InMemDicomObject::from_element_iter([
        text(tags::SOP_CLASS_UID, VR::UI, CT),
        text(tags::SOP_INSTANCE_UID, VR::UI, sop),
        text(tags::STUDY_INSTANCE_UID, VR::UI, "2.25.1"),
        text(tags::SERIES_INSTANCE_UID, VR::UI, "2.25.2"),
        text(tags::PATIENT_NAME, VR::PN, "Test^Patient"),
        text(tags::MODALITY, VR::CS, "CT"),
        DataElement::new(
            tags::ANATOMIC_REGION_SEQUENCE,
            VR::SQ,
            dicom_core::value::DataSetSequence::from(vec![item]),
        ),
        number(tags::ROWS, rows),
        number(tags::COLUMNS, columns),
        number(tags::BITS_ALLOCATED, 16),
        DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::from(vec![7_u8; pixels]),
        ),
    ]);
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .media_storage_sop_class_uid(CT)
                .media_storage_sop_instance_uid(sop)
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN),
        )
        .expect("a file meta");
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).expect("written");
    bytes
}

/// One level of a [`nested_ct`] data set's nesting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Level {
    /// The sequence has a defined length (else a sequence delimiter ends it).
    pub defined_sequence: bool,
    /// Its item has a defined length (else an item delimiter ends it).
    pub defined_item: bool,
    /// Code elements in the item beside the next level (0 to 3).
    pub siblings: u8,
    /// Empty items after it in the same sequence.
    pub more_items: u16,
}

/// A CT data set (no file meta) naming `sop` in the study `study`, whose Content Sequence
/// nests one sequence in the item of the one before for each of `levels` (the first
/// outermost), in Explicit
/// or Implicit VR Little Endian, with 8 bytes of native pixel data at the end. Built
/// byte by byte: general writers refuse, or recurse on, what peers may send.
pub fn nested_ct(sop: &str, study: &str, levels: &[Level], explicit: bool) -> Vec<u8> {
    const UNDEFINED: u32 = 0xFFFF_FFFF;
    let header = |(group, element): (u16, u16), vr: &[u8; 2], len: u32| {
        let mut out = Vec::new();
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        if explicit {
            out.extend_from_slice(vr);
            if matches!(vr, b"SQ" | b"OW" | b"OB" | b"UN") {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&len.to_le_bytes());
            } else {
                out.extend_from_slice(&(len as u16).to_le_bytes());
            }
        } else {
            out.extend_from_slice(&len.to_le_bytes());
        }
        out
    };
    let text = |tag, vr: &[u8; 2], value: &str| {
        let mut v = value.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(if vr == b"UI" { 0 } else { b' ' });
        }
        let mut out = header(tag, vr, v.len() as u32);
        out.extend(v);
        out
    };
    let delimiter = |element: u16, len: u32| {
        let mut out = vec![0xFE, 0xFF];
        out.extend_from_slice(&element.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out
    };
    let mut inner = text((0x0040, 0xA040), b"CS", "TEXT");
    for level in levels.iter().rev() {
        let mut content = Vec::new();
        for (element, value) in [(0x0100, "T-A0100"), (0x0102, "SRT"), (0x0104, "CT")]
            .into_iter()
            .take(usize::from(level.siblings))
        {
            content.extend(text((0x0008, element), b"SH", value));
        }
        content.extend(inner);
        let mut items = if level.defined_item {
            delimiter(0xE000, content.len() as u32)
        } else {
            delimiter(0xE000, UNDEFINED)
        };
        items.extend(content);
        if !level.defined_item {
            items.extend(delimiter(0xE00D, 0));
        }
        for _ in 0..level.more_items {
            items.extend(delimiter(0xE000, 0));
        }
        let mut sequence = if level.defined_sequence {
            header((0x0040, 0xA730), b"SQ", items.len() as u32)
        } else {
            header((0x0040, 0xA730), b"SQ", UNDEFINED)
        };
        sequence.extend(items);
        if !level.defined_sequence {
            sequence.extend(delimiter(0xE0DD, 0));
        }
        inner = sequence;
    }
    let mut ds = text((0x0008, 0x0016), b"UI", CT);
    ds.extend(text((0x0008, 0x0018), b"UI", sop));
    ds.extend(text((0x0008, 0x0060), b"CS", "CT"));
    ds.extend(text((0x0020, 0x000D), b"UI", study));
    ds.extend(text((0x0020, 0x000E), b"UI", &format!("{study}.1")));
    if !levels.is_empty() {
        ds.extend(inner);
    }
    ds.extend(header((0x7FE0, 0x0010), b"OW", 8));
    ds.extend_from_slice(&[7; 8]);
    ds
}

/// `data_set` as a Part 10 file of the CT instance `sop` in `transfer_syntax`.
pub fn part10(data_set: &[u8], sop: &str, transfer_syntax: &str) -> Vec<u8> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(CT)
        .media_storage_sop_instance_uid(sop)
        .transfer_syntax(transfer_syntax)
        .implementation_class_uid(crate::scp::IMPLEMENTATION_CLASS_UID)
        .build()
        .expect("a file meta");
    let mut bytes = vec![0_u8; 128];
    bytes.extend_from_slice(b"DICM");
    meta.write(&mut bytes).expect("written");
    bytes.extend_from_slice(data_set);
    bytes
}
