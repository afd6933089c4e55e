//! C-ECHO to a destination (PS3.7 §9.1.5, the Verification SOP Class of PS3.4 Annex A):
//! the test an operator runs after setting where studies go. The association is opened
//! exactly as forwarding opens one (the outbound policy, TLS, the relay's calling AE
//! title, TCP_NODELAY), offering Verification alone, and the whole test is bounded by
//! [`ECHO_TIMEOUT`]. How it ended is told in a word an operator can act on
//! ([`EchoOutcome`]) and in full, for administrators and the log.

use std::time::{Duration, Instant};

use dicom_dictionary_std::uids;
use dicom_ul::association::client::AsyncClientAssociation;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu, PresentationContextResultReason};

use super::association::{Open, Rejection, Unreached, connect};
use super::{ForwardConfig, Target};
use crate::dimse;

/// The longest an echo takes, whatever the forwarding timeout: someone waits for it.
pub const ECHO_TIMEOUT: Duration = Duration::from_secs(10);

/// How an echo ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoOutcome {
    /// The destination answered the C-ECHO with success.
    Success,
    /// The destination rejected or aborted the association, or takes no Verification.
    Refused,
    /// Nothing answers at the address (connection refused, no route, an unknown name).
    Unreachable,
    /// The connection or an answer took longer than the timeout.
    TimedOut,
    /// The outbound policy forbids the address (loopback, link-local, the gateway's own).
    NotAllowed,
    /// TLS could not be set up.
    Tls,
    /// Anything else: the association broke, or the C-ECHO was answered with a failure.
    Failed,
}

/// What an echo found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    /// How it ended.
    pub outcome: EchoOutcome,
    /// For a rejected association, what the destination said of its reason.
    pub rejection: Option<Rejection>,
    /// The status of the C-ECHO response (PS3.7 Annex C), when there was one.
    pub status: Option<u16>,
    /// What went wrong, in full: the destination, its address and what happened.
    pub error: Option<String>,
    /// From opening the connection to the C-ECHO response (or to the failure).
    pub round_trip: Duration,
}

/// A failed echo: its outcome, the rejection reason if any, and the whole error.
type Failure = (EchoOutcome, Option<Rejection>, String);

/// Sends a C-ECHO to `target` as forwarding would reach it with `config`, within
/// [`ECHO_TIMEOUT`] (or `config`'s timeout when shorter).
pub async fn echo(target: &Target, config: &ForwardConfig) -> Echo {
    let timeout = config.timeout.min(ECHO_TIMEOUT);
    // The bound below ends a silent destination's echo: dicom-ul's own timeouts are
    // longer, because one that runs out while an association request waits for its
    // answer is reported as something else (see `association::unreached`).
    let config = ForwardConfig {
        timeout: timeout + Duration::from_secs(1),
        ..config.clone()
    };
    let started = Instant::now();
    let verified = tokio::time::timeout(timeout, verify(target, &config))
        .await
        .unwrap_or_else(|_| {
            Err((
                EchoOutcome::TimedOut,
                None,
                format!(
                    "{} at {}:{} did not answer within {} ms",
                    target.ae_title,
                    target.host,
                    target.port,
                    timeout.as_millis()
                ),
            ))
        });
    let round_trip = started.elapsed();
    match verified {
        Ok(status) if status == dimse::status::SUCCESS => Echo {
            outcome: EchoOutcome::Success,
            rejection: None,
            status: Some(status),
            error: None,
            round_trip,
        },
        Ok(status) => Echo {
            outcome: EchoOutcome::Failed,
            rejection: None,
            status: Some(status),
            error: Some(format!(
                "{} answered the C-ECHO with status {status:#06x}",
                target.ae_title
            )),
            round_trip,
        },
        Err((outcome, rejection, error)) => Echo {
            outcome,
            rejection,
            status: None,
            error: Some(error),
            round_trip,
        },
    }
}

/// Associates, echoes and leaves the release to run on its own (a destination slow to
/// answer it has answered the echo all the same): the response's status.
async fn verify(target: &Target, config: &ForwardConfig) -> Result<u16, Failure> {
    let pairs = [(
        uids::VERIFICATION.to_owned(),
        uids::IMPLICIT_VR_LITTLE_ENDIAN.to_owned(),
    )];
    let mut open = connect(target, config, &pairs).await.map_err(|r| {
        let (outcome, rejection) = match r.why {
            Unreached::Rejected(why) => (EchoOutcome::Refused, Some(why)),
            Unreached::NoContext => (EchoOutcome::Refused, None),
            Unreached::NotAllowed => (EchoOutcome::NotAllowed, None),
            Unreached::Unreachable => (EchoOutcome::Unreachable, None),
            Unreached::TimedOut => (EchoOutcome::TimedOut, None),
            Unreached::Tls => (EchoOutcome::Tls, None),
            Unreached::Broken => (EchoOutcome::Failed, None),
        };
        (outcome, rejection, r.message)
    })?;
    let answered = match &mut open {
        Open::Plain(a) => echo_on(a.as_mut()).await,
        Open::Tls(a) => echo_on(a.as_mut()).await,
    };
    tokio::spawn(open.release());
    answered.map_err(|(outcome, e)| {
        let error = format!("{} did not answer the C-ECHO: {e}", target.ae_title);
        (outcome, None, error)
    })
}

/// One C-ECHO on `association`: the response's status.
async fn echo_on<S>(
    association: &mut AsyncClientAssociation<S>,
) -> Result<u16, (EchoOutcome, String)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let context = association
        .presentation_contexts()
        .iter()
        .find(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .map(|pc| pc.id)
        .ok_or((EchoOutcome::Refused, "Verification was not accepted".into()))?;
    let request = Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: context,
            value_type: PDataValueType::Command,
            is_last: true,
            data: dimse::echo_request(1),
        }],
    };
    let broke = |e: dicom_ul::association::Error| {
        let outcome = match e {
            dicom_ul::association::Error::Timeout { .. } => EchoOutcome::TimedOut,
            _ => EchoOutcome::Failed,
        };
        (outcome, e.to_string())
    };
    association.send(&request).await.map_err(broke)?;
    match association.receive().await.map_err(broke)? {
        Pdu::PData { data } if !data.is_empty() => dimse::parse_command(&data[0].data)
            .ok()
            .filter(|c| c.field == dimse::C_ECHO_RSP)
            .and_then(|c| c.status)
            .ok_or((EchoOutcome::Failed, "an unreadable response".into())),
        Pdu::AbortRQ { .. } => Err((EchoOutcome::Refused, "it aborted the association".into())),
        other => Err((
            EchoOutcome::Failed,
            format!("unexpected {}", other.short_description()),
        )),
    }
}
