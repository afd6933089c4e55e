//! The `duikou` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::auth::{generate_password, hash_password};
use crate::config::Config;
use crate::domain::{Role, Roles};
use crate::seeds::{self, SeedSource};
use crate::startup;
use crate::store::{NewUser, Store};

/// duikou: paired-support telemedicine gateway.
#[derive(Debug, Parser)]
#[command(name = "duikou", version)]
pub struct Cli {
    /// TOML configuration file (see deploy/duikou.example.toml).
    #[arg(long, global = true, env = "DUIKOU_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// Serve HTTPS with a self-signed certificate kept in the data directory.
        #[arg(long)]
        self_signed: bool,
    },
    /// Run a demonstration: on an empty data directory (`duikou-demo` unless given),
    /// build a complete program for today on the seeded rosters, print an account for
    /// each role, and serve it. Refuses a directory with real data.
    Demo {
        /// The demonstration's data directory.
        #[arg(long, default_value = "duikou-demo")]
        dir: PathBuf,
    },
    /// Check or import the program rosters.
    Seeds {
        /// What to do with them.
        #[command(subcommand)]
        command: SeedsCommand,
    },
    /// Manage accounts.
    User {
        /// What to do.
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Export records.
    Export {
        /// What to export.
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Check the audit log.
    Audit {
        /// What to do.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Back up the gateway while it runs: the database first, then the DICOM spool and
    /// the attachments it names, then DIR/manifest.json with every file's SHA-256.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Backup {
        /// A new or empty directory to write the backup into.
        #[arg(required = true)]
        dir: Option<PathBuf>,
        /// Or check a backup.
        #[command(subcommand)]
        command: Option<BackupCommand>,
    },
    /// Restore the backup in DIR into an empty data directory (and, on PostgreSQL, an
    /// empty database), after checking every file of it.
    Restore {
        /// The backup's directory.
        dir: PathBuf,
    },
    /// Delete every record whose retention period has ended (`[retention]`), with what
    /// is kept with it and its attachment files, each purge audited; print a summary.
    Purge {
        /// List what would be deleted, and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `duikou backup …`
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Check every file of the backup in DIR against its manifest: exit 0 when it is
    /// whole, 1 naming the first file missing or changed.
    Verify {
        /// The backup's directory.
        dir: PathBuf,
    },
}

/// `duikou export …`
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Everything held about one patient (requests, opinions, attachments, their studies'
    /// index, and who read them) as a zip with a manifest; audited.
    Patient {
        /// The patient's name, as the records hold it.
        #[arg(long)]
        name: String,
        /// Their date of birth, `YYYY-MM-DD`.
        #[arg(long)]
        birth_date: chrono::NaiveDate,
        /// Their resident identity card number, when known.
        #[arg(long)]
        id_number: Option<String>,
        /// The zip to write; it must not exist.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `duikou audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the audit log's hash chain: exit 0 and print the head (its id and link, to
    /// keep elsewhere) when every entry links to the one before; exit 1 naming the first
    /// entry where it breaks, or the first anchor the chain no longer holds.
    Verify {
        /// An anchor file (`audit.anchor_file`, or lines `duikou audit anchor` printed):
        /// each anchored entry must still be there with its link.
        #[arg(long)]
        anchors: Option<PathBuf>,
    },
    /// Anchor the chain now: append an anchor entry, print the head as a JSON line (for a
    /// time-stamping service or a second store), and append it to `audit.anchor_file`
    /// when one is configured.
    Anchor,
}

/// `duikou seeds …`
#[derive(Debug, Subcommand)]
pub enum SeedsCommand {
    /// Print every problem in the seed CSVs of DIR as `file:line: message`; exit 1 if any.
    Check {
        /// Directory holding the seed CSVs.
        dir: PathBuf,
    },
    /// Import the seed CSVs of DIR (or the built-in ones) into the configured database;
    /// nothing is imported when any row is bad.
    Import {
        /// Directory holding the seed CSVs; the built-in rosters when left out.
        dir: Option<PathBuf>,
    },
}

/// `duikou user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account and print its generated password once.
    Add {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Name shown to others (defaults to the login name).
        #[arg(long)]
        display_name: Option<String>,
        /// Institution, by id or exact name.
        #[arg(long)]
        institution: String,
        /// A role: admin, coordinator, clinician, radiologist, trainee (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
        /// The user's clinician record id.
        #[arg(long)]
        clinician: Option<i64>,
    },
    /// Remove an account's second factor (a lost phone and lost recovery codes, the only
    /// administrator's too): they sign in with the password alone and enrol again where
    /// their role requires it. Audited.
    ResetTwoFactor {
        /// Login name.
        #[arg(long)]
        username: String,
    },
}

impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        Role::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// Runs the command line.
pub async fn main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Seeds {
            command: SeedsCommand::Check { dir },
        } => check_seeds(&dir),
        Command::Backup {
            command: Some(BackupCommand::Verify { dir }),
            ..
        } => crate::backup::run_verify(&dir).await,
        command => {
            let mut config = Config::load(cli.config.as_deref())?;
            crate::telemetry::init(&config.log);
            match command {
                Command::Serve { self_signed } => {
                    config.http.self_signed |= self_signed;
                    serve(config).await
                }
                Command::Seeds {
                    command: SeedsCommand::Import { dir },
                } => import(config, dir).await,
                Command::User { command } => user(config, command).await,
                Command::Audit {
                    command: AuditCommand::Verify { anchors },
                } => audit_verify(config, anchors).await,
                Command::Audit {
                    command: AuditCommand::Anchor,
                } => audit_anchor(config).await,
                Command::Export {
                    command:
                        ExportCommand::Patient {
                            name,
                            birth_date,
                            id_number,
                            out,
                        },
                } => {
                    let who = crate::patients::Patient {
                        name,
                        birth_date,
                        id_number,
                    };
                    export_patient(config, who, out).await
                }
                Command::Backup { dir: Some(dir), .. } => {
                    crate::backup::run_backup(&config, &dir).await
                }
                Command::Restore { dir } => crate::backup::run_restore(&config, &dir).await,
                Command::Backup { .. } => unreachable!("clap asks for DIR or verify"),
                Command::Purge { dry_run } => purge(config, dry_run).await,
                Command::Demo { dir } => {
                    config.data.dir = dir;
                    demo(config).await
                }
                Command::Seeds {
                    command: SeedsCommand::Check { .. },
                } => unreachable!("handled above"),
            }
        }
    }
}

async fn demo(config: Config) -> anyhow::Result<ExitCode> {
    let listen = config.http.listen;
    let (prepared, built) = crate::demo::prepare(config).await?;
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    let port = listener.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    match &built {
        Some(built) => {
            // Printed once, on stdout only: the hashes are all that is stored.
            println!("a demonstration program for today is built; its accounts:");
            for a in &built.accounts {
                println!(
                    "  {:<12} {}   {}，{}",
                    a.username, a.password, a.role, a.institution
                );
            }
        }
        None => println!(
            "the demonstration built here before starts again; its accounts were printed then"
        ),
    }
    println!("open {base}/login");
    if let Some(built) = built {
        let (store, booking) = (prepared.store.clone(), prepared.config.booking.clone());
        tokio::spawn(async move {
            // The county's CT study goes in over STOW-RS once the gateway answers.
            for _ in 0..100 {
                if reqwest::get(format!("{base}/readyz"))
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            if let Err(e) = crate::demo::upload_study(&store, &booking, &built, &base).await {
                tracing::error!("the demonstration study was not uploaded: {e:#}");
            }
        });
    }
    startup::run(listener, prepared, None, startup::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let listen = config.http.listen;
    let tls = startup::tls_config(&config).await?;
    let prepared = startup::prepare(config).await?;
    if let Some((username, password)) = &prepared.first_admin {
        // Printed once, on stdout only: the hash is all that is stored.
        println!("created the administrator {username:?} with the one-time password: {password}");
        println!("log in at /login with it: the first page asks you to replace it");
    }
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    startup::run(listener, prepared, tls, startup::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

fn check_seeds(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let source = SeedSource::from_dir(dir)?;
    match seeds::parse(&source) {
        Ok(set) => {
            println!(
                "ok: {} institutions, {} clinicians, {} pairings",
                set.institutions.len(),
                set.clinicians.len(),
                set.pairings.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            for p in &problems {
                println!("{p}");
            }
            eprintln!("{} problems; nothing would be imported", problems.len());
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn open(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data.dir)?;
    startup::open_store(config).await
}

async fn import(config: Config, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let store = open(&config).await?;
    let source = match dir {
        Some(dir) => SeedSource::from_dir(&dir)?,
        None => SeedSource::embedded(),
    };
    let result = startup::import_seeds(&store, &source).await;
    store.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn audit_verify(config: Config, anchors: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let anchors = match anchors {
        Some(file) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading the anchor file {}", file.display()))?;
            crate::audit::read_anchors(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
        }
        None => Vec::new(),
    };
    let store = open(&config).await?;
    let verdict = crate::audit::verify(&store)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let lost = crate::audit::check_anchors(&store, &anchors)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    store.close().await;
    Ok(match verdict {
        crate::audit::Verdict::Broken { id, entries } => {
            println!(
                "the audit chain breaks at entry #{id}: it, or an entry before it, was changed, removed or moved ({entries} entries before it link)"
            );
            ExitCode::FAILURE
        }
        crate::audit::Verdict::Whole { .. } if lost.is_some() => {
            println!(
                "the audit chain does not hold its anchors: {}",
                lost.unwrap_or_default()
            );
            ExitCode::FAILURE
        }
        crate::audit::Verdict::Whole { entries, head } => {
            match head {
                Some((id, link)) => {
                    println!("the audit chain is whole: {entries} entries; head #{id} {link}")
                }
                None => println!("the audit log is empty"),
            }
            if !anchors.is_empty() {
                println!("it holds all {} anchors", anchors.len());
            }
            ExitCode::SUCCESS
        }
    })
}

async fn export_patient(
    config: Config,
    who: crate::patients::Patient,
    out: PathBuf,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(!out.exists(), "{} exists: name a new file", out.display());
    let store = open(&config).await?;
    let copy = crate::patients::copy(&store, &config.data.dir, &who, "the command line")
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&out)
        .with_context(|| format!("creating {}", out.display()))?;
    std::io::Write::write_all(&mut file, &copy.zip)?;
    file.sync_all()?;
    crate::audit::Event::unauthenticated("patient", "export")
        .patient(Some(who.name.clone()))
        .detail(format!("{}; by the command line", copy.summary()))
        .record(&store)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    store.close().await;
    println!("{}: {}", out.display(), copy.summary());
    Ok(ExitCode::SUCCESS)
}

async fn reset_two_factor(config: Config, username: &str) -> anyhow::Result<ExitCode> {
    let store = open(&config).await?;
    let (user, _) = store
        .user_with_hash(username)
        .await?
        .with_context(|| format!("no account {username:?}"))?;
    let removed = store.remove_two_factor(user.id).await?;
    if removed {
        crate::audit::Event::unauthenticated("account", "reset_two_factor")
            .account(user.id, Some(user.institution_id))
            .detail("by the command line".to_owned())
            .record(&store)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    store.close().await;
    if removed {
        println!("removed the second factor of {username:?}");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{username:?} has no second factor");
        Ok(ExitCode::FAILURE)
    }
}

async fn audit_anchor(config: Config) -> anyhow::Result<ExitCode> {
    let store = open(&config).await?;
    let anchor = crate::audit::anchor(&store, config.audit.anchor_file.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    store.close().await;
    println!("{}", serde_json::to_string(&anchor)?);
    Ok(ExitCode::SUCCESS)
}

async fn purge(config: Config, dry_run: bool) -> anyhow::Result<ExitCode> {
    let store = open(&config).await?;
    let verb = if dry_run { "would purge" } else { "purged" };
    let summary = crate::retention::purge(&store, &config.data.dir, dry_run, |kind, id| {
        println!("{verb} {} {id}", kind.as_str());
    })
    .await;
    store.close().await;
    println!("{verb} {}", summary?);
    Ok(ExitCode::SUCCESS)
}

async fn user(config: Config, command: UserCommand) -> anyhow::Result<ExitCode> {
    let (username, display_name, institution, roles, clinician) = match command {
        UserCommand::ResetTwoFactor { username } => {
            return reset_two_factor(config, &username).await;
        }
        UserCommand::Add {
            username,
            display_name,
            institution,
            roles,
            clinician,
        } => (username, display_name, institution, roles, clinician),
    };
    crate::registry::check_username(&username).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = open(&config).await?;
    let institution_id = match institution.parse::<i64>() {
        Ok(id) => store.institution(id).await?.map(|i| i.id),
        Err(_) => {
            let found = store.institutions_named(&institution).await?;
            anyhow::ensure!(
                found.len() < 2,
                "{} institutions are called {institution}; give its id",
                found.len()
            );
            found.first().map(|i| i.id)
        }
    }
    .with_context(|| format!("no institution {institution}"))?;
    let password = generate_password();
    let to_hash = password.clone();
    let password_hash = tokio::task::spawn_blocking(move || hash_password(&to_hash)).await??;
    let user = store
        .create_user(&NewUser {
            display_name: display_name.unwrap_or_else(|| username.clone()),
            username,
            institution_id,
            clinician_id: clinician,
            roles: Roles::new(roles).context("at least one --role")?,
            password_hash,
            one_time_password: true,
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    store.close().await;
    println!(
        "created user {:?} (id {}) with the one-time password: {password}",
        user.username, user.id
    );
    Ok(ExitCode::SUCCESS)
}
