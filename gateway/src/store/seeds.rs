//! [`Store`] operations: importing the program documents' rosters (`sql/seeds.rs`).

use super::{Store, StoreError, postgres, sqlite};
use crate::seeds::SeedSet;

/// Rows the seed import added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportCounts {
    /// Institutions added.
    pub institutions: i64,
    /// Clinicians added.
    pub clinicians: i64,
    /// Pairings added.
    pub pairings: i64,
}

impl Store {
    /// Whether seeds with this digest were imported.
    pub async fn seeds_imported(&self, digest: &str) -> Result<bool, StoreError> {
        dispatch!(self, seeds::imported(digest))
    }

    /// Imports a checked seed set in one transaction; rows already present are kept.
    pub async fn import_seeds(
        &self,
        set: &SeedSet,
        digest: &str,
    ) -> Result<ImportCounts, StoreError> {
        dispatch!(self, seeds::import(set, digest, self.now()))
    }

    /// Whether `duikou demo` built this installation.
    pub async fn is_demo(&self) -> Result<bool, StoreError> {
        dispatch!(self, seeds::is_demo())
    }

    /// Records that `duikou demo` built this installation.
    pub async fn mark_demo(&self) -> Result<(), StoreError> {
        dispatch!(self, seeds::mark_demo(self.now()))
    }
}
