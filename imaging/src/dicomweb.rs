//! DICOMweb (PS3.18) without the HTTP: QIDO-RS matching over the index and the DICOM JSON
//! the answers carry, and the metadata of a stored instance with its bulk data as
//! `BulkDataURI`s. The gateway's routes call these and add access control.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dicom_dictionary_std::tags;
use serde_json::{Map, Value, json};

use crate::scp;
use crate::spool::Stored;

/// One indexed instance, as QIDO-RS sees it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Indexed {
    /// Study Instance UID.
    pub study_instance_uid: String,
    /// Series Instance UID.
    pub series_instance_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// Patient's Name.
    pub patient_name: String,
    /// Patient ID.
    pub patient_id: String,
    /// Patient's Birth Date.
    pub patient_birth_date: String,
    /// Patient's Sex.
    pub patient_sex: String,
    /// Study Date.
    pub study_date: String,
    /// Study Time.
    pub study_time: String,
    /// Study Description.
    pub study_description: String,
    /// Accession Number.
    pub accession_number: String,
    /// Modality.
    pub modality: String,
    /// Series Number.
    pub series_number: Option<i32>,
    /// Instance Number.
    pub instance_number: Option<i32>,
    /// Stored transfer syntax.
    pub transfer_syntax: String,
}

impl std::fmt::Debug for Indexed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexed")
            .field("sop_instance_uid", &self.sop_instance_uid)
            .finish_non_exhaustive()
    }
}

/// A QIDO-RS query: attribute matches, paging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    matches: BTreeMap<&'static str, String>,
    /// Results at most.
    pub limit: Option<usize>,
    /// Results to skip.
    pub offset: usize,
}

/// Query keys by keyword and by tag.
const KEYS: [(&str, &str); 10] = [
    ("PatientName", "00100010"),
    ("PatientID", "00100020"),
    ("StudyDate", "00080020"),
    ("AccessionNumber", "00080050"),
    ("ModalitiesInStudy", "00080061"),
    ("StudyInstanceUID", "0020000D"),
    ("SeriesInstanceUID", "0020000E"),
    ("Modality", "00080060"),
    ("SOPInstanceUID", "00080018"),
    ("StudyDescription", "00081030"),
];

impl Query {
    /// Reads query parameters; an unknown key or a bad value is an error naming it.
    pub fn parse(params: &[(String, String)]) -> Result<Self, (String, String)> {
        let mut q = Query::default();
        for (key, value) in params {
            match key.as_str() {
                "limit" => {
                    let n: usize = value
                        .parse()
                        .map_err(|_| (key.clone(), "a number".to_owned()))?;
                    q.limit = Some(n.min(10_000));
                }
                "offset" => {
                    q.offset = value
                        .parse()
                        .map_err(|_| (key.clone(), "a number".to_owned()))?;
                }
                // Accepted and ignored: every answer carries the same attributes, and
                // matching of names is always case-insensitive.
                "includefield" | "fuzzymatching" => {}
                _ => {
                    let keyword = KEYS
                        .iter()
                        .find(|(k, t)| *k == key || t.eq_ignore_ascii_case(key))
                        .map(|(k, _)| *k)
                        .ok_or_else(|| (key.clone(), "not a supported query key".to_owned()))?;
                    if keyword == "StudyDate" && !valid_date_range(value) {
                        return Err((key.clone(), "a date YYYYMMDD or a range A-B".into()));
                    }
                    q.matches.insert(keyword, value.clone());
                }
            }
        }
        Ok(q)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.matches.get(key).map(String::as_str)
    }
}

fn valid_date_range(value: &str) -> bool {
    let ok = |d: &str| d.is_empty() || (d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()));
    match value.split_once('-') {
        Some((a, b)) => ok(a) && ok(b) && !(a.is_empty() && b.is_empty()),
        None => value.len() == 8 && ok(value),
    }
}

/// `*` and `?` wildcards, case-insensitive; `^` and spaces in names are literal.
pub fn wildcard(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let v: Vec<char> = value.to_lowercase().chars().collect();
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether DA `value` lies in `range` (`YYYYMMDD`, `A-B`, `-B`, `A-`).
pub fn in_date_range(range: &str, value: &str) -> bool {
    match range.split_once('-') {
        Some((from, to)) => {
            (from.is_empty() || value >= from)
                && (to.is_empty() || value <= to)
                && !value.is_empty()
        }
        None => value == range,
    }
}

fn matches_instance(q: &Query, i: &Indexed, modalities_in_study: &BTreeSet<String>) -> bool {
    let text = |key, value: &str| q.get(key).is_none_or(|p| wildcard(p, value));
    text("PatientName", &i.patient_name)
        && text("PatientID", &i.patient_id)
        && text("AccessionNumber", &i.accession_number)
        && text("StudyDescription", &i.study_description)
        && q.get("StudyInstanceUID")
            .is_none_or(|u| u.split(',').any(|u| u == i.study_instance_uid))
        && q.get("SeriesInstanceUID")
            .is_none_or(|u| u.split(',').any(|u| u == i.series_instance_uid))
        && q.get("SOPInstanceUID")
            .is_none_or(|u| u.split(',').any(|u| u == i.sop_instance_uid))
        && q.get("Modality")
            .is_none_or(|m| m.split(',').any(|m| m == i.modality))
        && q.get("ModalitiesInStudy")
            .is_none_or(|m| m.split(',').any(|m| modalities_in_study.contains(m)))
        && q.get("StudyDate")
            .is_none_or(|r| in_date_range(r, &i.study_date))
}

fn attr(map: &mut Map<String, Value>, tag: &str, vr: &str, value: Option<Value>) {
    let mut a = Map::new();
    a.insert("vr".into(), json!(vr));
    if let Some(v) = value {
        a.insert("Value".into(), v);
    }
    map.insert(tag.into(), Value::Object(a));
}

fn text(s: &str) -> Option<Value> {
    (!s.is_empty()).then(|| json!([s]))
}

fn study_json(
    first: &Indexed,
    modalities: &BTreeSet<String>,
    series: usize,
    instances: usize,
    base: &str,
) -> Value {
    let mut m = Map::new();
    attr(&mut m, "00080020", "DA", text(&first.study_date));
    attr(&mut m, "00080030", "TM", text(&first.study_time));
    attr(&mut m, "00080050", "SH", text(&first.accession_number));
    attr(
        &mut m,
        "00080061",
        "CS",
        Some(json!(modalities.iter().collect::<Vec<_>>())),
    );
    attr(&mut m, "00081030", "LO", text(&first.study_description));
    attr(
        &mut m,
        "00100010",
        "PN",
        (!first.patient_name.is_empty()).then(|| json!([{"Alphabetic": first.patient_name}])),
    );
    attr(&mut m, "00100020", "LO", text(&first.patient_id));
    attr(&mut m, "00100030", "DA", text(&first.patient_birth_date));
    attr(&mut m, "00100040", "CS", text(&first.patient_sex));
    attr(&mut m, "0020000D", "UI", text(&first.study_instance_uid));
    attr(&mut m, "00201206", "IS", Some(json!([series])));
    attr(&mut m, "00201208", "IS", Some(json!([instances])));
    attr(
        &mut m,
        "00081190",
        "UR",
        Some(json!([format!(
            "{base}/studies/{}",
            first.study_instance_uid
        )])),
    );
    Value::Object(m)
}

fn page<T>(items: Vec<T>, q: &Query) -> Vec<T> {
    items
        .into_iter()
        .skip(q.offset)
        .take(q.limit.unwrap_or(usize::MAX))
        .collect()
}

/// Searches for studies; `base` is the DICOMweb root URL for RetrieveURLs.
pub fn search_studies(all: &[Indexed], q: &Query, base: &str) -> Vec<Value> {
    let mut studies: BTreeMap<&str, Vec<&Indexed>> = BTreeMap::new();
    for i in all {
        studies.entry(&i.study_instance_uid).or_default().push(i);
    }
    let mut out = Vec::new();
    for (_, instances) in studies {
        let modalities: BTreeSet<String> = instances
            .iter()
            .map(|i| i.modality.clone())
            .filter(|m| !m.is_empty())
            .collect();
        if !instances
            .iter()
            .any(|i| matches_instance(q, i, &modalities))
        {
            continue;
        }
        let series: BTreeSet<&str> = instances
            .iter()
            .map(|i| i.series_instance_uid.as_str())
            .collect();
        out.push(study_json(
            instances[0],
            &modalities,
            series.len(),
            instances.len(),
            base,
        ));
    }
    page(out, q)
}

/// Searches for series (of one study, when the caller filtered by it).
pub fn search_series(all: &[Indexed], q: &Query, base: &str) -> Vec<Value> {
    let mut series: BTreeMap<(&str, &str), Vec<&Indexed>> = BTreeMap::new();
    for i in all {
        series
            .entry((&i.study_instance_uid, &i.series_instance_uid))
            .or_default()
            .push(i);
    }
    let mut out = Vec::new();
    for ((study, uid), instances) in series {
        let modalities: BTreeSet<String> = instances.iter().map(|i| i.modality.clone()).collect();
        if !instances
            .iter()
            .any(|i| matches_instance(q, i, &modalities))
        {
            continue;
        }
        let first = instances[0];
        let mut m = Map::new();
        attr(&mut m, "00080060", "CS", text(&first.modality));
        attr(&mut m, "0020000D", "UI", text(study));
        attr(&mut m, "0020000E", "UI", text(uid));
        attr(
            &mut m,
            "00200011",
            "IS",
            first.series_number.map(|n| json!([n])),
        );
        attr(&mut m, "00201209", "IS", Some(json!([instances.len()])));
        attr(
            &mut m,
            "00081190",
            "UR",
            Some(json!([format!("{base}/studies/{study}/series/{uid}")])),
        );
        out.push(Value::Object(m));
    }
    page(out, q)
}

/// Searches for instances.
pub fn search_instances(all: &[Indexed], q: &Query, base: &str) -> Vec<Value> {
    let mut sorted: Vec<&Indexed> = all.iter().collect();
    sorted.sort_by_key(|i| {
        (
            &i.study_instance_uid,
            &i.series_instance_uid,
            i.instance_number,
            &i.sop_instance_uid,
        )
    });
    let none = BTreeSet::new();
    let out = sorted
        .into_iter()
        .filter(|i| matches_instance(q, i, &none))
        .map(|i| {
            let mut m = Map::new();
            attr(&mut m, "00080016", "UI", text(&i.sop_class_uid));
            attr(&mut m, "00080018", "UI", text(&i.sop_instance_uid));
            attr(&mut m, "00080060", "CS", text(&i.modality));
            attr(&mut m, "0020000D", "UI", text(&i.study_instance_uid));
            attr(&mut m, "0020000E", "UI", text(&i.series_instance_uid));
            attr(
                &mut m,
                "00200013",
                "IS",
                i.instance_number.map(|n| json!([n])),
            );
            attr(&mut m, "00020010", "UI", text(&i.transfer_syntax));
            attr(
                &mut m,
                "00081190",
                "UR",
                Some(json!([format!(
                    "{base}/studies/{}/series/{}/instances/{}",
                    i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid
                )])),
            );
            Value::Object(m)
        })
        .collect();
    page(out, q)
}

// Native frames are served as the machine holds them, labelled little endian (`frames`).
const _: () = assert!(
    cfg!(target_endian = "little"),
    "native frames would need swapping to little endian"
);

/// Value representations whose values are bulk data, never put inline.
const BULK_VRS: [&str; 8] = ["OB", "OD", "OF", "OL", "OV", "OW", "UN", "UNKNOWN"];

/// The DICOM JSON metadata of the stored instance `stored`: every attribute, with bulk
/// data (pixel data and other binary values) as `BulkDataURI`s under `instance_url`.
pub fn metadata(stored: &Stored, instance_url: &str) -> Result<Value, String> {
    let obj = scp::open(stored, Some(tags::PIXEL_DATA))?;
    let mut value = dicom_json::to_value(&*obj).map_err(|e| e.to_string())?;
    if let Value::Object(map) = &mut value {
        bulk_to_uris(map, instance_url);
        let pixel = {
            let mut a = Map::new();
            a.insert(
                "vr".into(),
                json!(if obj
                    .meta()
                    .transfer_syntax()
                    .starts_with("1.2.840.10008.1.2.4")
                    || obj
                        .meta()
                        .transfer_syntax()
                        .starts_with("1.2.840.10008.1.2.5")
                {
                    "OB"
                } else {
                    "OW"
                }),
            );
            a.insert(
                "BulkDataURI".into(),
                json!(format!("{instance_url}/bulkdata/7FE00010")),
            );
            a
        };
        if has_pixel_data(stored) {
            map.insert("7FE00010".into(), Value::Object(pixel));
        }
    }
    Ok(value)
}

fn has_pixel_data(stored: &Stored) -> bool {
    scp::open(stored, None).is_ok_and(|o| o.get(tags::PIXEL_DATA).is_some())
}

fn bulk_to_uris(map: &mut Map<String, Value>, url: &str) {
    for (tag, attr) in map.iter_mut() {
        let Value::Object(a) = attr else { continue };
        let vr = a
            .get("vr")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if BULK_VRS.contains(&vr.as_str()) && a.remove("InlineBinary").is_some() {
            a.insert("BulkDataURI".into(), json!(format!("{url}/bulkdata/{tag}")));
        }
        if vr == "SQ" {
            if let Some(Value::Array(items)) = a.get_mut("Value") {
                for item in items {
                    if let Value::Object(inner) = item {
                        // Nested bulk data is dropped rather than inlined; its URI would
                        // need the item path.
                        inner.retain(|_, v| v.get("InlineBinary").is_none());
                    }
                }
            }
        }
    }
}

/// The raw value of the top-level attribute `tag` (8 hex digits) of the stored instance
/// `stored`, for a `BulkDataURI`: pixel data as stored (native, or the encapsulated
/// fragments concatenated).
pub fn bulk_data(stored: &Stored, tag: &str) -> Result<Option<Vec<u8>>, String> {
    let number = u32::from_str_radix(tag, 16).map_err(|_| "not a tag".to_owned())?;
    let tag = dicom_core::Tag((number >> 16) as u16, (number & 0xFFFF) as u16);
    let obj = scp::open(stored, None)?;
    let Some(element) = obj.get(tag) else {
        return Ok(None);
    };
    if let Some(fragments) = element.fragments() {
        return Ok(Some(fragments.iter().flatten().copied().collect()));
    }
    Ok(element.to_bytes().ok().map(|b| b.into_owned()))
}

/// Why frames cannot be retrieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The instance has no pixel data.
    NoPixelData,
    /// It has fewer frames than this number.
    OutOfRange(u32),
    /// The file or its pixel data cannot be read.
    Unreadable(String),
}

/// Frames (numbered from 1) of a stored instance in the transfer syntax they are stored
/// in, with that transfer syntax: slices of native pixel data, or the compressed bit
/// stream of each frame of encapsulated pixel data (one fragment per frame, frames split
/// by the Basic Offset Table, or all fragments for a single frame). Blocking.
pub fn frames(stored: &Stored, numbers: &[u32]) -> Result<(String, Vec<Vec<u8>>), FrameError> {
    let obj = scp::open(stored, None).map_err(FrameError::Unreadable)?;
    let stored = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_owned();
    let element = obj.get(tags::PIXEL_DATA).ok_or(FrameError::NoPixelData)?;
    let count = obj
        .get(tags::NUMBER_OF_FRAMES)
        .and_then(|e| e.to_int::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    if let Some(&n) = numbers.iter().find(|&&n| n == 0 || n > count) {
        return Err(FrameError::OutOfRange(n));
    }
    let all: Vec<Vec<u8>> = if let Some(fragments) = element.fragments() {
        encapsulated_frames(fragments, element.offset_table(), count)?
    } else {
        let int = |tag| {
            obj.get(tag)
                .and_then(|e| e.to_int::<u64>().ok())
                .unwrap_or(0)
        };
        let samples = int(tags::SAMPLES_PER_PIXEL).max(1);
        let bits = int(tags::BITS_ALLOCATED);
        let length =
            usize::try_from(int(tags::ROWS) * int(tags::COLUMNS) * samples * bits / 8).unwrap_or(0);
        let bytes = element
            .to_bytes()
            .map_err(|e| FrameError::Unreadable(e.to_string()))?;
        if length == 0 || bytes.len() < length * count as usize {
            return Err(FrameError::Unreadable(
                "the pixel data is shorter than its frames".into(),
            ));
        }
        bytes
            .chunks(length)
            .take(count as usize)
            .map(<[u8]>::to_vec)
            .collect()
    };
    let ts = if element.fragments().is_some() {
        stored
    } else {
        // Native pixel data, as read (deflated files inflated, big endian ones in their
        // values), comes out of `to_bytes` in the machine's byte order: little endian on
        // every target this builds for (checked below), so explicit VR little endian.
        dicom_dictionary_std::uids::EXPLICIT_VR_LITTLE_ENDIAN.to_owned()
    };
    Ok((
        ts,
        numbers
            .iter()
            .map(|&n| all[n as usize - 1].clone())
            .collect(),
    ))
}

fn encapsulated_frames(
    fragments: &[Vec<u8>],
    offsets: Option<&[u32]>,
    count: u32,
) -> Result<Vec<Vec<u8>>, FrameError> {
    let count = count as usize;
    if count == 1 {
        return Ok(vec![fragments.concat()]);
    }
    if fragments.len() == count {
        return Ok(fragments.to_vec());
    }
    // Offsets count from the first fragment's item tag; each item is 8 bytes of header.
    let offsets = offsets.unwrap_or_default();
    if offsets.len() != count {
        return Err(FrameError::Unreadable(
            "the frames cannot be told apart: no Basic Offset Table".into(),
        ));
    }
    let mut frames = vec![Vec::new(); count];
    let mut position = 0_u64;
    for fragment in fragments {
        let frame = offsets
            .iter()
            .rposition(|&o| u64::from(o) <= position)
            .ok_or_else(|| FrameError::Unreadable("a bad Basic Offset Table".into()))?;
        frames[frame].extend_from_slice(fragment);
        position += 8 + fragment.len() as u64;
    }
    Ok(frames)
}

/// Groups a multipart boundary and parts into a `multipart/related` body.
pub fn multipart(boundary: &str, content_type: &str, parts: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(part);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// Query parameters as pairs, for [`Query::parse`].
pub fn pairs(params: &HashMap<String, String>) -> Vec<(String, String)> {
    params.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_with_wildcards_and_dates_by_range() {
        assert!(wildcard("doe*", "Doe^John"));
        assert!(wildcard("*^jo?n", "Doe^John"));
        assert!(!wildcard("smith*", "Doe^John"));
        assert!(wildcard("王*", "王某某"));
        assert!(in_date_range("20200101-20201231", "20200615"));
        assert!(in_date_range("-20200101", "20191231"));
        assert!(in_date_range("20200101-", "20200101"));
        assert!(!in_date_range("20200101-20201231", "20210101"));
        assert!(!in_date_range("20200101-", ""));
        assert!(valid_date_range("20200101-20201231"));
        assert!(!valid_date_range("2020-01-01"));
    }

    fn i(study: &str, series: &str, sop: &str, modality: &str, name: &str, date: &str) -> Indexed {
        Indexed {
            study_instance_uid: study.into(),
            series_instance_uid: series.into(),
            sop_instance_uid: sop.into(),
            modality: modality.into(),
            patient_name: name.into(),
            study_date: date.into(),
            ..Indexed::default()
        }
    }

    #[test]
    fn studies_are_counted_filtered_and_paged() {
        let all = vec![
            i("1", "1.1", "1.1.1", "CT", "Doe^John", "20200101"),
            i("1", "1.1", "1.1.2", "CT", "Doe^John", "20200101"),
            i("1", "1.2", "1.2.1", "SR", "Doe^John", "20200101"),
            i("2", "2.1", "2.1.1", "MR", "Roe^Jane", "20210101"),
        ];
        let q = |p: &[(&str, &str)]| {
            Query::parse(
                &p.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
            .unwrap()
        };
        let found = search_studies(&all, &q(&[("PatientName", "doe*")]), "/dicomweb");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0]["00201208"]["Value"][0], 3,
            "instances in the study"
        );
        assert_eq!(found[0]["00201206"]["Value"][0], 2, "series in the study");
        assert_eq!(found[0]["00080061"]["Value"], json!(["CT", "SR"]));
        assert_eq!(
            search_studies(&all, &q(&[("ModalitiesInStudy", "MR")]), "").len(),
            1
        );
        assert_eq!(
            search_studies(&all, &q(&[("StudyDate", "20200601-")]), "").len(),
            1
        );
        assert_eq!(
            search_studies(&all, &q(&[("limit", "1"), ("offset", "1")]), "").len(),
            1
        );
        let series = search_series(&all, &q(&[("StudyInstanceUID", "1")]), "");
        assert_eq!(series[0]["00201209"]["Value"][0], 2);
        assert!(Query::parse(&[("Colour".into(), "x".into())]).is_err());
        assert!(Query::parse(&[("StudyDate".into(), "yesterday".into())]).is_err());
    }
}
