//! `duikou`: reads the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = duikou::cli::Cli::parse();
    match duikou::cli::main(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("duikou: {e:#}");
            ExitCode::FAILURE
        }
    }
}
