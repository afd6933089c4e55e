//! The steps of a request's workflow, one function each, with the checks of whose turn it
//! is, what submission needs and who may be the consultant; and the expiry of requests left
//! unanswered.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::booking::request::{
    ConsultRequest, OpinionStatus, RequestContent, RequestKind, RequestState, Signer, Urgency,
};
use crate::booking::slots::china;
use crate::booking::workflow::{Side, Step};
use crate::config::BookingConfig;
use crate::domain::{Clinician, QualificationGap, Role, TitleRank, User};
use crate::rules::{Error, Gap, Rule};
use crate::store::{
    Audience, OpinionChange, PersonNotice, RequestFilter, RequestUpdate, StepRecord, Store,
    StoreError,
};
use crate::text::Text;

use super::drafts::designate;
use super::reads::free_slots_of;
use super::{Access, RequestView, access, audit, load, view};

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
    /// Sign: the caller's password, asked again (checked by the HTTP layer, which holds
    /// the password hasher and the login throttle; never logged).
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<crate::config::Secret>,
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

/// The roles that answer a request of `kind` at the supporting institution, besides its
/// coordinators: radiologists read images, clinicians the rest.
pub fn answering_role(kind: RequestKind) -> Role {
    match kind {
        RequestKind::ImagingRead => Role::Radiologist,
        RequestKind::PathologyRead => Role::Pathologist,
        RequestKind::Consultation => Role::Clinician,
    }
}

/// The people told that request `r` went to `to` (version `version`), caused by `actor`:
/// a submitted request reaches the supporting institution's coordinators and those who
/// answer it; the requesting doctor hears of acceptance, refusal, the time fixed, the
/// session begun, the signed opinion and expiry; the assigned consultant of the
/// acceptance and the time.
pub fn people(
    r: &ConsultRequest,
    to: RequestState,
    version: i32,
    supporter_institution_id: i64,
    consultant_id: Option<i64>,
    actor: Option<i64>,
) -> Vec<PersonNotice> {
    let make = |audience: Audience| PersonNotice {
        to: audience,
        event: to.as_str().to_owned(),
        request_id: r.id,
        kind: r.kind.as_str().to_owned(),
        version,
        urgent: r.urgency == Urgency::Urgent,
        except: actor,
    };
    let requester = Audience::User(r.requester_user_id);
    let consultant = consultant_id.map(Audience::Clinician);
    let audiences: Vec<Audience> = match to {
        RequestState::Submitted => vec![Audience::Holders {
            institution_id: supporter_institution_id,
            roles: vec![Role::Coordinator, answering_role(r.kind)],
        }],
        RequestState::Accepted | RequestState::Scheduled => {
            std::iter::once(requester).chain(consultant).collect()
        }
        RequestState::Declined | RequestState::InSession | RequestState::OpinionSigned => {
            vec![requester]
        }
        RequestState::Expired => vec![
            requester,
            Audience::Holders {
                institution_id: supporter_institution_id,
                roles: vec![Role::Coordinator],
            },
        ],
        _ => Vec::new(),
    };
    audiences.into_iter().map(make).collect()
}

pub(super) fn out_of_order(detail: impl Into<Text>) -> Error {
    Error::refused(Rule::StepOutOfOrder, None, detail)
}

/// Why `c` may not be the consultant on `today` (a day in China), in words: licensed,
/// three full years of independent practice, and the requested title or higher (national
/// remote-medicine rules, [`Clinician::qualification_gaps`]).
pub(super) fn qualification_gaps(
    c: &Clinician,
    min_title: Option<TitleRank>,
    today: NaiveDate,
) -> Vec<Text> {
    let name = &c.name;
    c.qualification_gaps(min_title, today)
        .into_iter()
        .map(|gap| match gap {
            QualificationGap::NoLicence => crate::text!(
                "problem.consultant.no_licence",
                "{name} has no licence number on record",
                name = name
            ),
            QualificationGap::UnderThreeYears => crate::text!(
                "problem.consultant.under_three_years",
                "{name} has fewer than three years of independent practice on record",
                name = name
            ),
            QualificationGap::BelowTitle => {
                let rank = c.title_rank;
                let asked = min_title.map_or("", TitleRank::as_str);
                crate::text!(
                    "problem.consultant.below_title",
                    "{name} ranks {rank}, the request asks for {asked} or higher",
                    name = name,
                    rank = rank,
                    asked = asked
                )
                .arg_key("rank_label", format!("title.{rank}"))
                .arg_key("asked_label", format!("title.{asked}"))
            }
        })
        .collect()
}

async fn qualified_consultant(
    store: &Store,
    r: &ConsultRequest,
    consultant_id: i64,
) -> Result<Clinician, Error> {
    let c = store.clinician(consultant_id).await?.ok_or_else(|| {
        Error::field(
            "consultant_id",
            crate::text!(
                "problem.consultant.unknown",
                "no clinician has id {id}",
                id = consultant_id
            ),
        )
    })?;
    if c.institution_id != r.supporter_institution_id {
        return Err(Error::refused(
            Rule::ConsultantNotQualified,
            Some("consultant_id"),
            crate::text!(
                "problem.consultant.elsewhere",
                "{name} does not work at the supporting institution",
                name = &c.name
            ),
        ));
    }
    let today = store.now().with_timezone(&china()).date_naive();
    let gaps = qualification_gaps(&c, r.content.min_title, today);
    if !gaps.is_empty() {
        return Err(Error::refused(
            Rule::ConsultantNotQualified,
            Some("consultant_id"),
            Text::joined(gaps),
        ));
    }
    Ok(c)
}

/// The submission checks, each a named rule; every field that fails one is told at once.
pub(super) fn submission_gaps(content: &RequestContent, now: DateTime<Utc>) -> Result<(), Error> {
    let gap = |rule, field: String, detail| Gap {
        rule,
        field,
        detail,
    };
    let mut gaps: Vec<Gap> = content
        .gaps(now)
        .into_iter()
        .map(|(field, detail)| gap(Rule::IncompleteRequest, field.to_owned(), detail))
        .collect();
    let summary = content.case_summary.clone().unwrap_or_default();
    gaps.extend(summary.gaps().into_iter().map(|(part, detail)| {
        gap(
            Rule::ThinCaseSummary,
            format!("case_summary.{part}"),
            detail,
        )
    }));
    match &content.consent {
        None => gaps.push(gap(
            Rule::MissingConsent,
            "consent".to_owned(),
            Text::new(
                "problem.consent.missing",
                "the patient's informed consent is recorded before a request is submitted",
            ),
        )),
        Some(consent) => gaps.extend(
            consent
                .gaps(now)
                .into_iter()
                .map(|(field, detail)| gap(Rule::MissingConsent, field.to_owned(), detail)),
        ),
    }
    if gaps.is_empty() {
        Ok(())
    } else {
        Err(Error::Gaps(gaps))
    }
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
    let to = step.next(r.kind, r.state).map_err(|english| {
        out_of_order(
            Text::new("problem.step.out_of_order", english)
                .arg_key("state", format!("state.{}", r.state)),
        )
    })?;
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
    change.update.people = people(
        &r,
        to,
        r.version + 1,
        change
            .update
            .supporter_institution_id
            .unwrap_or(r.supporter_institution_id),
        change.update.consultant_id.or(r.consultant_id),
        Some(caller.id),
    );
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
                Text::new(
                    "problem.slot.taken",
                    "somebody booked that slot first; choose another",
                ),
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
    // Who answers: coordinators, and those whose work the request is (radiologists read
    // images; clinicians, who may read them too, the rest).
    let answers = caller.is(Role::Coordinator)
        || caller.is(Role::Clinician)
        || caller.is(answering_role(r.kind));
    let (right_side, right_role) = match step.side() {
        Side::Requester => (side == Access::Requester, caller.is(Role::Clinician)),
        Side::Supporter => (side == Access::Supporter, answers),
        Side::Either => (true, answers),
        Side::Consultant => (
            side == Access::Supporter,
            caller.clinician_id.is_some() && caller.clinician_id == r.consultant_id,
        ),
        Side::System => (false, false),
    };
    if right_side && right_role {
        return Ok(());
    }
    if right_side {
        audit(
            store,
            caller,
            step.as_str(),
            Some(r.id),
            false,
            Some("wrong role for this step".into()),
        )
        .await?;
        let (who, key) = match step.side() {
            Side::Requester => (
                "the requesting institution's clinicians".to_owned(),
                "problem.role.requester",
            ),
            Side::Consultant => (
                "the consultant assigned to the request".to_owned(),
                "problem.role.consultant",
            ),
            _ => (
                format!(
                    "the supporting institution's coordinators and {}s",
                    answering_role(r.kind).as_str()
                ),
                "problem.role.supporter",
            ),
        };
        return Err(Error::refused(
            Rule::WrongRole,
            None,
            Text::new(key, format!("this step is taken by {who}"))
                .arg_key("role", format!("role.{}", answering_role(r.kind).as_str())),
        ));
    }
    audit(
        store,
        caller,
        step.as_str(),
        Some(r.id),
        false,
        Some("wrong side for this step".into()),
    )
    .await?;
    Err(Error::refused(
        Rule::WrongInstitution,
        None,
        Text::new(
            "problem.side.wrong",
            format!("this step is taken by the {:?} side", step.side()).to_lowercase(),
        ),
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
    super::studies::check_study_patient(store, r.requester_institution_id, &r.content).await?;
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
                Text::new(
                    "problem.consent.scan_unattached",
                    "attach the scanned consent first: no attachment has that checksum",
                ),
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
    let consultant = consultant.ok_or_else(|| {
        Error::field(
            "consultant_id",
            Text::new(
                "problem.accept.consultant",
                "accepting assigns a consultant",
            ),
        )
    })?;
    let c = qualified_consultant(store, r, consultant).await?;
    // The consultant answers in the role the kind asks for: radiologists read images.
    let role = answering_role(r.kind);
    let accounts = store.users(Some(c.institution_id)).await?;
    if !super::consultants::answers_as(&accounts, &c, role) {
        return Err(Error::refused(
            Rule::ConsultantNotQualified,
            Some("consultant_id"),
            crate::text!(
                "problem.consultant.role",
                "{name} is not a {role}, who answer this kind of request",
                name = &c.name,
                role = role.as_str()
            )
            .arg_key("role", format!("role.{}", role.as_str())),
        ));
    }
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
    let code = code.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
        Error::field(
            "reason_code",
            Text::new("problem.decline.code", "a decline gives a reason code"),
        )
    })?;
    let text = text.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
        Error::field(
            "reason_text",
            Text::new("problem.decline.text", "a decline explains itself in words"),
        )
    })?;
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
    let start = start.ok_or_else(|| {
        Error::field(
            "start",
            Text::new(
                "problem.schedule.start",
                "the start of one of the consultant's free slots",
            ),
        )
    })?;
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
                Text::new(
                    "problem.slot.not_free",
                    "that time is not one of the consultant's free slots; see GET /clinicians/{id}/slots",
                ),
            )
        })?;
    if slot.start < window.start || slot.end > window.end {
        return Err(Error::field(
            "start",
            Text::new(
                "problem.schedule.outside_window",
                "the slot lies outside the proposed window",
            ),
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
    let c = qualified_consultant(store, r, consultant).await?;
    let signer = signer_of(store, &c).await?;
    let draft = store
        .opinions(r.id)
        .await?
        .into_iter()
        .find(|o| o.status == OpinionStatus::Draft)
        .ok_or_else(|| out_of_order("there is no draft opinion to sign"))?;
    Ok(Change {
        note: Some(format!("opinion version {}", draft.version)),
        opinion: Some(OpinionChange::Sign {
            opinion_id: draft.id,
            signer,
        }),
        ..Change::default()
    })
}

/// Clinician `c` as a signer: name, title and institution as they stand now.
pub(super) async fn signer_of(store: &Store, c: &Clinician) -> Result<Signer, Error> {
    let institution = store
        .institution(c.institution_id)
        .await?
        .map(|i| i.name)
        .unwrap_or_default();
    Ok(Signer {
        name: c.name.clone(),
        title: c.title.clone(),
        institution,
    })
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
            people: people(
                &r,
                RequestState::Expired,
                r.version + 1,
                r.supporter_institution_id,
                r.consultant_id,
                None,
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
