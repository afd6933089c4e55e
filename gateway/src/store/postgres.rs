//! The PostgreSQL backend: the operations of `store/sql/` compiled for [`sqlx::Postgres`].

/// The backend's database type, used by the shared operations.
pub type Db = sqlx::Postgres;
/// Its connection pool.
pub type Pool = sqlx::PgPool;

/// Serialises concurrent seed imports (several gateway processes starting together):
/// a transaction-scoped advisory lock, released at commit.
const SEED_IMPORT_LOCK: &str = "select pg_advisory_xact_lock(71102016)";

/// Serialises appends to the audit chain, each of which reads the newest entry's hash:
/// a transaction-scoped advisory lock, released at commit.
const AUDIT_CHAIN_LOCK: &str = "select pg_advisory_xact_lock(71102017)";

/// Begins a transaction that reads, then writes (see the SQLite backend's).
const BEGIN_WRITE: &str = "begin";

/// Locks the rows a transaction reads in order to change them, so that a concurrent
/// change of the same rows waits for its commit.
const FOR_UPDATE: &str = " for update";

/// Rows a statement locks to delete them, skipping those other transactions hold, so
/// that it never waits for them (nor they for it).
const SKIP_LOCKED: &str = " for update skip locked";

/// Relaxes the commit of a transaction whose loss costs only a repeat: it does not wait
/// for the WAL to reach the disk.
const RELAXED_COMMIT: Option<&str> = Some("set local synchronous_commit = off");

/// The ids in a JSON array bound as text, as a subquery (`id in (…)`).
const IDS_IN_JSON: &str = "select jsonb_array_elements_text($1::jsonb)::bigint";

/// The index of an instance as one command (see `imaging::index_instance`), from the
/// instance's insert (parameters 1 to 22, nothing for a duplicate), the forward's columns
/// and its values after `instance_id` (parameters 23 to 32): one statement, so one
/// transaction, the forward inserted for the instance's row if one was. One row, the
/// forward's id; none for a duplicate.
macro_rules! index_command {
    ($instance:expr, $forward:expr, $values:expr) => {
        concat!(
            "with instance as (",
            $instance,
            " returning id) ",
            $forward,
            " select id, ",
            $values,
            " from instance returning id"
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
