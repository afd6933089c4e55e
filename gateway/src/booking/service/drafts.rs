//! Drafts: creating a request for the designated supporter, and changing it while it is a
//! draft.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::booking::request::{RequestContent, RequestKind, RequestState, Urgency};
use crate::config::BookingConfig;
use crate::domain::{Role, Service, Supporter, User};
use crate::registry::{LinkKind, supporter_chain};
use crate::rules::{Error, Rule};
use crate::store::{NewRequest, PairingFilter, RequestUpdate, StepRecord, Store};
use crate::text::Text;

use super::steps::{notices, out_of_order, people, submission_gaps};
use super::studies::check_study_patient;
use super::{Access, RequestView, access, audit, load, require_clinician, view};

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
    /// Submit it at once: the request is created already submitted, in one transaction
    /// with the submission's checks, so that a refused first submission leaves no draft.
    #[serde(default)]
    pub submit: bool,
}

/// Whom a clinician's requests of a kind go to, before they fill anything in.
#[derive(Debug, Serialize, ToSchema)]
pub struct DesignatedSupporter {
    /// The kind asked about.
    pub kind: RequestKind,
    /// The supporter the pairing designates.
    pub supporter: Supporter,
    /// Its name (institution, team or clinician).
    pub name: String,
    /// The institution that answers.
    pub institution_id: i64,
    /// That institution's name.
    pub institution_name: String,
    /// The pairing that designates it.
    pub pairing_id: i64,
    /// First day of the pairing.
    pub valid_from: NaiveDate,
    /// Last day of the pairing.
    pub valid_to: NaiveDate,
}

/// The designated supporter of the caller's institution for `kind` on `at` (today when
/// left out), or the rule that leaves it without one: no pairing
/// (`unpaired-supporter`), none in force then (`outside-pairing-period`), or none
/// covering the service (`service-not-covered`).
pub async fn designated_supporter(
    store: &Store,
    caller: &User,
    kind: RequestKind,
    at: Option<DateTime<Utc>>,
) -> Result<DesignatedSupporter, Error> {
    require_clinician(caller)?;
    let at = at.unwrap_or_else(|| store.now());
    let (pairing_id, supporter, institution_id, name) =
        designate(store, caller.institution_id, kind, at).await?;
    let institution = store
        .institution(institution_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("institution {institution_id}")))?;
    let pairing = store
        .pairing(pairing_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("pairing {pairing_id}")))?;
    Ok(DesignatedSupporter {
        kind,
        supporter,
        name,
        institution_id,
        institution_name: institution.name,
        pairing_id,
        valid_from: pairing.valid_from,
        valid_to: pairing.valid_to,
    })
}

fn normal() -> Urgency {
    Urgency::Normal
}

/// The designated supporter of `institution_id` for `kind` on `at`, or the rule that
/// leaves it without one.
pub(super) async fn designate(
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
            crate::text!(
                "problem.supporter.unpaired",
                "{name} has no designated supporter: no pairing names it or its region",
                name = &inst.name
            ),
        ));
    }
    if let Some(p) = pairings.iter().find(|p| p.services.contains(service)) {
        return Err(Error::refused(
            Rule::OutsidePairingPeriod,
            Some("content.window.start"),
            crate::text!(
                "problem.supporter.outside_period",
                "{date} is outside the pairing period for {service} ({from} to {to})",
                date = date,
                service = service,
                from = p.valid_from,
                to = p.valid_to
            )
            .arg_key("kind_label", format!("kind.{kind}")),
        ));
    }
    Err(Error::refused(
        Rule::ServiceNotCovered,
        Some("kind"),
        crate::text!(
            "problem.supporter.not_covered",
            "no pairing of {name} covers {service}",
            name = &inst.name,
            service = service
        )
        .arg_key("kind_label", format!("kind.{kind}")),
    ))
}

/// Creates a draft addressed to the designated supporter (or with `submit`, a submitted
/// request, due by the default decision hours).
pub async fn create_request(
    store: &Store,
    caller: &User,
    input: NewRequestInput,
) -> Result<RequestView, Error> {
    create_request_with(store, &BookingConfig::default(), caller, input).await
}

/// Creates a draft addressed to the designated supporter, or with `submit`, a submitted
/// request: then every check of submission runs first, and the draft and its submission
/// are one transaction, so that a refused first submission leaves nothing behind.
pub async fn create_request_with(
    store: &Store,
    config: &BookingConfig,
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
                crate::text!(
                    "problem.supporter.not_designated",
                    "requests for {service} go to the designated supporter {name} ({which} {id})",
                    service = input.kind.service(),
                    name = &name,
                    which = kind_name(supporter),
                    id = supporter_id(supporter)
                ),
            ));
        }
    }
    let institution = store
        .institution(caller.institution_id)
        .await?
        .ok_or_else(|| Error::NotFound("the caller's institution".into()))?;
    check_accompanying(store, caller.institution_id, &input.content).await?;
    let now = store.now();
    if input.submit {
        submission_gaps(&input.content, now)?;
        check_study_patient(store, caller.institution_id, &input.content).await?;
        if input
            .content
            .consent
            .as_ref()
            .is_some_and(|c| c.scan_sha256.is_some())
        {
            // A scan is attached to a request that exists: save the draft, attach, submit.
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
        at: now,
        note: None,
    };
    if !input.submit {
        let id = store.create_request(&new, &step).await?;
        audit(store, caller, "create", Some(id), true, None).await?;
        return view(store, load(store, id).await?).await;
    }
    let hours = match input.urgency {
        Urgency::Urgent => config.decision_hours_urgent,
        Urgency::Normal => config.decision_hours_normal,
    };
    let submitted = RequestState::Submitted;
    let submission = |created: &crate::booking::ConsultRequest| {
        let update = RequestUpdate {
            at: now,
            state: Some(submitted),
            submitted_at: Some(now),
            decision_due_at: Some(now + TimeDelta::hours(hours)),
            outbox: notices(
                created.id,
                created.version + 1,
                submitted.as_str(),
                now,
                [created.requester_institution_id, supporter_institution_id],
            ),
            people: people(
                created,
                submitted,
                created.version + 1,
                supporter_institution_id,
                None,
                Some(caller.id),
            ),
            ..Default::default()
        };
        let record = StepRecord {
            from: Some(RequestState::Draft),
            to: submitted,
            actor: Some(caller.id),
            at: now,
            note: None,
        };
        (update, record)
    };
    let id = store
        .create_submitted_request(&new, &step, &submission)
        .await?;
    audit(store, caller, "create", Some(id), true, None).await?;
    audit(store, caller, "submit", Some(id), true, None).await?;
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
    let clinician = store.clinician(id).await?.ok_or_else(|| {
        Error::field(
            field,
            crate::text!(
                "problem.consultant.unknown",
                "no clinician has id {id}",
                id = id
            ),
        )
    })?;
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
        Text::new(
            "problem.request.accompanying",
            "the accompanying clinician works at the requesting institution or one paired with it",
        ),
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
        return Err(Error::forbidden(crate::text::Text::new(
            "problem.draft.not_yours",
            "only the requesting institution's clinicians edit a request",
        )));
    }
    if r.state != RequestState::Draft {
        return Err(out_of_order(
            crate::text!(
                "problem.draft.not_draft",
                "a request that is {state} no longer changes",
                state = r.state
            )
            .arg_key("state_label", format!("state.{}", r.state)),
        ));
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
