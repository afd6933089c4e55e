//! The SQLite backend: the operations of `store/sql/` compiled for [`sqlx::Sqlite`].

/// The backend's database type, used by the shared operations.
pub type Db = sqlx::Sqlite;
/// Its connection pool.
pub type Pool = sqlx::SqlitePool;

#[path = "sql/pairings.rs"]
pub mod pairings;
#[path = "sql/registry.rs"]
pub mod registry;
#[path = "sql/seeds.rs"]
pub mod seeds;
#[path = "sql/users.rs"]
pub mod users;
