//! Who may enter the video room of a booked session, and what their presence there
//! leaves in the record.
//!
//! A session is named `consultation-<request id>`, `ward-round-<round id>` or
//! `teaching-<session id>`; the same name is its room. Identities in a room are
//! `u<user id>`. Neither carries patient data.
//!
//! The people a booking names get a room token from [`admit`], only inside the session's
//! window (opening `signaling.lead_minutes` before the start, closing
//! `signaling.grace_minutes` after the end). The signaling layer reports joins and leaves
//! to [`StorePresence`], which keeps every stretch of presence (the evidence that a
//! consultation or ward round took place, and for how long) and, for teaching sessions,
//! the trainees' attendance behind their continuing-education hours.

pub mod brief;
pub mod chat;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::SystemTime;

use chrono::{DateTime, TimeDelta, Utc};
use duikou_signaling::Grants;
use duikou_signaling::room::RoomId;
use duikou_signaling::server::Presence as PresenceSink;
use rand::RngCore as _;
use serde::Serialize;
use utoipa::ToSchema;

use crate::booking::RequestState;
use crate::config::SignalingConfig;
use crate::domain::{Role, User};
use crate::rules::{Error, Rule};
use crate::store::{Presence, Store};

/// A booked session, by kind and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRef {
    /// A remote consultation request with a scheduled session.
    Consultation(i64),
    /// One remote ward round.
    WardRound(i64),
    /// A teaching session.
    Teaching(i64),
}

impl fmt::Display for SessionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Consultation(id) => write!(f, "consultation-{id}"),
            Self::WardRound(id) => write!(f, "ward-round-{id}"),
            Self::Teaching(id) => write!(f, "teaching-{id}"),
        }
    }
}

impl SessionRef {
    /// The signaling room of the session, named as the session is.
    pub fn room(self) -> RoomId {
        self.to_string().into()
    }
}

impl FromStr for SessionRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::field(
                "session",
                "a session is consultation-<id>, ward-round-<id> or teaching-<id>",
            )
        };
        let (kind, id) = s.rsplit_once('-').ok_or_else(bad)?;
        let id: i64 = id.parse().map_err(|_| bad())?;
        if id <= 0 {
            return Err(bad());
        }
        match kind {
            "consultation" => Ok(Self::Consultation(id)),
            "ward-round" => Ok(Self::WardRound(id)),
            "teaching" => Ok(Self::Teaching(id)),
            _ => Err(bad()),
        }
    }
}

impl SessionRef {
    /// The object kind in the audit log.
    fn audit_kind(self) -> &'static str {
        match self {
            Self::Consultation(_) => "request",
            Self::WardRound(_) => "ward_round",
            Self::Teaching(_) => "teaching_session",
        }
    }

    fn id(self) -> i64 {
        match self {
            Self::Consultation(id) | Self::WardRound(id) | Self::Teaching(id) => id,
        }
    }
}

/// The identity of a user in every room.
pub fn identity(user_id: i64) -> String {
    format!("u{user_id}")
}

/// The user behind a room identity.
pub fn user_of(identity: &str) -> Option<i64> {
    identity.strip_prefix('u')?.parse().ok()
}

/// A booked session as far as its room is concerned.
#[derive(Debug, Clone)]
pub struct Booked {
    /// Planned start.
    pub starts_at: DateTime<Utc>,
    /// Planned end.
    pub ends_at: DateTime<Utc>,
    /// Participants the room holds.
    pub capacity: u32,
    /// The institutions whose coordinators may read the room's record.
    pub institutions: Vec<i64>,
    /// The caller's role in the room and grants, when the booking names them.
    pub named: Option<(&'static str, Grants)>,
    /// Whether the booking is in a state that has a session (a consultation scheduled,
    /// not cancelled or closed; a ward round or teaching session not cancelled).
    pub open: bool,
}

impl Booked {
    /// When the room admits from and until: `signaling.lead_minutes` before the start to
    /// `signaling.grace_minutes` after the end.
    pub fn window(&self, config: &SignalingConfig) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            self.starts_at - TimeDelta::minutes(config.lead_minutes),
            self.ends_at + TimeDelta::minutes(config.grace_minutes),
        )
    }
}

/// The refusal of someone `session`'s booking does not name.
pub(crate) fn not_named(session: SessionRef) -> Error {
    Error::refused(
        Rule::NotAParticipant,
        None,
        format!("the booking of {session} does not name you"),
    )
}

const TALK: Grants = Grants {
    publish: true,
    subscribe: true,
    moderate: false,
};
const LEAD: Grants = Grants {
    publish: true,
    subscribe: true,
    moderate: true,
};
const LISTEN: Grants = Grants {
    publish: false,
    subscribe: true,
    moderate: false,
};

/// Reads the booking of `session` and whether it names `caller`.
pub async fn booked(
    store: &Store,
    config: &SignalingConfig,
    session: SessionRef,
    caller: &User,
) -> Result<Booked, Error> {
    let missing = || Error::NotFound(format!("session {session}"));
    let clinician = caller.clinician_id;
    match session {
        SessionRef::Consultation(id) => {
            let r = store.request(id).await?.ok_or_else(missing)?;
            let (Some(starts_at), Some(ends_at)) = (r.scheduled_start, r.scheduled_end) else {
                return Err(Error::refused(
                    Rule::SessionNotScheduled,
                    None,
                    "the request has no scheduled session",
                ));
            };
            let named = if caller.id == r.requester_user_id {
                Some(("requester", TALK))
            } else if clinician.is_some() && clinician == r.consultant_id {
                Some(("consultant", LEAD))
            } else if clinician.is_some() && clinician == r.content.accompanying_clinician_id {
                Some(("accompanying", TALK))
            } else {
                None
            };
            Ok(Booked {
                // A session runs once scheduled until the opinion is signed; the consultant
                // may sign during it.
                open: matches!(
                    r.state,
                    RequestState::Scheduled | RequestState::InSession | RequestState::OpinionSigned
                ),
                starts_at,
                ends_at,
                capacity: config.capacity_consultation,
                institutions: vec![r.requester_institution_id, r.supporter_institution_id],
                named,
            })
        }
        SessionRef::WardRound(id) => {
            let round = store.ward_round(id).await?.ok_or_else(missing)?;
            let team = store.team(round.team_id).await?.ok_or_else(missing)?;
            let in_team = clinician.is_some_and(|c| team.member_ids.contains(&c));
            let ward_side = match round.ward_team_id {
                Some(ward_team) => {
                    let ward = store.team(ward_team).await?.ok_or_else(missing)?;
                    clinician.is_some_and(|c| ward.member_ids.contains(&c))
                }
                None => {
                    caller.is(Role::Clinician)
                        && caller.institution_id == round.supported_institution_id
                }
            };
            let named = if in_team && clinician == Some(team.leader_id) {
                Some(("team_leader", LEAD))
            } else if in_team {
                Some(("supporting_team", TALK))
            } else if ward_side {
                Some(("ward", TALK))
            } else {
                None
            };
            Ok(Booked {
                open: round.cancelled_at.is_none(),
                starts_at: round.starts_at,
                ends_at: round.ends_at,
                capacity: config.capacity_ward_round,
                institutions: vec![team.institution_id, round.supported_institution_id],
                named,
            })
        }
        SessionRef::Teaching(id) => {
            let s = store.teaching_session(id).await?.ok_or_else(missing)?;
            let named = if clinician == Some(s.presenter_clinician_id) {
                Some(("presenter", LEAD))
            } else if store.enrolments(id).await?.iter().any(|e| {
                e.user_id == caller.id && e.status == crate::booking::EnrolmentStatus::Enrolled
            }) {
                Some(("trainee", LISTEN))
            } else {
                None
            };
            let mut institutions = vec![s.presenter_institution_id];
            institutions.extend(store.enrolments(id).await?.iter().map(|e| e.institution_id));
            Ok(Booked {
                open: s.cancelled_at.is_none(),
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                // The presenter and every place.
                capacity: u32::try_from(s.capacity).unwrap_or(0).saturating_add(1),
                institutions,
                named,
            })
        }
    }
}

/// A caller admitted to a room.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// The room.
    pub room: RoomId,
    /// Role in the room.
    pub role: &'static str,
    /// Grants.
    pub grants: Grants,
    /// Participants the room holds.
    pub capacity: u32,
    /// The caller's name as the others see it.
    pub name: String,
    /// The caller's title and institution.
    pub about: String,
}

/// Admits `caller` to the room of `session` at `now`, or says why not; both are audited.
pub async fn admit(
    store: &Store,
    config: &SignalingConfig,
    session: SessionRef,
    caller: &User,
    now: DateTime<Utc>,
) -> Result<Admitted, Error> {
    let b = booked(store, config, session, caller).await?;
    let audit = |allowed: bool, detail: &str| {
        crate::audit::record(
            store,
            caller,
            session.audit_kind(),
            "join_room",
            Some(session.id()),
            allowed,
            Some(detail.to_owned()),
        )
    };
    let Some((role, grants)) = b.named else {
        audit(false, "not named by the booking").await?;
        return Err(not_named(session));
    };
    if !b.open {
        audit(false, "no session in this state").await?;
        return Err(Error::refused(
            Rule::SessionNotOpen,
            None,
            format!("{session} has no session to join in its present state"),
        ));
    }
    let (opens, closes) = b.window(config);
    if now < opens || now > closes {
        audit(false, "outside the session window").await?;
        return Err(Error::refused(
            Rule::OutsideSessionWindow,
            None,
            format!(
                "the room of {session} is open from {} to {} (UTC)",
                opens.format("%Y-%m-%d %H:%M"),
                closes.format("%Y-%m-%d %H:%M")
            ),
        ));
    }
    audit(true, role).await?;
    let (name, about) = brief::label(store, caller).await?;
    Ok(Admitted {
        room: session.room(),
        role,
        grants,
        capacity: b.capacity,
        name,
        about,
    })
}

/// The room-token secret: from the configuration, or generated once and kept in the
/// database so that every gateway process sharing it agrees.
pub async fn token_secret(store: &Store, config: &SignalingConfig) -> Result<Vec<u8>, Error> {
    if let Some(secret) = &config.token_secret {
        return Ok(secret.expose().as_bytes().to_vec());
    }
    let mut fresh = [0_u8; 32];
    rand::thread_rng().fill_bytes(&mut fresh);
    let fresh: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
    Ok(store
        .setting_or_insert("room_token_secret", &fresh)
        .await?
        .into_bytes())
}

/// One stretch of someone's presence in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Stretch {
    /// Who.
    pub user_id: i64,
    /// Entered.
    pub joined_at: DateTime<Utc>,
    /// Left; open while present.
    pub left_at: Option<DateTime<Utc>>,
}

impl From<Presence> for Stretch {
    fn from(p: Presence) -> Self {
        Self {
            user_id: p.user_id,
            joined_at: p.joined_at,
            left_at: p.left_at,
        }
    }
}

/// The record of a room: every stretch of presence, and how long people were there
/// together.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoomRecord {
    /// The room.
    pub room: String,
    /// Every stretch of presence, in order.
    pub stretches: Vec<Stretch>,
    /// Seconds during which at least two people were present: for a consultation, the
    /// evidence that it took place and how long it lasted.
    pub together_seconds: i64,
    /// Seconds from the first join to the last leave (or now).
    pub span_seconds: i64,
}

/// The record of who was in `session`'s room and when, for the people the booking names,
/// the coordinators of the institutions involved, and administrators. Every look, and
/// every refused one, is audited.
pub async fn attendance(
    store: &Store,
    config: &SignalingConfig,
    session: SessionRef,
    by: &User,
) -> Result<RoomRecord, Error> {
    let b = booked(store, config, session, by).await?;
    let allowed = by.is(Role::Admin)
        || b.named.is_some()
        || (by.is(Role::Coordinator) && b.institutions.contains(&by.institution_id));
    let id = match session {
        SessionRef::Consultation(id) | SessionRef::WardRound(id) | SessionRef::Teaching(id) => id,
    };
    let detail = Some(session.to_string());
    crate::audit::record(
        store,
        by,
        "room",
        "read_attendance",
        Some(id),
        allowed,
        detail,
    )
    .await?;
    if !allowed {
        return Err(Error::forbidden(
            "the people of the session, their institutions' coordinators and administrators",
        ));
    }
    let room = session.to_string();
    let stretches = store.presence(&room).await?;
    Ok(record(room, stretches, store.now()))
}

/// Summarises the stretches of a room up to `now`.
pub fn record(room: String, stretches: Vec<Presence>, now: DateTime<Utc>) -> RoomRecord {
    // Sweep over the joins (+1) and leaves (-1) of distinct people.
    let mut edges: Vec<(DateTime<Utc>, i32)> = Vec::new();
    for s in &stretches {
        edges.push((s.joined_at, 1));
        edges.push((s.left_at.unwrap_or(now), -1));
    }
    edges.sort();
    let (mut present, mut together) = (0, 0_i64);
    let mut since: Option<DateTime<Utc>> = None;
    for (at, step) in &edges {
        if present >= 2 {
            if let Some(start) = since {
                together += (*at - start).num_seconds();
            }
        }
        present += step;
        since = Some(*at);
    }
    let span = match (edges.first(), edges.last()) {
        (Some((first, _)), Some((last, _))) => (*last - *first).num_seconds(),
        _ => 0,
    };
    RoomRecord {
        room,
        stretches: stretches.into_iter().map(Stretch::from).collect(),
        together_seconds: together,
        span_seconds: span,
    }
}

/// Records what the signaling layer reports: joins and leaves as presence in the room
/// (the evidence a session took place), and in teaching rooms, where the forwarding unit
/// carries the media, the stretches in which media actually reached an enrolled trainee
/// as its attendance.
pub struct StorePresence(pub Store);

impl StorePresence {
    /// `at` (the system's time of an event) on the gateway's clock, which every other
    /// time of a session is on.
    fn on_clock(&self, at: SystemTime) -> DateTime<Utc> {
        let ago = SystemTime::now().duration_since(at).unwrap_or_default();
        self.0.now() - TimeDelta::from_std(ago).unwrap_or_default()
    }

    async fn apply(
        &self,
        room: &str,
        identity: &str,
        present: bool,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let (Ok(_), Some(user_id)) = (room.parse::<SessionRef>(), user_of(identity)) else {
            return Ok(());
        };
        let store = &self.0;
        if present {
            store.presence_open(room, user_id, at).await?;
        } else {
            store.presence_close(room, user_id, at).await?;
        }
        Ok(())
    }

    async fn apply_media(
        &self,
        room: &str,
        identity: &str,
        receiving: bool,
        at: DateTime<Utc>,
        seconds: u64,
    ) -> Result<(), Error> {
        let (Ok(SessionRef::Teaching(id)), Some(user_id)) =
            (room.parse::<SessionRef>(), user_of(identity))
        else {
            return Ok(());
        };
        let store = &self.0;
        let enrolled =
            store.enrolments(id).await?.iter().any(|e| {
                e.user_id == user_id && e.status == crate::booking::EnrolmentStatus::Enrolled
            });
        if !enrolled {
            return Ok(());
        }
        if receiving {
            let a = crate::booking::Attendance {
                session_id: id,
                user_id,
                joined_at: at,
                left_at: None,
                received_seconds: None,
            };
            store.record_attendance(&a, None).await?;
        } else {
            let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
            store
                .attendance_close(id, user_id, at, Some(seconds))
                .await?;
        }
        Ok(())
    }
}

impl PresenceSink for StorePresence {
    fn record(
        &self,
        room: RoomId,
        identity: String,
        present: bool,
        at: SystemTime,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let at = self.on_clock(at);
            if let Err(e) = self.apply(room.as_str(), &identity, present, at).await {
                tracing::error!(%room, identity, present, error = %e, "cannot record presence");
            }
        })
    }

    fn media(
        &self,
        room: RoomId,
        identity: String,
        receiving: bool,
        at: SystemTime,
        seconds: u64,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let at = self.on_clock(at);
            if let Err(e) = self
                .apply_media(room.as_str(), &identity, receiving, at, seconds)
                .await
            {
                tracing::error!(%room, identity, receiving, error = %e, "cannot record attendance");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_round_trip_and_nonsense_is_refused() {
        for s in ["consultation-12", "ward-round-3", "teaching-7"] {
            assert_eq!(s.parse::<SessionRef>().unwrap().to_string(), s);
        }
        for bad in [
            "consultation",
            "ward-round-x",
            "exam-1",
            "teaching--1",
            "teaching-0",
        ] {
            assert!(bad.parse::<SessionRef>().is_err(), "{bad}");
        }
        assert_eq!(user_of(&identity(17)), Some(17));
        assert_eq!(user_of("x17"), None);
    }

    #[test]
    fn together_counts_only_time_with_two_or_more_present() {
        let t = |m: i64| DateTime::<Utc>::from_timestamp(1_800_000_000 + m * 60, 0).unwrap();
        let p = |user_id, j, l: Option<i64>| Presence {
            user_id,
            joined_at: t(j),
            left_at: l.map(t),
        };
        // Doctor 0–30, consultant 5–25, village doctor 10–40 (still there at 40).
        let r = record(
            "consultation-1".into(),
            vec![p(1, 0, Some(30)), p(2, 5, Some(25)), p(3, 10, None)],
            t(40),
        );
        assert_eq!(r.together_seconds, 25 * 60);
        assert_eq!(r.span_seconds, 40 * 60);
    }
}
