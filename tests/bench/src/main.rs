//! `duikou-bench`: measurements of duikou, not tests. Each prints its figures and, where a
//! peer can run here, the peer's figures from the same run and the ratio.
//!
//! - `dicom` ([`dicom::dicom`]): the relay's DICOM ingest and forwarding beside DCMTK.
//! - `sfu` ([`sfu::sfu`]): the forwarding unit of teaching sessions, one presenter to many
//!   receivers on loopback.
//!
//! The relay runs in this process, from the gateway's library, with the configuration a
//! `duikou` start would read (`--config`, then `DUIKOU_*` variables).

mod dicom;
mod sfu;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use duikou::config::Config;

/// duikou-bench: duikou measured beside its peers.
#[derive(Debug, Parser)]
#[command(name = "duikou-bench", version)]
struct Cli {
    /// TOML configuration file of the relay measured (see deploy/duikou.example.toml).
    #[arg(long, global = true, env = "DUIKOU_CONFIG")]
    config: Option<PathBuf>,
    /// What to measure.
    #[command(subcommand)]
    command: Command,
}

/// The measurements.
#[derive(Debug, Subcommand)]
enum Command {
    /// DICOM ingest and forwarding of a synthetic CT series, beside DCMTK to DCMTK (needs
    /// DCMTK's `storescu` and `storescp`).
    Dicom {
        /// Images in the series.
        #[arg(long, default_value_t = 300)]
        images: usize,
        /// Rounds of each measurement (the medians are compared: the machines' neighbours
        /// make single runs vary by a third).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Prepare no spool segments: the relay as it is when instances come faster than
        /// its quiet moments prepare room (see `imaging.spool_prepared_bytes`).
        #[arg(long)]
        unprepared: bool,
    },
    /// The forwarding unit: one publisher at about 1.5 Mbit/s to each count of receivers.
    Sfu {
        /// Receiver counts, one run each.
        #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
        receivers: Vec<usize>,
        /// Seconds each run lasts.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    duikou::telemetry::init(&config.log);
    match cli.command {
        Command::Dicom {
            images,
            rounds,
            unprepared,
        } => {
            if unprepared {
                config.imaging.spool_prepared_bytes = 0;
            }
            dicom::dicom(config, images, rounds.max(1)).await?;
        }
        Command::Sfu { receivers, seconds } => {
            tokio::task::spawn_blocking(move || {
                sfu::sfu(&receivers, std::time::Duration::from_secs(seconds))
            })
            .await??;
        }
    }
    Ok(ExitCode::SUCCESS)
}
