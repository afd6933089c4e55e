//! Synthetic CT series whose images differ from slice to slice (a disc that grows): the
//! benchmark's input, and the viewer's test data (scrolling must show other pixels, not
//! only another number).

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

/// The UIDs of a written series.
pub struct Series {
    /// Study Instance UID.
    pub study: String,
    /// Series Instance UID.
    pub series: String,
    /// The files, in slice order.
    pub files: Vec<PathBuf>,
}

/// A UID under the `2.25` root (PS3.5 B.2): `base`, shifted, plus `n`.
fn uid(base: u128, n: u128) -> String {
    format!("2.25.{}", (base << 20) + n)
}

/// Writes `n` CT images of `size`×`size` (16-bit signed, Hounsfield units through a
/// rescale intercept of −1024) into `dir`: air around a soft-tissue disc, and a brighter
/// disc inside whose radius grows by two pixels a slice. Accession number `accession`.
pub fn ct_series(dir: &Path, n: usize, size: u16, accession: &str) -> std::io::Result<Series> {
    std::fs::create_dir_all(dir)?;
    let base: u128 = rand::random::<u64>().into();
    let (study, series) = (uid(base, 0), uid(base, 1));
    let s = i64::from(size);
    let c = s / 2;
    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        let sop = uid(base, 2 + i as u128);
        let inner = s / 8 + 2 * i as i64;
        let mut pixels = Vec::with_capacity((s * s * 2) as usize);
        for y in 0..s {
            for x in 0..s {
                let d = (x - c) * (x - c) + (y - c) * (y - c);
                // Stored values: Hounsfield units + 1024.
                let v: i16 = if d < inner * inner {
                    1024 + 300
                } else if d < (s * 2 / 5) * (s * 2 / 5) {
                    1024 + 40
                } else {
                    0
                };
                pixels.extend_from_slice(&v.to_le_bytes());
            }
        }
        let mut obj = InMemDicomObject::new_empty();
        let mut put = |tag, vr, value: PrimitiveValue| obj.put(DataElement::new(tag, vr, value));
        put(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE.into());
        put(tags::SOP_INSTANCE_UID, VR::UI, sop.as_str().into());
        put(tags::STUDY_INSTANCE_UID, VR::UI, study.as_str().into());
        put(tags::SERIES_INSTANCE_UID, VR::UI, series.as_str().into());
        put(tags::PATIENT_NAME, VR::PN, "WANG^MOUMOU".into());
        put(tags::PATIENT_ID, VR::LO, "TS0001".into());
        put(tags::ACCESSION_NUMBER, VR::SH, accession.into());
        put(tags::MODALITY, VR::CS, "CT".into());
        put(tags::STUDY_DATE, VR::DA, "20261201".into());
        put(tags::SERIES_DESCRIPTION, VR::LO, "HEAD 5mm".into());
        put(tags::SERIES_NUMBER, VR::IS, "2".into());
        put(tags::INSTANCE_NUMBER, VR::IS, (i + 1).to_string().into());
        put(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1_u16));
        put(
            tags::PHOTOMETRIC_INTERPRETATION,
            VR::CS,
            "MONOCHROME2".into(),
        );
        put(tags::ROWS, VR::US, PrimitiveValue::from(size));
        put(tags::COLUMNS, VR::US, PrimitiveValue::from(size));
        put(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16_u16));
        put(tags::BITS_STORED, VR::US, PrimitiveValue::from(16_u16));
        put(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15_u16));
        put(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(1_u16),
        );
        put(tags::RESCALE_INTERCEPT, VR::DS, "-1024".into());
        put(tags::RESCALE_SLOPE, VR::DS, "1".into());
        put(tags::WINDOW_CENTER, VR::DS, "40".into());
        put(tags::WINDOW_WIDTH, VR::DS, "400".into());
        put(tags::PIXEL_DATA, VR::OW, PrimitiveValue::from(pixels));
        let meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
            .media_storage_sop_instance_uid(sop.as_str())
            .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .build()
            .map_err(std::io::Error::other)?;
        let file = dir.join(format!("ct{i:04}.dcm"));
        obj.with_exact_meta(meta)
            .write_to_file(&file)
            .map_err(std::io::Error::other)?;
        files.push(file);
    }
    Ok(Series {
        study,
        series,
        files,
    })
}
