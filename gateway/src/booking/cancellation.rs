//! What teaching sessions and ward rounds share when their organisers change or cancel
//! them: a session that is over or cancelled is left as it is, a session is moved only
//! to a time to come, and a cancellation says why (the people enrolled or on the ward's
//! side read the reason where the session is listed).

use chrono::{DateTime, Utc};

use crate::rules::{Error, Rule};

/// The longest reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Refuses unless a session ending at `ends_at` and cancelled at `cancelled_at` may still
/// be changed or cancelled at `now`.
pub fn still_open(
    cancelled_at: Option<DateTime<Utc>>,
    ends_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    if cancelled_at.is_some() {
        return Err(Error::refused(
            Rule::SessionCancelled,
            None,
            "the session was cancelled",
        ));
    }
    if ends_at <= now {
        return Err(Error::refused(
            Rule::SessionEnded,
            None,
            "the session is over; it stays in the record as it took place",
        ));
    }
    Ok(())
}

/// Refuses a new start (in `field`) that is not after `now`.
pub fn to_come(field: &str, starts_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Error> {
    if starts_at <= now {
        return Err(Error::field(field, "a session is moved to a time to come"));
    }
    Ok(())
}

/// The reason for a cancellation, trimmed: required, at most [`MAX_REASON_CHARS`].
pub fn reason(text: &str) -> Result<&str, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::field("reason", "say why the session is cancelled"));
    }
    if text.chars().count() > MAX_REASON_CHARS {
        return Err(Error::field(
            "reason",
            format!("at most {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn an_ended_or_cancelled_session_is_left_alone() {
        let now = Utc::now();
        let later = now + TimeDelta::hours(1);
        assert!(still_open(None, later, now).is_ok());
        let ended = still_open(None, now, now).unwrap_err();
        assert_eq!(ended.rule(), Some(Rule::SessionEnded));
        let cancelled = still_open(Some(now), later, now).unwrap_err();
        assert_eq!(cancelled.rule(), Some(Rule::SessionCancelled));
    }

    #[test]
    fn a_reason_is_required_and_bounded() {
        assert_eq!(reason("  主讲专家临时出诊 ").unwrap(), "主讲专家临时出诊");
        for bad in ["", "   ", &"因".repeat(MAX_REASON_CHARS + 1)] {
            let e = reason(bad).unwrap_err();
            assert!(
                matches!(e, Error::Invalid { ref field, .. } if field == "reason"),
                "{e}"
            );
        }
        assert!(reason(&"因".repeat(MAX_REASON_CHARS)).is_ok());
    }

    #[test]
    fn a_session_moves_only_to_a_time_to_come() {
        let now = Utc::now();
        assert!(to_come("starts_at", now + TimeDelta::minutes(1), now).is_ok());
        let e = to_come("starts_at", now, now).unwrap_err();
        assert!(matches!(e, Error::Invalid { ref field, .. } if field == "starts_at"));
    }
}
