//! `mirror-applier`: consumes the partition queues and applies each message to its tenant's
//! mirror database. Configuration: `--config FILE` (or `MIRROR_CONFIG`) and `MIRROR__…` variables.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use mirror_applier::startup::Application;
use mirror_common::config::Settings;
use mirror_common::{shutdown, telemetry};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Applies queued SuperOffice mirroring batches to tenant mirror databases"
)]
struct Args {
    /// TOML configuration file (default: $MIRROR_CONFIG, if set).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The whole cause chain on one line; a bad setting names its key.
            eprintln!("mirror-applier: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::from_process(args.config).context("invalid configuration")?;
    telemetry::init_subscriber(&settings.log);
    let app = Application::build(settings).await?;
    app.run(shutdown::on_signal()).await
}
