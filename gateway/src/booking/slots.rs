//! Consultants' free slots, computed from weekly availability, its exceptions and what
//! is booked. Pure: the store supplies the three lists. Times of day are China time
//! (UTC+8 all year: China keeps no daylight saving); slots are UTC instants.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// China Standard Time.
pub fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("a valid offset")
}

/// A weekly availability rule of a consultant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Availability {
    /// Rule id.
    pub id: i64,
    /// The consultant.
    pub clinician_id: i64,
    /// ISO weekday, 1 = Monday … 7 = Sunday.
    pub weekday: u32,
    /// Start, China time.
    #[schema(value_type = String, example = "09:00")]
    pub start_time: NaiveTime,
    /// End, China time.
    #[schema(value_type = String, example = "11:30")]
    pub end_time: NaiveTime,
    /// Slot length in minutes.
    pub slot_minutes: i32,
    /// First day the rule applies.
    pub valid_from: NaiveDate,
    /// Last day, if it ends.
    pub valid_to: Option<NaiveDate>,
}

/// A day or part of a day the consultant is not available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AvailabilityException {
    /// Exception id.
    pub id: i64,
    /// The consultant.
    pub clinician_id: i64,
    /// The day, China time.
    pub day: NaiveDate,
    /// From, China time; the whole day when absent.
    #[schema(value_type = Option<String>)]
    pub start_time: Option<NaiveTime>,
    /// Until, China time.
    #[schema(value_type = Option<String>)]
    pub end_time: Option<NaiveTime>,
    /// Why (leave, conference, on-site visit).
    pub reason: String,
}

/// A free slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Slot {
    /// Start (UTC).
    pub start: DateTime<Utc>,
    /// End (UTC).
    pub end: DateTime<Utc>,
    /// Start as shown in China, `YYYY-MM-DD HH:MM`.
    pub local: String,
}

/// The free slots between `from` and `to` (China dates, inclusive) that start after `now`.
pub fn free_slots(
    rules: &[Availability],
    exceptions: &[AvailabilityException],
    booked: &[DateTime<Utc>],
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
) -> Vec<Slot> {
    let booked: HashSet<DateTime<Utc>> = booked.iter().copied().collect();
    let mut slots = Vec::new();
    let mut day = from;
    while day <= to {
        for rule in rules.iter().filter(|r| {
            r.weekday == day.weekday().number_from_monday()
                && r.valid_from <= day
                && r.valid_to.is_none_or(|end| day <= end)
        }) {
            let step = TimeDelta::minutes(i64::from(rule.slot_minutes.max(5)));
            let mut start = rule.start_time;
            loop {
                let (end, wrapped) = start.overflowing_add_signed(step);
                if wrapped != 0 || end > rule.end_time || end <= start {
                    break;
                }
                let blocked = exceptions.iter().any(|e| {
                    e.day == day
                        && match (e.start_time, e.end_time) {
                            (Some(s), Some(t)) => start < t && s < end,
                            _ => true,
                        }
                });
                let at = day
                    .and_time(start)
                    .and_local_timezone(china())
                    .single()
                    .map(|t| t.with_timezone(&Utc));
                if let Some(at) = at {
                    if !blocked && at > now && !booked.contains(&at) {
                        slots.push(Slot {
                            start: at,
                            end: at + step,
                            local: format!("{} {}", day, start.format("%H:%M")),
                        });
                    }
                }
                start = end;
            }
        }
        day = match day.succ_opt() {
            Some(d) => d,
            None => break,
        };
    }
    slots.sort_by_key(|s| s.start);
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn monday_mornings() -> Availability {
        Availability {
            id: 1,
            clinician_id: 7,
            weekday: 1,
            start_time: t(9, 0),
            end_time: t(10, 30),
            slot_minutes: 30,
            valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            valid_to: None,
        }
    }

    #[test]
    fn a_weekly_rule_gives_slots_in_china_time() {
        let monday = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let long_ago = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        let slots = free_slots(
            &[monday_mornings()],
            &[],
            &[],
            monday,
            monday + TimeDelta::days(6),
            long_ago,
        );
        let local: Vec<&str> = slots.iter().map(|s| s.local.as_str()).collect();
        assert_eq!(
            local,
            ["2026-11-23 09:00", "2026-11-23 09:30", "2026-11-23 10:00"]
        );
        assert_eq!(
            slots[0].start.to_rfc3339(),
            "2026-11-23T01:00:00+00:00",
            "09:00 in China is 01:00 UTC"
        );
    }

    #[test]
    fn exceptions_bookings_and_the_past_take_slots_away() {
        let monday = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let rule = monday_mornings();
        let long_ago = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
        let all = free_slots(
            std::slice::from_ref(&rule),
            &[],
            &[],
            monday,
            monday,
            long_ago,
        );
        let booked = [all[0].start];
        let partial = AvailabilityException {
            id: 1,
            clinician_id: 7,
            day: monday,
            start_time: Some(t(10, 15)),
            end_time: Some(t(11, 0)),
            reason: "meeting".into(),
        };
        let partial_clone = partial.clone();
        let left = free_slots(
            std::slice::from_ref(&rule),
            &[partial],
            &booked,
            monday,
            monday,
            long_ago,
        );
        assert_eq!(
            left.iter().map(|s| s.local.as_str()).collect::<Vec<_>>(),
            ["2026-11-23 09:30"]
        );
        let whole_day = AvailabilityException {
            start_time: None,
            end_time: None,
            ..partial_clone
        };
        assert!(
            free_slots(
                std::slice::from_ref(&rule),
                &[whole_day],
                &[],
                monday,
                monday,
                long_ago
            )
            .is_empty()
        );
        assert!(
            free_slots(&[rule], &[], &[], monday, monday, all[2].start).is_empty(),
            "past slots are gone"
        );
    }
}
