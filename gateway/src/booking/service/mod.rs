//! The booking operations. Each checks the caller's institution and role, applies the
//! program rules, changes the store in one transaction and writes the audit log. Every
//! refusal names its rule.
//!
//! [`drafts`] creates and changes drafts; [`steps`] takes a request through its workflow,
//! one function per step; [`opinions`] keeps the consultant's opinion; [`reads`] shows
//! requests, free slots and a request's audit log. What they share, who may see a request
//! and how it is shown, is here.

mod consultants;
mod drafts;
mod opinions;
mod reads;
mod steps;
mod studies;

pub use consultants::{ConsultantCandidate, consultants};
pub use drafts::{
    DesignatedSupporter, NewRequestInput, create_request, create_request_with,
    designated_supporter, update_draft,
};
pub use opinions::{OpinionView, opinion_document, opinions, save_opinion};
pub use reads::{
    audit_entries, free_slots_of, list_requests, open_request, open_request_for, request_view,
};
use steps::qualification_gaps;
pub use steps::{StepInput, answering_role, expire_due, notices, take_step};

use serde::Serialize;
use utoipa::ToSchema;

use crate::booking::request::{ConsultRequest, RequestEvent, RequestState};
use crate::booking::slots::china;
use crate::domain::{Role, User};
use crate::rules::{Error, Rule};
use crate::store::Store;

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

const READERS: [Role; 4] = [
    Role::Clinician,
    Role::Coordinator,
    Role::Radiologist,
    Role::Pathologist,
];

/// Audits `action` on request `id` (with its patient) by `caller`.
pub(crate) async fn audit(
    store: &Store,
    caller: &User,
    action: &str,
    id: Option<i64>,
    allowed: bool,
    detail: Option<String>,
) -> Result<(), Error> {
    // The request's patient, so that a supervisor finds every access to one patient's
    // records.
    let patient = match id {
        Some(id) => store
            .request(id)
            .await?
            .and_then(|r| r.content.patient.map(|p| p.name)),
        None => None,
    };
    crate::audit::Event::by(caller, "request", action)
        .id(id)
        .allowed(allowed)
        .patient(patient)
        .detail(detail)
        .record(store)
        .await
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
    let (rule, note, detail) = match side {
        Some(side) if READERS.iter().any(|role| caller.is(*role)) => return Ok(side),
        // One of the two institutions, in a role that does not see requests.
        Some(_) => (
            Rule::WrongRole,
            "a role that does not see requests",
            "requests are seen by the two institutions' clinicians, radiologists and coordinators",
        ),
        None => (
            Rule::WrongInstitution,
            "not a clinician of either institution",
            "only the requesting and the supporting institution's clinicians see a request",
        ),
    };
    audit(store, caller, action, Some(r.id), false, Some(note.into())).await?;
    Err(Error::refused(rule, None, detail))
}

async fn load(store: &Store, id: i64) -> Result<ConsultRequest, Error> {
    store
        .request(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("request {id}")))
}

fn require_clinician(caller: &User) -> Result<(), Error> {
    if caller.is(Role::Clinician) {
        Ok(())
    } else {
        Err(Error::forbidden(crate::text::Text::new(
            "problem.request.clinicians_only",
            "only clinicians create and submit requests",
        )))
    }
}

async fn view(store: &Store, r: ConsultRequest) -> Result<RequestView, Error> {
    let now = store.now();
    let overdue = r.overdue(now);
    let today = now.with_timezone(&china()).date_naive();
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
            .filter(|c| qualification_gaps(c, r.content.min_title, today).is_empty())
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
