//! The SQLite backend: the operations of `store/sql/` compiled for [`sqlx::Sqlite`].

/// The backend's database type, used by the shared operations.
pub type Db = sqlx::Sqlite;
/// Its connection pool.
pub type Pool = sqlx::SqlitePool;

/// Serialises concurrent seed imports. SQLite has one writer at a time and the import's
/// first statement writes, so nothing more is needed.
const SEED_IMPORT_LOCK: &str = "select 1";

/// Begins a transaction that reads, then writes. A deferred one (SQLite's plain `begin`)
/// takes the write lock at its first write, and fails at once with `SQLITE_BUSY` (the busy
/// timeout is not consulted) when another connection committed since its first read;
/// `immediate` takes the lock at the start, waiting its turn.
const BEGIN_WRITE: &str = "begin immediate";

/// Relaxes the commit of a transaction whose loss costs only a repeat: nothing to do,
/// such writes go through the pool whose commits are not synced.
const RELAXED_COMMIT: Option<&str> = None;

/// The ids in a JSON array bound as text, as a subquery (`id in (…)`).
const IDS_IN_JSON: &str = "select value from json_each($1)";

/// Indexes an instance in one command to the database's thread (see
/// `imaging::index_instance`): every statement is a round trip to that thread.
const INDEX_IN_ONE_COMMAND: bool = true;

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
#[path = "sql/outbox.rs"]
pub mod outbox;
#[path = "sql/pairings.rs"]
pub mod pairings;
#[path = "sql/registry.rs"]
pub mod registry;
#[path = "sql/reports.rs"]
pub mod reports;
#[path = "sql/requests.rs"]
pub mod requests;
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
