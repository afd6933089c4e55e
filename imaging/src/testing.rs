//! What the tests share (the crate's unit tests and its integration tests); not for use
//! outside tests.

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
