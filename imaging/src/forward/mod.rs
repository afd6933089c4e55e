//! Forwarding: the storage SCU that carries stored instances to the supporting hospital,
//! and the worker that drains the forward queue. The queue itself lives in the gateway's
//! database (behind [`Queue`]): each instance is pending, then sending under a lease, then
//! delivered; a failure is retried with exponential backoff, and a lease that runs out (a
//! crash, `kill -9`) makes the instance due again, so nothing is lost and a duplicate can
//! only be a re-send of the same instance.
//!
//! ## Layout
//!
//! - `worker`: [`run`], which drains the queue: jobs handed over by the index or claimed,
//!   held per destination until its lanes have room.
//! - `lane`: a destination's lanes, each keeping an association open while jobs keep
//!   coming, and the recording of their outcomes, retried after [`backoff`].
//! - `association`: the association to a destination: the address checked by the
//!   outbound policy, TLS, and the (SOP class, transfer syntax) pairs offered.
//! - `store`: one C-STORE on an open association, the data set framed into P-DATA-TF
//!   PDUs by the relay itself.
//! - `echo`: [`echo`], a C-ECHO to a destination on an association opened the same way,
//!   which an operator runs to test a destination.

mod association;
mod echo;
mod lane;
mod store;
#[cfg(test)]
mod tests;
mod worker;

pub use association::Rejection;
pub use echo::{ECHO_TIMEOUT, Echo, EchoOutcome, echo};
pub use lane::IDLE;
pub use worker::{CLAIM_EVERY, run};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::AeTitle;
use crate::spool::Stored;

/// Where an instance goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// Called AE title.
    pub ae_title: AeTitle,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Over TLS.
    pub tls: bool,
}

/// One claimed forward.
#[derive(Debug, Clone)]
pub struct Job {
    /// Queue id.
    pub id: i64,
    /// Attempts so far.
    pub attempts: i32,
    /// The stored instance.
    pub stored: Stored,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// The transfer syntax it is stored in.
    pub transfer_syntax: String,
    /// Where it goes.
    pub target: Target,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The destination stored it.
    Delivered,
    /// Try again later (refused, unreachable, broken off).
    Retry(String),
    /// Trying again cannot help (e.g. no transfer syntax in common); an operator may.
    Failed(String),
}

/// The forward queue, kept by the gateway.
pub trait Queue: Send + Sync + 'static {
    /// Claims up to `limit` due jobs, leasing them for `lease`.
    fn claim(
        &self,
        limit: i64,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Job>, String>> + Send;
    /// Records the outcomes of attempts (each with the delay before its retry), together.
    fn record(
        &self,
        outcomes: &[(Job, Attempt, Duration)],
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// How forwarding behaves.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// The relay's AE title, calling.
    pub calling_ae_title: AeTitle,
    /// Associations at once per destination.
    pub associations: usize,
    /// Jobs claimed per pass.
    pub batch: i64,
    /// How long a claim holds before the job is due again.
    pub lease: Duration,
    /// The first retry delay; it doubles with each attempt.
    pub retry_base: Duration,
    /// The longest retry delay.
    pub retry_max: Duration,
    /// Connection, read and write timeout.
    pub timeout: Duration,
    /// Largest PDU proposed.
    pub max_pdu_length: u32,
    /// Whom to trust when a destination speaks TLS (and the relay's client certificate,
    /// if it has one).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Where destinations may be ([`crate::outbound`]).
    pub outbound: crate::outbound::Policy,
}

/// What kind of failure a forward's error is, for an operator: a code the pages put in
/// the reader's language, and a sentence that says what to do and nothing of what
/// answered at the destination's address (the whole error names the address and repeats
/// what the peer said, which is for administrators only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The outbound policy forbids the destination's address.
    NotAllowed,
    /// The destination cannot be reached, or refuses the relay's association.
    Unreachable,
    /// The destination refused the instance (a failure status to the C-STORE).
    InstanceRefused,
    /// The destination takes neither the instance's SOP class nor its transfer syntax.
    Unsupported,
    /// The relay cannot read what it stored.
    Unreadable,
    /// The destination speaks TLS and the relay trusts no certificate authority.
    Tls,
    /// The study has nowhere to go (no pairing, or the supporter has no destination).
    NoDestination,
    /// The association broke.
    Broken,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::NotAllowed,
        ErrorKind::Unreachable,
        ErrorKind::InstanceRefused,
        ErrorKind::Unsupported,
        ErrorKind::Unreadable,
        ErrorKind::Tls,
        ErrorKind::NoDestination,
        ErrorKind::Broken,
    ];

    /// The kind of `error`: a whole error, or the [`ErrorKind::sentence`] of one.
    pub fn of(error: &str) -> Self {
        if let Some(kind) = Self::ALL.into_iter().find(|k| k.sentence() == error) {
            return kind;
        }
        if error.starts_with("not connecting to") {
            Self::NotAllowed
        } else if error.starts_with("cannot associate with") {
            Self::Unreachable
        } else if error.contains(" answered status ") {
            Self::InstanceRefused
        } else if error.contains("accepts neither the SOP class") {
            Self::Unsupported
        } else if error.starts_with("cannot read the stored instance")
            || error.starts_with("the stored instance")
        {
            Self::Unreadable
        } else if error.contains("no certificate authority") {
            Self::Tls
        } else if error.contains("imaging supporter")
            || error.contains("has no DICOM destination")
            || error.starts_with("cannot read the destination")
        {
            // The gateway's own routing errors (`duikou::imaging::forward_target`).
            Self::NoDestination
        } else {
            Self::Broken
        }
    }

    /// Its code, in kebab case.
    pub fn code(self) -> &'static str {
        match self {
            Self::NotAllowed => "not-allowed",
            Self::Unreachable => "unreachable",
            Self::InstanceRefused => "instance-refused",
            Self::Unsupported => "unsupported",
            Self::Unreadable => "unreadable",
            Self::Tls => "tls",
            Self::NoDestination => "no-destination",
            Self::Broken => "broken",
        }
    }

    /// What it means, in words that tell an operator what to do.
    pub fn sentence(self) -> &'static str {
        match self {
            Self::NotAllowed => {
                "the destination's address is not one the relay may connect to (outbound policy)"
            }
            Self::Unreachable => {
                "the destination cannot be reached, or refuses the relay's association"
            }
            Self::InstanceRefused => "the destination refused the instance",
            Self::Unsupported => {
                "the destination takes neither the instance's SOP class nor its transfer syntax"
            }
            Self::Unreadable => "the relay cannot read the stored instance",
            Self::Tls => "the destination speaks TLS and the relay trusts no certificate authority",
            Self::NoDestination => {
                "the study has nowhere to go: see the pairing and the supporter's destination"
            }
            Self::Broken => "the association with the destination broke",
        }
    }
}

/// The [`ErrorKind::sentence`] of a forward's error.
pub fn error_class(error: &str) -> &'static str {
    ErrorKind::of(error).sentence()
}

/// The delay before retry number `attempts + 1`.
pub fn backoff(config: &ForwardConfig, attempts: i32) -> Duration {
    let factor = 2_u32.saturating_pow(u32::try_from(attempts.clamp(0, 20)).unwrap_or(20));
    config
        .retry_base
        .saturating_mul(factor)
        .min(config.retry_max)
}
