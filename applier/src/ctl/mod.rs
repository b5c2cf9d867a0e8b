//! `mirrorctl`, noun-verb: `mirrorctl keys generate`, `mirrorctl keys convert`.

mod keys;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "mirrorctl", version, about = "Operate the SuperOffice mirror")]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The application's key pair (the key SuperOffice knows the application by).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keys(command) => keys::run(command, cli.json),
    }
}
