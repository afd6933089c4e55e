//! What the page of a room shows around the video: when the room opens (for the lobby of
//! an early arrival, with the server's time so that its countdown agrees with the
//! gateway's clock), who the booking names by name, title and institution, and whether
//! the session is still to come, open, over or no longer held.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{SessionRef, booked};
use crate::config::SignalingConfig;
use crate::domain::User;
use crate::rules::Error;
use crate::store::Store;

/// Where a session's room stands for its people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the room opens: the lobby, until `opens_at`.
    Early,
    /// The room admits.
    Open,
    /// The room has closed (after `closes_at`).
    Over,
    /// The booking holds no session now: cancelled, or its consultation finished.
    Closed,
}

/// Someone the booking names, as the others see them (staff, never patient data).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Named {
    /// Role in the room, e.g. `requester`, `consultant`, `presenter`.
    pub role: &'static str,
    /// Name.
    pub name: String,
    /// Title and institution.
    pub about: String,
}

/// A session's room as its page shows it before and around the video.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoomBrief {
    /// The session (and its room).
    pub session: String,
    /// `consultation`, `ward_round` or `teaching`.
    pub kind: &'static str,
    /// For a consultation, its request.
    pub request_id: Option<i64>,
    /// For a consultation, the request's state; for the others, `cancelled` when they
    /// are.
    pub state: Option<String>,
    /// For a teaching session, its topic.
    pub topic: Option<String>,
    /// Planned start.
    pub starts_at: DateTime<Utc>,
    /// Planned end.
    pub ends_at: DateTime<Utc>,
    /// The room admits from.
    pub opens_at: DateTime<Utc>,
    /// The room admits until.
    pub closes_at: DateTime<Utc>,
    /// The gateway's time now, which the lobby counts down by.
    pub now: DateTime<Utc>,
    /// Where the room stands.
    pub phase: Phase,
    /// The caller's role in the room.
    pub role: &'static str,
    /// Who leads and who asks: for a consultation the requester, the consultant and the
    /// accompanying clinician; for a ward round the leader of the supporting team; for a
    /// teaching session the presenter.
    pub people: Vec<Named>,
}

/// The name and the line about a user that the others in a room see: a clinician's name,
/// title and institution, else the account's name and institution.
pub async fn label(store: &Store, user: &User) -> Result<(String, String), Error> {
    if let Some(id) = user.clinician_id {
        if let Some(named) = clinician(store, id, "").await? {
            return Ok((named.name, named.about));
        }
    }
    let institution = institution_name(store, user.institution_id).await?;
    Ok((user.display_name.clone(), institution))
}

async fn institution_name(store: &Store, id: i64) -> Result<String, Error> {
    Ok(store
        .institution(id)
        .await?
        .map(|i| i.name)
        .unwrap_or_default())
}

async fn clinician(store: &Store, id: i64, role: &'static str) -> Result<Option<Named>, Error> {
    let Some(c) = store.clinician(id).await? else {
        return Ok(None);
    };
    let institution = institution_name(store, c.institution_id).await?;
    Ok(Some(Named {
        role,
        name: c.name,
        about: format!("{} · {}", c.title, institution),
    }))
}

/// The brief of `session`'s room at `now`, for the people its booking names; others are
/// refused as the room itself refuses them.
pub async fn brief(
    store: &Store,
    config: &SignalingConfig,
    session: SessionRef,
    caller: &User,
    now: DateTime<Utc>,
) -> Result<RoomBrief, Error> {
    let b = booked(store, config, session, caller).await?;
    let Some((role, _)) = b.named else {
        return Err(super::not_named(session));
    };
    let mut people = Vec::new();
    let (kind, request_id, state, topic) = match session {
        SessionRef::Consultation(id) => {
            let r = store
                .request(id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("session {session}")))?;
            if let Some(requester) = store.user(r.requester_user_id).await? {
                let (name, about) = label(store, &requester).await?;
                people.push(Named {
                    role: "requester",
                    name,
                    about,
                });
            }
            for (id, role) in [
                (r.consultant_id, "consultant"),
                (r.content.accompanying_clinician_id, "accompanying"),
            ] {
                if let Some(named) = match id {
                    Some(id) => clinician(store, id, role).await?,
                    None => None,
                } {
                    people.push(named);
                }
            }
            let state = serde_json::to_value(r.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            ("consultation", Some(id), state, None)
        }
        SessionRef::WardRound(id) => {
            let round = store.ward_round(id).await?;
            let team = match &round {
                Some(round) => store.team(round.team_id).await?,
                None => None,
            };
            if let Some(team) = team {
                people.extend(clinician(store, team.leader_id, "team_leader").await?);
            }
            let cancelled = round.is_some_and(|r| r.cancelled_at.is_some());
            (
                "ward_round",
                None,
                cancelled.then(|| "cancelled".into()),
                None,
            )
        }
        SessionRef::Teaching(id) => {
            let s = store.teaching_session(id).await?;
            if let Some(s) = &s {
                people.extend(clinician(store, s.presenter_clinician_id, "presenter").await?);
            }
            let cancelled = s.as_ref().is_some_and(|s| s.cancelled_at.is_some());
            (
                "teaching",
                None,
                cancelled.then(|| "cancelled".into()),
                s.map(|s| s.topic),
            )
        }
    };
    let (opens_at, closes_at) = b.window(config);
    let phase = if !b.open {
        Phase::Closed
    } else if now < opens_at {
        Phase::Early
    } else if now > closes_at {
        Phase::Over
    } else {
        Phase::Open
    };
    Ok(RoomBrief {
        session: session.to_string(),
        kind,
        request_id,
        state,
        topic,
        starts_at: b.starts_at,
        ends_at: b.ends_at,
        opens_at,
        closes_at,
        now,
        phase,
        role,
        people,
    })
}
