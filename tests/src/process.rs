//! A real `mirror-applier` process on a pipeline's queues: configured only through `MIRROR__…`
//! environment variables, as a deployment does, so it can be killed like one (SIGKILL) or stopped
//! like one (SIGTERM).
//!
//! The binary is the one Cargo built beside this test binary (`target/<profile>/mirror-applier`);
//! Cargo does not build other packages' binaries for a test of this one, so build it first:
//! `cargo build -p mirror-applier`.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use mirror_common::config::Settings;
use tokio::process::{Child, Command};

use crate::PATIENCE;

/// Database connections of a worker process: a fault test has one tenant.
const POOL_SIZE: &str = "4";
/// Bound on a process stopping after SIGTERM (it finishes the message in hand first).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Between readiness checks.
const POLL: Duration = Duration::from_millis(100);

/// A running `mirror-applier` process; killed when dropped.
pub struct WorkerProcess {
    child: Child,
    port: u16,
    http: reqwest::Client,
}

impl WorkerProcess {
    /// Starts a worker on the queues and database of `settings` and waits until its `/readyz`
    /// answers (broker connected, database reachable).
    pub async fn start(settings: &Settings) -> WorkerProcess {
        let binary = applier_binary();
        let port = free_port();
        let mut command = Command::new(&binary);
        // Only this worker's settings: nothing inherited from the shell that runs the tests.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MIRROR") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        let amqp = &settings.amqp;
        let database = &settings.database;
        command
            .env("MIRROR__AMQP__URL", &amqp.url)
            .env("MIRROR__AMQP__PREFIX", &amqp.prefix)
            .env("MIRROR__AMQP__PARTITIONS", amqp.partitions.to_string())
            .env(
                "MIRROR__AMQP__CONNECT_TIMEOUT_SECS",
                amqp.connect_timeout_secs.to_string(),
            )
            .env("MIRROR__DATABASE__URL", &database.url)
            .env("MIRROR__DATABASE__NAME_TEMPLATE", &database.name_template)
            .env("MIRROR__DATABASE__POOL_SIZE", POOL_SIZE)
            .env("MIRROR__METRICS__LISTEN", format!("127.0.0.1:{port}"))
            .env("MIRROR__LOG__FILTER", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut worker = WorkerProcess {
            child,
            port,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("an HTTP client"),
        };
        worker.wait_ready().await;
        worker
    }

    async fn wait_ready(&mut self) {
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("the worker's status") {
                panic!("the worker exited before it was ready: {status}");
            }
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the worker on port {} is not ready after {PATIENCE:?}",
                self.port
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The operating system's id of the process.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("a running worker has an id")
    }

    /// The sum of every sample of metric `name` (all label values), e.g.
    /// `mirror_applier_rows_applied_total`; 0 when absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        let text = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|e| panic!("the worker's metrics: {e}"))
            .text()
            .await
            .expect("the worker's metrics");
        sum_samples(&text, name)
    }

    /// Kills the process with SIGKILL, as the kernel's OOM killer or a lost node does: nothing is
    /// finished, acknowledged or closed. Returns how it ended.
    pub async fn kill(mut self) -> ExitStatus {
        self.child.start_kill().expect("SIGKILL delivered");
        self.child.wait().await.expect("the killed worker's status")
    }

    /// Stops the process with SIGTERM and waits; it must exit cleanly and in time.
    pub async fn terminate(mut self) {
        let pid = self.pid().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM delivered to {pid}");
        let status = tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .expect("the worker stops in time after SIGTERM")
            .expect("the worker's status");
        assert!(status.success(), "the worker stops cleanly: {status}");
    }
}

/// `mirror-applier` in the directory Cargo put this test binary's `deps/` folder in.
pub fn applier_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let name = format!("mirror-applier{}", std::env::consts::EXE_SUFFIX);
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join(name))
        .unwrap_or_else(|| panic!("no target directory above {}", exe.display()));
    assert!(
        binary.is_file(),
        "{} not found: the fault tests run the real worker binary, build it first with \
         `cargo build -p mirror-applier`",
        binary.display()
    );
    binary
}

/// A port nothing listens on right now (the OS picks it; the worker binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

/// The sum of the samples of `name` in a Prometheus text exposition.
fn sum_samples(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_labelled_sample_of_one_metric_only() {
        let text = "# HELP mirror_applier_rows_applied_total Rows.\n\
                    # TYPE mirror_applier_rows_applied_total counter\n\
                    mirror_applier_rows_applied_total{operation=\"insert\"} 120\n\
                    mirror_applier_rows_applied_total{operation=\"delete\"} 3\n\
                    mirror_applier_rows_applied_totals 1000\n\
                    mirror_applier_retries_total 7\n";
        assert_eq!(
            sum_samples(text, "mirror_applier_rows_applied_total"),
            123.0
        );
        assert_eq!(sum_samples(text, "mirror_applier_retries_total"), 7.0);
        assert_eq!(sum_samples(text, "mirror_applier_dead_letters_total"), 0.0);
    }
}
