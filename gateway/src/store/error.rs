//! What can go wrong in the store, in terms the HTTP layer can map to a status.

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint: the thing exists already.
    #[error("already exists: {0}")]
    Conflict(String),
    /// A referenced row does not exist; `field` names the input that referred to it.
    #[error("{field}: {message}")]
    Invalid {
        /// The input field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The row changed since it was read.
    #[error("changed concurrently: {0}")]
    Stale(String),
    /// A stored value the domain cannot read.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The write was given up before its commit (what it depended on failed).
    #[error("given up: {0}")]
    Abandoned(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl StoreError {
    /// Turns a unique-constraint violation into [`StoreError::Conflict`], leaving other
    /// errors as they are.
    pub fn unique(e: sqlx::Error, what: impl Into<String>) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(what.into()),
            _ => Self::Db(e),
        }
    }
}
