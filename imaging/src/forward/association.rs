//! The association a lane holds to its destination (PS3.8 §7.1): opened to the address
//! the outbound policy checked, over TLS when the destination speaks it, offering the
//! (SOP class, transfer syntax) pairs of the jobs seen so far, one presentation context
//! each; a job whose pair was not offered yet closes the association and opens one that
//! offers it. Whether the destination accepted a job's pair decides between sending it
//! (`store`) and failing it for good.

use dicom_ul::association::client::{AsyncClientAssociation, ClientAssociationOptions};

use super::lane::Shared;
use super::store::{Buffers, store_on};
use super::{Attempt, ForwardConfig, Job, Target};
use crate::dimse::status;

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
                Err(Refusal::NoContext) => return not_accepted(target, job),
                Err(Refusal::Other(why)) => return Attempt::Retry(why),
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
        match self.open.take() {
            Some(Open::Plain(a)) => {
                let _ = a.release().await;
            }
            Some(Open::Tls(a)) => {
                let _ = a.release().await;
            }
            None => {}
        }
    }
}

fn not_accepted(target: &Target, job: &Job) -> Attempt {
    Attempt::Failed(format!(
        "{} accepts neither the SOP class {} nor it in the transfer syntax {}",
        target.ae_title, job.sop_class_uid, job.transfer_syntax
    ))
}

/// Why an association was not opened.
pub(super) enum Refusal {
    /// The destination accepted none of the offered pairs: retrying cannot help.
    NoContext,
    /// Anything else (unreachable, rejected): try again later.
    Other(String),
}

/// Opens an association to `target` offering `pairs`.
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
        Err(e) => return Err(Refusal::Other(format!("not connecting to {address}: {e}"))),
    };
    let refused = |e: dicom_ul::association::Error| {
        if matches!(
            e,
            dicom_ul::association::Error::NoAcceptedPresentationContexts { .. }
        ) {
            return Refusal::NoContext;
        }
        Refusal::Other(format!(
            "cannot associate with {} at {address}: {e}",
            target.ae_title
        ))
    };
    if !target.tls {
        let mut a = options.establish_async(checked).await.map_err(refused)?;
        // dicom-ul leaves Nagle on; without this every message waits for a delayed ACK.
        let _ = a.inner_stream().set_nodelay(true);
        return Ok(Open::Plain(Box::new(a)));
    }
    let Some(tls) = config.tls.clone() else {
        return Err(Refusal::Other(
            "the destination speaks TLS and no certificate authority is configured to trust".into(),
        ));
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
