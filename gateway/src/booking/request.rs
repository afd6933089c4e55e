//! A remote consultation or read request and what the requester fills in.
//!
//! The 2018 national specification for remote medical services (as commonly summarised,
//! DESIGN.md "Rules"): a request carries at least the reason, purpose, proposed time, case
//! summary, and the specialty and minimum title of the doctor asked for, and the patient's
//! informed consent is recorded first.

use chrono::{DateTime, NaiveDate, Utc};
use duikou_imaging::Uid;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Service, Sex, TitleRank, named_enum};
use crate::text::Text;

named_enum! {
    /// Where an opinion stands.
    OpinionStatus {
        /// Being written by the consultant; only the consultant's side sees it.
        Draft = "draft",
        /// Signed: it never changes; an amendment is a new version.
        Signed = "signed",
    }
}

named_enum! {
    /// What is asked for.
    RequestKind {
        /// 远程会诊: a consultation in a video session.
        Consultation = "consultation",
        /// 远程医学影像诊断: an imaging read.
        ImagingRead = "imaging_read",
        /// 远程病理诊断: a pathology read.
        PathologyRead = "pathology_read",
    }
}

impl RequestKind {
    /// The pairing service that must cover it.
    pub fn service(self) -> Service {
        match self {
            Self::Consultation => Service::Consult,
            Self::ImagingRead => Service::ImagingRead,
            Self::PathologyRead => Service::PathologyRead,
        }
    }
}

named_enum! {
    /// How soon an answer is needed.
    Urgency {
        /// Within the normal deadline (24 h to accept or decline by default).
        Normal = "normal",
        /// Urgent (2 h by default); served first.
        Urgent = "urgent",
    }
}

named_enum! {
    /// Where a request is in its workflow.
    RequestState {
        /// Being written; only the requesting institution sees it.
        Draft = "draft",
        /// Sent to the supporter, awaiting acceptance.
        Submitted = "submitted",
        /// Accepted, a consultant assigned.
        Accepted = "accepted",
        /// Declined with a reason.
        Declined = "declined",
        /// A session time is fixed.
        Scheduled = "scheduled",
        /// The session is running.
        InSession = "in_session",
        /// The consultant signed an opinion.
        OpinionSigned = "opinion_signed",
        /// The requester acknowledged the latest signed opinion.
        Acknowledged = "acknowledged",
        /// Done.
        Closed = "closed",
        /// Withdrawn by the requester.
        Cancelled = "cancelled",
        /// The proposed window passed before a session was scheduled.
        Expired = "expired",
    }
}

named_enum! {
    /// The order a list of requests comes in.
    #[derive(Default)]
    RequestOrder {
        /// The order consultants' time is given: urgent first, then remote institutions
        /// (`000`: remote stations are served first), then first come.
        #[default]
        Priority = "priority",
        /// Newest first: by submission, or creation for drafts, then id. The supporter sees
        /// what was sent last on top, the requester also the draft begun last.
        Newest = "newest",
    }
}

/// The proposed time window, in UTC (shown in Asia/Shanghai by clients).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Earliest start.
    pub start: DateTime<Utc>,
    /// Latest end.
    pub end: DateTime<Utc>,
}

/// The structured case summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseSummary {
    /// 主诉.
    #[serde(default)]
    pub chief_complaint: String,
    /// 现病史 and relevant past history.
    #[serde(default)]
    pub history: String,
    /// Examination and test findings.
    #[serde(default)]
    pub findings: String,
    /// The question asked of the consultant.
    #[serde(default)]
    pub question: String,
}

/// The least each part of a case summary must say, in characters. A summary of a few
/// words does not let a consultant prepare.
const SUMMARY_MINIMUM: [(&str, usize); 4] = [
    ("chief_complaint", 4),
    ("history", 15),
    ("findings", 15),
    ("question", 8),
];

impl CaseSummary {
    /// The parts that are missing or too short to be useful, as (part, what it needs).
    pub fn gaps(&self) -> Vec<(&'static str, Text)> {
        let parts = [
            &self.chief_complaint,
            &self.history,
            &self.findings,
            &self.question,
        ];
        SUMMARY_MINIMUM
            .iter()
            .zip(parts)
            .filter_map(|((name, min), text)| {
                let n = text.trim().chars().count();
                (n < *min).then(|| {
                    let label = format!("summary.{name}");
                    let text = if n == 0 {
                        crate::text!("problem.summary.missing", "{name} is missing", name = name)
                    } else {
                        crate::text!(
                            "problem.summary.too_short",
                            "{name} has {n} characters, at least {min} are needed",
                            name = name,
                            n = n,
                            min = min
                        )
                    };
                    (*name, text.arg_key("label", label))
                })
            })
            .collect()
    }
}

/// The patient. Visible only to the requesting and the supporting institution.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    /// Name.
    pub name: String,
    /// Sex.
    pub sex: Sex,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Resident identity card number, when known.
    pub id_number: Option<String>,
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Patient data never reaches logs, not even through a stray `{:?}`.
        f.write_str("Patient([redacted])")
    }
}

named_enum! {
    /// Who gave the informed consent.
    ConsentBy {
        /// The patient.
        Patient = "patient",
        /// A guardian, for a minor or a patient who cannot decide.
        Guardian = "guardian",
        /// A close relative.
        Relative = "relative",
    }
}

named_enum! {
    /// How the consent was recorded.
    ConsentMethod {
        /// Signed electronically.
        EConsent = "e_consent",
        /// A signed paper form, scanned and attached.
        Scan = "scan",
    }
}

/// The patient's informed consent to the remote service.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// Who consented.
    pub given_by: ConsentBy,
    /// The guardian's or relative's name.
    pub name: Option<String>,
    /// Their relation to the patient.
    pub relation: Option<String>,
    /// Why the patient did not consent personally.
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// How.
    pub method: ConsentMethod,
    /// For a scan: the SHA-256 of the attached scan.
    pub scan_sha256: Option<String>,
}

impl std::fmt::Debug for Consent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Consent([redacted])")
    }
}

impl Consent {
    /// What is missing for the consent to count, as (field, message).
    pub fn gaps(&self, now: DateTime<Utc>) -> Vec<(&'static str, Text)> {
        let mut gaps = Vec::new();
        let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        if self.given_by != ConsentBy::Patient {
            for (field, value) in [
                ("consent.name", &self.name),
                ("consent.relation", &self.relation),
                ("consent.reason", &self.reason),
            ] {
                if blank(value) {
                    let by = self.given_by;
                    let part = &field[8..];
                    gaps.push((
                        field,
                        crate::text!(
                            "problem.consent.proxy_part",
                            "consent by a {by} needs their {part}",
                            by = by,
                            part = part
                        )
                        .arg_key("who", format!("consent.by.{by}"))
                        .arg_key("label", field),
                    ));
                }
            }
        }
        if self.at > now {
            gaps.push((
                "consent.at",
                Text::new(
                    "problem.consent.future",
                    "consent cannot be dated in the future",
                ),
            ));
        }
        if self.method == ConsentMethod::Scan && blank(&self.scan_sha256) {
            gaps.push((
                "consent.scan_sha256",
                Text::new(
                    "problem.consent.scan_missing",
                    "a scanned consent needs its attachment's checksum",
                ),
            ));
        }
        gaps
    }
}

/// What the requester fills in; every part may be missing in a draft.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestContent {
    /// Why a remote service is needed.
    pub reason: Option<String>,
    /// What the requester wants from it.
    pub purpose: Option<String>,
    /// Proposed time window.
    pub window: Option<Window>,
    /// Case summary.
    pub case_summary: Option<CaseSummary>,
    /// Specialty asked for.
    pub specialty: Option<String>,
    /// Minimum title rank of the consultant.
    pub min_title: Option<TitleRank>,
    /// The patient.
    pub patient: Option<Patient>,
    /// The informed consent.
    pub consent: Option<Consent>,
    /// The clinician who stays with the patient during a consultation (a village doctor
    /// beside the county doctor, say): of the requesting institution or one paired with
    /// it. They are let into the consultation's video room.
    pub accompanying_clinician_id: Option<i64>,
    /// For an imaging read: the study to read, by its Study Instance UID …
    pub study_instance_uid: Option<String>,
    /// … or by its accession number.
    pub accession_number: Option<String>,
    /// The requester checked that the study named is of this request's patient although
    /// the study's patient name or ID differs (a name written otherwise, say); without it
    /// such a request is not submitted.
    pub study_patient_confirmed: Option<bool>,
}

impl RequestContent {
    /// Applies the parts given in `update`; parts left out keep their value.
    pub fn merge(&mut self, update: RequestContent) {
        macro_rules! take {
            ($($f:ident),*) => { $(if update.$f.is_some() { self.$f = update.$f; })* };
        }
        take!(
            reason,
            purpose,
            window,
            case_summary,
            specialty,
            min_title,
            patient,
            consent,
            accompanying_clinician_id,
            study_instance_uid,
            accession_number,
            study_patient_confirmed
        );
    }

    /// Everything that stops submission, as (field, message); empty when complete.
    pub fn gaps(&self, now: DateTime<Utc>) -> Vec<(&'static str, Text)> {
        let mut gaps = Vec::new();
        let blank = |s: &Option<String>| s.as_deref().is_none_or(|s| s.trim().is_empty());
        let say = |key, english: &str| Text::new(key, english);
        if blank(&self.reason) {
            gaps.push((
                "reason",
                say(
                    "problem.request.reason",
                    "the reason for the request is missing",
                ),
            ));
        }
        if blank(&self.purpose) {
            gaps.push((
                "purpose",
                say(
                    "problem.request.purpose",
                    "the purpose of the request is missing",
                ),
            ));
        }
        match &self.window {
            None => gaps.push((
                "window",
                say(
                    "problem.request.window",
                    "the proposed time window is missing",
                ),
            )),
            Some(w) if w.end <= w.start => gaps.push((
                "window.end",
                say(
                    "problem.request.window_reversed",
                    "the window ends before it starts",
                ),
            )),
            Some(w) if w.end <= now => gaps.push((
                "window.end",
                say("problem.request.window_past", "the window is in the past"),
            )),
            Some(_) => {}
        }
        if let Some(Err(e)) = self.study_instance_uid.as_deref().map(Uid::parse) {
            gaps.push((
                "study_instance_uid",
                Text::new("problem.request.study_uid", e.to_string()),
            ));
        }
        if self
            .accession_number
            .as_ref()
            .is_some_and(|a| a.trim().is_empty() || a.len() > 16)
        {
            gaps.push((
                "accession_number",
                say(
                    "problem.request.accession",
                    "an accession number of 1 to 16 characters",
                ),
            ));
        }
        if blank(&self.specialty) {
            gaps.push((
                "specialty",
                say(
                    "problem.request.specialty",
                    "the specialty asked for is missing",
                ),
            ));
        }
        if self.min_title.is_none() {
            gaps.push((
                "min_title",
                say(
                    "problem.request.min_title",
                    "the minimum title of the consultant is missing",
                ),
            ));
        }
        if self
            .patient
            .as_ref()
            .is_none_or(|p| p.name.trim().is_empty())
        {
            gaps.push((
                "patient",
                say("problem.request.patient", "the patient is missing"),
            ));
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_of_a_few_words_says_what_is_missing() {
        let thin = CaseSummary {
            chief_complaint: "头痛".into(),
            history: "三天".into(),
            findings: String::new(),
            question: "怎么办？".into(),
        };
        let gaps = thin.gaps();
        assert_eq!(gaps.len(), 4, "{gaps:?}");
        assert!(
            gaps[0]
                .1
                .english()
                .contains("chief_complaint has 2 characters, at least 4")
        );
        assert_eq!(gaps[2].0, "findings");
        assert!(gaps[2].1.english().contains("findings is missing"));
        let full = CaseSummary {
            chief_complaint: "反复头痛三天".into(),
            history: "三天前无明显诱因出现头痛，以双侧颞部为主，伴恶心".into(),
            findings: "血压 168/102 mmHg，神经系统查体未见明显异常".into(),
            question: "是否需要转诊行头颅 CT？".into(),
        };
        assert!(full.gaps().is_empty());
    }

    #[test]
    fn a_study_to_read_is_named_by_a_well_formed_uid() {
        let named = |uid: &str| RequestContent {
            study_instance_uid: Some(uid.into()),
            ..RequestContent::default()
        };
        let gap = |c: RequestContent| {
            c.gaps(Utc::now())
                .into_iter()
                .find(|(field, _)| *field == "study_instance_uid")
        };
        for bad in [
            "",
            "1..2",
            "1.2.03",
            "2.25.abc",
            &format!("1.{}", "2".repeat(64)),
        ] {
            assert!(gap(named(bad)).is_some(), "{bad:?}");
        }
        assert_eq!(gap(named("1.2.840.113619.2.55.3.604688119")), None);
        assert_eq!(gap(RequestContent::default()), None);
    }

    #[test]
    fn consent_by_a_relative_needs_who_and_why() {
        let now = Utc::now();
        let c = Consent {
            given_by: ConsentBy::Relative,
            name: Some("李某".into()),
            relation: None,
            reason: None,
            at: now,
            method: ConsentMethod::EConsent,
            scan_sha256: None,
        };
        let fields: Vec<&str> = c.gaps(now).iter().map(|g| g.0).collect();
        assert_eq!(fields, ["consent.relation", "consent.reason"]);
    }

    #[test]
    fn patient_data_does_not_show_in_debug_output() {
        let p = Patient {
            name: "王小明".into(),
            sex: Sex::Male,
            birth_date: NaiveDate::from_ymd_opt(1950, 1, 1).unwrap(),
            id_number: Some("440781195001011234".into()),
        };
        let content = RequestContent {
            patient: Some(p),
            ..Default::default()
        };
        let shown = format!("{content:?}");
        assert!(
            !shown.contains("王小明") && !shown.contains("440781"),
            "{shown}"
        );
    }
}

/// A request as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsultRequest {
    /// Request id.
    pub id: i64,
    /// What is asked for.
    pub kind: RequestKind,
    /// Where it is in the workflow.
    pub state: RequestState,
    /// Incremented by every change; a change names the version it saw.
    pub version: i32,
    /// The clinician who created it.
    pub requester_user_id: i64,
    /// The requesting (supported) institution.
    pub requester_institution_id: i64,
    /// The pairing that makes the supporter the designated one.
    pub pairing_id: i64,
    /// The designated supporter.
    pub supporter: crate::domain::Supporter,
    /// The institution that answers: the supporter, or the unit of the supporting
    /// clinician or team.
    pub supporter_institution_id: i64,
    /// Urgency.
    pub urgency: Urgency,
    /// Whether the requesting institution is remote (served first).
    pub remote: bool,
    /// What the requester filled in.
    pub content: RequestContent,
    /// The assigned consultant.
    pub consultant_id: Option<i64>,
    /// Why it was declined: a code…
    pub decline_code: Option<String>,
    /// …and words.
    pub decline_text: Option<String>,
    /// Session start.
    pub scheduled_start: Option<DateTime<Utc>>,
    /// Session end.
    pub scheduled_end: Option<DateTime<Utc>>,
    /// When the supporter must have accepted or declined.
    pub decision_due_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Submitted.
    pub submitted_at: Option<DateTime<Utc>>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl ConsultRequest {
    /// Whether the accept-or-decline deadline has passed with no decision.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.state == RequestState::Submitted && self.decision_due_at.is_some_and(|due| due < now)
    }
}

/// One step taken on a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestEvent {
    /// State before; none for creation.
    pub from_state: Option<RequestState>,
    /// State after.
    pub to_state: RequestState,
    /// Who; none when duikou itself took the step (expiry).
    pub actor_user_id: Option<i64>,
    /// When.
    pub at: DateTime<Utc>,
    /// What else happened (reason code, consultant, amendment).
    pub note: Option<String>,
}

/// A version of the consultant's opinion.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Opinion {
    /// Opinion id.
    pub id: i64,
    /// 1 for the first opinion, then one more for each amendment.
    pub version: i32,
    /// The signed version this one amends.
    pub amends_id: Option<i64>,
    /// The consultant.
    pub consultant_id: i64,
    /// The text.
    pub body: String,
    /// Draft or signed; a signed opinion never changes.
    pub status: OpinionStatus,
    /// Written.
    pub created_at: DateTime<Utc>,
    /// Signed.
    pub signed_at: Option<DateTime<Utc>>,
    /// Who signed, as they stood when signing (none for a draft, and for versions
    /// signed before signers were kept, which are shown with the consultant's record).
    pub signer: Option<Signer>,
}

/// The signer of an opinion: the consultant's name, professional title (职称) and
/// institution, kept with the signed version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Signer {
    /// Name.
    pub name: String,
    /// Professional title, as written (主任医师).
    pub title: String,
    /// Institution.
    pub institution: String,
}
