//! Booking: remote consultation and read requests addressed to the designated supporter,
//! their workflow, the consultant's opinion, and the audit of every access to patient data.
//!
//! - `request`: what a request holds, and what it needs before submission.
//! - `workflow`: the pure state machine of steps.
//! - `service`: the operations, checking who may do what against the registry.
//! - [`rounds`]: remote ward rounds, their rules and operations.
//! - [`availability`]: consultants' weekly availability and their free slots.
//! - [`teaching`]: continuing-education sessions, enrolment, attendance and hours.
//! - [`cancellation`]: what teaching sessions and ward rounds share when they are
//!   changed or cancelled.
//! - [`visits`]: on-site visits to village stations.

pub mod attachments;
pub mod availability;
pub mod cancellation;
mod request;
pub mod rounds;
mod service;
mod slots;
pub mod teaching;
pub mod visits;
mod workflow;

#[cfg(test)]
mod tests;

pub use attachments::{AttachmentInfo, check_type, path_of, store_bytes};
pub use request::{
    CaseSummary, Consent, ConsentBy, ConsentMethod, ConsultRequest, Opinion, OpinionStatus,
    Patient, RequestContent, RequestEvent, RequestKind, RequestOrder, RequestState, Signer,
    Urgency, Window,
};
pub use rounds::{NewPatient, NewRounds, RoundPatient, WardRound};
pub(crate) use service::audit as audit_request;
pub use service::{
    Access, ConsultantCandidate, DesignatedSupporter, NewRequestInput, OpinionView, RequestView,
    StepInput, answering_role, audit_entries, consultants, create_request, create_request_with,
    designated_supporter, expire_due, free_slots_of, list_requests, notices, open_request,
    open_request_for, opinion_document, opinions, request_view, save_opinion, take_step,
    update_draft,
};
pub use slots::{Availability, AvailabilityException, Slot, china, free_slots};
pub use teaching::{
    Attendance, AttendanceSink, Enrolment, EnrolmentStatus, TeachingSession, attended_hours,
};
pub use workflow::{Side, Step};
