//! The real `mirror-receiver` binary as a child process, configured through `MIRROR__…` variables
//! as a deployment would be, so that its memory can be read from `/proc` apart from the test's own.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use lapin::Connection;
use mirror_common::auth::{IssuedToken, TokenIssuer};
use mirror_common::config::AmqpSettings;
use mirror_common::topology::Topology;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use super::{CLIENT_ID, PARTITIONS, PATIENCE, delete_topology, eventually, keys};

/// Memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`), in KiB.
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`), in KiB.
    pub peak_kib: u64,
}

pub struct ReceiverProcess {
    child: Child,
    pid: u32,
    pub base: String,
    pub path: String,
    pub topology: Topology,
    pub client: reqwest::Client,
    dir: PathBuf,
    amqp: tokio::sync::OnceCell<Connection>,
}

impl ReceiverProcess {
    /// Starts the binary on a free port with the harness's keys, a fresh queue prefix and
    /// `settings` (`("HTTP__BODY_LIMIT_BYTES", "…")`, without the `MIRROR__` prefix) on top.
    pub async fn spawn(settings: &[(&str, String)]) -> ReceiverProcess {
        let keys = keys();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("mirror-receiver-process-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let certificate = dir.join("issuer.crt");
        std::fs::write(&certificate, keys.issuer.certificate_pem()).unwrap();
        let key = dir.join("application.pem");
        std::fs::write(&key, &keys.application_pem).unwrap();

        let amqp = AmqpSettings {
            prefix: format!("rcvproc-{id}"),
            partitions: PARTITIONS,
            ..AmqpSettings::default()
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_mirror-receiver"));
        for (name, _) in std::env::vars() {
            if name.starts_with("MIRROR") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        let base_settings = [
            ("HTTP__LISTEN", "127.0.0.1:0".to_owned()),
            ("AUTH__CLIENT_ID", CLIENT_ID.to_owned()),
            ("AUTH__ENVIRONMENT", "custom".to_owned()),
            ("AUTH__CERTIFICATE_FILE", certificate.display().to_string()),
            ("AUTH__PRIVATE_KEY_FILE", key.display().to_string()),
            ("AMQP__PREFIX", amqp.prefix.clone()),
            ("AMQP__PARTITIONS", PARTITIONS.to_string()),
            ("AMQP__CONNECT_TIMEOUT_SECS", "3".to_owned()),
            ("AMQP__PUBLISH_TIMEOUT_SECS", "10".to_owned()),
            // JSON, so the bound address can be read from the start-up line.
            ("LOG__FORMAT", "json".to_owned()),
            ("LOG__FILTER", "info".to_owned()),
        ];
        for (name, value) in base_settings.iter().chain(settings) {
            command.env(format!("MIRROR__{name}"), value);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let address = listening_address(&mut child).await;
        ReceiverProcess {
            child,
            pid,
            base: format!("http://{address}"),
            path: mirror_common::config::HttpSettings::default().path,
            topology: Topology::new(&amqp),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            dir,
            amqp: tokio::sync::OnceCell::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `host:port` the receiver listens on.
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The mirroring endpoint's URL.
    pub fn url(&self) -> String {
        format!("{}{}", self.base, self.path)
    }

    /// Waits until `/readyz` says the broker is connected (the topology is declared then).
    pub async fn wait_ready(&self) {
        eventually("the receiver process to be ready", || async {
            let response = self
                .client
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .ok()?;
            (response.status() == 200).then_some(())
        })
        .await;
    }

    /// `GET path`: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// A valid token for `tenant`, as of now.
    pub fn token(&self, tenant: &str) -> IssuedToken {
        keys().issuer.issue(tenant, CLIENT_ID, Utc::now())
    }

    /// The token issuer the receiver trusts.
    pub fn issuer(&self) -> &'static TokenIssuer {
        &keys().issuer
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The process's memory now.
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/{}/status", self.pid))
        };
        Memory {
            rss_kib: field("VmRSS:"),
            peak_kib: field("VmHWM:"),
        }
    }

    /// Ready messages in each partition queue.
    pub async fn ready_counts(&self) -> Vec<u32> {
        let connection = self
            .amqp
            .get_or_init(|| async {
                mirror_common::broker::connect(&AmqpSettings::default())
                    .await
                    .unwrap()
            })
            .await;
        let channel = connection.create_channel().await.unwrap();
        let mut counts = Vec::new();
        for n in 0..PARTITIONS {
            let queue = mirror_common::topology::inspect(&channel, self.topology.queue(n).as_str())
                .await
                .unwrap();
            counts.push(queue.message_count());
        }
        let _ = channel.close(200, "OK".into()).await;
        counts
    }
}

/// Kills the process, then deletes this test's queues, exchanges and files (also when a test
/// failed half-way).
impl Drop for ReceiverProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let topology = self.topology.clone();
        let dir = self.dir.clone();
        let cleanup = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(delete_topology(&topology));
            }
            let _ = std::fs::remove_dir_all(dir);
        });
        let _ = cleanup.join();
    }
}

/// Reads the child's log until its "Receiver listening." line and returns the address in it.
/// The log keeps being drained afterwards, so the child never blocks on a full pipe.
async fn listening_address(child: &mut Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let (found, address) = oneshot::channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut found = Some(found);
        while let Ok(Some(line)) = lines.next_line().await {
            let Some(sender) = found.take() else {
                continue;
            };
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            match event["address"].as_str() {
                Some(address) if event["message"] == "Receiver listening." => {
                    let _ = sender.send(address.to_owned());
                }
                _ => found = Some(sender),
            }
        }
    });
    match tokio::time::timeout(PATIENCE, address).await {
        Ok(Ok(address)) => address,
        _ => panic!(
            "the receiver did not start listening: {:?}",
            child.try_wait()
        ),
    }
}
