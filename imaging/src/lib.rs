//! # duikou-imaging
//!
//! The DICOM relay: county modalities push studies here, the relay stores them durably and
//! forwards them to the paired tertiary hospital, and radiologists read them over DICOMweb.
//!
//! ## Layout
//! - [`AeTitle`]: the Application Entity title that names every DICOM peer (PS3.5 §6.2).
//! - [`dimse`]: C-ECHO and C-STORE commands and responses (PS3.7); dicom-ul does the upper
//!   layer, the service layer is here.
//! - [`sop_classes`]: the storage SOP classes accepted.
//! - [`spool`]: durable files: written as PDUs arrive, synced, renamed, directory synced.
//! - [`scp`]: the storage SCP, which asks the gateway through [`scp::Archive`] who may
//!   call and where the index is, so this crate never imports the gateway.
//! - [`Destinations`]: where a study from a given calling AE goes (for forwarding).

mod ae_title;
pub mod dimse;
pub mod scp;
pub mod sop_classes;
pub mod spool;
pub mod walk;

pub use ae_title::{AeTitle, AeTitleError};

/// A DICOM peer that studies are forwarded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The called AE title of the destination's storage SCP.
    pub ae_title: AeTitle,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Whether the association runs over TLS.
    pub tls: bool,
}

/// Answers "where do studies from this sender go", from the gateway's pairing registry.
pub trait Destinations: Send + Sync {
    /// The destination for studies sent by `calling` from `peer_host`, or `None` when the
    /// caller is not registered or its institution has no designated imaging supporter.
    fn destination_for(&self, calling: &AeTitle, peer_host: &str) -> Option<Destination>;
}
