//! The request workflow as a pure state machine: which step may follow which state, and
//! which side takes it. draft → submitted → accepted | declined → scheduled → in session →
//! opinion signed → acknowledged → closed; cancelled by the requester before the session.

use super::request::{RequestKind, RequestState};
use crate::domain::named_enum;

named_enum! {
    /// A step of the workflow.
    Step {
        /// The requester sends the completed draft.
        Submit = "submit",
        /// The supporter accepts and assigns a consultant.
        Accept = "accept",
        /// The supporter declines, with a reason code and text.
        Decline = "decline",
        /// The supporter fixes the session time.
        Schedule = "schedule",
        /// Either side opens the session.
        Start = "start",
        /// The consultant signs an opinion.
        Sign = "sign",
        /// The requester acknowledges the latest signed opinion.
        Acknowledge = "acknowledge",
        /// The requester closes the request.
        Close = "close",
        /// The requester withdraws the request.
        Cancel = "cancel",
        /// The window passed unscheduled; taken by duikou, never by a user.
        Expire = "expire",
    }
}

/// Who takes a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A clinician of the requesting institution.
    Requester,
    /// A clinician or coordinator of the supporting institution.
    Supporter,
    /// Either of the above.
    Either,
    /// The assigned consultant.
    Consultant,
    /// duikou itself.
    System,
}

impl Step {
    /// Who may take this step.
    pub fn side(self) -> Side {
        match self {
            Self::Submit | Self::Acknowledge | Self::Close | Self::Cancel => Side::Requester,
            Self::Accept | Self::Decline | Self::Schedule => Side::Supporter,
            Self::Start => Side::Either,
            Self::Sign => Side::Consultant,
            Self::Expire => Side::System,
        }
    }

    /// The state after this step, or why the step does not fit `from`.
    pub fn next(self, kind: RequestKind, from: RequestState) -> Result<RequestState, String> {
        use RequestState::*;
        let to = match (self, from) {
            (Self::Submit, Draft) => Submitted,
            (Self::Accept, Submitted) => Accepted,
            (Self::Decline, Submitted) => Declined,
            (Self::Schedule, Accepted | Scheduled) => Scheduled,
            (Self::Start, Scheduled) => InSession,
            // A consultation's opinion comes out of its session; a read needs none.
            (Self::Sign, InSession) => OpinionSigned,
            (Self::Sign, Accepted | Scheduled) if kind != RequestKind::Consultation => {
                OpinionSigned
            }
            // An amendment is a new signed version; the requester acknowledges it again.
            (Self::Sign, OpinionSigned | Acknowledged) => OpinionSigned,
            (Self::Acknowledge, OpinionSigned) => Acknowledged,
            (Self::Close, Acknowledged) => Closed,
            (Self::Cancel, Draft | Submitted | Accepted | Scheduled) => Cancelled,
            (Self::Expire, Submitted | Accepted) => Expired,
            (step, state) => {
                return Err(format!(
                    "a request that is {state} cannot be {}",
                    step.past()
                ));
            }
        };
        Ok(to)
    }

    fn past(self) -> &'static str {
        match self {
            Self::Submit => "submitted",
            Self::Accept => "accepted",
            Self::Decline => "declined",
            Self::Schedule => "scheduled",
            Self::Start => "started",
            Self::Sign => "signed",
            Self::Acknowledge => "acknowledged",
            Self::Close => "closed",
            Self::Cancel => "cancelled",
            Self::Expire => "expired",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestState::*;

    #[test]
    fn the_consultation_path_runs_from_draft_to_closed() {
        let k = RequestKind::Consultation;
        let mut s = Draft;
        for (step, expected) in [
            (Step::Submit, Submitted),
            (Step::Accept, Accepted),
            (Step::Schedule, Scheduled),
            (Step::Start, InSession),
            (Step::Sign, OpinionSigned),
            (Step::Acknowledge, Acknowledged),
            (Step::Sign, OpinionSigned),
            (Step::Acknowledge, Acknowledged),
            (Step::Close, Closed),
        ] {
            s = step.next(k, s).unwrap();
            assert_eq!(s, expected);
        }
    }

    #[test]
    fn steps_out_of_order_are_refused_with_the_state() {
        let k = RequestKind::Consultation;
        assert_eq!(
            Step::Accept.next(k, Draft).unwrap_err(),
            "a request that is draft cannot be accepted"
        );
        assert!(
            Step::Sign.next(k, Accepted).is_err(),
            "a consultation is signed after its session"
        );
        assert!(
            Step::Sign.next(RequestKind::ImagingRead, Accepted).is_ok(),
            "a read needs no session"
        );
        assert!(Step::Cancel.next(k, InSession).is_err());
        assert!(Step::Submit.next(k, Submitted).is_err());
        for state in RequestState::ALL {
            assert!(Step::Close.next(k, *state).is_ok() == (*state == Acknowledged));
        }
    }
}
