//! A raw storage SCU for the tests that DCMTK cannot play: it sends whatever command and
//! bytes a test gives it, split into P-DATA fragments, and reports the status or how the
//! association ended. Built on dicom-ul, like the relay, but speaking only through the
//! wire.

use std::net::SocketAddr;

use dicom_ul::association::client::{AsyncClientAssociation, ClientAssociationOptions};
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use duikou_imaging::dimse;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

/// CT Image Storage.
pub const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// An association to a storage SCP with one presentation context.
pub struct RawScu {
    association: AsyncClientAssociation<TcpStream>,
    context: u8,
    max_pdv: usize,
}

/// How a C-STORE ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A C-STORE-RSP with this status.
    Status(u16),
    /// The SCP aborted the association.
    Aborted,
    /// The connection ended otherwise.
    Closed(String),
}

impl RawScu {
    /// Associates from `calling` to `called` for `sop_class` in `transfer_syntax`.
    pub async fn connect(
        addr: SocketAddr,
        calling: &str,
        called: &str,
        sop_class: &str,
        transfer_syntax: &str,
    ) -> Self {
        let association = ClientAssociationOptions::new()
            .calling_ae_title(calling)
            .called_ae_title(called)
            .with_presentation_context(sop_class, vec![transfer_syntax])
            .establish_async(addr)
            .await
            .expect("the association is accepted");
        let context = association.presentation_contexts()[0].id;
        let max_pdv = association.acceptor_max_pdu_length() as usize - 6;
        Self {
            association,
            context,
            max_pdv,
        }
    }

    async fn send_pdv(&mut self, value_type: PDataValueType, is_last: bool, data: Vec<u8>) {
        self.association
            .send(&Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: self.context,
                    value_type,
                    is_last,
                    data,
                }],
            })
            .await
            .expect("the PDU is sent");
    }

    /// Sends a C-STORE-RQ for `class` and `instance` and then `data` (all of it when
    /// `complete`, else without its last fragment).
    pub async fn send_store(&mut self, class: &str, instance: &str, data: &[u8], complete: bool) {
        let command = dimse::store_request(1, class, instance);
        self.send_pdv(PDataValueType::Command, true, command).await;
        let chunks: Vec<&[u8]> = data.chunks(self.max_pdv.max(1)).collect();
        let n = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let last = i + 1 == n;
            if last && !complete {
                break;
            }
            self.send_pdv(PDataValueType::Data, last, chunk.to_vec())
                .await;
        }
    }

    /// The answer to what was sent.
    pub async fn outcome(&mut self) -> Outcome {
        match self.association.receive().await {
            Ok(Pdu::PData { data }) => {
                let command = dimse::parse_command(&data[0].data).expect("a response command");
                Outcome::Status(command.status.expect("a status"))
            }
            Ok(Pdu::AbortRQ { .. }) => Outcome::Aborted,
            Ok(other) => Outcome::Closed(format!("{}", other.short_description())),
            Err(e) => Outcome::Closed(e.to_string()),
        }
    }

    /// A C-STORE of `data` under `instance`; returns the status.
    pub async fn store(&mut self, class: &str, instance: &str, data: &[u8]) -> Outcome {
        self.send_store(class, instance, data, true).await;
        self.outcome().await
    }

    /// Writes raw bytes on the connection, bypassing the PDU layer.
    pub async fn write_raw(&mut self, bytes: &[u8]) {
        let _ = self.association.inner_stream().write_all(bytes).await;
    }

    /// Aborts the association.
    pub async fn abort(self) {
        let _ = self.association.abort().await;
    }

    /// Releases the association.
    pub async fn release(self) {
        let _ = self.association.release().await;
    }
}
