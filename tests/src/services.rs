//! Stopping and starting this machine's shared RabbitMQ and PostgreSQL, for the fault-injection
//! suite. Every other test depends on these services, so a suite using this module must run alone
//! (see `.config/nextest.toml`).
//!
//! A stopped service is held by an [`Outage`] guard: it is started again when the guard ends or is
//! dropped, also when the test panics half-way, and only counts as back once clients can use it.

use std::process::Command;
use std::time::{Duration, Instant};

/// Bound on one control command (`rabbitmqctl`, `pg_ctlcluster`), through coreutils `timeout`.
const COMMAND_TIMEOUT_SECS: &str = "120";
/// How long a started service may take to accept clients.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Between readiness checks.
const READY_POLL: Duration = Duration::from_millis(500);
/// Where Debian keeps one folder per installed PostgreSQL version.
const POSTGRES_VERSIONS: &str = "/etc/postgresql";

/// A shared service this machine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The broker on 127.0.0.1:5672; stopped with `rabbitmqctl stop_app`, so the Erlang node stays
    /// up and the application (listeners, queues) restarts quickly.
    RabbitMq,
    /// The `main` cluster on 127.0.0.1:5432, through `pg_ctlcluster`; stopped in `fast` mode,
    /// which ends every session as a crash or an operator would.
    Postgres,
}

impl Service {
    /// Stops the service and returns the guard that starts it again.
    pub async fn stop(self) -> Outage {
        // The guard exists before the command runs: a stop that half-succeeds is still undone.
        let outage = Outage {
            service: self,
            ended: false,
        };
        tokio::task::spawn_blocking(move || self.stop_blocking())
            .await
            .expect("the stop command does not panic");
        outage
    }

    fn stop_blocking(self) {
        match self {
            Service::RabbitMq => run("rabbitmqctl", &["-q", "stop_app"]),
            Service::Postgres => run(
                "pg_ctlcluster",
                &[
                    "--skip-systemctl-redirect",
                    &postgres_version(),
                    "main",
                    "stop",
                    "-m",
                    "fast",
                ],
            ),
        }
        .unwrap_or_else(|error| panic!("cannot stop {self:?}: {error}"));
    }

    /// Starts the service and waits until clients can use it.
    fn start_blocking(self) -> Result<(), String> {
        match self {
            Service::RabbitMq => {
                // `start_app` needs the node; should the whole node be gone, start it anew.
                if let Err(error) = run("rabbitmqctl", &["-q", "start_app"]) {
                    run("rabbitmq-server", &["-detached"])
                        .map_err(|again| format!("{error}; then {again}"))?;
                }
            }
            Service::Postgres => {
                let version = postgres_version();
                let args = ["--skip-systemctl-redirect", &version, "main", "start"];
                // Starting a running cluster fails; that is success here.
                if let Err(error) = run("pg_ctlcluster", &args)
                    && !self.ready()
                {
                    return Err(error);
                }
            }
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.ready() {
            if Instant::now() > deadline {
                return Err(format!("not ready {READY_TIMEOUT:?} after starting"));
            }
            std::thread::sleep(READY_POLL);
        }
        Ok(())
    }

    /// True when clients can use the service.
    fn ready(self) -> bool {
        match self {
            // The broker accepts TCP before it is ready for clients; check_running waits for that.
            Service::RabbitMq => run("rabbitmq-diagnostics", &["-q", "check_running"]).is_ok(),
            Service::Postgres => {
                run("pg_isready", &["-q", "-h", "127.0.0.1", "-p", "5432"]).is_ok()
            }
        }
    }
}

/// A stopped service. [`Outage::end`] starts it again and waits until it is ready; dropping the
/// guard without that (a failed test) starts it synchronously.
#[must_use = "dropping the outage restarts the service at once"]
pub struct Outage {
    service: Service,
    ended: bool,
}

impl Outage {
    /// Starts the service again; panics when it does not come back.
    pub async fn end(mut self) {
        self.ended = true;
        let service = self.service;
        tokio::task::spawn_blocking(move || service.start_blocking())
            .await
            .expect("the start command does not panic")
            .unwrap_or_else(|error| panic!("cannot start {service:?} again: {error}"));
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        if let Err(error) = self.service.start_blocking() {
            // Already unwinding or about to fail: say loudly what is left broken.
            eprintln!("could not start {:?} again: {error}", self.service);
        }
    }
}

/// The PostgreSQL version whose `main` cluster serves port 5432 (the newest one installed).
fn postgres_version() -> String {
    let mut versions: Vec<String> = std::fs::read_dir(POSTGRES_VERSIONS)
        .unwrap_or_else(|e| panic!("{POSTGRES_VERSIONS}: {e}"))
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("main").is_dir())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    versions.sort_by_key(|v| v.parse::<u32>().unwrap_or(0));
    versions
        .pop()
        .unwrap_or_else(|| panic!("no PostgreSQL cluster under {POSTGRES_VERSIONS}"))
}

/// Runs `program` under a time bound; an error says how it failed and what it printed.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new("timeout")
        .arg(COMMAND_TIMEOUT_SECS)
        .arg(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{program} {} exited with {}: {}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim(),
    ))
}
