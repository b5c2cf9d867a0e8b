//! The services under measurement as separate processes (the release `mirror-receiver` and
//! `mirror-applier` binaries), so that each one's memory is its own: configured through `MIRROR__…`
//! variables with a unique queue prefix and throwaway keys, started on free ports, polled until
//! ready, paused and resumed on request, and stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use mirror_common::config::Settings;
use tokio::process::{Child, Command};

use super::BenchError;
use super::rss::Memory;
use crate::keys::{KeyFiles, Keys};

/// How long a service may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a service may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The application id the bench's receiver is configured with.
pub const BENCH_CLIENT_ID: &str = "5be4c3b2a1f04e0b9d8c7a6f5e4d3c2b";

/// What every service of one measurement shares: the queue prefix, the keys, the database.
#[derive(Debug)]
pub struct Deployment {
    pub prefix: String,
    pub keys: Keys,
    key_dir: PathBuf,
    files: KeyFiles,
    bin_dir: PathBuf,
    amqp_url: String,
    database_url: String,
    pub partitions: u16,
}

/// A running service process.
#[derive(Debug)]
pub struct Service {
    pub name: String,
    child: Child,
    /// The port `/readyz` and `/metrics` answer on (the receiver's HTTP port; the applier's
    /// metrics port).
    pub port: u16,
}

impl Deployment {
    /// Fresh keys and a unique prefix; nothing is started yet.
    pub fn new(
        label: &str,
        bin_dir: &Path,
        amqp_url: &str,
        database_url: &str,
        key_bits: usize,
    ) -> Result<Deployment, BenchError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("mirror-bench-{label}-{}", &id[..8]);
        let keys = Keys::generate(key_bits)?;
        let key_dir = std::env::temp_dir().join(&prefix);
        let files = keys.write(&key_dir)?;
        Ok(Deployment {
            prefix,
            keys,
            key_dir,
            files,
            bin_dir: bin_dir.to_owned(),
            amqp_url: amqp_url.to_owned(),
            database_url: database_url.to_owned(),
            partitions: 4,
        })
    }

    /// The mirror schema of a tenant.
    pub const NAME_TEMPLATE: &'static str = "Bench_{context_id}";

    /// The variables every service gets. Backpressure and the schema reply wait are lifted: a
    /// million-row load legitimately leaves a long queue for a while.
    fn environment(&self, http_port: u16, metrics_port: u16) -> Vec<(String, String)> {
        [
            ("MIRROR__AUTH__CLIENT_ID", BENCH_CLIENT_ID.to_owned()),
            ("MIRROR__AUTH__ENVIRONMENT", "custom".to_owned()),
            (
                "MIRROR__AUTH__CERTIFICATE_FILE",
                self.files.issuer_certificate.to_string_lossy().into_owned(),
            ),
            (
                "MIRROR__AUTH__PRIVATE_KEY_FILE",
                self.files
                    .application_key_pem
                    .to_string_lossy()
                    .into_owned(),
            ),
            ("MIRROR__AMQP__URL", self.amqp_url.clone()),
            ("MIRROR__AMQP__PREFIX", self.prefix.clone()),
            ("MIRROR__AMQP__PARTITIONS", self.partitions.to_string()),
            ("MIRROR__AMQP__BACKLOG_THRESHOLD", "1000000".to_owned()),
            ("MIRROR__AMQP__SCHEMA_REPLY_TIMEOUT_SECS", "900".to_owned()),
            ("MIRROR__DATABASE__URL", self.database_url.clone()),
            (
                "MIRROR__DATABASE__NAME_TEMPLATE",
                Self::NAME_TEMPLATE.to_owned(),
            ),
            ("MIRROR__HTTP__LISTEN", format!("127.0.0.1:{http_port}")),
            (
                "MIRROR__METRICS__LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            ),
            ("MIRROR__LOG__FILTER", "warn".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec()
    }

    /// The same configuration as the services see it (for the topology and the database).
    pub fn settings(&self) -> Result<Settings, BenchError> {
        Ok(Settings::load(None, self.environment(0, 0))?)
    }

    /// The receiver's mirroring URL for a service started by [`Deployment::start_receiver`].
    pub fn url(&self, receiver: &Service) -> Result<String, BenchError> {
        Ok(format!(
            "http://127.0.0.1:{}{}",
            receiver.port,
            self.settings()?.http.path
        ))
    }

    pub async fn start_receiver(&self) -> Result<Service, BenchError> {
        let http = free_port()?;
        let metrics = free_port()?;
        self.start("mirror-receiver", "receiver", http, metrics, http)
            .await
    }

    pub async fn start_applier(&self, number: usize) -> Result<Service, BenchError> {
        let http = free_port()?;
        let metrics = free_port()?;
        self.start(
            "mirror-applier",
            &format!("applier {number}"),
            http,
            metrics,
            metrics,
        )
        .await
    }

    async fn start(
        &self,
        binary: &str,
        name: &str,
        http_port: u16,
        metrics_port: u16,
        ready_port: u16,
    ) -> Result<Service, BenchError> {
        let program = self.bin_dir.join(binary);
        let log = self.key_dir.join(format!("{}.log", name.replace(' ', "-")));
        let log_file = std::fs::File::create(&log).map_err(|source| BenchError::Spawn {
            program: log.clone(),
            source,
        })?;
        let child = Command::new(&program)
            .env_remove("RUST_LOG")
            .envs(self.environment(http_port, metrics_port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BenchError::Spawn {
                program: program.clone(),
                source,
            })?;
        let mut service = Service {
            name: name.to_owned(),
            child,
            port: ready_port,
        };
        if let Err(error) = service.wait_ready().await {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            service.stop().await;
            return Err(match error {
                BenchError::NotReady { service, .. } => BenchError::NotReady {
                    service,
                    log: output.trim().chars().take(2000).collect(),
                },
                other => other,
            });
        }
        Ok(service)
    }

    /// Removes the key directory (and the services' logs in it).
    pub fn remove_files(&self) {
        if let Err(error) = std::fs::remove_dir_all(&self.key_dir) {
            tracing::warn!(%error, dir = %self.key_dir.display(), "Cannot remove the bench files.");
        }
    }
}

impl Service {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Peak and current resident memory, while the process lives.
    pub fn memory(&self) -> Option<Memory> {
        Memory::of(self.pid()?)
    }

    async fn wait_ready(&mut self) -> Result<(), BenchError> {
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|source| BenchError::Http { source })?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_exited)) = self.child.try_wait() {
                break;
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(BenchError::NotReady {
            service: self.name.clone(),
            log: String::new(),
        })
    }

    /// Sends `signal` (`STOP`, `CONT`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            send_signal(pid, signal);
        }
    }

    /// SIGTERM, then a bounded wait for the graceful exit, then SIGKILL.
    pub async fn stop(&mut self) {
        self.signal("CONT");
        self.signal("TERM");
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!(service = %self.name, "The service did not stop in time; killing it.");
            let _ = self.child.kill().await;
        }
    }
}

/// A port nothing listens on right now (the OS picks it; the service binds it a moment later).
fn free_port() -> Result<u16, BenchError> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|source| BenchError::Spawn {
            program: PathBuf::from("127.0.0.1:0"),
            source,
        })?;
    Ok(listener
        .local_addr()
        .map_err(|source| BenchError::Spawn {
            program: PathBuf::from("127.0.0.1:0"),
            source,
        })?
        .port())
}

/// Sends `signal` (`STOP`, `CONT`, `TERM`) to process `pid` with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let sent = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
    if !sent.is_ok_and(|s| s.success()) {
        tracing::warn!(pid, signal, "Cannot signal a service.");
    }
}
