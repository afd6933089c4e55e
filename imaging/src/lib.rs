//! # duikou-imaging
//!
//! The DICOM relay: county modalities push studies here, the relay stores them durably and
//! forwards them to the paired tertiary hospital, and radiologists read them over DICOMweb.
//!
//! ## Layout
//! - [`AeTitle`]: the Application Entity title that names every DICOM peer (PS3.5 §6.2).
//! - [`dimse`]: C-ECHO and C-STORE commands and responses (PS3.7); dicom-ul does the upper
//!   layer (association negotiation and PDUs), the service layer is here. The data sets'
//!   P-DATA-TF PDUs, the bulk of the bytes, are read in place by [`scp`] and framed by
//!   [`forward`] themselves, between dicom-ul's own PDUs.
//! - [`sop_classes`]: the storage SOP classes accepted.
//! - [`spool`]: durable storage: append-only segments, one record per instance, written as
//!   PDUs arrive and synced once; the index is rebuilt from them after a crash.
//! - [`scp`]: the storage SCP, which asks the gateway through [`scp::Archive`] who may
//!   call and where the index is, so this crate never imports the gateway.
//! - [`dicomweb`]: QIDO-RS matching and DICOM JSON, metadata with bulk data URIs, frames.
//! - [`stow`]: STOW-RS: the content type, each part's file meta, the answer.
//! - [`walk`]: a fast structural check of a data set before any full parse.
//! - [`outbound`]: where outbound connections (DICOM destinations, the gateway's
//!   webhooks) may go: checked on the resolved address, which is the one connected to.
//! - [`forward`]: the storage SCU and the worker draining the gateway's forward queue
//!   (through [`forward::Queue`]), with associations kept open while jobs keep coming.

mod ae_title;
pub mod dicomweb;
pub mod dimse;
pub mod forward;
pub mod outbound;
pub mod scp;
pub mod sop_classes;
pub mod spool;
pub mod stow;
#[doc(hidden)]
pub mod testing;
mod uid;
pub mod walk;

pub use ae_title::{AeTitle, AeTitleError};
pub use uid::{Uid, UidError};

/// Locks a mutex, also one a panic poisoned (what it guards stays usable).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
