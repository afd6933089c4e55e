//! The DIMSE messages the relay speaks (PS3.7): C-ECHO and C-STORE requests in, their
//! responses out; C-STORE and C-ECHO requests out (forwarding, and the test of a
//! destination). Command sets are always Implicit VR Little Endian; the few elements of a
//! response are written by hand, with the Command Group Length first.

use dicom_dictionary_std::{tags, uids};

/// C-STORE-RQ.
pub const C_STORE_RQ: u16 = 0x0001;
/// C-STORE-RSP.
pub const C_STORE_RSP: u16 = 0x8001;
/// C-ECHO-RQ.
pub const C_ECHO_RQ: u16 = 0x0030;
/// C-ECHO-RSP.
pub const C_ECHO_RSP: u16 = 0x8030;
/// Command Data Set Type: no data set follows.
const NO_DATA_SET: u16 = 0x0101;

/// Response statuses (PS3.4 B.2.3, PS3.7 C).
pub mod status {
    /// Stored.
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: out of resources (disk, or larger than the configured limit).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: the data set does not match the SOP class (or the command's instance).
    pub const DATA_SET_DOES_NOT_MATCH: u16 = 0xA900;
    /// Error: cannot understand (truncated, malformed).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Refused: SOP class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Refused: not authorized (PS3.7 C.5.x): the SOP Instance UID is held by another
    /// institution.
    pub const NOT_AUTHORIZED: u16 = 0x0124;
    /// Unrecognised operation.
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
}

/// The parts of a request command that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Command Field.
    pub field: u16,
    /// Message ID.
    pub message_id: u16,
    /// Affected SOP Class UID.
    pub sop_class_uid: String,
    /// Affected SOP Instance UID (C-STORE).
    pub sop_instance_uid: String,
    /// Whether a data set follows.
    pub has_data_set: bool,
    /// Status (responses).
    pub status: Option<u16>,
}

/// Reads a command set: a flat list of group 0000 elements, Implicit VR Little Endian,
/// each with a defined length (PS3.7 §6.3.1). Read by hand rather than with a general
/// DICOM parser: a peer controls these bytes, and a general parser handed absurd lengths
/// or nesting may spend seconds on a few kilobytes.
pub fn parse_command(bytes: &[u8]) -> Result<Command, String> {
    let mut fields: Vec<(u16, &[u8])> = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 8 {
            return Err("a truncated command element".into());
        }
        let group = u16::from_le_bytes([rest[0], rest[1]]);
        let element = u16::from_le_bytes([rest[2], rest[3]]);
        let length = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        if group != 0x0000 {
            return Err(format!("an element of group {group:04X} in a command set"));
        }
        let Some(value) = rest.get(8..8 + length) else {
            return Err(format!(
                "element (0000,{element:04X}) is longer than the command"
            ));
        };
        fields.push((element, value));
        rest = &rest[8 + length..];
    }
    let get = |wanted: u16| fields.iter().find(|(e, _)| *e == wanted).map(|(_, v)| *v);
    let number = |wanted: u16| {
        get(wanted)
            .filter(|v| v.len() == 2)
            .map(|v| u16::from_le_bytes([v[0], v[1]]))
    };
    let text = |wanted: u16| {
        get(wanted)
            .map(|v| {
                String::from_utf8_lossy(v)
                    .trim_end_matches(['\0', ' '])
                    .to_owned()
            })
            .unwrap_or_default()
    };
    let field = number(tags::COMMAND_FIELD.element()).ok_or("the command has no Command Field")?;
    Ok(Command {
        field,
        message_id: number(tags::MESSAGE_ID.element()).unwrap_or(0),
        sop_class_uid: text(tags::AFFECTED_SOP_CLASS_UID.element()),
        sop_instance_uid: text(tags::AFFECTED_SOP_INSTANCE_UID.element()),
        has_data_set: number(tags::COMMAND_DATA_SET_TYPE.element())
            .is_some_and(|t| t != NO_DATA_SET),
        status: number(tags::STATUS.element()),
    })
}

fn element(out: &mut Vec<u8>, element: u16, value: &[u8]) {
    out.extend_from_slice(&0_u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    let len = u32::try_from(value.len()).expect("a short value");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(value);
}

fn uid(value: &str) -> Vec<u8> {
    let mut v = value.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(0);
    }
    v
}

/// A C-STORE-RQ command set (medium priority, a data set follows).
pub fn store_request(message_id: u16, sop_class_uid: &str, sop_instance_uid: &str) -> Vec<u8> {
    let mut body = Vec::new();
    element(&mut body, 0x0002, &uid(sop_class_uid));
    element(&mut body, 0x0100, &C_STORE_RQ.to_le_bytes());
    element(&mut body, 0x0110, &message_id.to_le_bytes());
    element(&mut body, 0x0700, &0_u16.to_le_bytes());
    element(&mut body, 0x0800, &0_u16.to_le_bytes());
    element(&mut body, 0x1000, &uid(sop_instance_uid));
    with_group_length(body)
}

/// A C-ECHO-RQ command set (PS3.7 §9.3.5.1) of the Verification SOP Class (PS3.4 Annex
/// A): no data set follows.
pub fn echo_request(message_id: u16) -> Vec<u8> {
    let mut body = Vec::new();
    element(&mut body, 0x0002, &uid(uids::VERIFICATION));
    element(&mut body, 0x0100, &C_ECHO_RQ.to_le_bytes());
    element(&mut body, 0x0110, &message_id.to_le_bytes());
    element(&mut body, 0x0800, &NO_DATA_SET.to_le_bytes());
    with_group_length(body)
}

fn with_group_length(body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 12);
    let length = u32::try_from(body.len()).expect("a short command");
    element(&mut out, 0x0000, &length.to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A response command set: `field` (C-ECHO-RSP or C-STORE-RSP) to `request`.
pub fn response(field: u16, request: &Command, status: u16) -> Vec<u8> {
    let mut body = Vec::new();
    if !request.sop_class_uid.is_empty() {
        element(&mut body, 0x0002, &uid(&request.sop_class_uid));
    }
    element(&mut body, 0x0100, &field.to_le_bytes());
    element(&mut body, 0x0120, &request.message_id.to_le_bytes());
    element(&mut body, 0x0800, &NO_DATA_SET.to_le_bytes());
    element(&mut body, 0x0900, &status.to_le_bytes());
    if !request.sop_instance_uid.is_empty() {
        element(&mut body, 0x1000, &uid(&request.sop_instance_uid));
    }
    with_group_length(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_object::InMemDicomObject;
    use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

    #[test]
    fn a_response_reads_back_with_its_group_length_first() {
        let request = Command {
            field: C_STORE_RQ,
            message_id: 7,
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: "1.2.3.4.5".into(),
            has_data_set: true,
            status: None,
        };
        let bytes = response(C_STORE_RSP, &request, status::OUT_OF_RESOURCES);
        assert_eq!(&bytes[..4], &[0, 0, 0, 0], "(0000,0000) first");
        let group_length = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        assert_eq!(group_length as usize, bytes.len() - 12);
        let back = parse_command(&bytes).unwrap();
        assert_eq!(back.field, C_STORE_RSP);
        assert_eq!(back.sop_instance_uid, "1.2.3.4.5");
        assert!(!back.has_data_set);
        assert_eq!(back.status, Some(0xA700));
        let rq = parse_command(&store_request(9, "1.2.840.10008.5.1.4.1.1.4", "1.2.3")).unwrap();
        assert_eq!(
            (rq.field, rq.message_id, rq.has_data_set),
            (C_STORE_RQ, 9, true)
        );
        assert_eq!(rq.sop_instance_uid, "1.2.3");
        let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
        let obj = InMemDicomObject::read_dataset_with_ts(bytes.as_slice(), &ts).unwrap();
        assert_eq!(
            obj.element(tags::STATUS).unwrap().to_int::<u16>().unwrap(),
            0xA700
        );
        assert_eq!(
            obj.element(tags::MESSAGE_ID_BEING_RESPONDED_TO)
                .unwrap()
                .to_int::<u16>()
                .unwrap(),
            7
        );
    }

    #[test]
    fn an_echo_request_reads_back_as_one() {
        let rq = parse_command(&echo_request(3)).unwrap();
        assert_eq!(
            (rq.field, rq.message_id, rq.has_data_set),
            (C_ECHO_RQ, 3, false)
        );
        assert_eq!(rq.sop_class_uid, uids::VERIFICATION);
    }

    #[test]
    fn garbage_is_not_a_command() {
        assert!(parse_command(b"\x00\x00").is_err());
        assert!(parse_command(&[]).is_err());
    }
}
