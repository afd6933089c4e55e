//! Helpers for the end-to-end tests: start the real gateway on port 0 with a database of
//! its own, on SQLite or PostgreSQL, and talk to it over HTTP.
//!
//! PostgreSQL tests need `DUIKOU_TEST_POSTGRES_URL`, a URL of a server where the test may
//! create databases; `tests/run` starts a throwaway server and sets it. Each test gets a
//! fresh database.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use rand::Rng as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub use duikou;

pub mod browser;
pub mod certs;
pub mod coturn;
pub mod dcmtk;
pub mod media;
pub mod peer;
pub mod process;
pub mod scu;
pub mod signal;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's data directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// Runs each listed `async fn name(backend: Backend)` as two tests, `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )*
    };
}

/// Runs `$body` with `$conn` connected to the test database `$db` (a [`TestDb`]), on
/// whichever backend it is: one query written once for both. Panics if it cannot connect.
///
/// ```ignore
/// let path: String = on_db!(app.db, |conn| sqlx::query_scalar("select path from dicom_instance")
///     .fetch_one(&mut conn).await.unwrap());
/// ```
#[macro_export]
macro_rules! on_db {
    ($db:expr, |$conn:ident| $body:expr) => {{
        use sqlx::Connection as _;
        if $db.url.starts_with("postgres") {
            let mut $conn = sqlx::PgConnection::connect(&$db.url)
                .await
                .expect("the test database");
            $body
        } else {
            let mut $conn = sqlx::SqliteConnection::connect(&$db.url)
                .await
                .expect("the test database");
            $body
        }
    }};
}

/// A database for one test: its URL, and the directory that holds it (and the data dir).
pub struct TestDb {
    /// `sqlite://…` or `postgres://…`.
    pub url: String,
    /// The data directory of the gateway under test.
    pub dir: TempDir,
}

impl TestDb {
    /// A fresh, empty database on `backend`.
    pub async fn new(backend: Backend) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("duikou.db").display()),
            Backend::Postgres => {
                let server = std::env::var("DUIKOU_TEST_POSTGRES_URL").context(
                    "DUIKOU_TEST_POSTGRES_URL is not set: run the tests with tests/run, which starts PostgreSQL",
                )?;
                let name = format!("duikou_test_{:016x}", rand::thread_rng().r#gen::<u64>());
                let admin = sqlx::PgPool::connect(&server).await?;
                sqlx::query(&format!("create database {name}"))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                with_database(&server, &name)
            }
        };
        Ok(Self { url, dir })
    }

    /// The gateway configuration for this database: port 0, the built-in seeds.
    pub fn config(&self) -> duikou::config::Config {
        let mut config = duikou::config::Config::default();
        config.data.dir = self.dir.path().to_path_buf();
        config.database.url = Some(duikou::config::Secret::new(self.url.clone()));
        config.database.max_connections = 5;
        config.http.listen = "127.0.0.1:0".parse().expect("an address");
        config.imaging.listen = Some("127.0.0.1:0".parse().expect("an address"));
        config.signaling.media_listen = Some("127.0.0.1:0".parse().expect("an address"));
        // Small spool segments, and none prepared: hundreds of relays writing zeros
        // would slow the timing-sensitive tests running beside them. The tests of the
        // spool and of crashes ask for one prepared ([`SPOOL_SEGMENT_BYTES`]).
        config.imaging.spool_segment_bytes = SPOOL_SEGMENT_BYTES;
        config.imaging.spool_prepared_bytes = 0;
        // The tests' DICOM destinations and webhook receivers are on this machine.
        config.outbound.allow = vec![
            "127.0.0.0/8".parse().expect("a range"),
            "::1/128".parse().expect("a range"),
        ];
        // Administrators sign in with a second factor by default; the tests that are not
        // about it sign in with the password alone (`two_factor.rs` turns it back on).
        config.auth.two_factor_roles = Vec::new();
        config
    }

    /// Row counts of the registry's, the users' and the imaging index's tables, to show
    /// that something changed nothing there.
    pub async fn snapshot(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let tables = [
            "institution",
            "clinician",
            "team",
            "team_member",
            "pairing",
            "pairing_version",
            "app_user",
            "user_session",
            "login_throttle",
            "seed_import",
            "dicom_instance",
            "forward_job",
        ];
        let mut counts = Vec::new();
        for t in tables {
            let sql = format!("select count(*) from {t}");
            let n: i64 = on_db!(self, |conn| sqlx::query_scalar(&sql)
                .fetch_one(&mut conn)
                .await?);
            counts.push((t.to_owned(), n));
        }
        Ok(counts)
    }
}

/// `server` with its database name replaced by `name`.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = server
        .split_once('?')
        .map_or((server, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// The password the tests choose for an account: chosen by its creator, so not one-time.
pub fn password_for(username: &str) -> String {
    format!("{username}-chosen-password")
}

/// A gateway running in this process on port 0.
pub struct TestApp {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// The database and data directory.
    pub db: TestDb,
    /// The first administrator's bearer token, after the one-time password was replaced
    /// by [`password_for`] (empty for [`TestApp::spawn_first_run`]).
    pub admin_token: String,
    /// The first administrator's username and the one-time password printed at start.
    pub first_admin: (String, String),
    /// An HTTP client without a cookie store.
    pub client: reqwest::Client,
    /// Where the DICOM storage SCP listens.
    pub dicom: Option<std::net::SocketAddr>,
    /// Where the DICOM-over-TLS storage SCP listens, if configured.
    pub dicom_tls: Option<std::net::SocketAddr>,
    /// The gateway's clock: a test of a delay or an expiry moves it on.
    pub clock: duikou::clock::Clock,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts a gateway on a fresh database with the built-in seeds, and logs in as its
    /// first administrator.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with the configuration adjusted by `adjust`.
    pub async fn spawn_with(
        backend: Backend,
        adjust: impl FnOnce(&mut duikou::config::Config),
    ) -> Self {
        let mut app = Self::start(backend, adjust).await;
        let (username, one_time) = app.first_admin.clone();
        let token = app.login(&username, &one_time).await;
        let (status, body) = app
            .post(
                "/api/v1/me/password",
                &token,
                json!({"current": one_time, "new": password_for(&username)}),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        app.admin_token = token;
        app
    }

    /// A gateway as it is at its very first start: the first administrator still has
    /// the one-time password ([`TestApp::first_admin`]) and nobody is logged in.
    pub async fn spawn_first_run(backend: Backend) -> Self {
        Self::start(backend, |_| {}).await
    }

    async fn start(backend: Backend, adjust: impl FnOnce(&mut duikou::config::Config)) -> Self {
        if let Ok(filter) = std::env::var("DUIKOU_TEST_LOG") {
            duikou::telemetry::init(&duikou::config::LogConfig {
                filter,
                format: "text".into(),
            });
        }
        let db = TestDb::new(backend).await.expect("a test database");
        let mut config = db.config();
        adjust(&mut config);
        let tls = duikou::startup::tls_config(&config)
            .await
            .expect("the TLS configuration loads");
        let prepared = duikou::startup::prepare(config)
            .await
            .expect("the gateway prepares");
        assert!(
            prepared.first_admin.is_some(),
            "a first administrator on an empty database"
        );
        Self::serve(db, prepared, tls)
    }

    /// Serves `prepared` (made on `db`) on a free port, over HTTPS with `tls`.
    pub fn serve(
        db: TestDb,
        prepared: duikou::startup::Prepared,
        tls: Option<axum_server::tls_rustls::RustlsConfig>,
    ) -> Self {
        let first_admin = prepared.first_admin.clone().unwrap_or_default();
        let dicom = prepared.dicom_addr();
        let dicom_tls = prepared.dicom_tls_addr();
        let clock = prepared.store.clock().clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(duikou::startup::run(listener, prepared, tls, async {
            let _ = stopped.await;
        }));
        // With `http.self_signed` the test trusts the certificate the gateway made.
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(scheme == "https")
            .build()
            .expect("an HTTP client");
        Self {
            base,
            db,
            admin_token: String::new(),
            first_admin,
            client,
            dicom,
            dicom_tls,
            clock,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Logs in and returns the bearer token; panics unless the login succeeds.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login of {username}: {body}");
        body["token"].as_str().expect("a token").to_owned()
    }

    /// Sends a request, with a bearer token and a JSON body if given, and returns the
    /// status and the body parsed as JSON (`Value::Null` when empty, a string when not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the gateway answers");
        read(response).await
    }

    /// `GET` as `token`.
    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// `POST` JSON as `token`.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// `PATCH` JSON as `token`.
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    /// Creates an account through the API as the administrator, described by `account`
    /// (username, display_name, institution_id, roles, clinician_id), with the password
    /// [`password_for`] its username, chosen and so not one-time. Returns the created
    /// account's body, with that `password` added.
    pub async fn account(&self, mut account: Value) -> Value {
        let username = account["username"].as_str().expect("a username").to_owned();
        account["password"] = password_for(&username).into();
        let (status, mut body) = self.post("/api/v1/users", &self.admin_token, account).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["password"] = password_for(&username).into();
        body
    }

    /// Creates an account through the API as the administrator and logs it in; returns
    /// the user's id and token.
    pub async fn user(&self, username: &str, institution_id: i64, roles: &[&str]) -> (i64, String) {
        let body = self
            .account(json!({"username": username, "display_name": username, "institution_id": institution_id, "roles": roles}))
            .await;
        let token = self.login(username, &password_for(username)).await;
        (body["user"]["id"].as_i64().expect("an id"), token)
    }

    /// The id of the one institution called `name`.
    pub async fn institution_id(&self, name: &str) -> i64 {
        let (status, body) = self
            .get(
                &format!("/api/v1/institutions?name={}", urlencode(name)),
                &self.admin_token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let exact: Vec<&Value> = body
            .as_array()
            .expect("a list")
            .iter()
            .filter(|i| i["name"] == name)
            .collect();
        assert_eq!(
            exact.len(),
            1,
            "exactly one institution is called {name}: {body}"
        );
        exact[0]["id"].as_i64().expect("an id")
    }

    /// Stops the gateway gracefully and waits for it.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    /// Stops the gateway gracefully and hands back its database and data directory, for
    /// a test that starts on them again.
    pub async fn stop_keeping_data(mut self) -> TestDb {
        self.halt().await;
        self.db
    }

    async fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task")
                .expect("the server stops cleanly");
        }
    }
}

/// Status and JSON body of a response.
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("a body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// How long a test peer's `RTCPeerConnection::close` may take. webrtc-rs's close can
/// hang for good now and then (as pion's, which it ports, has: pion/webrtc#1430, #2404);
/// a test that only lets its peer go must not hang with it.
pub const CLOSE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The spool segment size of the tests' configuration ([`TestDb::config`]).
pub const SPOOL_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;

/// The DICOM spool's prepared room and whether it is preparing, from the `/metrics` of
/// the gateway at `base`.
pub async fn spool_metrics(base: &str) -> (u64, bool) {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics read");
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in the metrics"))
    };
    (
        value("duikou_dicom_spool_prepared_bytes"),
        value("duikou_dicom_spool_preparing") == 1,
    )
}

/// Waits until the spool of the gateway at `base` has at least `bytes` prepared and
/// prepares nothing.
pub async fn until_spool_prepared(base: &str, bytes: u64) {
    eventually(
        std::time::Duration::from_secs(60),
        "the spool prepared",
        async || match spool_metrics(base).await {
            (prepared, false) if prepared >= bytes => Ok(()),
            (prepared, preparing) => Err(format!("{prepared} bytes, preparing: {preparing}")),
        },
    )
    .await;
}

/// Asks `check` every 50 ms, for at most `within`, until it answers `Ok`, and returns
/// that answer. Past `within` it panics, naming `what` did not happen and what `check`
/// saw the last time (its `Err`).
///
/// For what the gateway reaches in its own time (a queue delivered, a row written by a
/// worker). It proves nothing about what has *not* happened: for that, wait for an event
/// ordered after the moment in question.
pub async fn eventually<T, E: std::fmt::Display>(
    within: std::time::Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        match check().await {
            Ok(answer) => return answer,
            Err(seen) => assert!(
                std::time::Instant::now() < deadline,
                "{what}: not within {within:?}; last seen: {seen}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// How many records the spool under `dicom_dir` holds: instances synced, whether indexed
/// or not. A refused or cut-off instance leaves none, so this equals the number indexed.
pub fn spool_records(dicom_dir: &Path) -> usize {
    duikou_imaging::spool::Spool::records(dicom_dir)
        .expect("the spool reads")
        .len()
}

/// The bytes the relay keeps for the instance `uid` (indexed in `db`, spooled under
/// `dicom_dir`).
pub async fn stored_bytes(db: &TestDb, dicom_dir: &Path, uid: &str) -> Vec<u8> {
    let query = "select path, byte_offset, size from dicom_instance where sop_instance_uid = $1";
    let (path, offset, length): (String, i64, i64) = on_db!(db, |conn| sqlx::query_as(query)
        .bind(uid)
        .fetch_one(&mut conn)
        .await
        .expect("the instance is indexed"));
    let stored = duikou_imaging::spool::Stored {
        path: dicom_dir.join(path),
        offset: u64::try_from(offset).unwrap(),
        length: u64::try_from(length).unwrap(),
    };
    stored.read().expect("the stored instance reads")
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Asserts that an answer is a refusal under the program rule `rule` (the last part of
/// its problem type) with `status`.
#[track_caller]
pub fn assert_refused(
    status: reqwest::StatusCode,
    problem: &serde_json::Value,
    expected: reqwest::StatusCode,
    rule: &str,
) {
    assert_eq!(status, expected, "{problem}");
    let named = problem["type"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default();
    assert_eq!(named, rule, "{problem}");
}

/// The repository's root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `duikou` binary, built with cargo if it is not there yet. It is built as
/// `tests/run` builds (the whole workspace, all targets), so that after it this is a
/// check of a second: `-p duikou --bin duikou` alone unifies the dependencies' features
/// differently (without the dev-dependencies') and rebuilt the gateway, for minutes in a
/// fresh clone, inside the first test that started a relay. It is built without the
/// variables cargo sets for a test (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`): ring's build
/// script reruns when `CARGO_MANIFEST_DIR` differs, and rebuilding everything above ring
/// took 80 s inside the first test to start a relay, and as long again at the next build
/// from a shell.
pub fn duikou_binary() -> PathBuf {
    workspace_binary("duikou")
}

/// The benchmark's binary, `duikou-bench`, built as [`duikou_binary`] is.
pub fn bench_binary() -> PathBuf {
    workspace_binary("duikou-bench")
}

/// The workspace's binary `name`, built with the whole workspace (see [`duikou_binary`]).
fn workspace_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    let binary = target.join("debug").join(name);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name == "CARGO_MANIFEST_DIR" || name.starts_with("CARGO_PKG_") {
            build.env_remove(name.as_ref());
        }
    }
    let status = build
        .args(["build", "--quiet", "--workspace", "--all-targets"])
        .current_dir(workspace_root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the {name} binary failed");
    binary
}

/// This process's resident memory, in bytes (`VmRSS` of `/proc/self/status`): a gateway
/// under test runs in the test's process.
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// Runs `work` while sampling this process's resident memory every 5 ms; its output and
/// the highest figure seen, in bytes.
pub async fn peak_resident_while<T>(work: impl std::future::Future<Output = T>) -> (T, u64) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let peak = std::sync::Arc::new(AtomicU64::new(resident_bytes()));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(resident_bytes(), Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    let out = work.await;
    sampling.abort();
    peak.fetch_max(resident_bytes(), Ordering::Relaxed);
    (out, peak.load(Ordering::Relaxed))
}
