//! `mirror-sim`: see `mirror-sim --help`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match mirror_sim::cli::main().await {
        Ok(code) => code,
        Err(error) => {
            // Each cause once: several of our messages already name their cause.
            let mut message = String::new();
            for cause in error.chain() {
                let text = cause.to_string();
                if !message.contains(&text) {
                    if !message.is_empty() {
                        message.push_str(": ");
                    }
                    message.push_str(&text);
                }
            }
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
