//! The signaling messages, version 1 (see `PROTOCOL.md`): JSON objects with `"v": 1` and
//! a `"type"`. Parsing is strict: an unknown type or field is an error the client is told
//! about, and the connection stays.

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks.
pub const VERSION: u32 = 1;

/// The identity of the forwarding unit in rooms whose media it carries. Account
/// identities never start with `@`.
pub const UNIT: &str = "@sfu";

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The first message of a connection: enter the room the token names.
    Join {
        /// Protocol version.
        v: u32,
        /// The room token from `POST /api/v1/sessions/{session}/join`.
        token: String,
    },
    /// The first message of a new connection after a drop: continue where it stopped.
    Resume {
        /// Protocol version.
        v: u32,
        /// A room token for the same room and identity.
        token: String,
        /// The `session_id` of the welcome.
        session_id: String,
        /// The last `seq` received.
        last_seq: u64,
    },
    /// An SDP offer for one participant.
    Offer {
        /// Protocol version.
        v: u32,
        /// The receiving participant's identity.
        to: String,
        /// The SDP.
        sdp: String,
    },
    /// An SDP answer for one participant.
    Answer {
        /// Protocol version.
        v: u32,
        /// The receiving participant's identity.
        to: String,
        /// The SDP.
        sdp: String,
    },
    /// A trickled ICE candidate (peers that put every candidate in the SDP never send one).
    Candidate {
        /// Protocol version.
        v: u32,
        /// The receiving participant's identity.
        to: String,
        /// The candidate line.
        candidate: String,
        /// Its media stream id.
        sdp_mid: Option<String>,
        /// Its m-line index.
        sdp_mline_index: Option<u16>,
    },
    /// The sender's mute state.
    Mute {
        /// Protocol version.
        v: u32,
        /// Audio muted.
        audio: bool,
        /// Video muted.
        video: bool,
    },
    /// An answer to the server's ping.
    Pong {
        /// Protocol version.
        v: u32,
    },
    /// The client leaves the room for good.
    Leave {
        /// Protocol version.
        v: u32,
    },
    /// Raises (or lowers) the sender's hand, asking for the microphone.
    Hand {
        /// Protocol version.
        v: u32,
        /// Raised.
        raised: bool,
    },
    /// Gives `to` the microphone, or takes it back (moderators only).
    Grant {
        /// Protocol version.
        v: u32,
        /// The participant.
        to: String,
        /// May speak.
        audio: bool,
    },
    /// Removes a participant from the room for the rest of the session (moderators only).
    Remove {
        /// Protocol version.
        v: u32,
        /// The participant.
        identity: String,
    },
    /// Asks the forwarding unit for audio only (`true`) or for video again.
    AudioOnly {
        /// Protocol version.
        v: u32,
        /// Audio only.
        on: bool,
    },
}

impl ClientMessage {
    /// The version the client wrote.
    pub fn version(&self) -> u32 {
        match self {
            Self::Join { v, .. }
            | Self::Resume { v, .. }
            | Self::Offer { v, .. }
            | Self::Answer { v, .. }
            | Self::Candidate { v, .. }
            | Self::Mute { v, .. }
            | Self::Pong { v }
            | Self::Leave { v }
            | Self::Hand { v, .. }
            | Self::Grant { v, .. }
            | Self::Remove { v, .. }
            | Self::AudioOnly { v, .. } => *v,
        }
    }
}

/// A STUN or TURN server as WebRTC's `RTCIceServer` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// The TURN username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A participant as others see them: an opaque identity, a role and, where the room token
/// gives them, a name and a line about them (staff names, never patient data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    /// Identity.
    pub identity: String,
    /// Role in the room, e.g. `requester`, `consultant`.
    pub role: String,
    /// Name, from the room token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Title and institution, or what else the token says about them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    /// Audio muted.
    pub audio_muted: bool,
    /// Video muted.
    pub video_muted: bool,
}

/// A message to a client. Every one carries the sequence number of its receiver's
/// stream, which a resuming client names to get what it missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The client is in the room.
    Welcome {
        /// Protocol version.
        v: u32,
        /// Sequence number.
        seq: u64,
        /// The receiver's identity.
        identity: String,
        /// The resume token of this participant.
        session_id: String,
        /// The others present.
        participants: Vec<ParticipantInfo>,
        /// STUN and TURN servers, with TURN credentials minted for this connection.
        ice_servers: Vec<IceServer>,
        /// Whether this welcome continues an earlier connection.
        resumed: bool,
        /// In a room whose media goes through the forwarding unit, the identity to offer
        /// to ([`UNIT`]) instead of offering to the other participants.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    /// Someone entered.
    Joined {
        /// Protocol version.
        v: u32,
        /// Sequence number.
        seq: u64,
        /// Who.
        participant: ParticipantInfo,
    },
    /// Someone left, or was gone longer than the resume window.
    Left {
        /// Protocol version.
        v: u32,
        /// Sequence number.
        seq: u64,
        /// Who.
        identity: String,
    },
    /// An offer from `from`.
    Offer {
        /// Protocol version.
        v: u32,
        /// Sequence number.
        seq: u64,
        /// The sender.
        from: String,
        /// The SDP.
        sdp: String,
    },
    /// An answer from `from`.
    Answer {
        /// Protocol version.
        v: u32,
        /// Sequence number.
        seq: u64,
        /// The sender.
        from: String,
        /// The SDP.
        sdp: String,
    },
    /// A candidate from `from`.
    Candidate {
        /// Protocol version.
        v: u32,
        /// Sequence number.
        seq: u64,
        /// The sender.
        from: String,
        /// The candidate line.
        candidate: String,
        /// Its media stream id.
        sdp_mid: Option<String>,
        /// Its m-line index.
        sdp_mline_index: Option<u16>,
    },
    /// Someone's mute state changed.
    Mute {
        /// Protocol version.
        v: u32,
        /// Sequence number.
        seq: u64,
        /// Who.
        identity: String,
        /// Audio muted.
        audio: bool,
        /// Video muted.
        video: bool,
    },
    /// Are you there? Answer with `pong`.
    Ping {
        /// Protocol version.
        v: u32,
        /// Sequence number.
        seq: u64,
    },
    /// Someone raised or lowered a hand.
    Hand {
        /// Protocol version.
        v: u32,
        /// Sequence number.
        seq: u64,
        /// Who.
        identity: String,
        /// Raised.
        raised: bool,
    },
    /// A moderator gave someone the microphone or took it back.
    Granted {
        /// Protocol version.
        v: u32,
        /// Sequence number.
        seq: u64,
        /// Who.
        identity: String,
        /// May speak.
        audio: bool,
    },
    /// The last message was refused; the connection stays.
    Error {
        /// Protocol version.
        v: u32,
        /// Sequence number.
        seq: u64,
        /// Stable code, e.g. `malformed`, `unknown_participant`.
        code: String,
        /// What was wrong.
        message: String,
    },
}

impl ServerMessage {
    /// The message's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Welcome { seq, .. }
            | Self::Joined { seq, .. }
            | Self::Left { seq, .. }
            | Self::Offer { seq, .. }
            | Self::Answer { seq, .. }
            | Self::Candidate { seq, .. }
            | Self::Mute { seq, .. }
            | Self::Ping { seq, .. }
            | Self::Hand { seq, .. }
            | Self::Granted { seq, .. }
            | Self::Error { seq, .. } => *seq,
        }
    }

    /// The same message numbered `n` in another receiver's stream.
    pub fn renumbered(mut self, n: u64) -> Self {
        match &mut self {
            Self::Welcome { seq, .. }
            | Self::Joined { seq, .. }
            | Self::Left { seq, .. }
            | Self::Offer { seq, .. }
            | Self::Answer { seq, .. }
            | Self::Candidate { seq, .. }
            | Self::Mute { seq, .. }
            | Self::Ping { seq, .. }
            | Self::Hand { seq, .. }
            | Self::Granted { seq, .. }
            | Self::Error { seq, .. } => *seq = n,
        }
        self
    }
}

/// Parses a client's text frame; the error says what is wrong in words for the client.
pub fn parse(text: &str) -> Result<ClientMessage, String> {
    let message: ClientMessage = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if message.version() != VERSION {
        return Err(format!(
            "protocol version {} is not spoken here; use {VERSION}",
            message.version()
        ));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_strictly() {
        assert_eq!(
            parse(r#"{"v":1,"type":"offer","to":"u2","sdp":"v=0"}"#),
            Ok(ClientMessage::Offer {
                v: 1,
                to: "u2".into(),
                sdp: "v=0".into()
            })
        );
        assert!(
            parse(r#"{"v":1,"type":"shout"}"#)
                .unwrap_err()
                .contains("unknown variant")
        );
        assert!(
            parse(r#"{"v":1,"type":"leave","extra":1}"#)
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(
            parse(r#"{"v":2,"type":"leave"}"#)
                .unwrap_err()
                .contains("version 2")
        );
        assert!(parse("{not json").is_err());
    }

    #[test]
    fn the_classroom_messages_parse_strictly_too() {
        assert_eq!(
            parse(r#"{"v":1,"type":"grant","to":"u2","audio":true}"#),
            Ok(ClientMessage::Grant {
                v: 1,
                to: "u2".into(),
                audio: true
            })
        );
        for bad in [
            r#"{"v":1,"type":"grant","to":"u2"}"#,
            r#"{"v":1,"type":"hand","raised":"yes"}"#,
            r#"{"v":1,"type":"remove"}"#,
            r#"{"v":1,"type":"audio_only","on":true,"for":"u3"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_messages_carry_version_type_and_seq() {
        let m = ServerMessage::Left {
            v: VERSION,
            seq: 7,
            identity: "u1".into(),
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"left","v":1,"seq":7,"identity":"u1"}"#
        );
        assert_eq!(m.seq(), 7);
    }
}
