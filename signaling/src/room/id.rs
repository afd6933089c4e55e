//! The name of a room. The gateway names each room after its session
//! (`consultation-<id>`, `ward-round-<id>`, `teaching-<id>`, `PROTOCOL.md`) and signs it
//! into the room token; this crate parses nothing of it: a room id is compared, matched
//! by prefix against [`HubConfig::forwarded_rooms`](crate::hub::HubConfig::forwarded_rooms)
//! and carried (on the bus, to the forwarding unit, to presence), never read for meaning.
//! Like identities it is an opaque id, never patient data.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The name of a room, as the room token and the bus carry it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomId(String);

impl RoomId {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string, for those that take one.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<String> for RoomId {
    fn from(name: String) -> Self {
        Self(name)
    }
}

impl From<&str> for RoomId {
    fn from(name: &str) -> Self {
        Self(name.to_owned())
    }
}

impl AsRef<str> for RoomId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for RoomId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_id_crosses_the_wire_as_the_bare_name() {
        let id = RoomId::from("teaching-7");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""teaching-7""#);
        assert_eq!(
            serde_json::from_str::<RoomId>(r#""teaching-7""#).unwrap(),
            id
        );
        assert_eq!(id.to_string(), "teaching-7");
        assert_eq!(id.as_ref(), "teaching-7");
    }
}
