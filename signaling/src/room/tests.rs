//! The room, driven without sockets.

use super::*;
use crate::protocol::{ClientMessage, UNIT, VERSION};

fn sends(effects: &[Effect], to: ConnId) -> Vec<&ServerMessage> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { conn, message } if *conn == to => Some(message),
            _ => None,
        })
        .collect()
}

fn e(identity: &str, role: &str, session_id: &str) -> Entrant {
    Entrant {
        identity: identity.into(),
        role: role.into(),
        name: None,
        about: None,
        session_id: session_id.into(),
        ice_servers: vec![],
        grants: crate::Grants::default(),
    }
}

fn offer(to: &str) -> ClientMessage {
    ClientMessage::Offer {
        v: VERSION,
        to: to.into(),
        sdp: "v=0".into(),
    }
}

/// A consultation room with the county doctor on connection 1 and the consultant on 2.
fn two() -> (Room, Instant) {
    let t0 = Instant::now();
    let mut room = Room::new(RoomConfig::default());
    room.join(1, e("doctor", "requester", "s-doctor"), t0)
        .unwrap();
    room.join(2, e("consultant", "consultant", "s-consultant"), t0)
        .unwrap();
    (room, t0)
}

#[test]
fn a_joiner_is_welcomed_with_those_present_who_hear_of_it() {
    let t0 = Instant::now();
    let mut room = Room::new(RoomConfig::default());
    let first = room.join(1, e("doctor", "requester", "s1"), t0).unwrap();
    assert!(
        matches!(sends(&first, 1)[0], ServerMessage::Welcome { participants, .. } if participants.is_empty())
    );
    let second = room
        .join(2, e("consultant", "consultant", "s2"), t0)
        .unwrap();
    assert!(
        matches!(sends(&second, 2)[0], ServerMessage::Welcome { participants, .. } if participants[0].identity == "doctor")
    );
    assert!(
        matches!(sends(&second, 1)[0], ServerMessage::Joined { participant, .. } if participant.identity == "consultant")
    );
    assert!(second.contains(&Effect::Attendance {
        identity: "consultant".into(),
        present: true,
        at: t0
    }));
}

#[test]
fn offers_answers_and_candidates_go_to_the_named_participant_only() {
    let (mut room, t0) = two();
    let out = room.message(1, offer("consultant"), t0);
    assert!(matches!(sends(&out, 2)[..], [ServerMessage::Offer { from, .. }] if from == "doctor"));
    assert!(sends(&out, 1).is_empty());
    let out = room.message(
        2,
        ClientMessage::Candidate {
            v: VERSION,
            to: "doctor".into(),
            candidate: "candidate:1".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
        },
        t0,
    );
    assert!(
        matches!(sends(&out, 1)[..], [ServerMessage::Candidate { from, .. }] if from == "consultant")
    );
}

#[test]
fn a_message_to_nobody_gets_an_error_and_the_connection_stays() {
    let (mut room, t0) = two();
    let out = room.message(1, offer("stranger"), t0);
    assert!(
        matches!(sends(&out, 1)[..], [ServerMessage::Error { code, .. }] if code == "unknown_participant")
    );
    assert!(!out.iter().any(|e| matches!(e, Effect::Close { .. })));
    let out = room.message(1, offer("doctor"), t0);
    assert!(
        matches!(sends(&out, 1)[..], [ServerMessage::Error { .. }]),
        "not to oneself either"
    );
}

#[test]
fn a_dropped_participant_resumes_with_what_it_missed_and_nobody_hears_it_left() {
    let (mut room, t0) = two();
    let seen = room.message(2, offer("doctor"), t0);
    let last = sends(&seen, 1)[0].seq();
    assert!(
        room.disconnected(1, t0).is_empty(),
        "nothing is announced on a drop"
    );
    let missed = room.message(
        2,
        ClientMessage::Answer {
            v: VERSION,
            to: "doctor".into(),
            sdp: "v=0 again".into(),
        },
        t0,
    );
    assert!(
        sends(&missed, 1).is_empty(),
        "nothing can be sent while away"
    );
    let mute = room.message(
        2,
        ClientMessage::Mute {
            v: VERSION,
            audio: true,
            video: false,
        },
        t0,
    );
    assert!(sends(&mute, 1).is_empty());
    let out = room.tick(t0 + Duration::from_secs(5));
    assert!(!out.iter().any(|e| matches!(
        e,
        Effect::Send {
            message: ServerMessage::Left { .. },
            ..
        }
    )));

    let back = room
        .resume(7, "s-doctor", last, vec![], t0 + Duration::from_secs(6))
        .unwrap();
    let got = sends(&back, 7);
    assert!(matches!(
        got[0],
        ServerMessage::Welcome { resumed: true, .. }
    ));
    assert!(matches!(got[1], ServerMessage::Answer { sdp, .. } if sdp == "v=0 again"));
    assert!(matches!(got[2], ServerMessage::Mute { audio: true, .. }));
    assert_eq!(got.len(), 3);
    assert!(
        sends(&back, 2).is_empty(),
        "the consultant sees no second join"
    );
    assert!(!back.iter().any(|e| matches!(e, Effect::Attendance { .. })));
    // And the stream goes on where it was.
    let next = room.message(2, offer("doctor"), t0 + Duration::from_secs(7));
    assert_eq!(sends(&next, 7)[0].seq(), got[2].seq() + 1);
}

#[test]
fn a_participant_gone_past_the_resume_window_leaves() {
    let (mut room, t0) = two();
    room.disconnected(1, t0);
    let out = room.tick(t0 + Duration::from_secs(31));
    assert!(
        sends(&out, 2)
            .iter()
            .any(|m| matches!(m, ServerMessage::Left { identity, .. } if identity == "doctor"))
    );
    assert!(
        out.iter()
            .any(|e| matches!(e, Effect::Attendance { present: false, at, .. } if *at == t0)),
        "present until the connection dropped, not until the window closed"
    );
    assert_eq!(
        room.resume(9, "s-doctor", 0, vec![], t0 + Duration::from_secs(32)),
        Err(RoomError::UnknownSession)
    );
}

#[test]
fn silence_is_pinged_and_an_unanswered_ping_closes_the_connection() {
    let (mut room, t0) = two();
    let out = room.tick(t0 + Duration::from_secs(10));
    assert!(matches!(sends(&out, 1)[..], [ServerMessage::Ping { .. }]));
    room.message(
        2,
        ClientMessage::Pong { v: VERSION },
        t0 + Duration::from_secs(11),
    );
    let out = room.tick(t0 + Duration::from_secs(20));
    assert!(out.contains(&Effect::Close {
        conn: 1,
        code: CLOSE_PING_TIMEOUT,
        reason: "no pong"
    }));
    assert!(
        !out.iter()
            .any(|e| matches!(e, Effect::Close { conn: 2, .. })),
        "the consultant answered"
    );
    // Closed for silence, the doctor may still resume.
    assert!(
        room.resume(3, "s-doctor", 0, vec![], t0 + Duration::from_secs(21))
            .is_ok()
    );
}

#[test]
fn joining_again_replaces_the_older_connection_and_the_others_renegotiate() {
    let (mut room, t0) = two();
    let out = room.join(5, e("doctor", "requester", "s-new"), t0).unwrap();
    assert!(out.contains(&Effect::Close {
        conn: 1,
        code: CLOSE_REPLACED,
        reason: "joined again elsewhere"
    }));
    assert!(
        matches!(sends(&out, 2)[..], [ServerMessage::Joined { participant, .. }] if participant.identity == "doctor"),
        "the consultant hears of the new device, to negotiate with it"
    );
    assert!(
        !out.iter().any(|e| matches!(e, Effect::Attendance { .. })),
        "still one stretch of presence"
    );
    assert!(matches!(sends(&out, 5)[0], ServerMessage::Welcome { .. }));
    let relayed = room.message(2, offer("doctor"), t0);
    assert_eq!(
        sends(&relayed, 5).len(),
        1,
        "messages now go to the new connection"
    );
    assert_eq!(
        room.resume(6, "s-doctor", 0, vec![], t0),
        Err(RoomError::UnknownSession),
        "the old session is over"
    );
}

#[test]
fn a_full_room_refuses_newcomers_but_not_returning_ones() {
    let t0 = Instant::now();
    let mut room = Room::new(RoomConfig {
        capacity: 2,
        ..RoomConfig::default()
    });
    room.join(1, e("a", "requester", "s1"), t0).unwrap();
    room.join(2, e("b", "consultant", "s2"), t0).unwrap();
    assert_eq!(
        room.join(3, e("c", "observer", "s3"), t0).unwrap_err(),
        RoomError::Full(2)
    );
    assert!(room.join(4, e("a", "requester", "s4"), t0).is_ok());
}

#[test]
fn leaving_is_announced_and_ends_attendance() {
    let (mut room, t0) = two();
    let out = room.message(1, ClientMessage::Leave { v: VERSION }, t0);
    assert!(out.contains(&Effect::Close {
        conn: 1,
        code: CLOSE_NORMAL,
        reason: "left"
    }));
    assert!(
        matches!(sends(&out, 2)[..], [ServerMessage::Left { identity, .. }] if identity == "doctor")
    );
    assert_eq!(room.identities(), ["consultant"]);
}

#[test]
fn a_resume_from_too_far_back_is_refused() {
    let t0 = Instant::now();
    let mut room = Room::new(RoomConfig {
        buffer: 2,
        ..RoomConfig::default()
    });
    room.join(1, e("a", "requester", "s1"), t0).unwrap();
    room.join(2, e("b", "consultant", "s2"), t0).unwrap();
    room.disconnected(1, t0);
    for _ in 0..3 {
        room.message(2, offer("a"), t0);
    }
    assert_eq!(room.resume(3, "s1", 1, vec![], t0), Err(RoomError::TooOld));
    assert!(room.resume(3, "s1", 3, vec![], t0).is_ok());
}

fn published(effects: &[Effect]) -> Vec<&RoomEvent> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish(event) => Some(event),
            _ => None,
        })
        .collect()
}

/// The same room in two processes: the doctor connected to `a`, the consultant to `b`,
/// with the events of each fed to the other as the bus would.
#[test]
fn participants_on_two_processes_meet_through_published_events() {
    let t0 = Instant::now();
    let mut a = Room::new(RoomConfig::default());
    let mut b = Room::new(RoomConfig::default());
    let joined_a = a.join(1, e("doctor", "requester", "s1"), t0).unwrap();
    let event = published(&joined_a)[0].clone();
    assert!(
        matches!(&event, RoomEvent::Joined { participant } if participant.identity == "doctor")
    );
    assert!(b.remote("a", event, t0).is_empty(), "nobody is at b yet");

    let joined_b = b.join(2, e("consultant", "consultant", "s2"), t0).unwrap();
    assert!(
        matches!(sends(&joined_b, 2)[0], ServerMessage::Welcome { participants, .. } if participants[0].identity == "doctor"),
        "b knows the doctor from a's event"
    );
    let at_a = a.remote("b", published(&joined_b)[0].clone(), t0);
    assert!(
        matches!(sends(&at_a, 1)[..], [ServerMessage::Joined { participant, .. }] if participant.identity == "consultant")
    );
    assert!(
        !joined_b
            .iter()
            .chain(&at_a)
            .any(|e| matches!(e, Effect::Attendance { identity, .. } if identity == "doctor")),
        "attendance is reported where the connection is"
    );

    // An offer from b to a remote doctor crosses over and is numbered in the doctor's stream.
    let out = b.message(2, offer("doctor"), t0);
    assert!(sends(&out, 1).is_empty());
    let relay = published(&out)[0].clone();
    let at_a = a.remote("b", relay, t0);
    let got = sends(&at_a, 1);
    assert!(
        matches!(got[..], [ServerMessage::Offer { from, seq, .. }] if from == "consultant" && *seq == 3)
    );

    // Mute and leave cross over too.
    let out = a.message(
        1,
        ClientMessage::Mute {
            v: VERSION,
            audio: true,
            video: true,
        },
        t0,
    );
    let at_b = b.remote("a", published(&out)[0].clone(), t0);
    assert!(matches!(
        sends(&at_b, 2)[..],
        [ServerMessage::Mute { audio: true, .. }]
    ));
    let out = a.message(1, ClientMessage::Leave { v: VERSION }, t0);
    let at_b = b.remote("a", published(&out)[0].clone(), t0);
    assert!(
        matches!(sends(&at_b, 2)[..], [ServerMessage::Left { identity, .. }] if identity == "doctor")
    );
    assert_eq!(b.identities(), ["consultant"]);
}

#[test]
fn joining_at_another_process_closes_the_connection_here() {
    let (mut room, t0) = two();
    let out = room.remote(
        "b",
        RoomEvent::Joined {
            participant: ParticipantInfo {
                identity: "doctor".into(),
                role: "requester".into(),
                name: None,
                about: None,
                audio_muted: false,
                video_muted: false,
            },
        },
        t0,
    );
    assert!(out.contains(&Effect::Close {
        conn: 1,
        code: CLOSE_REPLACED,
        reason: "joined again elsewhere"
    }));
    assert!(matches!(sends(&out, 2)[..], [ServerMessage::Joined { .. }]));
    // A stale "left" from a process the doctor is no longer at changes nothing.
    assert!(
        room.remote(
            "c",
            RoomEvent::Left {
                identity: "doctor".into()
            },
            t0
        )
        .is_empty()
    );
    let gone = room.node_gone("b", t0);
    assert!(
        matches!(sends(&gone, 2)[..], [ServerMessage::Left { identity, .. }] if identity == "doctor")
    );
}

#[test]
fn a_starting_process_learns_who_is_present_without_displacing_anyone() {
    let (mut room, t0) = two();
    let info = |id: &str| ParticipantInfo {
        identity: id.into(),
        role: "trainee".into(),
        name: None,
        about: None,
        audio_muted: false,
        video_muted: false,
    };
    let out = room.remote_present("b", vec![info("doctor"), info("trainee")], t0);
    let to_doctor = sends(&out, 1);
    assert!(
        matches!(to_doctor[..], [ServerMessage::Joined { participant, .. }] if participant.identity == "trainee")
    );
    assert_eq!(room.local_participants().len(), 2);
}

/// A teaching session's presenter: sends, and moderates.
fn presenter() -> Entrant {
    Entrant {
        grants: crate::Grants {
            publish: true,
            subscribe: true,
            moderate: true,
        },
        ..e("teacher", "presenter", "s1")
    }
}

#[test]
fn in_a_forwarded_room_offers_go_to_the_unit_and_its_answers_come_back() {
    let t0 = Instant::now();
    let mut room = Room::new(RoomConfig::default());
    room.set_forwarded(true);
    let welcome = room.join(1, presenter(), t0).unwrap();
    assert!(
        matches!(sends(&welcome, 1)[0], ServerMessage::Welcome { unit: Some(u), .. } if u == UNIT),
        "the welcome names the unit to offer to"
    );
    room.join(2, e("trainee", "trainee", "s2"), t0).unwrap();
    let out = room.message(1, offer(UNIT), t0);
    assert_eq!(
        out,
        [Effect::Media {
            identity: "teacher".into(),
            may: May {
                audio: true,
                video: true,
            },
            request: MediaRequest::Offer { sdp: "v=0".into() },
        }]
    );
    let answered = room.from_unit(
        "teacher",
        ServerMessage::Answer {
            v: VERSION,
            seq: 0,
            from: UNIT.into(),
            sdp: "v=0 answer".into(),
        },
    );
    assert!(
        matches!(sends(&answered, 1)[0], ServerMessage::Answer { from, seq, .. } if from == UNIT && *seq == 3),
        "numbered in the receiver's stream (after its welcome and a joined): {answered:?}"
    );
    let answer_to_unit = ClientMessage::Answer {
        v: VERSION,
        to: UNIT.into(),
        sdp: "v=0".into(),
    };
    let refused = room.message(2, answer_to_unit, t0);
    assert!(
        matches!(sends(&refused, 2)[0], ServerMessage::Error { code, .. } if code == "unknown_participant")
    );
    let left = room.message(2, ClientMessage::Leave { v: VERSION }, t0);
    assert!(left.contains(&Effect::Media {
        identity: "trainee".into(),
        may: May::default(),
        request: MediaRequest::Leave,
    }));
}

#[test]
fn in_a_room_of_peers_the_unit_is_nobody() {
    let (mut room, t0) = two();
    let audio_only = room.message(
        2,
        ClientMessage::AudioOnly {
            v: VERSION,
            on: true,
        },
        t0,
    );
    assert!(
        matches!(sends(&audio_only, 2)[0], ServerMessage::Error { code, .. } if code == "not_allowed"),
        "audio only is the unit's to give"
    );
    assert!(!audio_only.iter().any(|e| matches!(e, Effect::Media { .. })));
    let out = room.message(1, offer(UNIT), t0);
    assert!(
        matches!(sends(&out, 1)[0], ServerMessage::Error { code, .. } if code == "unknown_participant")
    );
    assert!(!out.iter().any(|e| matches!(e, Effect::Media { .. })));
}

/// A teaching room with the presenter (a moderator) on connection 1 and two trainees on
/// 2 and 3.
fn classroom() -> (Room, Instant) {
    let t0 = Instant::now();
    let mut room = Room::new(RoomConfig {
        capacity: 10,
        ..RoomConfig::default()
    });
    room.set_forwarded(true);
    room.join(1, presenter(), t0).unwrap();
    room.join(2, e("t1", "trainee", "s2"), t0).unwrap();
    room.join(3, e("t2", "trainee", "s3"), t0).unwrap();
    (room, t0)
}

#[test]
fn trainees_join_muted_raise_hands_and_speak_only_when_given_the_microphone() {
    let (mut room, t0) = classroom();
    let late = room.join(4, e("t3", "trainee", "s4"), t0).unwrap();
    let ServerMessage::Welcome { participants, .. } = sends(&late, 4)[0] else {
        panic!("a welcome");
    };
    let t1 = participants.iter().find(|p| p.identity == "t1").unwrap();
    assert!(t1.audio_muted && t1.video_muted, "trainees are muted");
    let teacher = participants
        .iter()
        .find(|p| p.identity == "teacher")
        .unwrap();
    assert!(!teacher.audio_muted, "the presenter is not");

    let hand = room.message(
        2,
        ClientMessage::Hand {
            v: VERSION,
            raised: true,
        },
        t0,
    );
    assert!(
        matches!(sends(&hand, 1)[0], ServerMessage::Hand { identity, raised: true, .. } if identity == "t1"),
        "the presenter sees the hand"
    );
    // A trainee cannot give itself or another the microphone.
    let grant = |to: &str, audio| ClientMessage::Grant {
        v: VERSION,
        to: to.into(),
        audio,
    };
    let refused = room.message(2, grant("t1", true), t0);
    assert!(
        matches!(sends(&refused, 2)[0], ServerMessage::Error { code, .. } if code == "not_allowed")
    );
    assert!(!refused.iter().any(|e| matches!(e, Effect::Media { .. })));
    // The presenter can; the unit hears of it.
    let granted = room.message(1, grant("t1", true), t0);
    assert!(granted.contains(&Effect::Media {
        identity: "t1".into(),
        may: May {
            audio: true,
            video: false,
        },
        request: MediaRequest::May,
    }));
    assert!(
        matches!(sends(&granted, 3)[0], ServerMessage::Granted { identity, audio: true, .. } if identity == "t1"),
        "everyone sees who may speak"
    );
    let revoked = room.message(1, grant("t1", false), t0);
    assert!(revoked.contains(&Effect::Media {
        identity: "t1".into(),
        may: May::default(),
        request: MediaRequest::May,
    }));
    let unknown = room.message(1, grant("nobody", true), t0);
    assert!(
        matches!(sends(&unknown, 1)[0], ServerMessage::Error { code, .. } if code == "unknown_participant")
    );
}

#[test]
fn a_moderator_removes_a_participant_who_cannot_come_back() {
    let (mut room, t0) = classroom();
    let remove = |identity: &str| ClientMessage::Remove {
        v: VERSION,
        identity: identity.into(),
    };
    let refused = room.message(2, remove("t2"), t0);
    assert!(
        matches!(sends(&refused, 2)[0], ServerMessage::Error { code, .. } if code == "not_allowed")
    );
    let out = room.message(1, remove("t2"), t0);
    assert!(out.contains(&Effect::Close {
        conn: 3,
        code: CLOSE_REMOVED,
        reason: "removed by a moderator",
    }));
    assert!(matches!(sends(&out, 2)[0], ServerMessage::Left { identity, .. } if identity == "t2"));
    assert!(out.iter().any(|e| matches!(e, Effect::Media { identity, request: MediaRequest::Leave, .. } if identity == "t2")));
    assert_eq!(
        room.join(5, e("t2", "trainee", "s5"), t0),
        Err(RoomError::Removed)
    );
    let audio_only = room.message(
        2,
        ClientMessage::AudioOnly {
            v: VERSION,
            on: true,
        },
        t0,
    );
    assert_eq!(
        audio_only,
        [Effect::Media {
            identity: "t1".into(),
            may: May::default(),
            request: MediaRequest::AudioOnly { on: true },
        }]
    );
}
