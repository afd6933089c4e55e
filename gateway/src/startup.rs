//! Building the application from its configuration, and running it until shutdown.
//!
//! `main` calls [`prepare`] then [`run`]; the end-to-end tests call the same two functions
//! on port 0, so what they test is what runs.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;

use crate::auth::{generate_password, hash_password};
use crate::config::Config;
use crate::domain::{Role, Roles};
use crate::http::{self, AppState, Metrics};
use crate::seeds::{self, SeedSource};
use crate::store::{NewInstitution, NewUser, Store};
use crate::tls;
use duikou_signaling::hub::HubConfig;
use duikou_signaling::room::RoomConfig;
use duikou_signaling::server::{IceConfig, MediaConfig, ShellConfig, Signaling, TokenClock};

/// A migrated, seeded store and what the first start created.
pub struct Prepared {
    /// The configuration.
    pub config: Arc<Config>,
    /// The database.
    pub store: Store,
    /// On the first start only: the administrator's username and one-time password, for
    /// the caller to print once.
    pub first_admin: Option<(String, String)>,
    /// The DICOM listener, bound (so that port 0 has a number) but not yet serving.
    pub dicom: Option<std::net::TcpListener>,
    /// The DICOM-over-TLS listener, likewise.
    pub dicom_tls: Option<std::net::TcpListener>,
}

impl Prepared {
    /// Where the DICOM storage SCP listens.
    pub fn dicom_addr(&self) -> Option<std::net::SocketAddr> {
        self.dicom.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Where the DICOM-over-TLS storage SCP listens.
    pub fn dicom_tls_addr(&self) -> Option<std::net::SocketAddr> {
        self.dicom_tls.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// Creates the data directory, opens and migrates the database, imports the seeds when
/// they have not been imported, and creates the first administrator on an empty database.
pub async fn prepare(config: Config) -> anyhow::Result<Prepared> {
    if config.imaging.forward_nice.is_some() {
        tracing::warn!("imaging.forward_nice is no longer used and can be removed");
    }
    std::fs::create_dir_all(&config.data.dir)
        .with_context(|| format!("creating the data directory {}", config.data.dir.display()))?;
    let store = open_store(&config).await?;
    tracing::info!(backend = store.backend(), "database ready");
    if config.seeds.import {
        let source = match &config.seeds.dir {
            Some(dir) => SeedSource::from_dir(dir)?,
            None => SeedSource::embedded(),
        };
        import_seeds(&store, &source).await?;
    }
    let first_admin = create_first_admin(&store, &config).await?;
    let bind = |addr: Option<std::net::SocketAddr>| -> anyhow::Result<_> {
        match addr {
            Some(addr) => {
                let listener = std::net::TcpListener::bind(addr)
                    .with_context(|| format!("binding the DICOM port {addr}"))?;
                listener.set_nonblocking(true)?;
                Ok(Some(listener))
            }
            None => Ok(None),
        }
    };
    let dicom = bind(config.imaging.listen)?;
    let dicom_tls = bind(config.imaging.tls_listen)?;
    Ok(Prepared {
        dicom,
        dicom_tls,
        config: Arc::new(config),
        store,
        first_admin,
    })
}

/// Opens the database and brings it to the current schema: as its own role, or, with
/// `database.owner_url`, as the owner, who then grants the gateway's role what it needs
/// (see [`Store::grant_to`]).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url(), config.database.max_connections)
        .await
        .context("opening the database")?;
    match &config.database.owner_url {
        None => {
            store.migrate().await.context("applying migrations")?;
            crate::retention::sync(&store, &config.retention).await?;
        }
        Some(owner) => {
            let role = store.role().await?.context(
                "database.owner_url is for PostgreSQL, where the gateway's role differs from the owner",
            )?;
            let owner = Store::connect(owner.expose(), 1)
                .await
                .context("opening the database as its owner")?;
            owner
                .migrate()
                .await
                .context("applying migrations as the owner")?;
            crate::retention::sync(&owner, &config.retention).await?;
            owner
                .grant_to(&role)
                .await
                .with_context(|| format!("granting the gateway's role {role}"))?;
            owner.close().await;
        }
    }
    Ok(store)
}

/// Imports `source` unless this exact set was imported before; bad seeds import nothing.
pub async fn import_seeds(store: &Store, source: &SeedSource) -> anyhow::Result<()> {
    let digest = source.digest();
    if store.seeds_imported(&digest).await? {
        tracing::info!("seeds already imported");
        return Ok(());
    }
    let set = seeds::parse(source).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "the seeds have {} problems, nothing was imported:\n{}",
            list.len(),
            list.join("\n")
        )
    })?;
    let counts = store.import_seeds(&set, &digest).await?;
    tracing::info!(
        institutions = counts.institutions,
        clinicians = counts.clinicians,
        pairings = counts.pairings,
        "seeds imported"
    );
    Ok(())
}

async fn create_first_admin(
    store: &Store,
    config: &Config,
) -> anyhow::Result<Option<(String, String)>> {
    if store.user_count().await? > 0 {
        return Ok(None);
    }
    let name = &config.admin.institution;
    let institution = match store.institutions_named(name).await?.into_iter().next() {
        Some(i) => i,
        None => {
            store
                .create_institution(&NewInstitution {
                    name: name.clone(),
                    level: "administration".into(),
                    kind: "administration".into(),
                    region: name.clone(),
                    remote: false,
                })
                .await?
        }
    };
    let password = generate_password();
    let to_hash = password.clone();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&to_hash)).await??;
    let new = NewUser {
        username: config.admin.username.clone(),
        display_name: "系统管理员".into(),
        institution_id: institution.id,
        clinician_id: None,
        roles: Roles::new([Role::Admin]).expect("one role"),
        password_hash,
        one_time_password: true,
    };
    Ok(store
        .create_first_user(&new)
        .await?
        .map(|u| (u.username, password)))
}

/// The HTTP application state for a prepared store.
pub async fn state(prepared: &Prepared, tls: bool) -> anyhow::Result<AppState> {
    let hasher = crate::auth::Hasher::new(
        prepared.config.auth.concurrent_password_checks,
        Duration::from_secs(prepared.config.auth.password_check_wait_seconds),
    );
    let dummy = hasher
        .hash(generate_password())
        .await
        .map_err(anyhow::Error::from)??;
    Ok(AppState {
        store: prepared.store.clone(),
        config: prepared.config.clone(),
        metrics: Metrics::new()?,
        tls,
        dummy_hash: Arc::new(dummy),
        hasher,
        signaling: signaling(prepared).await?,
        relay: crate::imaging::Relay::open(prepared).await?,
        demo: prepared.store.is_demo().await?,
        documents: Arc::new(crate::documents::Documents::new(
            prepared.config.documents.font.clone(),
        )),
    })
}

/// Starts the signaling hub of this process: with PostgreSQL on the LISTEN/NOTIFY bus,
/// with SQLite alone.
async fn signaling(prepared: &Prepared) -> anyhow::Result<Signaling> {
    let c = &prepared.config.signaling;
    let secs = Duration::from_secs;
    let config = ShellConfig {
        token_secret: crate::rooms::token_secret(&prepared.store, c).await?,
        ice: IceConfig {
            stun_urls: c.stun_urls.clone(),
            turn_urls: c.turn_urls.clone(),
            turn_secret: c
                .turn_secret
                .as_ref()
                .map(|s| s.expose().as_bytes().to_vec()),
            turn_ttl: secs(c.turn_ttl_seconds),
        },
        hub: HubConfig {
            room: RoomConfig {
                resume_window: secs(c.resume_seconds),
                ping_interval: secs(c.ping_seconds),
                ping_timeout: secs(c.ping_seconds),
                ..RoomConfig::default()
            },
            max_message_bytes: c.max_message_bytes,
            rate_per_second: c.rate_per_second,
            burst: f64::from(c.burst),
            ..HubConfig::default()
        },
        handshake_timeout: secs(10),
        media: c.media_listen.map(|listen| MediaConfig {
            listen,
            advertised: c.media_address.unwrap_or_else(|| reachable_address(listen)),
        }),
        clock: {
            let clock = prepared.store.clock().clone();
            TokenClock(Arc::new(move || clock.now().timestamp()))
        },
    };
    let bus = match prepared.store.db() {
        crate::store::Db::Postgres(pool) => Some(crate::bus::start(pool.clone()).await?),
        crate::store::Db::Sqlite { .. } => None,
    };
    let presence = Arc::new(crate::rooms::StorePresence(prepared.store.clone()));
    Ok(Signaling::start(config, presence, bus)?)
}

/// The address peers reach a socket bound to `listen` at: the one it names, or the
/// address of the interface that routes outwards (a UDP connect sends nothing), or
/// loopback.
fn reachable_address(listen: std::net::SocketAddr) -> std::net::IpAddr {
    if !listen.ip().is_unspecified() {
        return listen.ip();
    }
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("198.51.100.1:9")?;
            s.local_addr()
        })
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |a| a.ip())
}

/// The TLS configuration, when the configuration asks for HTTPS.
pub async fn tls_config(config: &Config) -> anyhow::Result<Option<RustlsConfig>> {
    tls::server_config(config).await
}

/// Bounds the time a connection may hold the server without a request: hyper's header
/// read timer runs from the moment a connection waits for a request head (new, or kept
/// alive after a response) until the head is complete, so it closes slow senders and
/// idle keep-alive connections alike. (It takes effect only with a timer.)
fn bound(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    config: &crate::config::HttpConfig,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.request_head_timeout_seconds));
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(config.request_head_timeout_seconds))
        .keep_alive_timeout(Duration::from_secs(config.request_head_timeout_seconds));
}

/// Serves `prepared` on `listener` until `shutdown` completes, then gives in-flight
/// requests `http.shutdown_grace_seconds` to finish.
pub async fn run(
    listener: TcpListener,
    prepared: Prepared,
    tls: Option<RustlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = state(&prepared, tls.is_some()).await?;
    let signaling = state.signaling.clone();
    let relay = state.relay.clone();
    let app = http::router(state);
    let handle = Handle::new();
    let grace = Duration::from_secs(prepared.config.http.shutdown_grace_seconds);
    let stopper = handle.clone();
    let (stop_workers, workers_stop) = tokio::sync::watch::channel(false);
    let dicom = crate::imaging::start(
        &prepared,
        &relay,
        prepared.dicom.as_ref().map(|l| l.try_clone()).transpose()?,
        prepared
            .dicom_tls
            .as_ref()
            .map(|l| l.try_clone())
            .transpose()?,
    )?;
    if prepared.config.audit.anchor_seconds > 0 {
        tokio::spawn(crate::audit::anchor_periodically(
            prepared.store.clone(),
            Duration::from_secs(prepared.config.audit.anchor_seconds),
            prepared.config.audit.anchor_file.clone(),
            workers_stop.clone(),
        ));
    }
    let notifier = tokio::spawn(crate::notify::run(
        prepared.store.clone(),
        prepared.config.notify.clone(),
        prepared.config.outbound_policy(),
        workers_stop,
    ));
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop_workers.send(true);
        // Participants hear that this process stops and reconnect; the others on the bus
        // let them go.
        signaling.stop().await;
        stopper.graceful_shutdown(Some(grace));
    });
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    match tls {
        Some(tls) => {
            tracing::info!(%addr, "listening (https)");
            let mut server = axum_server::from_tcp_rustls(listener, tls).handle(handle);
            bound(server.http_builder(), &prepared.config.http);
            server.serve(service).await?;
        }
        None => {
            tracing::info!(%addr, "listening (http)");
            let mut server = axum_server::from_tcp(listener).handle(handle);
            bound(server.http_builder(), &prepared.config.http);
            server.serve(service).await?;
        }
    }
    for task in dicom {
        task.abort();
    }
    // The webhook worker stops between passes; a pass cut short is retried next start.
    let _ = tokio::time::timeout(grace, notifier).await;
    prepared.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
