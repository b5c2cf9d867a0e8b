//! `mirror-sim`: see `mirror-sim --help`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match mirror_sim::cli::main().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
