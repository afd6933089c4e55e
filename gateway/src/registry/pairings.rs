//! Creating, changing and ending pairings. `004`: the designated pairing is fixed for its
//! whole period and changes only for a stated special reason; only an administrator
//! changes it, and every version stays in history.

use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{require_admin, today_in_china};

use crate::domain::{Kind, Level, Pairing, PairingStatus, Services, Supported, Supporter, User};
use crate::rules::{Error, Rule};
use crate::store::{Change, PairingDraft, Store};

/// A pairing as an administrator creates it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairingInput {
    /// `{"kind": "institution" | "team" | "clinician", "id": 7}`.
    pub supporter: Supporter,
    /// `{"kind": "institution", "value": 12}` or `{"kind": "region", "value": "广东省/江门市/台山市"}`.
    pub supported: Supported,
    /// Services covered, at least one.
    #[schema(value_type = Vec<crate::domain::Service>)]
    pub services: Services,
    /// First day.
    pub valid_from: NaiveDate,
    /// Last day, inclusive.
    pub valid_to: NaiveDate,
}

/// A change to a pairing: any field left out keeps its value.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairingChange {
    /// The version the administrator saw; the change is refused if it is no longer current.
    pub version: Option<i32>,
    /// New supporting side.
    pub supporter: Option<Supporter>,
    /// New supported side.
    pub supported: Option<Supported>,
    /// New services.
    #[schema(value_type = Option<Vec<crate::domain::Service>>)]
    pub services: Option<Services>,
    /// New first day.
    pub valid_from: Option<NaiveDate>,
    /// New last day.
    pub valid_to: Option<NaiveDate>,
    /// Why; required once the period has begun.
    pub reason: Option<String>,
}

/// Ending a pairing before its period is over.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairingEnd {
    /// The last day it applies, today (in China) or later; today when left out.
    pub last_day: Option<NaiveDate>,
    /// Why; always required.
    pub reason: Option<String>,
}

fn draft(
    supporter: Supporter,
    supported: Supported,
    services: &Services,
    valid_from: NaiveDate,
    valid_to: NaiveDate,
    status: PairingStatus,
) -> Result<PairingDraft, Error> {
    if valid_to < valid_from {
        return Err(Error::field(
            "valid_to",
            format!("{valid_to} is before valid_from {valid_from}"),
        ));
    }
    let (supported_institution, supported_region) = match supported {
        Supported::Institution(id) => (Some(id), None),
        Supported::Region(r) => (None, Some(r.as_str().to_owned())),
    };
    Ok(PairingDraft {
        supporter,
        supported_institution,
        supported_region,
        services: services.to_stored(),
        valid_from,
        valid_to,
        status,
    })
}

/// `004`: tertiary general hospitals support county general hospitals and tertiary TCM
/// hospitals support county TCM hospitals. Applies to a tertiary institution paired with
/// one county-level hospital; region-wide pairings (a whole county system) are exempt.
async fn like_supports_like(
    store: &Store,
    supporter: Supporter,
    supported: &Supported,
) -> Result<(), Error> {
    let (Supporter::Institution(s), Supported::Institution(t)) = (supporter, supported) else {
        return Ok(());
    };
    let (Some(s), Some(t)) = (store.institution(s).await?, store.institution(*t).await?) else {
        // Unknown ids are reported, field by field, by the store.
        return Ok(());
    };
    let hospital = |k: Kind| matches!(k, Kind::General | Kind::Tcm);
    if s.level == Level::Tertiary
        && t.level == Level::County
        && hospital(s.kind)
        && hospital(t.kind)
        && s.kind != t.kind
    {
        return Err(Error::refused(
            Rule::KindMismatch,
            Some("supported"),
            format!(
                "{} ({}) cannot be paired with {} ({}): general supports general and TCM supports TCM (004)",
                s.name, s.kind, t.name, t.kind
            ),
        ));
    }
    Ok(())
}

fn stated(reason: Option<String>) -> Option<String> {
    reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
}

async fn current(store: &Store, id: i64) -> Result<Pairing, Error> {
    store
        .pairing(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("pairing {id}")))
}

/// Creates a pairing. Administrators only, as for changing and ending one.
pub async fn create_pairing(
    store: &Store,
    by: &User,
    input: PairingInput,
) -> Result<Pairing, Error> {
    require_admin(by, "create pairings")?;
    like_supports_like(store, input.supporter, &input.supported).await?;
    let d = draft(
        input.supporter,
        input.supported,
        &input.services,
        input.valid_from,
        input.valid_to,
        PairingStatus::Active,
    )?;
    Ok(store.create_pairing(&d, by.id).await?)
}

/// Changes a pairing. Inside its period a change needs a reason; an ended pairing or one
/// whose period is over is a record and does not change.
pub async fn change_pairing(
    store: &Store,
    by: &User,
    id: i64,
    change: PairingChange,
) -> Result<Pairing, Error> {
    require_admin(by, "change pairings")?;
    let p = current(store, id).await?;
    let today = today_in_china();
    if p.status == PairingStatus::Ended || p.valid_to < today {
        return Err(Error::Conflict(format!(
            "pairing {id} has ended; its history is a record and does not change"
        )));
    }
    let reason = stated(change.reason);
    if p.in_period(today) && reason.is_none() {
        return Err(Error::field(
            "reason",
            "this pairing is inside its period: a change needs a stated reason (004: 结对关系…确需调整的须说明特殊原因)",
        ));
    }
    if p.in_period(today) {
        // What the pairing covered up to today stays as it was.
        if change.valid_from.is_some_and(|from| from != p.valid_from) {
            return Err(Error::field(
                "valid_from",
                "the period has begun: its first day no longer changes",
            ));
        }
        if change.valid_to.is_some_and(|to| to < today) {
            return Err(Error::field(
                "valid_to",
                "the last day cannot move into the past; end the pairing instead",
            ));
        }
    }
    let supporter = change.supporter.unwrap_or(p.supporter);
    let supported = change.supported.unwrap_or(p.supported);
    like_supports_like(store, supporter, &supported).await?;
    let d = draft(
        supporter,
        supported,
        change.services.as_ref().unwrap_or(&p.services),
        change.valid_from.unwrap_or(p.valid_from),
        change.valid_to.unwrap_or(p.valid_to),
        PairingStatus::Active,
    )?;
    let expected = change.version.unwrap_or(p.version);
    let record = Change {
        by: by.id,
        at: store.now(),
        reason,
        action: "changed",
    };
    Ok(store.change_pairing(id, expected, &d, &record).await?)
}

/// Ends a pairing on `last_day`, with a reason.
pub async fn end_pairing(
    store: &Store,
    by: &User,
    id: i64,
    end: PairingEnd,
) -> Result<Pairing, Error> {
    require_admin(by, "end pairings")?;
    let p = current(store, id).await?;
    if p.status == PairingStatus::Ended {
        return Err(Error::Conflict(format!("pairing {id} has ended already")));
    }
    let reason = stated(end.reason)
        .ok_or_else(|| Error::field("reason", "ending a pairing needs a stated reason"))?;
    let today = today_in_china();
    let last_day = end.last_day.unwrap_or(today);
    if last_day < today {
        return Err(Error::field(
            "last_day",
            format!("{last_day} is in the past: what a pairing covered stays as it was"),
        ));
    }
    if last_day > p.valid_to {
        return Err(Error::field(
            "last_day",
            format!("{last_day} is after the end of the period, {}", p.valid_to),
        ));
    }
    if last_day < p.valid_from {
        return Err(Error::field(
            "last_day",
            format!("{last_day} is before the period starts, {}", p.valid_from),
        ));
    }
    let d = draft(
        p.supporter,
        p.supported,
        &p.services,
        p.valid_from,
        last_day,
        PairingStatus::Ended,
    )?;
    let record = Change {
        by: by.id,
        at: store.now(),
        reason: Some(reason),
        action: "ended",
    };
    Ok(store.change_pairing(id, p.version, &d, &record).await?)
}
