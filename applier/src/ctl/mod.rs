//! `mirrorctl`, noun-verb: `status`, `dlq list|show|replay`, `resync`, `keys generate|convert`.
//!
//! It reads the same settings as the services (`--config FILE` or `MIRROR_CONFIG`, then
//! `MIRROR__…` variables), so it finds the broker, the queue prefix and partitions, the database
//! and the mirrors' name template without options of its own. `--json` prints one JSON document
//! on stdout; errors go to stderr and exit with status 1.

mod dlq;
mod keys;
mod letter;
pub mod mirror;
mod output;
pub mod queues;
mod resync;
mod status;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mirror_common::config::Settings;

pub use self::dlq::{DlqCommand, Filter, Verdict};
pub use self::resync::ResyncArgs;
pub use self::status::StatusArgs;

#[derive(Debug, Parser)]
#[command(name = "mirrorctl", version, about = "Operate the SuperOffice mirror")]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The services' TOML configuration file (default: $MIRROR_CONFIG, then the environment).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tenants, tables, LSNs, epochs, quarantines, last cycles, and the queues' backlog.
    Status(StatusArgs),
    /// The dead-letter queue: list, show, replay.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// SuperOffice's force-resync: set LSNs to -1 so the next cycle wipes and resends.
    Resync(ResyncArgs),
    /// The application's key pair (the key SuperOffice knows the application by).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

impl Cli {
    /// Parses command-line arguments (the first is the program name).
    pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Cli::try_parse_from(args)
    }
}

/// Runs one command with the process's settings, printing to stdout.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli {
        json,
        config,
        command,
    } = cli;
    // Keys need no settings (and none may be configured where keys are made).
    let command = match command {
        Command::Keys(command) => return keys::run(command, json),
        other => other,
    };
    let settings = Settings::from_process(config.clone())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut stdout = std::io::stdout();
    let cli = Cli {
        json,
        config,
        command,
    };
    runtime.block_on(execute(cli, &settings, &mut stdout))
}

/// Runs one command with `settings`, writing its output to `out`.
pub async fn execute(cli: Cli, settings: &Settings, out: &mut dyn Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Status(args) => status::run(args, settings, cli.json, out).await,
        Command::Dlq(command) => dlq::run(command, settings, cli.json, out).await,
        Command::Resync(args) => resync::run(args, settings, cli.json, out).await,
        Command::Keys(command) => keys::run(command, cli.json),
    }
}
