//! The test of an institution's DICOM destination: a C-ECHO from the relay, on an
//! association opened as forwarding opens one (its AE title, the outbound policy, TLS),
//! so that a success means studies can go there. Those who may set the destination may
//! test it. The answer says how it went in a code the pages put in the reader's language
//! and in an English sentence; the whole error of a failure, which repeats what answered
//! at the address, is for administrators only, as in the forward queue.

use serde::Serialize;
use utoipa::ToSchema;

use duikou_imaging::forward::{self, Echo, EchoOutcome, ForwardConfig, Rejection, Target};

use crate::domain::{Role, User, named_enum};
use crate::registry::managed;
use crate::rules::Error;
use crate::store::{ImagingDestination, Store};

named_enum! {
    /// How a test of a destination ended.
    EchoResult {
        /// The destination answered the C-ECHO with success.
        Success = "success",
        /// It rejected or aborted the association (it may not know the gateway's AE
        /// title, or not answer to the one the destination names).
        Refused = "refused",
        /// Nothing answers at its address and port.
        Unreachable = "unreachable",
        /// No answer in time.
        Timeout = "timeout",
        /// The institution has no DICOM destination.
        NoDestination = "no-destination",
        /// The outbound policy forbids the address.
        NotAllowed = "not-allowed",
        /// DICOM over TLS could not be set up.
        Tls = "tls",
        /// Anything else: the association broke, or the C-ECHO failed.
        Failed = "failed",
    }
}

named_enum! {
    /// What a destination that rejected the association said of its reason.
    EchoRejection {
        /// It does not know the gateway's (calling) AE title.
        CallingAeTitle = "calling-ae-title",
        /// It does not answer to the called AE title the destination names.
        CalledAeTitle = "called-ae-title",
        /// Another reason, or none.
        Other = "other",
    }
}

/// What a test of a destination found.
#[derive(Debug, Serialize, ToSchema)]
pub struct EchoReport {
    /// Whether the destination answered with success.
    pub ok: bool,
    /// How it ended.
    pub outcome: EchoResult,
    /// For a rejected association, the destination's reason.
    pub reason: Option<EchoRejection>,
    /// The status of the C-ECHO response (0 is success), when there was one.
    pub status: Option<u16>,
    /// What happened, in English; administrators also read the whole error.
    pub message: String,
    /// From opening the connection to the answer, in milliseconds (successes only).
    pub round_trip_ms: Option<u64>,
    /// The AE title the gateway calls with, which the destination must know.
    pub calling_ae_title: String,
}

/// Sends a C-ECHO to institution `id`'s destination as the relay reaches it with
/// `forwarding`: for its coordinators or an administrator.
pub async fn echo_destination(
    store: &Store,
    forwarding: &ForwardConfig,
    by: &User,
    id: i64,
) -> Result<EchoReport, Error> {
    managed(store, by, id, "test its DICOM destination").await?;
    let calling = forwarding.calling_ae_title.to_string();
    let Some(d) = store.destination(id).await? else {
        return Ok(EchoReport {
            ok: false,
            outcome: EchoResult::NoDestination,
            reason: None,
            status: None,
            message: "the institution has no DICOM destination".into(),
            round_trip_ms: None,
            calling_ae_title: calling,
        });
    };
    let target = Target {
        ae_title: d.ae_title.clone(),
        host: d.host.clone(),
        port: u16::try_from(d.port).unwrap_or(0),
        tls: d.tls,
    };
    let echo = forward::echo(&target, forwarding).await;
    tracing::info!(institution = id, outcome = ?echo.outcome, status = ?echo.status,
        round_trip_ms = echo.round_trip.as_millis(), "DICOM destination echoed");
    let mut message = sentence(&echo, &d, &calling);
    if let (true, Some(error)) = (by.is(Role::Admin), &echo.error) {
        message = format!("{message} ({error})");
    }
    Ok(EchoReport {
        ok: echo.outcome == EchoOutcome::Success,
        outcome: result(echo.outcome),
        reason: echo.rejection.map(|r| match r {
            Rejection::CallingAeTitle => EchoRejection::CallingAeTitle,
            Rejection::CalledAeTitle => EchoRejection::CalledAeTitle,
            Rejection::Other => EchoRejection::Other,
        }),
        status: echo.status,
        message,
        round_trip_ms: (echo.outcome == EchoOutcome::Success)
            .then(|| u64::try_from(echo.round_trip.as_millis()).unwrap_or(u64::MAX)),
        calling_ae_title: calling,
    })
}

fn result(outcome: EchoOutcome) -> EchoResult {
    match outcome {
        EchoOutcome::Success => EchoResult::Success,
        EchoOutcome::Refused => EchoResult::Refused,
        EchoOutcome::Unreachable => EchoResult::Unreachable,
        EchoOutcome::TimedOut => EchoResult::Timeout,
        EchoOutcome::NotAllowed => EchoResult::NotAllowed,
        EchoOutcome::Tls => EchoResult::Tls,
        EchoOutcome::Failed => EchoResult::Failed,
    }
}

/// What happened, in a sentence that names what to check.
fn sentence(echo: &Echo, d: &ImagingDestination, calling: &str) -> String {
    let (ae, at) = (&d.ae_title, format!("{}:{}", d.host, d.port));
    match (echo.outcome, echo.rejection) {
        (EchoOutcome::Success, _) => format!(
            "{ae} at {at} answered the C-ECHO in {} ms",
            echo.round_trip.as_millis()
        ),
        (EchoOutcome::Refused, Some(Rejection::CallingAeTitle)) => format!(
            "{ae} at {at} refused the association: it does not know the gateway's AE title {calling}"
        ),
        (EchoOutcome::Refused, Some(Rejection::CalledAeTitle)) => {
            format!("{ae} at {at} refused the association: it does not answer to the AE title {ae}")
        }
        (EchoOutcome::Refused, _) => format!(
            "{ae} at {at} refused the association (it may not know the gateway's AE title {calling})"
        ),
        (EchoOutcome::Unreachable, _) => format!(
            "nothing answers at {at}: check the host, the port and that the DICOM service runs"
        ),
        (EchoOutcome::TimedOut, _) => format!(
            "{at} did not answer in time: a firewall may drop the connection, or the destination is overloaded"
        ),
        (EchoOutcome::NotAllowed, _) => {
            format!("the gateway may not connect to {at} (the outbound policy forbids the address)")
        }
        (EchoOutcome::Tls, _) => format!(
            "DICOM over TLS with {at} could not be set up: check that it speaks TLS and that the gateway trusts its certificate"
        ),
        (EchoOutcome::Failed, _) => format!("{ae} at {at} did not complete the C-ECHO"),
    }
}
