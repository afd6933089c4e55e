//! Typed, layered configuration: built-in defaults, then a TOML file
//! (`deploy/duikou.example.toml` documents every key), then `DUIKOU_*` environment
//! variables; the last layer wins. `DUIKOU_DATABASE_URL` sets `database.url`,
//! `DUIKOU_HTTP_TLS_CERT` sets `http.tls_cert`: the first `_` after the prefix separates
//! the section from the key.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use duikou_imaging::AeTitle;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The sections of the configuration; environment variables outside them are ignored.
const SECTIONS: &[&str] = &[
    "data",
    "database",
    "http",
    "auth",
    "booking",
    "program",
    "notify",
    "signaling",
    "imaging",
    "outbound",
    "seeds",
    "admin",
    "log",
    "documents",
    "audit",
    "retention",
];

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where duikou keeps its files.
    pub data: DataConfig,
    /// The database.
    pub database: DatabaseConfig,
    /// The HTTP listener.
    pub http: HttpConfig,
    /// Logins and sessions.
    pub auth: AuthConfig,
    /// Requests and their deadlines.
    pub booking: BookingConfig,
    /// The program's yearly targets where a pairing sets none of its own.
    pub program: ProgramConfig,
    /// Webhook delivery of state changes.
    pub notify: NotifyConfig,
    /// Video rooms: admission, STUN and TURN, limits.
    pub signaling: SignalingConfig,
    /// The DICOM relay.
    pub imaging: ImagingConfig,
    /// `[outbound]`
    pub outbound: OutboundConfig,
    /// The program rosters imported on first start.
    pub seeds: SeedsConfig,
    /// The administrator created on an empty database.
    pub admin: AdminConfig,
    /// Logging.
    pub log: LogConfig,
    /// The documents duikou makes (the signed opinion as a PDF).
    pub documents: DocumentsConfig,
    /// The audit chain's anchors.
    pub audit: AuditConfig,
    /// How long records are kept.
    pub retention: RetentionConfig,
}

/// `[data]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Data directory, created on start; holds the SQLite database and the self-signed
    /// certificate.
    pub dir: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("duikou-data"),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`; unset means `sqlite://<data.dir>/duikou.db`.
    pub url: Option<Secret>,
    /// Pool size.
    pub max_connections: u32,
    /// PostgreSQL only: the URL of the database's owner. When set, migrations run as the
    /// owner, who then grants the role of `url` what the gateway needs and no more: the
    /// audit log only to read and append. That role can then neither change, delete nor
    /// truncate audit entries, nor turn off the triggers that guard them.
    pub owner_url: Option<Secret>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            owner_url: None,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// PEM certificate chain; with `tls_key`, the listener speaks HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Generate (once, into the data directory) and use a self-signed certificate.
    pub self_signed: bool,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Seconds that in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// Seconds a connection may take to send a request's head (the request line and
    /// headers) once the server waits for one: on a new connection, and on a kept-alive
    /// one between requests (so this is also the idle keep-alive time). Slower or idle
    /// connections are closed.
    pub request_head_timeout_seconds: u64,
    /// Seconds a request's body may go without a byte arriving; the request then fails.
    pub body_timeout_seconds: u64,
    /// Origins (such as `https://viewer.example.org`, or `*` for any) whose pages may call
    /// `/dicomweb` from a browser (CORS). Empty: only pages served by the gateway itself.
    pub cors_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            self_signed: false,
            max_body_bytes: 1024 * 1024,
            shutdown_grace_seconds: 10,
            request_head_timeout_seconds: 20,
            body_timeout_seconds: 30,
            cors_origins: Vec::new(),
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a login session lasts, in hours.
    pub session_hours: i64,
    /// Login attempts for one username from one client address, within the window,
    /// before further ones are slowed (a success forgets them). Attempts from other
    /// addresses are not affected.
    pub failed_logins_before_delay: u32,
    /// Login attempts from one client address, for any usernames, within the window,
    /// before further ones are slowed (each success takes one back).
    pub attempts_per_address_before_delay: u32,
    /// Seconds after a key's first counted attempt when its count starts over.
    pub attempt_window_seconds: i64,
    /// The longest wait imposed after repeated failures, in seconds.
    pub max_delay_seconds: i64,
    /// Password checks (argon2id, 19 MiB each) run at once; more wait their turn.
    pub concurrent_password_checks: usize,
    /// Seconds a login waits for its turn to be checked before it is answered 503.
    pub password_check_wait_seconds: u64,
    /// Addresses of reverse proxies in front of the gateway: from them, the client's
    /// address is taken from `X-Forwarded-For` (its last address not itself a trusted
    /// proxy). From anyone else the header is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The roles whose holders must sign in with a second factor (TOTP): until they
    /// enrol one, their sessions may do nothing but enrol. Anyone else may enrol too.
    pub two_factor_roles: Vec<crate::domain::Role>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_hours: 12,
            failed_logins_before_delay: 5,
            attempts_per_address_before_delay: 50,
            attempt_window_seconds: 900,
            max_delay_seconds: 900,
            concurrent_password_checks: 2,
            password_check_wait_seconds: 5,
            trusted_proxies: Vec::new(),
            two_factor_roles: vec![crate::domain::Role::Admin],
        }
    }
}

/// `[booking]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BookingConfig {
    /// Hours the supporter has to accept or decline a normal request.
    pub decision_hours_normal: i64,
    /// Hours for an urgent one.
    pub decision_hours_urgent: i64,
    /// Largest attachment (PDF, JPEG, PNG), in bytes.
    pub max_attachment_bytes: usize,
}

impl Default for BookingConfig {
    fn default() -> Self {
        Self {
            decision_hours_normal: 24,
            decision_hours_urgent: 2,
            max_attachment_bytes: 20 * 1024 * 1024,
        }
    }
}

/// `[program]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProgramConfig {
    /// Trainees each pairing trains in a year (`004`: 每年为受援医院培训至少3名骨干医师).
    pub trainees_per_year: NonZeroU32,
    /// Hours of training in a year at which a trainee counts as trained. `004` names no
    /// figure; twelve is one two-hour session every two months.
    pub training_hours_per_trainee: NonZeroU32,
}

impl Default for ProgramConfig {
    fn default() -> Self {
        Self {
            trainees_per_year: NonZeroU32::new(3).expect("not zero"),
            training_hours_per_trainee: NonZeroU32::new(12).expect("not zero"),
        }
    }
}

/// `[signaling]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignalingConfig {
    /// HS256 secret for room tokens. Unset: one is generated on first start and kept in
    /// the database, so every gateway process sharing the database uses the same.
    pub token_secret: Option<Secret>,
    /// Seconds a room token is valid; it is needed only to connect and to resume.
    pub token_ttl_seconds: u64,
    /// Minutes before a session's start that its room opens.
    pub lead_minutes: i64,
    /// Minutes after a session's end that its room stays open.
    pub grace_minutes: i64,
    /// STUN servers handed to every participant.
    pub stun_urls: Vec<String>,
    /// TURN servers (coturn with `use-auth-secret`), e.g.
    /// `turn:turn.example.cn:3478?transport=udp`, `turns:turn.example.cn:443?transport=tcp`.
    pub turn_urls: Vec<String>,
    /// coturn's `static-auth-secret`; TURN servers are handed out only when it is set.
    pub turn_secret: Option<Secret>,
    /// Seconds a minted TURN credential lasts; it must cover the longest session, as
    /// coturn checks it again when an allocation is refreshed.
    pub turn_ttl_seconds: u64,
    /// Participants in a consultation room: requester, consultant, accompanying clinician
    /// and a second device.
    pub capacity_consultation: u32,
    /// Participants in a ward-round room.
    pub capacity_ward_round: u32,
    /// Largest signaling message, in bytes.
    pub max_message_bytes: usize,
    /// Signaling messages a connection may send per second, sustained.
    pub rate_per_second: f64,
    /// Signaling messages a connection may send at once.
    pub burst: u32,
    /// Seconds a dropped participant may resume before it counts as gone.
    pub resume_seconds: u64,
    /// Seconds of silence before the server pings; as long again without a pong closes.
    pub ping_seconds: u64,
    /// Messages a session's text chat keeps at most; further ones are refused.
    pub chat_max_messages: i64,
    /// UDP address of the forwarding unit that carries teaching sessions' media; unset,
    /// teaching rooms refuse offers.
    pub media_listen: Option<SocketAddr>,
    /// The address browsers reach the forwarding unit at (put in its answers). Unset: the
    /// listen address if it names one, otherwise the address of the interface that routes
    /// outwards, otherwise 127.0.0.1.
    pub media_address: Option<IpAddr>,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            token_secret: None,
            token_ttl_seconds: 300,
            lead_minutes: 15,
            grace_minutes: 30,
            stun_urls: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: None,
            turn_ttl_seconds: 12 * 3600,
            capacity_consultation: 4,
            capacity_ward_round: 16,
            max_message_bytes: 64 * 1024,
            rate_per_second: 50.0,
            burst: 200,
            resume_seconds: 30,
            ping_seconds: 10,
            chat_max_messages: 2000,
            // Loopback, like the other listeners: a deployment opens it on purpose.
            media_listen: Some(SocketAddr::from(([127, 0, 0, 1], 7882))),
            media_address: None,
        }
    }
}

/// `[outbound]`: where the gateway's own connections (webhooks, DICOM destinations) may
/// go, beyond and within the built-in policy (`duikou_imaging::outbound`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Address ranges allowed beyond the default, such as `["127.0.0.0/8"]`.
    pub allow: Vec<ipnet::IpNet>,
    /// Address ranges refused, whatever else says.
    pub deny: Vec<ipnet::IpNet>,
}

impl OutboundConfig {}

impl Config {
    /// The outbound policy: `[outbound]`'s ranges, and this gateway's own listeners
    /// on specific addresses.
    pub fn outbound_policy(&self) -> duikou_imaging::outbound::Policy {
        let listeners = [
            Some(self.http.listen),
            self.imaging.listen,
            self.imaging.tls_listen,
        ];
        duikou_imaging::outbound::Policy {
            allow: self.outbound.allow.clone(),
            deny: self.outbound.deny.clone(),
            own: listeners
                .into_iter()
                .flatten()
                .filter(|l| !l.ip().is_unspecified() && l.port() != 0)
                .collect(),
        }
    }
}

/// `[imaging]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImagingConfig {
    /// Address and port of the DICOM storage SCP (C-ECHO, C-STORE); empty: no DICOM.
    pub listen: Option<SocketAddr>,
    /// The relay's AE title, which callers must call.
    pub ae_title: AeTitle,
    /// Largest PDU accepted, in bytes (senders cut instances into PDUs of this size).
    pub max_pdu_length: u32,
    /// Largest instance accepted, in bytes.
    pub max_instance_bytes: u64,
    /// Parts (instances) one STOW-RS request may carry; the first beyond fails as out
    /// of resources and the rest are not read.
    pub stow_max_parts: usize,
    /// Bytes one STOW-RS request may carry: a stated `Content-Length` beyond it is
    /// refused with 413 before anything is kept; a body of no stated length is cut off
    /// there (the part being read fails).
    pub stow_max_request_bytes: u64,
    /// Seconds a peer may stay silent within an association.
    pub timeout_seconds: u64,
    /// Where instances are kept. Unset: `<data.dir>/dicom`.
    pub spool_dir: Option<PathBuf>,
    /// Size of a spool segment file, in bytes: records are appended to one until it is
    /// this long.
    pub spool_segment_bytes: u64,
    /// Room kept prepared in the spool, in bytes: while no instance arrives, new segments
    /// are written full of zeros and synced, so that instances stored there later are
    /// synced without waiting for the file system's journal. Whole segments; 0: none.
    pub spool_prepared_bytes: u64,
    /// Associations at once to one destination when forwarding.
    pub forward_associations: usize,
    /// Forwards claimed per pass.
    pub forward_batch: i64,
    /// No longer used: forwarding runs with the rest of the gateway. Accepted so that
    /// configuration files that set it still load; the start warns about it.
    pub forward_nice: Option<i32>,
    /// Seconds a claimed forward stays with its process before it is due again (after a
    /// crash, this is how long until another start picks it up).
    pub forward_lease_seconds: u64,
    /// Milliseconds before the first retry of a forward; each retry waits twice as long.
    pub forward_retry_base_ms: u64,
    /// The longest wait between retries, in seconds.
    pub forward_retry_max_seconds: u64,
    /// Address and port of the DICOM-over-TLS storage SCP (PS3.15 B.1); needs
    /// `tls_cert` and `tls_key`. Unset: no TLS port.
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain of the TLS port.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the TLS port.
    pub tls_key: Option<PathBuf>,
    /// PEM certificates of the authorities whose client certificates the TLS port
    /// requires (mutual TLS). Unset: no client certificate is asked for.
    pub tls_client_ca: Option<PathBuf>,
    /// PEM certificates of the authorities trusted when forwarding to a TLS destination.
    pub tls_trust: Option<PathBuf>,
}

impl Default for ImagingConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 11112))),
            ae_title: AeTitle::parse("DUIKOU").expect("a valid AE title"),
            max_pdu_length: 131_072,
            max_instance_bytes: 2 * 1024 * 1024 * 1024,
            stow_max_parts: 1000,
            stow_max_request_bytes: 4 << 30,
            timeout_seconds: 60,
            spool_dir: None,
            spool_segment_bytes: 256 * 1024 * 1024,
            spool_prepared_bytes: 512 * 1024 * 1024,
            forward_associations: 2,
            forward_batch: 32,
            forward_nice: None,
            forward_lease_seconds: 30,
            forward_retry_base_ms: 2000,
            forward_retry_max_seconds: 300,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_trust: None,
        }
    }
}

impl ImagingConfig {
    /// The spool directory.
    pub fn spool(&self, data_dir: &Path) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("dicom"))
    }

    /// How the spool sizes and prepares its segments.
    pub fn spool_layout(&self) -> duikou_imaging::spool::Layout {
        duikou_imaging::spool::Layout {
            segment_bytes: self.spool_segment_bytes.max(1024 * 1024),
            prepared_bytes: self.spool_prepared_bytes,
        }
    }
}

/// `[notify]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Milliseconds between passes over the outbox.
    pub interval_ms: u64,
    /// First retry delay in milliseconds; it doubles with each failure.
    pub retry_base_ms: u64,
    /// The longest delay between retries, in seconds.
    pub retry_max_seconds: u64,
    /// Seconds a webhook call may take.
    pub timeout_seconds: u64,
    /// The address the pages are reached at, for the links in e-mails and chat messages
    /// (`https://duikou.example.org`); unset, the messages carry the request number only.
    pub public_url: Option<String>,
    /// The SMTP server notices by e-mail go through: `smtps://user:pass@host` (TLS),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtp://host:25` (plain, only
    /// on a trusted network). Unset, nobody can choose e-mail.
    pub smtp_url: Option<Secret>,
    /// A PEM file of the certificate authority that signed the SMTP server's certificate,
    /// trusted beyond the system's (a hospital's own CA). Needs a TLS `smtp_url`.
    pub smtp_ca: Option<std::path::PathBuf>,
    /// The sender of the notices by e-mail.
    pub smtp_from: String,
    /// Pages one process follows at once with the stream of what waits
    /// (`/notifications/stream`); more are asked to try again.
    pub max_streams: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            interval_ms: 2000,
            retry_base_ms: 5000,
            retry_max_seconds: 3600,
            timeout_seconds: 10,
            public_url: None,
            smtp_url: None,
            smtp_ca: None,
            smtp_from: "对口远程医疗 <duikou@localhost>".into(),
            max_streams: 2000,
        }
    }
}

/// `[seeds]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedsConfig {
    /// Import the rosters on start when they have not been imported yet.
    pub import: bool,
    /// A directory of seed CSVs to use instead of the ones built into the binary.
    pub dir: Option<PathBuf>,
}

impl Default for SeedsConfig {
    fn default() -> Self {
        Self {
            import: true,
            dir: None,
        }
    }
}

/// `[admin]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Username of the administrator created on an empty database.
    pub username: String,
    /// The institution (by name) the administrator belongs to; created as a health bureau
    /// when the registry lacks it.
    pub institution: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            username: "admin".into(),
            institution: "江门市卫生计生局".into(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `duikou=debug,sqlx=warn`; `RUST_LOG` overrides it.
    pub filter: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info,sqlx=warn".into(),
            format: "text".into(),
        }
    }
}

/// `[documents]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentsConfig {
    /// The font of the PDFs, one with Chinese glyphs: an OpenType or TrueType file or
    /// collection (`.otf`, `.ttf`, `.ttc`). Unset, the fonts Debian's `fonts-noto-cjk` and
    /// `fonts-wqy-microhei` / `fonts-wqy-zenhei` install are looked for
    /// ([`crate::documents::FONT_SEARCH`]); with none found, the PDF endpoint answers 503.
    pub font: Option<PathBuf>,
}

/// `[audit]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Seconds between anchors of the audit chain (0: none but `duikou audit anchor`):
    /// the newest entry's id and link, written to the log, to `anchor_file` and into
    /// the chain itself, when entries were added since the last.
    pub anchor_seconds: u64,
    /// A file the anchors are appended to, one JSON line each: best on another machine's
    /// storage or write-once media, where whoever holds the database cannot reach.
    /// `duikou audit verify --anchors FILE` checks the chain against it.
    pub anchor_file: Option<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            anchor_seconds: 3600,
            anchor_file: None,
        }
    }
}

/// `[retention]`: the years each kind of record is kept after its last change, before
/// `duikou purge` may delete it (see [`crate::retention`]). Remote medical records are
/// medical records (医疗机构病历管理规定): outpatient ones at least 15 years, inpatient
/// ones at least 30; a shorter period is refused at load and at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Remote consultations (outpatient records).
    pub consultation_years: u32,
    /// Remote imaging reads (outpatient records).
    pub imaging_read_years: u32,
    /// Remote pathology reads (outpatient records).
    pub pathology_read_years: u32,
    /// Remote ward rounds (inpatient records).
    pub ward_round_years: u32,
    /// Teaching sessions, their enrolments and attendance: not medical records, but the
    /// evidence of the program's training targets and of trainees' continuing-education
    /// credit, kept as long as the outpatient records of the same years.
    pub teaching_years: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            consultation_years: 15,
            imaging_read_years: 15,
            pathology_read_years: 15,
            ward_round_years: 30,
            teaching_years: 15,
        }
    }
}

impl RetentionConfig {
    /// Each kind of record (as `retention_policy` names it) with its years, its key
    /// and the least the law allows.
    pub fn periods(&self) -> [(&'static str, u32, &'static str, u32); 5] {
        [
            (
                "consultation",
                self.consultation_years,
                "consultation_years",
                15,
            ),
            (
                "imaging_read",
                self.imaging_read_years,
                "imaging_read_years",
                15,
            ),
            (
                "pathology_read",
                self.pathology_read_years,
                "pathology_read_years",
                15,
            ),
            ("ward_round", self.ward_round_years, "ward_round_years", 30),
            ("teaching", self.teaching_years, "teaching_years", 1),
        ]
    }

    /// Refuses a period below its legal minimum, naming its key.
    pub fn check(&self) -> Result<(), String> {
        for (_, years, key, least) in self.periods() {
            if years < least {
                return Err(format!(
                    "retention.{key} = {years} is below the {least} years records of this kind must be kept (医疗机构病历管理规定)"
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Layers the defaults, `file` (when given) and the `DUIKOU_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "configuration file {} does not exist",
                    file.display()
                ))));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let env = Env::prefixed("DUIKOU_")
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                SECTIONS.contains(&key.split('_').next().unwrap_or_default())
            })
            .map(|key| {
                key.as_str()
                    .to_ascii_lowercase()
                    .replacen('_', ".", 1)
                    .into()
            });
        let config: Self = figment.merge(env).extract().map_err(Box::new)?;
        config
            .retention
            .check()
            .map_err(|e| Box::new(figment::Error::from(e)))?;
        Ok(config)
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data.dir.join("duikou.db").display()),
        }
    }
}

/// A secret string (a database URL with its password): `Debug` never shows it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_database_password() {
        let mut c = Config::default();
        c.database.url = Some(Secret::new("postgres://duikou:hunter2@db/duikou"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn defaults_listen_on_loopback_8080_with_sqlite_in_the_data_dir() {
        let c = Config::default();
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url(), "sqlite://duikou-data/duikou.db");
    }

    #[test]
    #[allow(
        clippy::result_large_err,
        reason = "figment's Jail returns its own error type"
    )]
    fn the_environment_overrides_the_file_which_overrides_the_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "duikou.toml",
                "[http]\nlisten = \"0.0.0.0:9000\"\nmax_body_bytes = 10\n",
            )?;
            jail.set_env("DUIKOU_HTTP_MAX_BODY_BYTES", "20");
            jail.set_env("DUIKOU_TEST_POSTGRES_URL", "ignored, not a section");
            let c = Config::load(Some(Path::new("duikou.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.http.listen.to_string(), "0.0.0.0:9000");
            assert_eq!(c.http.max_body_bytes, 20);
            assert_eq!(c.auth.session_hours, 12);
            Ok(())
        });
    }

    #[test]
    #[allow(
        clippy::result_large_err,
        reason = "figment's Jail returns its own error type"
    )]
    fn a_misspelt_key_is_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("duikou.toml", "[http]\nlisen = \"0.0.0.0:9000\"\n")?;
            let err = Config::load(Some(Path::new("duikou.toml"))).unwrap_err();
            assert!(err.to_string().contains("lisen"), "{err}");
            Ok(())
        });
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment's Jail returns its own error type"
    )]
    fn an_ae_title_that_is_not_one_is_an_error_naming_it() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DUIKOU_IMAGING_AE_TITLE", "SEVENTEEN_LETTERS");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("AE_TITLE") && err.contains("16"), "{err}");
            jail.set_env("DUIKOU_IMAGING_AE_TITLE", " JMZX_PACS ");
            let c = Config::load(None).expect("a padded title loads");
            assert_eq!(c.imaging.ae_title, "JMZX_PACS");
            Ok(())
        });
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment's Jail returns its own error type"
    )]
    fn a_retention_period_below_the_legal_minimum_is_refused_naming_its_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("DUIKOU_RETENTION_WARD_ROUND_YEARS", "20");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("retention.ward_round_years"), "{err}");
            jail.set_env("DUIKOU_RETENTION_WARD_ROUND_YEARS", "30");
            jail.create_file("duikou.toml", "[retention]\nconsultation_years = 10\n")?;
            let err = Config::load(Some(Path::new("duikou.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("retention.consultation_years"), "{err}");
            jail.create_file("duikou.toml", "[retention]\nconsultation_years = 20\n")?;
            let c = Config::load(Some(Path::new("duikou.toml"))).expect("a longer period loads");
            assert_eq!(c.retention.consultation_years, 20);
            assert_eq!(c.retention.ward_round_years, 30);
            Ok(())
        });
    }

    #[test]
    fn the_outbound_policy_refuses_the_gateway_s_own_listeners_on_specific_addresses() {
        let mut c = Config::default();
        c.http.listen = "10.0.0.5:8080".parse().unwrap();
        c.imaging.listen = Some("0.0.0.0:11112".parse().unwrap());
        let policy = c.outbound_policy();
        assert_eq!(policy.own, vec!["10.0.0.5:8080".parse().unwrap()]);
        assert!(
            policy
                .check_socket("10.0.0.5:8080".parse().unwrap())
                .is_err()
        );
        assert!(policy.check_socket("10.0.0.5:104".parse().unwrap()).is_ok());
    }

    #[test]
    fn the_example_configuration_shows_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/duikou.example.toml");
        let loaded = Config::load(Some(&example)).expect("the example parses");
        let json = |c: &Config| serde_json::to_value(c).expect("serialisable");
        assert_eq!(json(&loaded), json(&Config::default()));
        // Every commented-out key is a real key too.
        let text = std::fs::read_to_string(&example).expect("readable");
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.contains(" = \"") => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: Result<Config, _> = toml_parse(&uncommented);
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    fn toml_parse(text: &str) -> Result<Config, Box<figment::Error>> {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(Box::new)
    }
}
