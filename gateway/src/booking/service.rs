//! The booking operations. Each checks the caller's institution and role, applies the
//! program rules, changes the store in one transaction and writes the audit log. Every
//! refusal names its rule.

use super::request::OpinionStatus;
use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::request::{
    ConsultRequest, Opinion, RequestContent, RequestEvent, RequestKind, RequestOrder, RequestState,
    Urgency,
};
use super::slots::{Slot, china, free_slots};
use super::workflow::{Side, Step};
use crate::config::BookingConfig;
use crate::domain::{Clinician, Role, Service, Supporter, TitleRank, User};
use crate::registry::{LinkKind, supporter_chain};
use crate::rules::{Error, Rule};
use crate::store::{
    AuditEntry, AuditFilter, NewRequest, OpinionChange, PairingFilter, RequestFilter,
    RequestUpdate, StepRecord, Store, StoreError,
};

/// A new draft.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequestInput {
    /// What is asked for.
    pub kind: RequestKind,
    /// Urgency (normal when left out).
    #[serde(default = "normal")]
    pub urgency: Urgency,
    /// Whom the requester means to ask; refused unless it is the designated supporter.
    /// Left out, the request goes to the designated supporter.
    pub addressed_to: Option<Supporter>,
    /// What is known so far.
    #[serde(default)]
    pub content: RequestContent,
}

fn normal() -> Urgency {
    Urgency::Normal
}

/// A workflow step with what it needs.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    /// The version the caller saw; refused with 409 if the request changed since.
    pub version: Option<i32>,
    /// Accept: the consultant assigned.
    pub consultant_id: Option<i64>,
    /// Decline: a reason code such as `no_specialist`, `out_of_scope`, `incomplete`.
    pub reason_code: Option<String>,
    /// Decline: the reason in words.
    pub reason_text: Option<String>,
    /// Schedule: the start of one of the consultant's free slots, inside the window.
    pub start: Option<DateTime<Utc>>,
}

/// A request as its reader sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    /// The request.
    #[serde(flatten)]
    pub request: ConsultRequest,
    /// Whether the accept-or-decline deadline has passed.
    pub overdue: bool,
    /// When overdue: the supporter's qualified consultants it is offered to.
    pub offered_to: Vec<i64>,
    /// Every step, with actor and time.
    pub events: Vec<RequestEvent>,
    /// The session start as shown in China (`YYYY-MM-DD HH:MM`, UTC+8); times are
    /// stored and sent in UTC.
    pub scheduled_local: Option<String>,
}

/// How the caller stands to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Of the requesting institution.
    Requester,
    /// Of the supporting institution.
    Supporter,
}

const READERS: [Role; 3] = [Role::Clinician, Role::Coordinator, Role::Radiologist];

async fn audit(
    store: &Store,
    caller: &User,
    action: &str,
    id: Option<i64>,
    allowed: bool,
    detail: Option<String>,
) -> Result<(), Error> {
    crate::audit::record(store, caller, "request", action, id, allowed, detail).await
}

/// Refuses, and records the refusal, unless the caller may see `r`.
async fn access(
    store: &Store,
    caller: &User,
    r: &ConsultRequest,
    action: &str,
) -> Result<Access, Error> {
    let side = if caller.institution_id == r.requester_institution_id {
        Some(Access::Requester)
    } else if caller.institution_id == r.supporter_institution_id && r.state != RequestState::Draft
    {
        Some(Access::Supporter)
    } else {
        None
    };
    match side {
        Some(side) if READERS.iter().any(|role| caller.is(*role)) => Ok(side),
        _ => {
            audit(
                store,
                caller,
                action,
                Some(r.id),
                false,
                Some("not a clinician of either institution".into()),
            )
            .await?;
            Err(Error::refused(
                Rule::WrongInstitution,
                None,
                "only the requesting and the supporting institution's clinicians see a request",
            ))
        }
    }
}

async fn load(store: &Store, id: i64) -> Result<ConsultRequest, Error> {
    store
        .request(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("request {id}")))
}

/// The designated supporter of `institution_id` for `kind` on `at`, or the rule that
/// leaves it without one.
async fn designate(
    store: &Store,
    institution_id: i64,
    kind: RequestKind,
    at: DateTime<Utc>,
) -> Result<(i64, Supporter, i64, String), Error> {
    let china = FixedOffset::east_opt(8 * 3600).expect("a valid offset");
    let date = at.with_timezone(&china).date_naive();
    let chain = supporter_chain(store, institution_id, kind.service(), date).await?;
    if let Some(link) = chain.designated() {
        let supporter = match link.kind {
            LinkKind::Institution => Supporter::Institution(link.id),
            LinkKind::Team => Supporter::Team(link.id),
            LinkKind::Clinician => Supporter::Clinician(link.id),
        };
        let pairing = link
            .pairing_id
            .ok_or_else(|| anyhow::anyhow!("a designated link without pairing"))?;
        return Ok((pairing, supporter, link.institution_id, link.name.clone()));
    }
    // Say which rule leaves it without a supporter.
    let inst = store
        .institution(institution_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("institution {institution_id}")))?;
    let filter = PairingFilter {
        supported_institution: Some((inst.id, inst.region.as_str().to_owned())),
        limit: 1000,
        ..Default::default()
    };
    let pairings = store.pairings(&filter).await?;
    let service = kind.service();
    if pairings.is_empty() {
        return Err(Error::refused(
            Rule::UnpairedSupporter,
            None,
            format!(
                "{} has no designated supporter: no pairing names it or its region",
                inst.name
            ),
        ));
    }
    if let Some(p) = pairings.iter().find(|p| p.services.contains(service)) {
        return Err(Error::refused(
            Rule::OutsidePairingPeriod,
            Some("content.window.start"),
            format!(
                "{date} is outside the pairing period for {service} ({} to {})",
                p.valid_from, p.valid_to
            ),
        ));
    }
    Err(Error::refused(
        Rule::ServiceNotCovered,
        Some("kind"),
        format!("no pairing of {} covers {service}", inst.name),
    ))
}

fn require_clinician(caller: &User) -> Result<(), Error> {
    if caller.is(Role::Clinician) {
        Ok(())
    } else {
        Err(Error::forbidden(
            "only clinicians create and submit requests",
        ))
    }
}

/// Creates a draft addressed to the designated supporter.
pub async fn create_request(
    store: &Store,
    caller: &User,
    input: NewRequestInput,
) -> Result<RequestView, Error> {
    require_clinician(caller)?;
    let at = input
        .content
        .window
        .as_ref()
        .map_or_else(Utc::now, |w| w.start);
    let (pairing_id, supporter, supporter_institution_id, name) =
        designate(store, caller.institution_id, input.kind, at).await?;
    if let Some(asked) = input.addressed_to {
        if asked != supporter {
            return Err(Error::refused(
                Rule::NotDesignatedSupporter,
                Some("addressed_to"),
                format!(
                    "requests for {} go to the designated supporter {name} ({} {})",
                    input.kind.service(),
                    kind_name(supporter),
                    supporter_id(supporter)
                ),
            ));
        }
    }
    let institution = store
        .institution(caller.institution_id)
        .await?
        .ok_or_else(|| Error::NotFound("the caller's institution".into()))?;
    check_accompanying(store, caller.institution_id, &input.content).await?;
    let new = NewRequest {
        kind: input.kind,
        requester_user_id: caller.id,
        requester_institution_id: caller.institution_id,
        pairing_id,
        supporter,
        supporter_institution_id,
        urgency: input.urgency,
        remote: institution.remote,
        content: serde_json::to_string(&input.content).map_err(anyhow::Error::from)?,
    };
    let step = StepRecord {
        from: None,
        to: RequestState::Draft,
        actor: Some(caller.id),
        at: store.now(),
        note: None,
    };
    let id = store.create_request(&new, &step).await?;
    audit(store, caller, "create", Some(id), true, None).await?;
    view(store, load(store, id).await?).await
}

/// Refuses an accompanying clinician who is neither of the requesting institution nor of
/// one paired with it for consultations, in either direction.
async fn check_accompanying(
    store: &Store,
    requester_institution_id: i64,
    content: &RequestContent,
) -> Result<(), Error> {
    let Some(id) = content.accompanying_clinician_id else {
        return Ok(());
    };
    let field = "accompanying_clinician_id";
    let clinician = store
        .clinician(id)
        .await?
        .ok_or_else(|| Error::field(field, format!("no clinician has id {id}")))?;
    let theirs = clinician.institution_id;
    if theirs == requester_institution_id {
        return Ok(());
    }
    let today = crate::registry::today_in_china();
    let links = |chain: crate::registry::SupporterChain, other: i64| {
        chain.chain.iter().any(|l| l.institution_id == other)
    };
    if links(
        supporter_chain(store, theirs, Service::Consult, today).await?,
        requester_institution_id,
    ) || links(
        supporter_chain(store, requester_institution_id, Service::Consult, today).await?,
        theirs,
    ) {
        return Ok(());
    }
    Err(Error::field(
        field,
        "the accompanying clinician works at the requesting institution or one paired with it",
    ))
}

fn kind_name(s: Supporter) -> &'static str {
    match s {
        Supporter::Institution(_) => "institution",
        Supporter::Team(_) => "team",
        Supporter::Clinician(_) => "clinician",
    }
}

fn supporter_id(s: Supporter) -> i64 {
    match s {
        Supporter::Institution(id) | Supporter::Team(id) | Supporter::Clinician(id) => id,
    }
}

/// Changes the content of a draft.
pub async fn update_draft(
    store: &Store,
    caller: &User,
    id: i64,
    version: Option<i32>,
    urgency: Option<Urgency>,
    content: RequestContent,
) -> Result<RequestView, Error> {
    let r = load(store, id).await?;
    let side = access(store, caller, &r, "update").await?;
    if side != Access::Requester || !caller.is(Role::Clinician) {
        return Err(Error::forbidden(
            "only the requesting institution's clinicians edit a request",
        ));
    }
    if r.state != RequestState::Draft {
        return Err(out_of_order(format!(
            "a request that is {} no longer changes",
            r.state
        )));
    }
    let mut merged = r.content.clone();
    merged.merge(content);
    check_accompanying(store, r.requester_institution_id, &merged).await?;
    let update = RequestUpdate {
        at: store.now(),
        content: Some(serde_json::to_string(&merged).map_err(anyhow::Error::from)?),
        urgency,
        ..Default::default()
    };
    store
        .update_request(id, version.unwrap_or(r.version), &update, None, None)
        .await?;
    audit(store, caller, "update", Some(id), true, None).await?;
    view(store, load(store, id).await?).await
}

/// The webhook notices of a state change, one per institution; no patient data.
pub fn notices(
    request_id: i64,
    version: i32,
    event: &str,
    at: DateTime<Utc>,
    institutions: [i64; 2],
) -> Vec<crate::store::OutboxMessage> {
    let payload =
        serde_json::json!({"event": event, "request_id": request_id, "at": at}).to_string();
    let mut seen = Vec::new();
    institutions
        .into_iter()
        .filter(|i| {
            let first = !seen.contains(i);
            seen.push(*i);
            first
        })
        .map(|institution_id| crate::store::OutboxMessage {
            institution_id,
            event: event.to_owned(),
            payload: payload.clone(),
            dedupe_key: Some(format!(
                "request:{request_id}:{event}:v{version}:to{institution_id}"
            )),
        })
        .collect()
}

fn out_of_order(detail: String) -> Error {
    Error::refused(Rule::StepOutOfOrder, None, detail)
}

/// Whether `c` may be the consultant: licensed, three years of independent practice, and
/// the requested title or higher (national remote-medicine rules).
fn qualification_gaps(c: &Clinician, min_title: Option<TitleRank>) -> Vec<String> {
    let mut gaps = Vec::new();
    if c.licence_number
        .as_deref()
        .is_none_or(|l| l.trim().is_empty())
    {
        gaps.push(format!("{} has no licence number on record", c.name));
    }
    if c.practice_years.is_none_or(|y| y < 3) {
        gaps.push(format!(
            "{} has fewer than three years of independent practice on record",
            c.name
        ));
    }
    if let Some(min) = min_title {
        if c.title_rank < min {
            gaps.push(format!(
                "{} ranks {}, the request asks for {min} or higher",
                c.name, c.title_rank
            ));
        }
    }
    gaps
}

async fn qualified_consultant(
    store: &Store,
    r: &ConsultRequest,
    consultant_id: i64,
) -> Result<Clinician, Error> {
    let c = store.clinician(consultant_id).await?.ok_or_else(|| {
        Error::field(
            "consultant_id",
            format!("no clinician has id {consultant_id}"),
        )
    })?;
    if c.institution_id != r.supporter_institution_id {
        return Err(Error::refused(
            Rule::ConsultantNotQualified,
            Some("consultant_id"),
            format!("{} does not work at the supporting institution", c.name),
        ));
    }
    let gaps = qualification_gaps(&c, r.content.min_title);
    if !gaps.is_empty() {
        return Err(Error::refused(
            Rule::ConsultantNotQualified,
            Some("consultant_id"),
            gaps.join("; "),
        ));
    }
    Ok(c)
}

/// The submission checks, each a named rule.
fn submission_gaps(content: &RequestContent, now: DateTime<Utc>) -> Result<(), Error> {
    if let Some((field, detail)) = content.gaps(now).into_iter().next() {
        return Err(Error::refused(Rule::IncompleteRequest, Some(field), detail));
    }
    let summary = content.case_summary.clone().unwrap_or_default();
    let thin = summary.gaps();
    if !thin.is_empty() {
        return Err(Error::refused(
            Rule::ThinCaseSummary,
            Some("case_summary"),
            format!(
                "the case summary is too thin for a consultant to prepare: {}",
                thin.join("; ")
            ),
        ));
    }
    let Some(consent) = &content.consent else {
        return Err(Error::refused(
            Rule::MissingConsent,
            Some("consent"),
            "the patient's informed consent is recorded before a request is submitted",
        ));
    };
    if let Some((field, detail)) = consent.gaps(now).into_iter().next() {
        return Err(Error::refused(Rule::MissingConsent, Some(field), detail));
    }
    Ok(())
}

/// What a step changes besides the request's state: fields of the update, the note on
/// the step's record, and what becomes of an opinion.
#[derive(Default)]
struct Change {
    update: RequestUpdate,
    note: Option<String>,
    opinion: Option<OpinionChange>,
}

/// Takes one workflow step: checks that the caller's side takes it and that it follows
/// from the request's state, works out what it changes, and commits that with the step's
/// record, the notices it sends, and the audit.
pub async fn take_step(
    store: &Store,
    config: &BookingConfig,
    caller: &User,
    id: i64,
    step: Step,
    input: StepInput,
) -> Result<RequestView, Error> {
    let r = load(store, id).await?;
    check_side(store, caller, &r, step).await?;
    let to = step.next(r.kind, r.state).map_err(out_of_order)?;
    let now = store.now();
    let mut change = match step {
        Step::Submit => submit(store, config, &r, now).await?,
        Step::Accept => accept(store, &r, input.consultant_id).await?,
        Step::Decline => decline(input.reason_code, input.reason_text)?,
        Step::Schedule => schedule(store, &r, input.start).await?,
        Step::Sign => sign(store, &r).await?,
        Step::Start | Step::Acknowledge | Step::Close | Step::Cancel | Step::Expire => {
            Change::default()
        }
    };
    change.update.at = now;
    change.update.state = Some(to);
    if matches!(
        to,
        RequestState::Submitted
            | RequestState::Accepted
            | RequestState::Declined
            | RequestState::Scheduled
            | RequestState::OpinionSigned
    ) {
        let supporter = change
            .update
            .supporter_institution_id
            .unwrap_or(r.supporter_institution_id);
        change.update.outbox = notices(
            id,
            r.version + 1,
            to.as_str(),
            now,
            [r.requester_institution_id, supporter],
        );
    }
    let record = StepRecord {
        from: Some(r.state),
        to,
        actor: Some(caller.id),
        at: now,
        note: change.note,
    };
    store
        .update_request(
            id,
            input.version.unwrap_or(r.version),
            &change.update,
            Some(&record),
            change.opinion.as_ref(),
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => Error::refused(
                Rule::SlotTaken,
                Some("start"),
                "somebody booked that slot first; choose another",
            ),
            e => e.into(),
        })?;
    audit(store, caller, step.as_str(), Some(id), true, None).await?;
    view(store, load(store, id).await?).await
}

/// Refuses, and audits the refusal, unless the caller is on the side that takes `step`.
async fn check_side(
    store: &Store,
    caller: &User,
    r: &ConsultRequest,
    step: Step,
) -> Result<(), Error> {
    let side = access(store, caller, r, step.as_str()).await?;
    let allowed = match step.side() {
        Side::Requester => side == Access::Requester && caller.is(Role::Clinician),
        Side::Supporter => {
            side == Access::Supporter
                && (caller.is(Role::Clinician) || caller.is(Role::Coordinator))
        }
        Side::Either => caller.is(Role::Clinician) || caller.is(Role::Coordinator),
        Side::Consultant => caller.clinician_id.is_some() && caller.clinician_id == r.consultant_id,
        Side::System => false,
    };
    if allowed {
        return Ok(());
    }
    audit(
        store,
        caller,
        step.as_str(),
        Some(r.id),
        false,
        Some("wrong side or role for this step".into()),
    )
    .await?;
    Err(Error::refused(
        Rule::WrongInstitution,
        None,
        format!("this step is taken by the {:?} side", step.side()).to_lowercase(),
    ))
}

/// Submission: the request holds what the rules ask for (a scanned consent among its
/// attachments, if it names one), goes to the designated supporter of the window's first
/// day, and must be decided within the hours its urgency allows.
async fn submit(
    store: &Store,
    config: &BookingConfig,
    r: &ConsultRequest,
    now: DateTime<Utc>,
) -> Result<Change, Error> {
    submission_gaps(&r.content, now)?;
    if let Some(scan) = r
        .content
        .consent
        .as_ref()
        .and_then(|c| c.scan_sha256.as_deref())
    {
        if !store
            .attachments(r.id)
            .await?
            .iter()
            .any(|a| a.sha256 == scan)
        {
            return Err(Error::refused(
                Rule::MissingConsent,
                Some("consent.scan_sha256"),
                "attach the scanned consent first: no attachment has that checksum",
            ));
        }
    }
    let window = r
        .content
        .window
        .as_ref()
        .expect("checked by submission_gaps");
    let (pairing, supporter, institution, _) =
        designate(store, r.requester_institution_id, r.kind, window.start).await?;
    let hours = match r.urgency {
        Urgency::Urgent => config.decision_hours_urgent,
        Urgency::Normal => config.decision_hours_normal,
    };
    Ok(Change {
        update: RequestUpdate {
            pairing_id: Some(pairing),
            supporter: Some(supporter),
            supporter_institution_id: Some(institution),
            submitted_at: Some(now),
            decision_due_at: Some(now + TimeDelta::hours(hours)),
            ..Default::default()
        },
        ..Change::default()
    })
}

/// Acceptance assigns a consultant who qualifies for the request.
async fn accept(
    store: &Store,
    r: &ConsultRequest,
    consultant: Option<i64>,
) -> Result<Change, Error> {
    let consultant = consultant
        .ok_or_else(|| Error::field("consultant_id", "accepting assigns a consultant"))?;
    let c = qualified_consultant(store, r, consultant).await?;
    Ok(Change {
        update: RequestUpdate {
            consultant_id: Some(c.id),
            ..Default::default()
        },
        note: Some(format!("consultant {}", c.id)),
        ..Change::default()
    })
}

/// A decline gives a reason code and explains itself in words.
fn decline(code: Option<String>, text: Option<String>) -> Result<Change, Error> {
    let code = code
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| Error::field("reason_code", "a decline gives a reason code"))?;
    let text = text
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| Error::field("reason_text", "a decline explains itself in words"))?;
    Ok(Change {
        note: Some(format!("declined: {code}")),
        update: RequestUpdate {
            decline_code: Some(code),
            decline_text: Some(text),
            ..Default::default()
        },
        ..Change::default()
    })
}

/// Scheduling books one of the consultant's free slots inside the proposed window.
async fn schedule(
    store: &Store,
    r: &ConsultRequest,
    start: Option<DateTime<Utc>>,
) -> Result<Change, Error> {
    let start = start
        .ok_or_else(|| Error::field("start", "the start of one of the consultant's free slots"))?;
    let consultant = r
        .consultant_id
        .ok_or_else(|| anyhow::anyhow!("an accepted request without consultant"))?;
    let window = r
        .content
        .window
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("a submitted request without window"))?;
    let day = start.with_timezone(&china()).date_naive();
    let slot = free_slots_of(store, consultant, day, day)
        .await?
        .into_iter()
        .find(|s| s.start == start)
        .ok_or_else(|| {
            Error::refused(
                Rule::SlotNotFree,
                Some("start"),
                "that time is not one of the consultant's free slots; see GET /clinicians/{id}/slots",
            )
        })?;
    if slot.start < window.start || slot.end > window.end {
        return Err(Error::field(
            "start",
            "the slot lies outside the proposed window",
        ));
    }
    Ok(Change {
        update: RequestUpdate {
            scheduled_start: Some(slot.start),
            scheduled_end: Some(slot.end),
            book_slot: Some((consultant, slot.start, slot.end)),
            ..Default::default()
        },
        note: Some(format!("slot {}", slot.local)),
        ..Change::default()
    })
}

/// Signing signs the draft opinion; the consultant must still qualify (national rules:
/// the consultant qualifies when the opinion is given, not only when assigned).
async fn sign(store: &Store, r: &ConsultRequest) -> Result<Change, Error> {
    let consultant = r
        .consultant_id
        .ok_or_else(|| anyhow::anyhow!("signing without consultant"))?;
    qualified_consultant(store, r, consultant).await?;
    let draft = store
        .opinions(r.id)
        .await?
        .into_iter()
        .find(|o| o.status == OpinionStatus::Draft)
        .ok_or_else(|| out_of_order("there is no draft opinion to sign".into()))?;
    Ok(Change {
        note: Some(format!("opinion version {}", draft.version)),
        opinion: Some(OpinionChange::Sign {
            opinion_id: draft.id,
        }),
        ..Change::default()
    })
}

/// A consultant's free slots between two China dates.
pub async fn free_slots_of(
    store: &Store,
    clinician_id: i64,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<Slot>, Error> {
    let rules = store.availability(clinician_id).await?;
    let exceptions = store
        .availability_exceptions(clinician_id, from, to)
        .await?;
    let utc = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(china()).single())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| anyhow::anyhow!("a date without midnight"))
    };
    let end = to
        .succ_opt()
        .ok_or_else(|| Error::field("to", "too far in the future"))?;
    let booked = store
        .booked_slots(clinician_id, utc(from)?, utc(end)?)
        .await?;
    Ok(free_slots(
        &rules,
        &exceptions,
        &booked,
        from,
        to,
        store.now(),
    ))
}

/// Expires submitted or accepted requests whose proposed window has ended without a
/// scheduled session, notifying both institutions. Returns how many expired.
pub async fn expire_due(store: &Store) -> Result<usize, Error> {
    let now = store.now();
    let filter = RequestFilter {
        states: Some(vec![RequestState::Submitted, RequestState::Accepted]),
        limit: 1000,
        ..Default::default()
    };
    let mut expired = 0;
    for r in store.requests(&filter).await? {
        if r.content.window.as_ref().is_none_or(|w| w.end > now) {
            continue;
        }
        let update = RequestUpdate {
            at: now,
            state: Some(RequestState::Expired),
            outbox: notices(
                r.id,
                r.version + 1,
                "expired",
                now,
                [r.requester_institution_id, r.supporter_institution_id],
            ),
            ..Default::default()
        };
        let record = StepRecord {
            from: Some(r.state),
            to: RequestState::Expired,
            actor: None,
            at: now,
            note: None,
        };
        match store
            .update_request(r.id, r.version, &update, Some(&record), None)
            .await
        {
            Ok(()) => expired += 1,
            // Somebody acted on it meanwhile; the next pass looks again.
            Err(StoreError::Stale(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(expired)
}

/// Writes the consultant's draft opinion (a first opinion, or an amendment of the latest
/// signed one).
pub async fn save_opinion(
    store: &Store,
    caller: &User,
    id: i64,
    body: String,
) -> Result<Vec<Opinion>, Error> {
    let r = load(store, id).await?;
    access(store, caller, &r, "write_opinion").await?;
    if caller.clinician_id.is_none() || caller.clinician_id != r.consultant_id {
        audit(
            store,
            caller,
            "write_opinion",
            Some(id),
            false,
            Some("not the assigned consultant".into()),
        )
        .await?;
        return Err(Error::forbidden(
            "only the assigned consultant writes the opinion",
        ));
    }
    use RequestState::*;
    let writable = match r.state {
        InSession | OpinionSigned | Acknowledged => true,
        Accepted | Scheduled => r.kind != RequestKind::Consultation,
        _ => false,
    };
    if !writable {
        return Err(out_of_order(format!(
            "no opinion is written while the request is {}",
            r.state
        )));
    }
    if body.trim().chars().count() < 10 {
        return Err(Error::field(
            "body",
            "an opinion says something: at least 10 characters",
        ));
    }
    let amends_id = store
        .opinions(id)
        .await?
        .into_iter()
        .rev()
        .find(|o| o.status == OpinionStatus::Signed)
        .map(|o| o.id);
    let change = OpinionChange::Draft {
        consultant_id: r.consultant_id.unwrap_or_default(),
        author: caller.id,
        body,
        amends_id,
    };
    store
        .update_request(
            id,
            r.version,
            &RequestUpdate {
                at: store.now(),
                ..Default::default()
            },
            None,
            Some(&change),
        )
        .await?;
    audit(store, caller, "write_opinion", Some(id), true, None).await?;
    opinions(store, caller, id).await
}

/// The opinions the caller may see: the requester never sees drafts.
pub async fn opinions(store: &Store, caller: &User, id: i64) -> Result<Vec<Opinion>, Error> {
    let r = load(store, id).await?;
    let side = access(store, caller, &r, "read_opinions").await?;
    audit(store, caller, "read_opinions", Some(id), true, None).await?;
    let all = store.opinions(id).await?;
    Ok(match side {
        Access::Requester => all
            .into_iter()
            .filter(|o| o.status == OpinionStatus::Signed)
            .collect(),
        Access::Supporter => all,
    })
}

async fn view(store: &Store, r: ConsultRequest) -> Result<RequestView, Error> {
    let now = store.now();
    let overdue = r.overdue(now);
    let offered_to = if overdue {
        let staff = store
            .clinicians(&crate::store::ClinicianFilter {
                institution_id: Some(r.supporter_institution_id),
                limit: 1000,
                ..Default::default()
            })
            .await?;
        staff
            .iter()
            .filter(|c| qualification_gaps(c, r.content.min_title).is_empty())
            .map(|c| c.id)
            .collect()
    } else {
        Vec::new()
    };
    let events = store.request_events(r.id).await?;
    let scheduled_local = r.scheduled_start.map(|t| {
        t.with_timezone(&china())
            .format("%Y-%m-%d %H:%M")
            .to_string()
    });
    Ok(RequestView {
        request: r,
        overdue,
        offered_to,
        events,
        scheduled_local,
    })
}

/// Loads a request for `caller`, refusing (and auditing the refusal) unless they are of
/// one of its two institutions; the allowed access is audited as `action`.
pub async fn open_request(
    store: &Store,
    caller: &User,
    id: i64,
    action: &str,
) -> Result<(ConsultRequest, Access), Error> {
    let r = load(store, id).await?;
    let side = access(store, caller, &r, action).await?;
    audit(store, caller, action, Some(id), true, None).await?;
    Ok((r, side))
}

/// One request, for either institution's clinicians; the read is audited.
pub async fn request_view(store: &Store, caller: &User, id: i64) -> Result<RequestView, Error> {
    let r = load(store, id).await?;
    access(store, caller, &r, "read").await?;
    audit(store, caller, "read", Some(id), true, None).await?;
    view(store, r).await
}

/// The caller's institution's requests: `inbox` (addressed to it) or `outbox` (made by
/// it), in `order`.
pub async fn list_requests(
    store: &Store,
    caller: &User,
    inbox: bool,
    states: Option<Vec<RequestState>>,
    order: RequestOrder,
    limit: i64,
    offset: i64,
) -> Result<Vec<RequestView>, Error> {
    if !READERS.iter().any(|role| caller.is(*role)) {
        audit(
            store,
            caller,
            "list",
            None,
            false,
            Some("role may not see requests".into()),
        )
        .await?;
        return Err(Error::forbidden(
            "only clinicians, coordinators and radiologists see requests",
        ));
    }
    let filter = RequestFilter {
        requester_institution_id: (!inbox).then_some(caller.institution_id),
        supporter_institution_id: inbox.then_some(caller.institution_id),
        states,
        order,
        limit,
        offset,
    };
    let requests = store.requests(&filter).await?;
    audit(
        store,
        caller,
        "list",
        None,
        true,
        Some(format!("{} requests", requests.len())),
    )
    .await?;
    let mut views = Vec::with_capacity(requests.len());
    for r in requests {
        views.push(view(store, r).await?);
    }
    Ok(views)
}

/// The audit log, for administrators.
pub async fn audit_entries(
    store: &Store,
    caller: &User,
    filter: AuditFilter,
) -> Result<Vec<AuditEntry>, Error> {
    if !caller.is(Role::Admin) {
        return Err(Error::forbidden("only administrators read the audit log"));
    }
    Ok(store.audit_entries(&filter).await?)
}
