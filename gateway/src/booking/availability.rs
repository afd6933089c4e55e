//! Consultants' availability: weekly rules with exceptions, kept by the consultant, a
//! coordinator of their unit or an administrator; the free slots are for everybody.

use chrono::{NaiveDate, NaiveTime, TimeDelta};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Availability, AvailabilityException, Slot, free_slots_of};
use crate::domain::{Clinician, User};
use crate::registry::{clinician, today_in_china};
use crate::rules::Error;
use crate::store::{Removable, Store};

/// A weekly availability rule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityInput {
    /// ISO weekday, 1 = Monday … 7 = Sunday.
    pub weekday: u32,
    /// Start, China time, `HH:MM`.
    #[schema(value_type = String, example = "09:00")]
    pub start_time: NaiveTime,
    /// End, China time.
    #[schema(value_type = String, example = "11:30")]
    pub end_time: NaiveTime,
    /// Slot length in minutes, 5 to 240.
    pub slot_minutes: i32,
    /// First day; today when left out.
    pub valid_from: Option<NaiveDate>,
    /// Last day, if it ends.
    pub valid_to: Option<NaiveDate>,
}

/// A day or part of a day off.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExceptionInput {
    /// The day.
    pub day: NaiveDate,
    /// From, China time; the whole day when left out.
    #[schema(value_type = Option<String>)]
    pub start_time: Option<NaiveTime>,
    /// Until, China time.
    #[schema(value_type = Option<String>)]
    pub end_time: Option<NaiveTime>,
    /// Why.
    pub reason: String,
}

/// Refuses unless `by` is the clinician, a coordinator of their unit or an administrator.
fn may_manage(by: &User, c: &Clinician) -> Result<(), Error> {
    if by.clinician_id == Some(c.id) || by.manages(c.institution_id) {
        Ok(())
    } else {
        Err(Error::forbidden(
            "only the consultant, their unit's coordinator or an administrator manages availability",
        ))
    }
}

/// Clinician `id`'s weekly availability rules. Any logged-in user.
pub async fn availability(store: &Store, id: i64) -> Result<Vec<Availability>, Error> {
    clinician(store, id).await?;
    Ok(store.availability(id).await?)
}

/// Publishes a weekly availability rule for clinician `id`.
pub async fn add_availability(
    store: &Store,
    by: &User,
    id: i64,
    input: AvailabilityInput,
) -> Result<Availability, Error> {
    let c = clinician(store, id).await?;
    may_manage(by, &c)?;
    if !(1..=7).contains(&input.weekday) {
        return Err(Error::field("weekday", "1 (Monday) to 7 (Sunday)"));
    }
    if input.end_time <= input.start_time {
        return Err(Error::field("end_time", "the end comes after the start"));
    }
    if !(5..=240).contains(&input.slot_minutes) {
        return Err(Error::field("slot_minutes", "5 to 240 minutes"));
    }
    if input.end_time - input.start_time < TimeDelta::minutes(i64::from(input.slot_minutes)) {
        return Err(Error::field(
            "slot_minutes",
            "at least one slot fits between start and end",
        ));
    }
    let valid_from = input.valid_from.unwrap_or_else(today_in_china);
    if input.valid_to.is_some_and(|to| to < valid_from) {
        return Err(Error::field(
            "valid_to",
            "the last day comes after the first",
        ));
    }
    let mut rule = Availability {
        id: 0,
        clinician_id: id,
        weekday: input.weekday,
        start_time: input.start_time,
        end_time: input.end_time,
        slot_minutes: input.slot_minutes,
        valid_from,
        valid_to: input.valid_to,
    };
    rule.id = store.add_availability(&rule, by.id).await?;
    Ok(rule)
}

/// Records an exception to clinician `id`'s availability.
pub async fn add_exception(
    store: &Store,
    by: &User,
    id: i64,
    input: ExceptionInput,
) -> Result<AvailabilityException, Error> {
    let c = clinician(store, id).await?;
    may_manage(by, &c)?;
    match (input.start_time, input.end_time) {
        (Some(s), Some(e)) if e <= s => {
            return Err(Error::field("end_time", "the end comes after the start"));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::field(
                "end_time",
                "give both times, or neither for the whole day",
            ));
        }
        _ => {}
    }
    if input.reason.trim().is_empty() {
        return Err(Error::field("reason", "say why"));
    }
    let mut e = AvailabilityException {
        id: 0,
        clinician_id: id,
        day: input.day,
        start_time: input.start_time,
        end_time: input.end_time,
        reason: input.reason.trim().to_owned(),
    };
    e.id = store.add_availability_exception(&e, by.id).await?;
    Ok(e)
}

/// Clinician `id`'s exceptions from `from` (today in China when `None`) to `to` (90 days
/// later when `None`, at most 366). Any logged-in user, as the rules are.
pub async fn exceptions(
    store: &Store,
    id: i64,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<AvailabilityException>, Error> {
    clinician(store, id).await?;
    let from = from.unwrap_or_else(today_in_china);
    let to = to.unwrap_or(from + TimeDelta::days(90));
    if to < from || to - from > TimeDelta::days(366) {
        return Err(Error::field("to", "to lies 0 to 366 days after from"));
    }
    Ok(store.availability_exceptions(id, from, to).await?)
}

/// Removes weekly rule or exception `item` of clinician `id`: those who may add one.
/// Slots booked already stay booked.
pub async fn remove(
    store: &Store,
    by: &User,
    id: i64,
    what: Removable,
    item: i64,
) -> Result<(), Error> {
    let c = clinician(store, id).await?;
    may_manage(by, &c)?;
    if store.remove_availability(what, id, item).await? {
        Ok(())
    } else {
        Err(Error::NotFound(format!(
            "{} {item} of clinician {id}",
            match what {
                Removable::Rule => "availability rule",
                Removable::Exception => "exception",
            }
        )))
    }
}

/// Clinician `id`'s free slots from `from` (today in China when `None`) to `to` (14 days
/// later when `None`, at most 31). Any logged-in user.
pub async fn slots(
    store: &Store,
    id: i64,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<Slot>, Error> {
    clinician(store, id).await?;
    let from = from.unwrap_or_else(today_in_china);
    let to = to.unwrap_or(from + TimeDelta::days(14));
    if to < from || to - from > TimeDelta::days(31) {
        return Err(Error::field("to", "to lies 0 to 31 days after from"));
    }
    free_slots_of(store, id, from, to).await
}
