//! Moving one ward round and cancelling rounds, by the organisers who may schedule them
//! (the coordinators of either side, or an administrator), and only while a round is
//! not over and not cancelled.
//!
//! A round moves to a time to come on which the team is still the ward hospital's
//! designated supporter for ward rounds. A cancellation keeps its reason and takes the
//! round alone or, asked to, the later rounds of its series with it; a cancelled round's
//! room does not open ([`crate::rooms`]), and its patient list stays as it was.

use chrono::{DateTime, TimeDelta, Utc};

use super::{WardRound, require_designated, require_organiser, team};
use crate::booking::cancellation::{reason, still_open, to_come};
use crate::domain::{Team, User};
use crate::rules::{Error, Rule};
use crate::store::Store;

/// A round its organiser may change: the round and its team.
async fn organised(store: &Store, caller: &User, id: i64) -> Result<(WardRound, Team), Error> {
    let round = store
        .ward_round(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("ward round {id}")))?;
    let t = team(store, "team_id", round.team_id).await?;
    require_organiser(caller, &t, round.supported_institution_id)?;
    still_open(round.cancelled_at, round.ends_at, store.now())?;
    Ok((round, t))
}

fn cancelled_meanwhile() -> Error {
    Error::refused(
        Rule::SessionCancelled,
        None,
        "somebody cancelled the round meanwhile",
    )
}

/// Moves round `id` to `starts_at`, lasting `duration_minutes` (15 to 480; as long as
/// before when `None`); the round as it is after.
pub async fn change(
    store: &Store,
    caller: &User,
    id: i64,
    starts_at: DateTime<Utc>,
    duration_minutes: Option<i64>,
) -> Result<WardRound, Error> {
    let (round, t) = organised(store, caller, id).await?;
    to_come("starts_at", starts_at, store.now())?;
    let minutes = duration_minutes.unwrap_or((round.ends_at - round.starts_at).num_minutes());
    if !(15..=480).contains(&minutes) {
        return Err(Error::field("duration_minutes", "15 to 480 minutes"));
    }
    require_designated(store, &t, round.supported_institution_id, starts_at).await?;
    let ends_at = starts_at + TimeDelta::minutes(minutes);
    if !store.move_ward_round(id, starts_at, ends_at).await? {
        return Err(cancelled_meanwhile());
    }
    store
        .ward_round(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("ward round {id}")))
}

/// Cancels round `id` with the reason and, when `rest_of_series`, the later rounds of
/// its series that are neither over nor cancelled; the rounds cancelled, in order.
pub async fn cancel(
    store: &Store,
    caller: &User,
    id: i64,
    text: &str,
    rest_of_series: bool,
) -> Result<Vec<WardRound>, Error> {
    let (round, _) = organised(store, caller, id).await?;
    let reason = reason(text)?;
    let series = if rest_of_series {
        round.series_id.map(|s| (s, round.starts_at))
    } else {
        None
    };
    let ids = store
        .cancel_ward_rounds(id, series, caller.id, reason)
        .await?;
    if !ids.contains(&id) {
        return Err(cancelled_meanwhile());
    }
    let mut cancelled = Vec::with_capacity(ids.len());
    for id in ids {
        cancelled.extend(store.ward_round(id).await?);
    }
    cancelled.sort_by_key(|r| (r.starts_at, r.id));
    Ok(cancelled)
}

#[cfg(test)]
mod tests {
    use super::super::schedule;
    use super::super::tests::{field_of, rounds, weekly};
    use super::*;
    use crate::booking::rounds::list;

    #[tokio::test]
    async fn a_round_moves_to_a_time_to_come_while_the_team_is_designated() {
        let r = rounds().await;
        let made = schedule(&r.f.store, &r.ward_coordinator, &weekly(&r, &r.designated))
            .await
            .unwrap();
        let first = made[0].id;
        let later = made[0].starts_at + TimeDelta::hours(3);
        let moved = change(&r.f.store, &r.ward_coordinator, first, later, Some(90))
            .await
            .unwrap();
        assert_eq!(
            (moved.starts_at, moved.ends_at),
            (later, later + TimeDelta::minutes(90))
        );
        // As long as before when the duration is left out.
        let moved = change(
            &r.f.store,
            &r.f.admin,
            first,
            later + TimeDelta::days(1),
            None,
        )
        .await
        .unwrap();
        assert_eq!(moved.ends_at - moved.starts_at, TimeDelta::minutes(90));

        let past = change(&r.f.store, &r.ward_coordinator, first, Utc::now(), None).await;
        assert_eq!(field_of(&past.unwrap_err()), Some("starts_at"));
        let short = change(&r.f.store, &r.ward_coordinator, first, later, Some(10)).await;
        assert_eq!(field_of(&short.unwrap_err()), Some("duration_minutes"));
        // Past the pairing's last day (a year ahead) the team is nobody's supporter.
        let beyond = Utc::now() + TimeDelta::days(400);
        let e = change(&r.f.store, &r.ward_coordinator, first, beyond, None)
            .await
            .unwrap_err();
        assert_eq!(e.rule(), Some(Rule::NotDesignatedSupporter));
        // Neither a clinician of the ward nor the team's leader organises rounds.
        for who in [&r.ward_clinician, &r.team_leader] {
            let e = change(&r.f.store, who, first, later, None)
                .await
                .unwrap_err();
            assert!(matches!(e, Error::Forbidden(_)), "{e}");
        }
    }

    #[tokio::test]
    async fn the_rest_of_a_series_is_cancelled_from_the_round_named_on() {
        let r = rounds().await;
        let made = schedule(&r.f.store, &r.ward_coordinator, &weekly(&r, &r.designated))
            .await
            .unwrap();
        let one = cancel(
            &r.f.store,
            &r.ward_coordinator,
            made[0].id,
            "专家外出义诊",
            false,
        )
        .await
        .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].cancel_reason.as_deref(), Some("专家外出义诊"));
        let again = cancel(&r.f.store, &r.ward_coordinator, made[0].id, "再取消", false)
            .await
            .unwrap_err();
        assert_eq!(again.rule(), Some(Rule::SessionCancelled));
        let moved = change(
            &r.f.store,
            &r.ward_coordinator,
            made[0].id,
            made[1].starts_at,
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(moved.rule(), Some(Rule::SessionCancelled));
        let blank = cancel(&r.f.store, &r.ward_coordinator, made[2].id, "  ", true).await;
        assert_eq!(field_of(&blank.unwrap_err()), Some("reason"));

        let rest = cancel(
            &r.f.store,
            &r.f.admin,
            made[2].id,
            "病区装修，暂停查房",
            true,
        )
        .await
        .unwrap();
        let ids: Vec<i64> = rest.iter().map(|w| w.id).collect();
        assert_eq!(ids, [made[2].id, made[3].id]);
        let listed = list(
            &r.f.store,
            &r.team_leader,
            None,
            Utc::now(),
            Utc::now() + TimeDelta::days(60),
        )
        .await
        .unwrap();
        let open: Vec<i64> = listed
            .iter()
            .filter(|w| w.cancelled_at.is_none())
            .map(|w| w.id)
            .collect();
        assert_eq!(open, [made[1].id], "the second round alone goes ahead");
        assert_eq!(listed.len(), 4, "cancelled rounds stay listed");
    }
}
