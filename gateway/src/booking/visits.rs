//! On-site visits to village stations (巡诊, 坐诊): recorded by the coordinators of the
//! visiting unit, or administrators, once they have happened; seen by anyone logged in.

use chrono::{NaiveDate, TimeDelta};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::{Level, Service, Services, User};
use crate::registry::today_in_china;
use crate::rules::Error;
use crate::store::{Store, Visit};

/// An on-site visit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitInput {
    /// The village station.
    pub village_id: i64,
    /// The day (China).
    pub visit_date: NaiveDate,
    /// The visiting team.
    pub team_id: Option<i64>,
    /// Or the visiting clinician.
    pub clinician_id: Option<i64>,
    /// Services given.
    #[schema(value_type = Vec<Service>)]
    pub services: Services,
    /// Notes, without patient data.
    pub notes: Option<String>,
}

/// Records an on-site visit by a team or a clinician of a unit `by` manages.
pub async fn add_visit(store: &Store, by: &User, v: VisitInput) -> Result<Visit, Error> {
    let village = store
        .institution(v.village_id)
        .await?
        .ok_or_else(|| Error::field("village_id", "no such institution"))?;
    if village.level != Level::VillageStation {
        return Err(Error::field(
            "village_id",
            format!("{} is not a village station", village.name),
        ));
    }
    let unit = match (v.team_id, v.clinician_id) {
        (Some(t), None) => store
            .team(t)
            .await?
            .map(|t| t.institution_id)
            .ok_or_else(|| Error::field("team_id", "no such team"))?,
        (None, Some(c)) => store
            .clinician(c)
            .await?
            .map(|c| c.institution_id)
            .ok_or_else(|| Error::field("clinician_id", "no such clinician"))?,
        _ => {
            return Err(Error::field(
                "team_id",
                "give the visiting team or the visiting clinician",
            ));
        }
    };
    if !by.manages(unit) {
        return Err(Error::forbidden(
            "only the visiting unit's coordinators or an administrator record visits",
        ));
    }
    if v.visit_date > today_in_china() {
        return Err(Error::field(
            "visit_date",
            "a visit is recorded once it has happened",
        ));
    }
    let mut visit = Visit {
        id: 0,
        village_id: v.village_id,
        visit_date: v.visit_date,
        team_id: v.team_id,
        clinician_id: v.clinician_id,
        services: v.services,
        notes: v.notes,
    };
    visit.id = store.add_visit(&visit, by.id).await?;
    Ok(visit)
}

/// Whose visits are listed.
#[derive(Debug, Clone, Copy)]
pub enum VisitsOf {
    /// Those to one village station.
    Village(i64),
    /// Those made by an institution's teams and clinicians, or made to it.
    Institution(i64),
}

/// The visits of `of` from `from` (a year before `to` when `None`) to `to` (today in
/// China when `None`).
pub async fn visits(
    store: &Store,
    of: VisitsOf,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<Visit>, Error> {
    let to = to.unwrap_or_else(today_in_china);
    let from = from.unwrap_or(to - TimeDelta::days(365));
    if from > to {
        return Err(Error::field("from", "the first day comes before the last"));
    }
    Ok(match of {
        VisitsOf::Village(id) => store.visits(&format!(",{id},"), from, to).await?,
        VisitsOf::Institution(id) => store.visits_involving(id, from, to).await?,
    })
}
