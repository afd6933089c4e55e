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
//! [`Store`] dispatches each operation to its backend.

mod error;
// The same `sql/` files are compiled once per backend, on purpose (see above).
#[allow(clippy::duplicate_mod)]
pub mod postgres;
#[allow(clippy::duplicate_mod)]
pub mod sqlite;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use error::StoreError;
pub use imaging::{
    ClaimedForward, DicomNode, ForwardFilter, ForwardOutcome, ForwardState, ForwardTarget,
    ForwardView, Forwarded, ImagingDestination, Indexing, NewForward, VisibleInstance,
};
pub use rooms::Presence;

use crate::booking::{
    AttachmentInfo, Attendance, Availability, AvailabilityException, ConsultRequest, Enrolment,
    Opinion, RequestEvent, RequestKind, RequestOrder, RequestState, RoundPatient, TeachingSession,
    Urgency, WardRound,
};
use crate::clock::Clock;
use crate::domain::{
    Clinician, Institution, Pairing, PairingStatus, PairingVersion, Roles, Service, Services,
    Supporter, Team, User,
};
use crate::seeds::SeedSet;

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

mod imaging;
mod rooms;

/// Filters for listing institutions.
#[derive(Debug, Clone, Default)]
pub struct InstitutionFilter {
    /// Institutions in this region or below it.
    pub region: Option<String>,
    /// Level name.
    pub level: Option<String>,
    /// Kind name.
    pub kind: Option<String>,
    /// Remote flag.
    pub remote: Option<bool>,
    /// Part of the name.
    pub name: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// Filters for listing clinicians.
#[derive(Debug, Clone, Default)]
pub struct ClinicianFilter {
    /// Unit.
    pub institution_id: Option<i64>,
    /// Part of the specialty.
    pub specialty: Option<String>,
    /// Stored rank names that qualify.
    pub ranks: Option<Vec<String>>,
    /// Part of the name.
    pub name: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// Filters for listing pairings.
#[derive(Debug, Clone, Default)]
pub struct PairingFilter {
    /// The supporting side.
    pub supporter: Option<Supporter>,
    /// The supported institution: pairings on it directly or on a region containing it.
    pub supported_institution: Option<(i64, String)>,
    /// A covered service.
    pub service: Option<Service>,
    /// A date inside the period.
    pub date: Option<NaiveDate>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// A new institution.
#[derive(Debug, Clone)]
pub struct NewInstitution {
    /// Name.
    pub name: String,
    /// Level name.
    pub level: String,
    /// Kind name.
    pub kind: String,
    /// Region path.
    pub region: String,
    /// Remote flag.
    pub remote: bool,
}

/// A new clinician.
#[derive(Debug, Clone)]
pub struct NewClinician {
    /// Name.
    pub name: String,
    /// `M` or `F`.
    pub sex: Option<String>,
    /// Unit.
    pub institution_id: i64,
    /// Title as written.
    pub title: String,
    /// Stored rank name.
    pub title_rank: String,
    /// Specialty.
    pub specialty: String,
    /// Licence number.
    pub licence_number: Option<String>,
    /// Years of independent practice.
    pub practice_years: Option<i32>,
}

/// A new team.
#[derive(Debug, Clone)]
pub struct NewTeam {
    /// Name.
    pub name: String,
    /// Unit.
    pub institution_id: i64,
    /// Leader, also a member.
    pub leader_id: i64,
    /// Members besides the leader.
    pub member_ids: Vec<i64>,
}

/// The content of a pairing version, as an administrator sets it.
#[derive(Debug, Clone)]
pub struct PairingDraft {
    /// Supporting side.
    pub supporter: Supporter,
    /// The supported institution; set exactly when `supported_region` is not.
    pub supported_institution: Option<i64>,
    /// The supported region; set exactly when `supported_institution` is not.
    pub supported_region: Option<String>,
    /// Stored services.
    pub services: String,
    /// First day.
    pub valid_from: NaiveDate,
    /// Last day.
    pub valid_to: NaiveDate,
    /// Whether it stands or was ended.
    pub status: PairingStatus,
}

/// Who changes a pairing, when and why.
#[derive(Debug, Clone)]
pub struct Change {
    /// The administrator.
    pub by: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: Option<String>,
    /// `changed` or `ended`.
    pub action: &'static str,
}

/// A new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// Institution.
    pub institution_id: i64,
    /// Clinician record.
    pub clinician_id: Option<i64>,
    /// Roles.
    pub roles: Roles,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// A new request draft.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// What is asked for.
    pub kind: RequestKind,
    /// The creating clinician.
    pub requester_user_id: i64,
    /// Their institution.
    pub requester_institution_id: i64,
    /// The pairing that designates the supporter.
    pub pairing_id: i64,
    /// The designated supporter.
    pub supporter: Supporter,
    /// The institution that answers.
    pub supporter_institution_id: i64,
    /// Urgency.
    pub urgency: Urgency,
    /// Whether the requesting institution is remote.
    pub remote: bool,
    /// The content as JSON.
    pub content: String,
}

/// Columns a step changes; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct RequestUpdate {
    /// When.
    pub at: DateTime<Utc>,
    /// New state.
    pub state: Option<RequestState>,
    /// New content JSON.
    pub content: Option<String>,
    /// New urgency.
    pub urgency: Option<Urgency>,
    /// Re-resolved pairing.
    pub pairing_id: Option<i64>,
    /// Re-resolved supporter.
    pub supporter: Option<Supporter>,
    /// Re-resolved answering institution.
    pub supporter_institution_id: Option<i64>,
    /// Assigned consultant.
    pub consultant_id: Option<i64>,
    /// Decline reason code.
    pub decline_code: Option<String>,
    /// Decline reason text.
    pub decline_text: Option<String>,
    /// Session start.
    pub scheduled_start: Option<DateTime<Utc>>,
    /// Session end.
    pub scheduled_end: Option<DateTime<Utc>>,
    /// Accept-or-decline deadline.
    pub decision_due_at: Option<DateTime<Utc>>,
    /// Submission time.
    pub submitted_at: Option<DateTime<Utc>>,
    /// Notifications to queue in the same transaction.
    pub outbox: Vec<OutboxMessage>,
    /// A consultant's slot to book in the same transaction: (clinician, start, end).
    /// Fails with a conflict when somebody booked it first.
    pub book_slot: Option<(i64, DateTime<Utc>, DateTime<Utc>)>,
}

/// A step to record: from, to, who, when, what else.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// State before; none at creation.
    pub from: Option<RequestState>,
    /// State after.
    pub to: RequestState,
    /// The user; none for duikou itself.
    pub actor: Option<i64>,
    /// When.
    pub at: DateTime<Utc>,
    /// A note without patient data.
    pub note: Option<String>,
}

/// What happens to the opinion in the same transaction as a request change.
#[derive(Debug, Clone)]
pub enum OpinionChange {
    /// Writes the draft (creating it as the next version when there is none).
    Draft {
        /// The consultant.
        consultant_id: i64,
        /// The writing user.
        author: i64,
        /// The text.
        body: String,
        /// The signed version it amends.
        amends_id: Option<i64>,
    },
    /// Signs the draft.
    Sign {
        /// The draft.
        opinion_id: i64,
    },
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    /// Requests of this requesting institution.
    pub requester_institution_id: Option<i64>,
    /// Requests (drafts excluded) addressed to this institution.
    pub supporter_institution_id: Option<i64>,
    /// Only these states.
    pub states: Option<Vec<RequestState>>,
    /// In which order.
    pub order: RequestOrder,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// One audit log entry.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub user_id: Option<i64>,
    /// Their roles at the time.
    pub roles: String,
    /// Their institution.
    pub institution_id: Option<i64>,
    /// What they did: `read`, `list`, `create`, `update`, or a workflow step.
    pub action: String,
    /// On what kind of object.
    pub object_kind: String,
    /// Which one.
    pub object_id: Option<i64>,
    /// `allowed` or `denied`.
    pub outcome: String,
    /// Why it was denied, or what changed; never patient data.
    pub detail: Option<String>,
}

/// Which audit entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// By user.
    pub user_id: Option<i64>,
    /// By institution.
    pub institution_id: Option<i64>,
    /// By object kind.
    pub object_kind: Option<String>,
    /// By object id.
    pub object_id: Option<i64>,
    /// By outcome.
    pub outcome: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// A notification to send to an institution's webhook.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    /// The receiving institution.
    pub institution_id: i64,
    /// `submitted`, `accepted`, `declined`, `scheduled`, `opinion_signed`, `overdue`.
    pub event: String,
    /// The JSON body; never patient data.
    pub payload: String,
    /// At most one message per key.
    pub dedupe_key: Option<String>,
}

/// A claimed message, with where and how to send it.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    /// Message id (sent as `X-Duikou-Delivery`, for receivers to drop repeats).
    pub id: i64,
    /// The event.
    pub event: String,
    /// The body.
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: i32,
    /// The webhook URL.
    pub url: String,
    /// The shared secret for the signature.
    pub secret: String,
}

/// A new teaching session.
#[derive(Debug, Clone)]
pub struct NewTeachingSession {
    /// Presenter.
    pub presenter_clinician_id: i64,
    /// Presenter's institution.
    pub presenter_institution_id: i64,
    /// Topic.
    pub topic: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Places.
    pub capacity: i32,
    /// The creating user.
    pub created_by: i64,
}

/// An on-site visit to a village.
#[derive(Debug, Clone)]
pub struct Visit {
    /// Visit id.
    pub id: i64,
    /// The village station.
    pub village_id: i64,
    /// The day (China).
    pub visit_date: NaiveDate,
    /// The visiting team.
    pub team_id: Option<i64>,
    /// Or the visiting clinician.
    pub clinician_id: Option<i64>,
    /// Services given.
    pub services: Services,
    /// Notes, without patient data.
    pub notes: Option<String>,
}

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

    // Registry.

    /// Institutions matching `filter`, by id.
    pub async fn institutions(
        &self,
        filter: &InstitutionFilter,
    ) -> Result<Vec<Institution>, StoreError> {
        dispatch!(self, registry::institutions(filter))
    }

    /// One institution.
    pub async fn institution(&self, id: i64) -> Result<Option<Institution>, StoreError> {
        dispatch!(self, registry::institution(id))
    }

    /// Institutions with exactly this name.
    pub async fn institutions_named(&self, name: &str) -> Result<Vec<Institution>, StoreError> {
        dispatch!(self, registry::institutions_named(name))
    }

    /// Creates an institution.
    pub async fn create_institution(
        &self,
        new: &NewInstitution,
    ) -> Result<Institution, StoreError> {
        dispatch!(self, registry::create_institution(new, self.now()))
    }

    /// Clinicians matching `filter`, by id.
    pub async fn clinicians(&self, filter: &ClinicianFilter) -> Result<Vec<Clinician>, StoreError> {
        dispatch!(self, registry::clinicians(filter))
    }

    /// One clinician.
    pub async fn clinician(&self, id: i64) -> Result<Option<Clinician>, StoreError> {
        dispatch!(self, registry::clinician(id))
    }

    /// Updates a clinician's licence number and years of practice.
    pub async fn update_clinician_credentials(
        &self,
        id: i64,
        licence_number: Option<&str>,
        practice_years: Option<i32>,
    ) -> Result<Option<Clinician>, StoreError> {
        dispatch!(
            self,
            registry::update_credentials(id, licence_number, practice_years)
        )
    }

    /// Creates a clinician.
    pub async fn create_clinician(&self, new: &NewClinician) -> Result<Clinician, StoreError> {
        dispatch!(self, registry::create_clinician(new, self.now()))
    }

    /// Teams, optionally of one institution.
    pub async fn teams(&self, institution_id: Option<i64>) -> Result<Vec<Team>, StoreError> {
        dispatch!(self, registry::teams(institution_id))
    }

    /// One team.
    pub async fn team(&self, id: i64) -> Result<Option<Team>, StoreError> {
        dispatch!(self, registry::team(id))
    }

    /// Creates a team and its memberships in one transaction.
    pub async fn create_team(&self, new: &NewTeam) -> Result<Team, StoreError> {
        dispatch!(self, registry::create_team(new, self.now()))
    }

    // Pairings.

    /// Pairings matching `filter`, by id.
    pub async fn pairings(&self, filter: &PairingFilter) -> Result<Vec<Pairing>, StoreError> {
        dispatch!(self, pairings::pairings(filter))
    }

    /// One pairing.
    pub async fn pairing(&self, id: i64) -> Result<Option<Pairing>, StoreError> {
        dispatch!(self, pairings::pairing(id))
    }

    /// Every version of a pairing, oldest first.
    pub async fn pairing_history(&self, id: i64) -> Result<Vec<PairingVersion>, StoreError> {
        dispatch!(self, pairings::history(id))
    }

    /// Creates a pairing and its first version in one transaction.
    pub async fn create_pairing(
        &self,
        draft: &PairingDraft,
        by: i64,
    ) -> Result<Pairing, StoreError> {
        dispatch!(self, pairings::create(draft, by, self.now()))
    }

    /// Replaces version `expected_version` of a pairing with `draft`, keeping the old one
    /// in history. Fails with a conflict when someone changed it meanwhile.
    pub async fn change_pairing(
        &self,
        id: i64,
        expected_version: i32,
        draft: &PairingDraft,
        change: &Change,
    ) -> Result<Pairing, StoreError> {
        dispatch!(self, pairings::change(id, expected_version, draft, change))
    }

    /// Pairings covering `institution_id` (directly, or through a region containing
    /// `region`) for `service` on `date`.
    pub async fn pairings_covering(
        &self,
        institution_id: i64,
        region: &str,
        service: Service,
        date: NaiveDate,
    ) -> Result<Vec<Pairing>, StoreError> {
        dispatch!(
            self,
            pairings::covering(institution_id, region, service, date)
        )
    }

    // Users and sessions.

    /// Number of accounts.
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        dispatch!(self, users::count())
    }

    /// Creates an account.
    pub async fn create_user(&self, new: &NewUser) -> Result<User, StoreError> {
        dispatch!(self, users::create(new, self.now()))
    }

    /// Creates `new` only if there is no account at all, atomically; `None` otherwise.
    pub async fn create_first_user(&self, new: &NewUser) -> Result<Option<User>, StoreError> {
        dispatch!(self, users::create_first(new, self.now()))
    }

    /// One account.
    pub async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        dispatch!(self, users::user(id))
    }

    /// An account and its password hash, by username.
    pub async fn user_with_hash(
        &self,
        username: &str,
    ) -> Result<Option<(User, String)>, StoreError> {
        dispatch!(self, users::with_hash(username))
    }

    /// Accounts, optionally of one institution.
    pub async fn users(&self, institution_id: Option<i64>) -> Result<Vec<User>, StoreError> {
        dispatch!(self, users::list(institution_id))
    }

    /// Replaces a password hash and ends the user's sessions.
    pub async fn set_password(&self, user_id: i64, hash: &str) -> Result<(), StoreError> {
        dispatch!(self, users::set_password(user_id, hash))
    }

    /// Records a session by the hash of its token.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(
            self,
            users::create_session(token_hash, user_id, self.now(), expires_at)
        )
    }

    /// The user of an unexpired session.
    pub async fn session_user(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        dispatch!(self, users::session_user(token_hash, self.now()))
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        dispatch!(self, users::delete_session(token_hash))
    }

    /// Counts a login attempt under each of `keys` before its password is checked;
    /// until when it is held back instead, if it is (see
    /// `sql::users::count_login_attempt`).
    pub async fn count_login_attempt(
        &self,
        keys: &[(String, u32)],
        window_seconds: i64,
        max_delay_seconds: i64,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        dispatch!(
            self,
            users::count_login_attempt(keys, window_seconds, max_delay_seconds, self.now())
        )
    }

    /// After a successful login: forgets the attempts under `forget` and takes one back
    /// under `uncount`.
    pub async fn login_succeeded(
        &self,
        forget: &str,
        uncount: (&str, u32),
    ) -> Result<(), StoreError> {
        dispatch!(self, users::login_succeeded(forget, uncount))
    }

    // Requests.

    /// Creates a draft and records the step.
    pub async fn create_request(
        &self,
        new: &NewRequest,
        step: &StepRecord,
    ) -> Result<i64, StoreError> {
        dispatch!(self, requests::create(new, step))
    }

    /// One request.
    pub async fn request(&self, id: i64) -> Result<Option<ConsultRequest>, StoreError> {
        dispatch!(self, requests::request(id))
    }

    /// Requests matching `filter`, in its order.
    pub async fn requests(
        &self,
        filter: &RequestFilter,
    ) -> Result<Vec<ConsultRequest>, StoreError> {
        dispatch!(self, requests::requests(filter))
    }

    /// Changes a request still at `expected` version, records the step and the opinion
    /// change, in one transaction.
    pub async fn update_request(
        &self,
        id: i64,
        expected: i32,
        update: &RequestUpdate,
        step: Option<&StepRecord>,
        opinion: Option<&OpinionChange>,
    ) -> Result<(), StoreError> {
        dispatch!(self, requests::update(id, expected, update, step, opinion))
    }

    /// The steps of a request.
    pub async fn request_events(&self, id: i64) -> Result<Vec<RequestEvent>, StoreError> {
        dispatch!(self, requests::events(id))
    }

    /// Every opinion version of a request, drafts included.
    pub async fn opinions(&self, request_id: i64) -> Result<Vec<Opinion>, StoreError> {
        dispatch!(self, requests::opinions(request_id))
    }

    /// Publishes a weekly availability rule.
    pub async fn add_availability(&self, rule: &Availability, by: i64) -> Result<i64, StoreError> {
        dispatch!(self, availability::add_rule(rule, by, self.now()))
    }

    /// A consultant's weekly rules.
    pub async fn availability(&self, clinician_id: i64) -> Result<Vec<Availability>, StoreError> {
        dispatch!(self, availability::rules(clinician_id))
    }

    /// Records an exception to a consultant's availability.
    pub async fn add_availability_exception(
        &self,
        e: &AvailabilityException,
        by: i64,
    ) -> Result<i64, StoreError> {
        dispatch!(self, availability::add_exception(e, by, self.now()))
    }

    /// A consultant's exceptions between two days.
    pub async fn availability_exceptions(
        &self,
        clinician_id: i64,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<AvailabilityException>, StoreError> {
        dispatch!(self, availability::exceptions(clinician_id, from, to))
    }

    /// Start instants of a consultant's booked slots in `[from, to)`.
    pub async fn booked_slots(
        &self,
        clinician_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        dispatch!(self, availability::booked(clinician_id, from, to))
    }

    // Teaching and visits.

    /// Creates a teaching session.
    pub async fn create_teaching_session(&self, s: &NewTeachingSession) -> Result<i64, StoreError> {
        dispatch!(self, teaching::create_session(s, self.now()))
    }

    /// One teaching session.
    pub async fn teaching_session(&self, id: i64) -> Result<Option<TeachingSession>, StoreError> {
        dispatch!(self, teaching::session(id))
    }

    /// Teaching sessions of some presenting institutions (comma-framed ids) or all.
    pub async fn teaching_sessions(
        &self,
        institutions: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<TeachingSession>, StoreError> {
        dispatch!(self, teaching::sessions(institutions, from, to))
    }

    /// Enrols a trainee; returns `enrolled` or `waiting`.
    pub async fn enrol(
        &self,
        session_id: i64,
        user_id: i64,
        institution_id: i64,
    ) -> Result<String, StoreError> {
        dispatch!(
            self,
            teaching::enrol(session_id, user_id, institution_id, self.now())
        )
    }

    /// Withdraws a trainee and promotes the first waiting one.
    pub async fn withdraw(&self, session_id: i64, user_id: i64) -> Result<bool, StoreError> {
        dispatch!(self, teaching::withdraw(session_id, user_id))
    }

    /// A session's enrolments.
    pub async fn enrolments(&self, session_id: i64) -> Result<Vec<Enrolment>, StoreError> {
        dispatch!(self, teaching::enrolments(Some(session_id), None))
    }

    /// A trainee's enrolments, in every session.
    pub async fn enrolments_of(&self, user_id: i64) -> Result<Vec<Enrolment>, StoreError> {
        dispatch!(self, teaching::enrolments(None, Some(user_id)))
    }

    /// Records a stretch of attendance.
    pub async fn record_attendance(
        &self,
        a: &Attendance,
        by: Option<i64>,
    ) -> Result<(), StoreError> {
        dispatch!(self, teaching::record_attendance(a, by))
    }

    /// Attendance of a user or of a session.
    pub async fn attendance(
        &self,
        user_id: Option<i64>,
        session_id: Option<i64>,
    ) -> Result<Vec<Attendance>, StoreError> {
        dispatch!(self, teaching::attendance(user_id, session_id))
    }

    /// Records an on-site visit.
    pub async fn add_visit(&self, v: &Visit, by: i64) -> Result<i64, StoreError> {
        dispatch!(self, teaching::add_visit(v, by, self.now()))
    }

    /// Visits to some villages (comma-framed ids) between two days.
    pub async fn visits(
        &self,
        villages: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<Visit>, StoreError> {
        dispatch!(self, teaching::visits(villages, from, to))
    }

    // Reports.

    /// Requests of a pairing submitted in a range, by state.
    pub async fn report_states(
        &self,
        pairing_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        dispatch!(self, reports::states(pairing_id, from, to))
    }

    /// Steps of a pairing's requests submitted in a range.
    pub async fn report_steps(
        &self,
        pairing_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(i64, RequestState, DateTime<Utc>)>, StoreError> {
        dispatch!(self, reports::steps(pairing_id, from, to))
    }

    /// Sessions held in a range for requests of some institutions (comma-framed ids).
    pub async fn report_sessions_held(
        &self,
        institutions: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(i64, DateTime<Utc>)>, StoreError> {
        dispatch!(self, reports::sessions_held(institutions, from, to))
    }

    /// Records an attachment (its bytes already stored); returns it as kept, which for
    /// bytes the request already has is the attachment made first, under its name.
    pub async fn add_attachment(
        &self,
        a: &AttachmentInfo,
        by: i64,
    ) -> Result<AttachmentInfo, StoreError> {
        dispatch!(self, attachments::add(a, by))
    }

    /// A request's attachments.
    pub async fn attachments(&self, request_id: i64) -> Result<Vec<AttachmentInfo>, StoreError> {
        dispatch!(self, attachments::list(request_id))
    }

    /// Creates a weekly series of ward rounds in one transaction.
    pub async fn create_ward_rounds(
        &self,
        rounds: &[WardRound],
        by: i64,
    ) -> Result<Vec<i64>, StoreError> {
        dispatch!(self, rounds::create_series(rounds, by, self.now()))
    }

    /// One ward round.
    pub async fn ward_round(&self, id: i64) -> Result<Option<WardRound>, StoreError> {
        dispatch!(self, rounds::round_by_id(id))
    }

    /// Ward rounds of some supported institutions or teams (comma-framed ids) in a range.
    pub async fn ward_rounds(
        &self,
        institutions: &str,
        teams: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<WardRound>, StoreError> {
        dispatch!(self, rounds::rounds(institutions, teams, from, to))
    }

    /// Adds a patient to a round.
    pub async fn add_round_patient(
        &self,
        round_id: i64,
        bed: &str,
        name: &str,
        question: &str,
    ) -> Result<i64, StoreError> {
        dispatch!(self, rounds::add_patient(round_id, bed, name, question))
    }

    /// A round's patients.
    pub async fn round_patients(&self, round_id: i64) -> Result<Vec<RoundPatient>, StoreError> {
        dispatch!(self, rounds::patients(round_id))
    }

    /// Writes the team's note on a patient.
    pub async fn note_round_patient(
        &self,
        round_id: i64,
        patient_id: i64,
        note: &str,
        by: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(
            self,
            rounds::note(round_id, patient_id, note, by, self.now())
        )
    }

    // Notifications.

    /// Sets an institution's webhook.
    pub async fn set_webhook(
        &self,
        institution_id: i64,
        url: &str,
        secret: &str,
    ) -> Result<(), StoreError> {
        dispatch!(
            self,
            outbox::set_webhook(institution_id, url, secret, self.now())
        )
    }

    /// Queues messages.
    pub async fn enqueue(&self, messages: &[OutboxMessage]) -> Result<(), StoreError> {
        dispatch!(self, outbox::enqueue_now(messages, self.now()))
    }

    /// Claims due messages until `lease_until`.
    pub async fn claim_deliveries(
        &self,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        dispatch!(self, outbox::claim(self.now(), lease_until, limit))
    }

    /// Marks a message delivered.
    pub async fn mark_delivered(&self, id: i64) -> Result<(), StoreError> {
        dispatch!(self, outbox::delivered(id, self.now()))
    }

    /// Records a failed delivery.
    pub async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        next: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, outbox::failed(id, error, next))
    }

    /// Submitted requests past their deadline.
    pub async fn overdue_requests(&self) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        dispatch!(self, outbox::overdue(self.now()))
    }

    /// (event, attempts, delivered) of the messages whose key starts with `prefix`.
    pub async fn outbox_status(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, i32, bool)>, StoreError> {
        dispatch!(self, outbox::status(prefix))
    }

    /// Appends to the audit log.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        dispatch!(self, audit::append(entry))
    }

    /// Reads the audit log.
    pub async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        dispatch!(self, audit::entries(filter))
    }

    // Seeds.

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
}
