//! The hub, driven without sockets.

use super::*;
use crate::protocol::UNIT;

fn entrant(identity: &str) -> Entrant {
    Entrant {
        identity: identity.into(),
        role: "requester".into(),
        name: None,
        about: None,
        session_id: format!("s-{identity}"),
        ice_servers: vec![],
        grants: crate::Grants::default(),
    }
}

fn errors(effects: &[HubEffect], to: ConnId) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            HubEffect::Send {
                conn,
                message: ServerMessage::Error { code, .. },
            } if *conn == to => Some(code.clone()),
            _ => None,
        })
        .collect()
}

fn published(effects: &[HubEffect]) -> Vec<BusEvent> {
    effects
        .iter()
        .filter_map(|e| match e {
            HubEffect::Publish(event) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn closes(effects: &[HubEffect]) -> bool {
    effects.iter().any(|e| matches!(e, HubEffect::Close { .. }))
}

#[test]
fn malformed_oversized_and_unknown_messages_get_errors_and_the_connection_stays() {
    let t0 = Instant::now();
    let mut hub = Hub::new("a".into(), HubConfig::default());
    hub.join(1, &"consultation-1".into(), entrant("u1"), 3, t0)
        .unwrap();
    let out = hub.text(1, "{not json", t0);
    assert_eq!(errors(&out, 1), ["malformed"]);
    let out = hub.text(1, r#"{"v":1,"type":"shout"}"#, t0);
    assert_eq!(errors(&out, 1), ["malformed"]);
    let big = format!(
        r#"{{"v":1,"type":"offer","to":"u2","sdp":"{}"}}"#,
        "a".repeat(70_000)
    );
    let out = hub.text(1, &big, t0);
    assert_eq!(errors(&out, 1), ["too_large"]);
    assert!(!closes(&out));
    // Nesting far beyond serde_json's limit of 128 levels, within the size limit: refused
    // as malformed, without recursing on it.
    let deep = format!(
        r#"{{"v":1,"type":"pong","x":{}{}}}"#,
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    assert!(deep.len() < HubConfig::default().max_message_bytes);
    let out = hub.text(1, &deep, t0);
    assert_eq!(errors(&out, 1), ["malformed"]);
    assert!(!closes(&out));
    let out = hub.text(1, r#"{"v":1,"type":"join","token":"x"}"#, t0);
    assert_eq!(errors(&out, 1), ["already_joined"]);
    let out = hub.text(1, r#"{"v":1,"type":"mute","audio":true,"video":false}"#, t0);
    assert!(errors(&out, 1).is_empty(), "and good messages still work");
}

#[test]
fn a_flood_is_rate_limited_then_closed() {
    let t0 = Instant::now();
    let mut hub = Hub::new("a".into(), HubConfig::default());
    hub.join(1, &"consultation-1".into(), entrant("u1"), 3, t0)
        .unwrap();
    let pong = r#"{"v":1,"type":"pong"}"#;
    for _ in 0..200 {
        assert!(
            errors(&hub.text(1, pong, t0), 1).is_empty(),
            "the burst passes"
        );
    }
    assert_eq!(errors(&hub.text(1, pong, t0), 1), ["rate_limited"]);
    // A second later fifty more are allowed.
    let t1 = t0 + Duration::from_secs(1);
    for _ in 0..50 {
        assert!(errors(&hub.text(1, pong, t1), 1).is_empty());
    }
    assert!(hub.abusive(1, t1).is_none(), "one refusal is not abuse");
    let mut closed = None;
    for i in 0..200 {
        let out = hub.text(1, pong, t1);
        assert_eq!(errors(&out, 1), ["rate_limited"]);
        if let Some(close) = hub.abusive(1, t1) {
            closed = Some((i, close));
            break;
        }
    }
    let (i, close) = closed.expect("sustained flooding closes the socket");
    assert_eq!(i, 99, "after more than a hundred refusals in ten seconds");
    assert!(close.contains(&HubEffect::Close {
        conn: 1,
        code: CLOSE_ABUSE,
        reason: "too many refused messages"
    }));
    assert!(hub.text(1, pong, t1).is_empty(), "the connection is gone");
}

#[test]
fn a_starting_process_learns_the_rooms_and_a_silent_one_is_given_up() {
    let t0 = Instant::now();
    let mut a = Hub::new("a".into(), HubConfig::default());
    let joined = a
        .join(1, &"ward-round-3".into(), entrant("u1"), 12, t0)
        .unwrap();
    let mut b = Hub::new("b".into(), HubConfig::default());
    // b started after u1's join went out: it asks, a answers.
    let HubEffect::Publish(sync) = b.start() else {
        unreachable!()
    };
    let answers = published(&a.bus(sync, t0));
    assert!(
        matches!(&answers[..], [BusEvent { body: BusBody::Present { room, participants }, .. }] if room == "ward-round-3" && participants[0].identity == "u1")
    );
    for event in answers {
        b.bus(event, t0);
    }
    let out = b
        .join(2, &"ward-round-3".into(), entrant("u2"), 12, t0)
        .unwrap();
    assert!(out.iter().any(|e| matches!(e,
        HubEffect::Send { conn: 2, message: ServerMessage::Welcome { participants, .. } }
            if participants.iter().any(|p| p.identity == "u1"))));
    assert_eq!(b.identities(&"ward-round-3".into()), ["u1", "u2"]);
    // Events from a process about itself are not applied twice.
    assert!(a.bus(published(&joined)[0].clone(), t0).is_empty());

    // a falls silent: after the timeout b gives its participants up.
    let later = b.tick(t0 + Duration::from_secs(21));
    assert!(later.iter().any(|e| matches!(e,
        HubEffect::Send { conn: 2, message: ServerMessage::Left { identity, .. } } if identity == "u1")));
    assert!(
        !later
            .iter()
            .any(|e| matches!(e, HubEffect::Attendance { identity, .. } if identity == "u1")),
        "a's attendance is a's to report"
    );
}

#[test]
fn a_full_room_is_refused_and_leaves_nothing_behind() {
    let t0 = Instant::now();
    let mut hub = Hub::new("a".into(), HubConfig::default());
    hub.join(1, &"consultation-9".into(), entrant("u1"), 1, t0)
        .unwrap();
    assert_eq!(
        hub.join(2, &"consultation-9".into(), entrant("u2"), 1, t0)
            .unwrap_err(),
        RoomError::Full(1)
    );
    assert!(hub.text(2, r#"{"v":1,"type":"pong"}"#, t0).is_empty());
    assert_eq!(hub.identities(&"consultation-9".into()), ["u1"]);
}

#[test]
fn teaching_rooms_and_rooms_of_more_than_four_go_through_the_unit() {
    let t0 = Instant::now();
    let mut hub = Hub::new("a".into(), HubConfig::default());
    let unit_of = |effects: &[HubEffect]| {
        effects.iter().find_map(|e| match e {
            HubEffect::Send {
                message: ServerMessage::Welcome { unit, .. },
                ..
            } => Some(unit.clone()),
            _ => None,
        })
    };
    let consultation = hub
        .join(1, &"consultation-1".into(), entrant("u1"), 4, t0)
        .unwrap();
    assert_eq!(unit_of(&consultation), Some(None), "four meet peer to peer");
    let round = hub
        .join(2, &"ward-round-1".into(), entrant("u2"), 16, t0)
        .unwrap();
    assert_eq!(unit_of(&round), Some(Some(UNIT.to_owned())));
    let small_class = hub
        .join(3, &"teaching-1".into(), entrant("u3"), 3, t0)
        .unwrap();
    assert_eq!(unit_of(&small_class), Some(Some(UNIT.to_owned())));
}
