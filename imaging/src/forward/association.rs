//! The association a lane holds to its destination (PS3.8 §7.1): opened to the address
//! the outbound policy checked, over TLS when the destination speaks it, offering the
//! (SOP class, transfer syntax) pairs of the jobs seen so far, one presentation context
//! each; a job whose pair was not offered yet closes the association and opens one that
//! offers it. Whether the destination accepted a job's pair decides between sending it
//! (`store`) and failing it for good. A C-ECHO (`echo`) opens its association here too;
//! [`Unreached`] tells it, and an operator, what kind of failure kept one from opening.

use dicom_ul::association::client::{AsyncClientAssociation, ClientAssociationOptions};
use dicom_ul::pdu::{AssociationRJServiceUserReason, AssociationRJSource};

use super::lane::Shared;
use super::store::{Buffers, store_on};
use super::{Attempt, ForwardConfig, Job, Target};
use crate::dimse::status;
use crate::outbound::Refused;

/// An open association, plain or over TLS.
pub(super) enum Open {
    Plain(Box<AsyncClientAssociation<tokio::net::TcpStream>>),
    Tls(Box<AsyncClientAssociation<dicom_ul::association::client::AsyncTlsStream>>),
}

/// A lane's association to its destination, opened when needed, with the (SOP class,
/// transfer syntax) pairs it was offered.
#[derive(Default)]
pub(super) struct Link {
    open: Option<Open>,
    /// Pairs offered on the open association (and offered again on the next one).
    offered: Vec<(String, String)>,
    messages: u16,
    buffers: Buffers,
}

/// At most this many pairs are offered on one association (DICOM allows 128 contexts).
const MOST_PAIRS: usize = 64;

impl Link {
    /// Whether an association is open.
    pub(super) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Takes `open`, an association that was offered `offered`.
    pub(super) fn opened(&mut self, open: Open, offered: Vec<(String, String)>) {
        (self.open, self.offered) = (Some(open), offered);
    }

    /// Sends `job`, opening an association (offering its pair) if none is open that was
    /// offered it.
    pub(super) async fn deliver(
        &mut self,
        target: &Target,
        config: &ForwardConfig,
        job: &Job,
        shared: &Shared,
    ) -> Attempt {
        let pair = (job.sop_class_uid.clone(), job.transfer_syntax.clone());
        if !self.offered.contains(&pair) {
            self.close().await;
            if self.offered.len() >= MOST_PAIRS {
                self.offered.clear();
            }
            self.offered.push(pair.clone());
            shared.offer(&self.offered);
        }
        if self.open.is_none() {
            match connect(target, config, &self.offered).await {
                Ok(open) => self.open = Some(open),
                Err(refusal) if refusal.why == Unreached::NoContext => {
                    return not_accepted(target, job);
                }
                Err(refusal) => return Attempt::Retry(refusal.message),
            }
        }
        let Some(open) = self.open.as_mut() else {
            return Attempt::Retry("no association".into());
        };
        self.messages = self.messages % 65_000 + 1;
        let message_id = self.messages;
        let (buffers, timeout) = (&mut self.buffers, config.timeout);
        let sent = match open {
            Open::Plain(a) => store_on(a.as_mut(), job, message_id, timeout, buffers).await,
            Open::Tls(a) => store_on(a.as_mut(), job, message_id, timeout, buffers).await,
        };
        match sent {
            Some(Ok(status::SUCCESS | 0xB000..=0xBFFF)) => Attempt::Delivered,
            Some(Ok(code)) => {
                Attempt::Retry(format!("{} answered status {code:#06x}", target.ae_title))
            }
            Some(Err(e)) => {
                // Broken: the next job opens another.
                self.open = None;
                Attempt::Retry(e)
            }
            None => not_accepted(target, job),
        }
    }

    /// Releases the association, if one is open.
    pub(super) async fn close(&mut self) {
        if let Some(open) = self.open.take() {
            open.release().await;
        }
    }
}

impl Open {
    /// Releases the association (A-RELEASE, PS3.8 §7.2); a destination that does not
    /// answer the release only closes it sooner.
    pub(super) async fn release(self) {
        match self {
            Open::Plain(a) => {
                let _ = a.release().await;
            }
            Open::Tls(a) => {
                let _ = a.release().await;
            }
        }
    }
}

fn not_accepted(target: &Target, job: &Job) -> Attempt {
    Attempt::Failed(format!(
        "{} accepts neither the SOP class {} nor it in the transfer syntax {}",
        target.ae_title, job.sop_class_uid, job.transfer_syntax
    ))
}

/// Why an association was not opened, in a word (for what to do about it) and in full
/// (for the log and for administrators).
pub(super) struct Refusal {
    /// What kind of failure.
    pub(super) why: Unreached,
    /// The whole of it: the destination, its address and what happened.
    pub(super) message: String,
}

/// What kind of failure kept an association from opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unreached {
    /// The outbound policy refuses where the host leads.
    NotAllowed,
    /// No connection: the name resolves to nothing, nobody listens, or there is no route.
    Unreachable,
    /// The connection, or the answer to the association request, took too long.
    TimedOut,
    /// The destination rejected the association (A-ASSOCIATE-RJ, PS3.8 §9.3.4) or aborted
    /// it.
    Rejected(Rejection),
    /// The destination accepted none of the offered pairs: retrying cannot help.
    NoContext,
    /// TLS could not be set up (no certificate authority to trust, or the handshake
    /// failed).
    Tls,
    /// Anything else that broke the negotiation.
    Broken,
}

/// Why a destination rejected an association, as far as it said (PS3.8 §9.3.4, the
/// A-ASSOCIATE-RJ's source and reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// It does not know the relay's (calling) AE title.
    CallingAeTitle,
    /// It does not answer to the called AE title the destination names.
    CalledAeTitle,
    /// Another reason, or none given (an abort included).
    Other,
}

fn rejection(source: &AssociationRJSource) -> Rejection {
    match source {
        AssociationRJSource::ServiceUser(
            AssociationRJServiceUserReason::CallingAETitleNotRecognized,
        ) => Rejection::CallingAeTitle,
        AssociationRJSource::ServiceUser(
            AssociationRJServiceUserReason::CalledAETitleNotRecognized,
        ) => Rejection::CalledAeTitle,
        _ => Rejection::Other,
    }
}

/// The kind of a failure to associate.
fn unreached(e: &dicom_ul::association::Error) -> Unreached {
    use dicom_ul::association::Error as E;
    match e {
        E::NoAcceptedPresentationContexts { .. } => Unreached::NoContext,
        E::Rejected { association_rj, .. } => {
            Unreached::Rejected(rejection(&association_rj.source))
        }
        E::Aborted { .. } => Unreached::Rejected(Rejection::Other),
        E::Timeout { .. } => Unreached::TimedOut,
        E::Connect { source, .. } if source.kind() == std::io::ErrorKind::TimedOut => {
            Unreached::TimedOut
        }
        E::Connect { .. } | E::ToAddress { .. } => Unreached::Unreachable,
        E::TlsHandshake { .. }
        | E::TlsConnection { .. }
        | E::InvalidServerName { .. }
        | E::TlsConfigMissing { .. } => Unreached::Tls,
        // dicom-ul 0.10 reports `TlsNotSupported` for any answer to an association
        // request it cannot read (a peer that closes, or one that is silent past the
        // read timeout), not only for a peer speaking TLS: it is a broken negotiation.
        _ => Unreached::Broken,
    }
}

/// Opens an association to `target` offering `pairs` (as the relay's AE title, within the
/// timeout of `config`), with TCP_NODELAY on its socket.
pub(super) async fn connect(
    target: &Target,
    config: &ForwardConfig,
    pairs: &[(String, String)],
) -> Result<Open, Refusal> {
    let mut options = ClientAssociationOptions::new()
        .calling_ae_title(config.calling_ae_title.as_str())
        .called_ae_title(target.ae_title.as_str())
        .max_pdu_length(config.max_pdu_length)
        .connection_timeout(config.timeout)
        .read_timeout(config.timeout)
        .write_timeout(config.timeout);
    for (class, ts) in pairs {
        options = options.with_presentation_context(class.as_str(), vec![ts.as_str()]);
    }
    // The association goes to an address the outbound policy checked, never to a
    // second lookup of the name.
    let address = format!("{}:{}", target.host, target.port);
    let checked = match config.outbound.resolve(&target.host, target.port).await {
        Ok(addresses) => addresses[0],
        Err(e) => {
            let why = match e {
                Refused::Unresolved(_) => Unreached::Unreachable,
                Refused::Address(_) | Refused::Own(_) => Unreached::NotAllowed,
            };
            return Err(Refusal {
                why,
                message: format!("not connecting to {address}: {e}"),
            });
        }
    };
    let refused = |e: dicom_ul::association::Error| Refusal {
        why: unreached(&e),
        message: format!(
            "cannot associate with {} at {address}: {e}",
            target.ae_title
        ),
    };
    if !target.tls {
        let mut a = options.establish_async(checked).await.map_err(refused)?;
        // dicom-ul leaves Nagle on; without this every message waits for a delayed ACK.
        let _ = a.inner_stream().set_nodelay(true);
        return Ok(Open::Plain(Box::new(a)));
    }
    let Some(tls) = config.tls.clone() else {
        return Err(Refusal {
            why: Unreached::Tls,
            message:
                "the destination speaks TLS and no certificate authority is configured to trust"
                    .into(),
        });
    };
    let mut a = options
        .tls_config(tls)
        .server_name(&target.host)
        .establish_tls_async(checked)
        .await
        .map_err(refused)?;
    let _ = a.inner_stream().get_mut().0.set_nodelay(true);
    Ok(Open::Tls(Box::new(a)))
}
