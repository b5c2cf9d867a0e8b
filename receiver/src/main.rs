//! `mirror-receiver`: the SOAP endpoint for SuperOffice's Mirroring Task.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mirror_common::config::Settings;
use mirror_common::{shutdown, telemetry};
use mirror_receiver::{Application, BuildOptions};

#[derive(Debug, Parser)]
#[command(version, about = "SOAP endpoint for SuperOffice Database Mirroring")]
struct Args {
    /// Configuration file (TOML); `MIRROR_CONFIG` names one too. `MIRROR__…` variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line naming the setting or resource at fault, for operators and orchestrators.
            eprintln!("mirror-receiver: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let settings = Settings::from_process(args.config).context("invalid configuration")?;
    telemetry::init_subscriber(&settings.log);
    let app = Application::build(settings, BuildOptions::default())
        .await
        .context("cannot start the receiver")?;
    app.run(shutdown::on_signal()).await;
    Ok(())
}
