//! Accepting an association (PS3.8 §7.1): the presentation contexts offered to callers
//! (verification, the storage SOP classes of [`crate::sop_classes`] and
//! [`TRANSFER_SYNTAXES`]), the ARTIM timer on the request, and access control: only a
//! registered caller, from one of its hosts, calling this relay's AE title, is admitted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use dicom_dictionary_std::uids;
use dicom_ul::association::server::{AccessControl, ServerAssociationOptions};
use dicom_ul::pdu::{AssociationRJServiceUserReason, UserIdentity};
use tokio::net::TcpStream;

use super::{Archive, Caller, ScpConfig, exchange};
use crate::spool::Spool;
use crate::{AeTitle, sop_classes};

/// Transfer syntaxes accepted for storage: uncompressed, deflate, and the compressed ones
/// stored as they arrive (the relay never decodes pixel data).
pub const TRANSFER_SYNTAXES: &[&str] = &[
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
    uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    // Explicit VR Big Endian: retired from the standard, still sent by old modalities.
    "1.2.840.10008.1.2.2",
    uids::JPEG_BASELINE8_BIT,
    uids::JPEG_EXTENDED12_BIT,
    uids::JPEG_LOSSLESS,
    uids::JPEG_LOSSLESS_SV1,
    uids::JPEGLS_LOSSLESS,
    uids::JPEGLS_NEAR_LOSSLESS,
    uids::JPEG2000_LOSSLESS,
    uids::JPEG2000,
    uids::RLE_LOSSLESS,
];

/// Admits registered callers from their hosts, calling this relay's AE title.
struct Registered {
    callers: HashMap<AeTitle, Caller>,
    peer: IpAddr,
}

impl AccessControl for Registered {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title.trim() {
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        let peer = self.peer.to_string();
        match self.callers.get(calling_ae_title.trim()) {
            Some(c) if c.hosts.iter().any(|h| h == "*" || *h == peer) => Ok(()),
            _ => Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized),
        }
    }
}

/// Accepts an association on `socket` from `peer`, plain or (with `tls`) over TLS, and
/// runs its exchange to the end.
pub(super) async fn accept<A: Archive>(
    socket: TcpStream,
    peer: IpAddr,
    config: &ScpConfig,
    spool: &Spool,
    archive: &A,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), String> {
    let callers = archive.callers().await?;
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(Registered {
            callers: callers.clone(),
            peer,
        })
        .ae_title(config.ae_title.to_string())
        .max_pdu_length(config.max_pdu_length)
        .strict(true)
        .read_timeout(config.timeout)
        .write_timeout(config.timeout)
        .with_abstract_syntax(uids::VERIFICATION);
    for class in sop_classes::STORAGE {
        options = options.with_abstract_syntax(*class);
    }
    for ts in TRANSFER_SYNTAXES {
        options = options.with_transfer_syntax(*ts);
    }
    // The ARTIM timer (PS3.8 §9.1.5): the association request, TLS handshake included,
    // is complete within the timeout, whatever the peer sends meanwhile, or the
    // connection is closed.
    let artim = |what| format!("no association within {:?}: {what}", config.timeout);
    match tls {
        None => {
            let association = tokio::time::timeout(config.timeout, options.establish_async(socket))
                .await
                .map_err(|_| artim("the request was not complete"))?
                .map_err(|e| format!("association refused: {e}"))?;
            exchange::exchange(association, &callers, config, spool, archive).await
        }
        Some(tls) => {
            let options = options.tls_config(tls);
            let association =
                tokio::time::timeout(config.timeout, options.establish_tls_async(socket))
                    .await
                    .map_err(|_| artim("the handshake or the request was not complete"))?
                    .map_err(|e| format!("association refused: {e}"))?;
            exchange::exchange(association, &callers, config, spool, archive).await
        }
    }
}
