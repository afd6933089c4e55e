//! The SQLite backend: the operations of `store/sql/` compiled for [`sqlx::Sqlite`].

/// The backend's database type, used by the shared operations.
pub type Db = sqlx::Sqlite;
/// Its connection pool.
pub type Pool = sqlx::SqlitePool;

/// Serialises concurrent seed imports. SQLite has one writer at a time and the import's
/// first statement writes, so nothing more is needed.
const SEED_IMPORT_LOCK: &str = "select 1";

/// Serialises appends to the audit chain: `BEGIN_WRITE` already holds the one write lock.
const AUDIT_CHAIN_LOCK: &str = "select 1";

/// Begins a transaction that reads, then writes. A deferred one (SQLite's plain `begin`)
/// takes the write lock at its first write, and fails at once with `SQLITE_BUSY` (the busy
/// timeout is not consulted) when another connection committed since its first read;
/// `immediate` takes the lock at the start, waiting its turn.
const BEGIN_WRITE: &str = "begin immediate";

/// Locks the rows a transaction reads in order to change them: nothing here, since
/// `BEGIN_WRITE` holds the write lock for the whole transaction.
const FOR_UPDATE: &str = "";

/// Rows a statement locks to delete them, skipping those other transactions hold: nothing
/// here, since SQLite writes one transaction at a time.
const SKIP_LOCKED: &str = "";

/// Relaxes the commit of a transaction whose loss costs only a repeat: nothing to do,
/// such writes go through the pool whose commits are not synced.
const RELAXED_COMMIT: Option<&str> = None;

/// The ids in a JSON array bound as text, as a subquery (`id in (…)`).
const IDS_IN_JSON: &str = "select value from json_each($1)";

/// The index of an instance as one command (see `imaging::index_instance`), from the
/// instance's insert (parameters 1 to 22, nothing for a duplicate), the forward's columns
/// and its values after `instance_id` (parameters 23 to 32): a transaction of several
/// statements, the forward inserted only if the instance's row was (`changes()` counts
/// the rows of the insert before it). One row, the forward's id; none for a duplicate.
macro_rules! index_command {
    ($instance:expr, $forward:expr, $values:expr) => {
        concat!(
            "begin immediate; ",
            $instance,
            "; ",
            $forward,
            " select last_insert_rowid(), ",
            $values,
            " where changes() = 1 returning id; commit"
        )
    };
}

#[path = "sql/attachments.rs"]
pub mod attachments;
#[path = "sql/audit.rs"]
pub mod audit;
#[path = "sql/availability.rs"]
pub mod availability;
#[path = "sql/forwarding.rs"]
pub mod forwarding;
#[path = "sql/imaging.rs"]
pub mod imaging;
#[path = "sql/notifications.rs"]
pub mod notifications;
#[path = "sql/outbox.rs"]
pub mod outbox;
#[path = "sql/pairings.rs"]
pub mod pairings;
#[path = "sql/patients.rs"]
pub mod patients;
#[path = "sql/registry.rs"]
pub mod registry;
#[path = "sql/reports.rs"]
pub mod reports;
#[path = "sql/requests.rs"]
pub mod requests;
#[path = "sql/retention.rs"]
pub mod retention;
#[path = "sql/rooms.rs"]
pub mod rooms;
#[path = "sql/rounds.rs"]
pub mod rounds;
#[path = "sql/seeds.rs"]
pub mod seeds;
#[path = "sql/teaching.rs"]
pub mod teaching;
#[path = "sql/users.rs"]
pub mod users;
