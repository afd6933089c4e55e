//! What the services (booking, ward rounds, teaching, the registry, imaging access) answer
//! when they do not do what was asked: [`Error`], with the program rule as a [`Rule`] when
//! one refuses. Nothing here knows HTTP; `crate::error` maps it to a status and an RFC 9457
//! problem in one place.

use crate::store::StoreError;
use crate::text::Text;

/// A rule of the program (or of the product's own care for the data) that refuses a
/// request. Its [`Rule::name`] is the problem type clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A request or round goes to someone other than the designated supporter.
    NotDesignatedSupporter,
    /// The requesting institution has no supporter for the service.
    UnpairedSupporter,
    /// The date is outside the pairing's period.
    OutsidePairingPeriod,
    /// The pairing does not cover the service.
    ServiceNotCovered,
    /// A request lacks what the national rules ask for.
    IncompleteRequest,
    /// The case summary is too thin to answer.
    ThinCaseSummary,
    /// No informed consent is on record.
    MissingConsent,
    /// The consultant lacks the title or years of practice the service asks for.
    ConsultantNotQualified,
    /// The slot is not among the consultant's free ones.
    SlotNotFree,
    /// Someone booked the slot first.
    SlotTaken,
    /// The step does not follow from the request's state.
    StepOutOfOrder,
    /// The caller's institution takes no part in this.
    WrongInstitution,
    /// The caller's institution takes part, but not in the role this step needs.
    WrongRole,
    /// The trainee's institution is not paired with the presenter's for teaching.
    NotPairedForTeaching,
    /// The caller is not one of the people the booking names.
    NotAParticipant,
    /// The room is not open at this time.
    OutsideSessionWindow,
    /// The session has not been started.
    SessionNotOpen,
    /// The session has started already.
    SessionStarted,
    /// The session is over: it is no longer changed or cancelled.
    SessionEnded,
    /// The session was cancelled.
    SessionCancelled,
    /// The request has no scheduled session.
    SessionNotScheduled,
    /// An attachment's media type is not one the product keeps.
    UnsupportedAttachmentType,
    /// An attachment is not what its media type says.
    UnsupportedAttachment,
    /// The institution has no imaging destination to forward to.
    NoDestination,
    /// What is attached is not the kind the request asks for.
    KindMismatch,
    /// The attached study is of another patient than the request's, and the request does
    /// not say the difference was checked.
    StudyPatientMismatch,
    /// The supported side already has a pairing in force for the service then.
    AlreadyPaired,
    /// The supporting clinician lacks the title the program dispatches.
    SupporterNotQualified,
    /// A change to an institution would contradict a pairing that stands.
    ContradictsPairing,
    /// A team has fewer or more members than its program's plan says.
    TeamSize,
    /// The name or number is registered already (the field says which).
    AlreadyRegistered,
}

/// What a rule is about, which decides how a client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum About {
    /// The input: change it and try again.
    Input,
    /// The input's media type.
    MediaType,
    /// The state of what the request acts on: it may pass later, or never.
    State,
    /// The caller: someone else may do it.
    Caller,
}

impl Rule {
    /// Every rule.
    pub const ALL: &[Rule] = &[
        Rule::NotDesignatedSupporter,
        Rule::UnpairedSupporter,
        Rule::OutsidePairingPeriod,
        Rule::ServiceNotCovered,
        Rule::IncompleteRequest,
        Rule::ThinCaseSummary,
        Rule::MissingConsent,
        Rule::ConsultantNotQualified,
        Rule::SlotNotFree,
        Rule::SlotTaken,
        Rule::StepOutOfOrder,
        Rule::WrongInstitution,
        Rule::WrongRole,
        Rule::NotPairedForTeaching,
        Rule::NotAParticipant,
        Rule::OutsideSessionWindow,
        Rule::SessionNotOpen,
        Rule::SessionStarted,
        Rule::SessionEnded,
        Rule::SessionCancelled,
        Rule::SessionNotScheduled,
        Rule::UnsupportedAttachmentType,
        Rule::UnsupportedAttachment,
        Rule::NoDestination,
        Rule::KindMismatch,
        Rule::StudyPatientMismatch,
        Rule::AlreadyPaired,
        Rule::SupporterNotQualified,
        Rule::ContradictsPairing,
        Rule::TeamSize,
        Rule::AlreadyRegistered,
    ];

    /// The rule's stable name, the last part of its problem type.
    pub fn name(self) -> &'static str {
        use Rule::*;
        match self {
            NotDesignatedSupporter => "not-designated-supporter",
            UnpairedSupporter => "unpaired-supporter",
            OutsidePairingPeriod => "outside-pairing-period",
            ServiceNotCovered => "service-not-covered",
            IncompleteRequest => "incomplete-request",
            ThinCaseSummary => "thin-case-summary",
            MissingConsent => "missing-consent",
            ConsultantNotQualified => "consultant-not-qualified",
            SlotNotFree => "slot-not-free",
            SlotTaken => "slot-taken",
            StepOutOfOrder => "step-out-of-order",
            WrongInstitution => "wrong-institution",
            WrongRole => "wrong-role",
            NotPairedForTeaching => "not-paired-for-teaching",
            NotAParticipant => "not-a-participant",
            OutsideSessionWindow => "outside-session-window",
            SessionNotOpen => "session-not-open",
            SessionStarted => "session-started",
            SessionEnded => "session-ended",
            SessionCancelled => "session-cancelled",
            SessionNotScheduled => "session-not-scheduled",
            UnsupportedAttachmentType | UnsupportedAttachment => "unsupported-attachment",
            NoDestination => "no-destination",
            KindMismatch => "kind-mismatch",
            StudyPatientMismatch => "study-patient-mismatch",
            AlreadyPaired => "already-paired",
            SupporterNotQualified => "supporter-not-qualified",
            ContradictsPairing => "contradicts-pairing",
            TeamSize => "team-size",
            AlreadyRegistered => "already-registered",
        }
    }

    /// What the rule is about.
    pub fn about(self) -> About {
        use Rule::*;
        match self {
            NotDesignatedSupporter
            | UnpairedSupporter
            | OutsidePairingPeriod
            | ServiceNotCovered
            | IncompleteRequest
            | ThinCaseSummary
            | MissingConsent
            | ConsultantNotQualified
            | UnsupportedAttachment
            | KindMismatch
            | StudyPatientMismatch
            | SupporterNotQualified
            | TeamSize => About::Input,
            UnsupportedAttachmentType => About::MediaType,
            SlotNotFree | SlotTaken | StepOutOfOrder | OutsideSessionWindow | SessionNotOpen
            | SessionStarted | SessionEnded | SessionCancelled | SessionNotScheduled
            | NoDestination | AlreadyPaired | ContradictsPairing | AlreadyRegistered => {
                About::State
            }
            WrongInstitution | WrongRole | NotPairedForTeaching | NotAParticipant => About::Caller,
        }
    }
}

/// Why a service did not do what was asked. Every sentence is a [`Text`], said in the
/// caller's language when the answer is sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field has a bad value, or refers to something that does not exist.
    #[error("{field}: {detail}")]
    Invalid {
        /// The field, as a path such as `supporter.id`.
        field: String,
        /// What is wrong with it.
        detail: Text,
    },
    /// The caller's role or institution does not allow this.
    #[error("{0}")]
    Forbidden(Text),
    /// No such thing, or none the caller may know of.
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(Text),
    /// A rule of the program refuses the request.
    #[error("{detail}")]
    Refused {
        /// The rule.
        rule: Rule,
        /// The field to blame, when there is one.
        field: Option<String>,
        /// What the rule says and what to do.
        detail: Text,
    },
    /// Several fields fail their rules at once (a request short of what submission
    /// needs): every one is told, so that a form marks them all in one go. Never empty.
    #[error("{}", gaps_in_english(.0))]
    Gaps(Vec<Gap>),
    /// Every password check is busy; the caller may try again in a moment.
    #[error("the server is checking too many passwords at once")]
    Busy(#[from] crate::auth::Busy),
    /// The store failed, or found what it keeps broken.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else; the cause is logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// One field that fails a rule.
#[derive(Debug, Clone)]
pub struct Gap {
    /// The rule.
    pub rule: Rule,
    /// The field, as a path such as `case_summary.history`.
    pub field: String,
    /// What it lacks.
    pub detail: Text,
}

/// The gaps as one English sentence.
pub fn gaps_in_english(gaps: &[Gap]) -> String {
    gaps.iter()
        .map(|g| g.detail.english())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// A bad value in `field`.
    pub fn field(field: impl Into<String>, detail: impl Into<Text>) -> Self {
        Self::Invalid {
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// Refusal because of the caller's role or institution.
    pub fn forbidden(detail: impl Into<Text>) -> Self {
        Self::Forbidden(detail.into())
    }

    /// Refusal under `rule`, blaming `field` if given.
    pub fn refused(rule: Rule, field: Option<&str>, detail: impl Into<Text>) -> Self {
        Self::Refused {
            rule,
            field: field.map(str::to_owned),
            detail: detail.into(),
        }
    }

    /// The rule that refused, if one did (the first, of several gaps).
    pub fn rule(&self) -> Option<Rule> {
        match self {
            Self::Refused { rule, .. } => Some(*rule),
            Self::Gaps(gaps) => gaps.first().map(|g| g.rule),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kebab_case_and_only_the_attachment_rules_share_one() {
        let all = Rule::ALL;
        let mut names: Vec<&str> = all.iter().map(|r| r.name()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len() - 1);
    }
}
