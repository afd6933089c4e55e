//! Storage: one implementation per backend, chosen once at startup from the URL scheme.
//!
//! SQLite (the default, one file in the data directory) and PostgreSQL (what a
//! province-wide deployment runs) each have their own migrations under
//! `gateway/migrations/`. The SQL itself is portable (`$1` parameters, `returning`,
//! `on conflict`), so each operation is written once, in `store/sql/`, and compiled twice:
//! [`sqlite`] and [`postgres`] include the same files with their own `Db` type, which keeps
//! sqlx's concrete types (no `AnyPool`) without writing every query twice. Operations that
//! must be atomic open their own transaction.
//!
//! [`Store`] dispatches each operation to its backend. Its operations, and the types they
//! take, are grouped by what they keep, one submodule each: the registry, accounts,
//! requests, availability, teaching, ward rounds, reports, the outbox, the audit log, the
//! seed import, the imaging relay and the rooms.

mod error;
// The same `sql/` files are compiled once per backend, on purpose (see above).
#[allow(clippy::duplicate_mod)]
pub mod postgres;
#[allow(clippy::duplicate_mod)]
pub mod sqlite;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use accounts::{NewUser, TwoFactor};
pub use audit::{AuditEntry, AuditFilter, Outcome};
pub use availability::Removable;
pub use error::StoreError;
pub use imaging::{
    ClaimedForward, DicomNode, ForwardFilter, ForwardOutcome, ForwardState, ForwardTarget,
    ForwardView, Forwarded, ImagingDestination, Indexing, NewForward, VisibleInstance,
};
pub use notifications::{Audience, Delivery, Notification, PersonNotice};
pub use outbox::{OutboxMessage, PendingDelivery};
pub use registry::{
    Change, ClinicianFilter, InstitutionFilter, NewClinician, NewInstitution, NewTeam,
    PairingDraft, PairingFilter,
};
pub use requests::{
    FirstStep, NewRequest, OpinionChange, RequestFilter, RequestUpdate, StepRecord,
};
pub use retention::{Purged, Retained};
pub use rooms::{Presence, RoomMessage};
pub use seeds::ImportCounts;
pub use teaching::{NewTeachingSession, TeachingChange, TeachingChanged, Visit};

use crate::clock::Clock;

/// The database, on one of its two backends, and the clock its times come from.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    clock: Clock,
}

/// One of the two backends.
#[derive(Debug, Clone)]
pub enum Db {
    /// A SQLite file.
    Sqlite {
        /// Its connections; every commit is synced.
        pool: sqlx::SqlitePool,
        /// A connection to the same file whose commits are not synced, for the index of
        /// stored instances and the forward queue only: their spool records are synced,
        /// and the index is rebuilt from them if a crash of the machine takes the last
        /// commits (`duikou_imaging::scp::recover`). A crash of the process loses nothing
        /// in WAL mode. Synced, each stored instance would wait for a second sync: on the
        /// DICOM benchmark that took (b) from 0.73 to 0.83 and (c) from 1.17 to 1.35 of
        /// DCMTK's time (README, "Benchmark").
        unsynced: sqlx::SqlitePool,
    },
    /// A PostgreSQL database.
    Postgres(sqlx::PgPool),
}

/// Runs one operation on whichever backend the store has.
macro_rules! dispatch {
    ($self:expr, $module:ident :: $op:ident ( $($arg:expr),* $(,)? )) => {
        match &$self.db {
            $crate::store::Db::Sqlite { pool, .. } => sqlite::$module::$op(pool, $($arg),*).await,
            $crate::store::Db::Postgres(pool) => postgres::$module::$op(pool, $($arg),*).await,
        }
    };
}

/// [`dispatch!`] for writes whose loss in a crash costs only a repeat: on SQLite through
/// the pool whose commits are not synced; on PostgreSQL each such operation relaxes its
/// own commit (`RELAXED_COMMIT`).
macro_rules! dispatch_relaxed {
    ($self:expr, $module:ident :: $op:ident ( $($arg:expr),* $(,)? )) => {
        match &$self.db {
            $crate::store::Db::Sqlite { unsynced, .. } => sqlite::$module::$op(unsynced, $($arg),*).await,
            $crate::store::Db::Postgres(pool) => postgres::$module::$op(pool, $($arg),*).await,
        }
    };
}

mod accounts;
mod audit;
mod availability;
mod imaging;
mod notifications;
mod outbox;
pub mod patients;
mod registry;
mod reports;
mod requests;
mod retention;
mod rooms;
mod rounds;
mod seeds;
mod teaching;

impl Store {
    /// Opens the database at `url`: `sqlite://path` (created when missing) or
    /// `postgres://…`.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Ok(Self {
                db: Db::Postgres(pool),
                clock: Clock::default(),
            })
        } else if url.starts_with("sqlite:") {
            // WAL lets readers proceed during a write; the busy timeout makes concurrent
            // writers wait instead of failing; FULL synchronous makes a commit durable.
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            // One connection: its writers queue for it rather than meet SQLite's lock,
            // whose busy handler sleeps for milliseconds.
            // A connection to a local file does not go stale: it is not pinged before each
            // use (a round trip to its worker thread for every transaction).
            let unsynced = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect_lazy_with(options.clone().synchronous(SqliteSynchronous::Normal));
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            Ok(Self {
                db: Db::Sqlite { pool, unsynced },
                clock: Clock::default(),
            })
        } else {
            anyhow::bail!("database.url must start with sqlite:// or postgres://")
        }
    }

    /// Applies the backend's migrations.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match &self.db {
            Db::Sqlite { pool, .. } => sqlx::migrate!("./migrations/sqlite").run(pool).await,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
        }
    }

    /// The PostgreSQL role the store connects as; `None` for SQLite.
    pub async fn role(&self) -> Result<Option<String>, StoreError> {
        match &self.db {
            Db::Sqlite { .. } => Ok(None),
            Db::Postgres(pool) => Ok(Some(
                sqlx::query_scalar::<_, String>("select current_user::text")
                    .fetch_one(pool)
                    .await?,
            )),
        }
    }

    /// As the database's owner (PostgreSQL), grants `role` what the gateway needs and
    /// no more: every table and sequence of the schema to read and write, but the audit
    /// log only to read, to append, and to link entries written before the chain (its
    /// `hash`, which the trigger lets be set once), and the retention periods
    /// (`retention_policy`, which the owner writes at start) only to read. Not being the
    /// owner, `role` cannot alter the tables or turn their triggers off. Run after every
    /// migration, so that new tables are granted too. Nothing to do on SQLite, where whoever can write the
    /// file can do anything to it.
    pub async fn grant_to(&self, role: &str) -> Result<(), StoreError> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(());
        };
        let role = format!("\"{}\"", role.replace('"', "\"\""));
        // One transaction, under a lock of its own: gateways starting together grant at
        // once, and PostgreSQL refuses concurrent changes of one object's privileges.
        let sql = format!(
            "begin;
             select pg_advisory_xact_lock(71102018);
             grant usage on schema public to {role};
             grant select, insert, update, delete on all tables in schema public to {role};
             grant usage, select on all sequences in schema public to {role};
             revoke update, delete, truncate, references, trigger on audit_log from {role};
             revoke insert, update, delete, truncate, references, trigger on retention_policy from {role};
             grant update (hash) on audit_log to {role};
             revoke all on _sqlx_migrations from {role};
             grant select on _sqlx_migrations to {role};
             commit;"
        );
        sqlx::raw_sql(&sql).execute(pool).await?;
        Ok(())
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match &self.db {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// The backend, for what only one of them does (PostgreSQL's LISTEN/NOTIFY).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The clock the store's times come from.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Now, by the store's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, registry::ping())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite { pool, unsynced } => {
                unsynced.close().await;
                pool.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}
