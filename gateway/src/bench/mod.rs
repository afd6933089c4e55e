//! `duikou bench …`: measurements, not tests. Each prints its figures and, where a peer
//! can run here, the peer's figures from the same run and the ratio.
//!
//! - [`dicom()`]: the relay's DICOM ingest and forwarding beside DCMTK.
//! - [`sfu()`]: the forwarding unit of teaching sessions, one presenter to many
//!   receivers on loopback.
//! - [`series`]: the synthetic CT series the DICOM benchmark sends (the tests use it too).

mod dicom;
pub mod series;
mod sfu;

pub use dicom::dicom;
pub use sfu::sfu;
