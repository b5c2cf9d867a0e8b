//! `mirrorctl`: the operator's tool.

use std::process::ExitCode;

use clap::Parser;
use mirror_applier::ctl::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match mirror_applier::ctl::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mirrorctl: {error:#}");
            ExitCode::FAILURE
        }
    }
}
