//! The configuration contract shared by every binary, docker-compose and Kubernetes.
//!
//! Layers: built-in defaults → an optional TOML file (`--config FILE` or `MIRROR_CONFIG`) →
//! environment variables `MIRROR__SECTION__KEY`. Secrets are read from files named here, never
//! from the environment. Tests pass their own variables instead of touching the process's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Prefix of every environment variable we read (`MIRROR__HTTP__LISTEN`).
pub const ENV_PREFIX: &str = "MIRROR";
/// Names the configuration file when `--config` is not given.
pub const CONFIG_FILE_VAR: &str = "MIRROR_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub amqp: AmqpSettings,
    pub database: DatabaseSettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Receiver bind address.
    pub listen: String,
    /// The mirroring URL path registered with SuperOffice.
    pub path: String,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Calls processed at once; more wait. Bounds memory at about body limit × this.
    pub max_concurrent_calls: usize,
    /// Deepest XML nesting accepted in a request.
    pub max_xml_depth: usize,
    /// Longest a client may take to send one request body, in seconds. A slow or stalled body
    /// holds a call slot, so this bounds how long a slow sender can keep one from valid calls.
    pub body_timeout_secs: u64,
    /// Longest a client may take to send a request's headers, in seconds, from when the
    /// connection is ready for them (idle kept-alive connections included): a client that opens
    /// connections and never finishes a request cannot hold them open.
    pub header_timeout_secs: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: "127.0.0.1:8080".into(),
            path: "/Mirroring/MirroringClientService.svc".into(),
            body_limit_bytes: 64 * 1024 * 1024,
            max_concurrent_calls: 64,
            max_xml_depth: 32,
            body_timeout_secs: 120,
            header_timeout_secs: 30,
        }
    }
}

impl HttpSettings {
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }
}

/// Which SuperOffice token-signing certificate incoming tokens must verify against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthEnvironment {
    Development,
    Stage,
    #[default]
    Production,
    /// A certificate from `auth.certificate_file` (tests, the simulator).
    Custom,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Our SuperOffice application id; tokens must have audience `spn:<client_id>`.
    pub client_id: Option<String>,
    pub environment: AuthEnvironment,
    /// PEM certificate of the token issuer, for `environment = custom`.
    pub certificate_file: Option<PathBuf>,
    /// Our application's private key, .NET RSA-XML or PEM.
    pub private_key_file: Option<PathBuf>,
    /// Clock skew tolerated on `nbf`/`exp`, in seconds.
    pub leeway_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            client_id: None,
            environment: AuthEnvironment::Production,
            certificate_file: None,
            private_key_file: None,
            leeway_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSettings {
    pub url: String,
    /// Prefix of every exchange and queue name.
    pub prefix: String,
    /// Number of partition queues; identical for every service of a deployment.
    pub partitions: u16,
    pub connect_timeout_secs: u64,
    /// How long to wait for the broker's confirm of one publish.
    pub publish_timeout_secs: u64,
    /// Redeliveries of one message before the broker dead-letters it.
    pub delivery_limit: u32,
    /// How long the receiver waits for the applier's answer to TableSchema.
    pub schema_reply_timeout_secs: u64,
    /// Ready messages in a tenant's partition above which Authenticate answers `doNotReplicate`.
    pub backlog_threshold: u32,
    /// Unacknowledged messages a worker holds per partition.
    pub prefetch: u16,
    /// How often a worker tells the other workers of its group that it is alive, in milliseconds.
    pub member_heartbeat_ms: u64,
    /// Silence after which the group counts a worker as gone and hands its partitions to the
    /// others, in milliseconds: the failover time after a worker dies without saying goodbye.
    pub membership_timeout_ms: u64,
}

impl Default for AmqpSettings {
    fn default() -> Self {
        AmqpSettings {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            prefix: "mirror".into(),
            partitions: 32,
            connect_timeout_secs: 10,
            publish_timeout_secs: 15,
            delivery_limit: 20,
            schema_reply_timeout_secs: 45,
            backlog_threshold: 200,
            prefetch: 4,
            member_heartbeat_ms: 1_000,
            membership_timeout_ms: 5_000,
        }
    }
}

impl AmqpSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
    pub fn publish_timeout(&self) -> Duration {
        Duration::from_secs(self.publish_timeout_secs)
    }
    pub fn schema_reply_timeout(&self) -> Duration {
        Duration::from_secs(self.schema_reply_timeout_secs)
    }
    pub fn member_heartbeat(&self) -> Duration {
        Duration::from_millis(self.member_heartbeat_ms)
    }
    pub fn membership_timeout(&self) -> Duration {
        Duration::from_millis(self.membership_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Target server: `postgres://…` or `mssql://…` / an ADO.NET connection string.
    pub url: String,
    /// File holding the database password, if the URL has none.
    pub password_file: Option<PathBuf>,
    /// Per-tenant database (or PostgreSQL schema) name; `{context_id}` is replaced.
    pub name_template: String,
    /// Drop mirror tables that are absent from a TableSchema call.
    pub drop_absent_tables: bool,
    /// Folder of per-tenant SQL hooks run after table creation and after each completed cycle.
    pub hooks_dir: Option<PathBuf>,
    /// Database connections per worker process: an upper bound on tenants applied at once.
    pub pool_size: usize,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            password_file: None,
            name_template: "Mirror_{context_id}".into(),
            drop_absent_tables: true,
            hooks_dir: None,
            pool_size: 16,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// `/metrics`, `/healthz`, `/readyz` of the applier (the receiver serves them on its own port).
    pub listen: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            listen: "127.0.0.1:9090".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `mirror_applier=debug,info`); `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

impl Settings {
    /// Loads defaults, then `file` (if any), then the `MIRROR__…` variables among `env`,
    /// and checks the values that every binary relies on.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .source(Some(vars)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.check()?;
        Ok(settings)
    }

    /// Loads from the process: `--config` (passed in) or `MIRROR_CONFIG`, then the environment.
    pub fn from_process(config_file: Option<PathBuf>) -> Result<Settings, ConfigError> {
        let file = config_file.or_else(|| std::env::var_os(CONFIG_FILE_VAR).map(PathBuf::from));
        Settings::load(file.as_deref(), std::env::vars())
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.amqp.partitions == 0 {
            return Err(invalid("MIRROR__AMQP__PARTITIONS", "must be at least 1"));
        }
        if self.amqp.prefix.is_empty()
            || !self
                .amqp
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(invalid(
                "MIRROR__AMQP__PREFIX",
                "must be non-empty: letters, digits, '.', '_' or '-'",
            ));
        }
        if !self.http.path.starts_with('/') {
            return Err(invalid("MIRROR__HTTP__PATH", "must start with '/'"));
        }
        if self.http.body_limit_bytes < 1024 {
            return Err(invalid(
                "MIRROR__HTTP__BODY_LIMIT_BYTES",
                "must be at least 1024",
            ));
        }
        if self.http.max_concurrent_calls == 0 {
            return Err(invalid(
                "MIRROR__HTTP__MAX_CONCURRENT_CALLS",
                "must be at least 1",
            ));
        }
        if self.http.body_timeout_secs == 0 {
            return Err(invalid(
                "MIRROR__HTTP__BODY_TIMEOUT_SECS",
                "must be at least 1",
            ));
        }
        if self.http.header_timeout_secs == 0 {
            return Err(invalid(
                "MIRROR__HTTP__HEADER_TIMEOUT_SECS",
                "must be at least 1",
            ));
        }
        if self.database.pool_size == 0 {
            return Err(invalid("MIRROR__DATABASE__POOL_SIZE", "must be at least 1"));
        }
        if self.amqp.prefetch == 0 {
            return Err(invalid("MIRROR__AMQP__PREFETCH", "must be at least 1"));
        }
        if self.amqp.member_heartbeat_ms < 10 {
            return Err(invalid(
                "MIRROR__AMQP__MEMBER_HEARTBEAT_MS",
                "must be at least 10",
            ));
        }
        if self.amqp.membership_timeout_ms < self.amqp.member_heartbeat_ms.saturating_mul(2) {
            return Err(invalid(
                "MIRROR__AMQP__MEMBERSHIP_TIMEOUT_MS",
                "must be at least twice MIRROR__AMQP__MEMBER_HEARTBEAT_MS",
            ));
        }
        if !self.database.name_template.contains("{context_id}") {
            return Err(invalid(
                "MIRROR__DATABASE__NAME_TEMPLATE",
                "must contain {context_id}",
            ));
        }
        Ok(())
    }

    /// The client id, required by the receiver.
    pub fn required_client_id(&self) -> Result<&str, ConfigError> {
        self.auth
            .client_id
            .as_deref()
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| invalid("MIRROR__AUTH__CLIENT_ID", "is required"))
    }

    /// The private key file, required by the receiver.
    pub fn required_private_key_file(&self) -> Result<&Path, ConfigError> {
        self.auth
            .private_key_file
            .as_deref()
            .ok_or_else(|| invalid("MIRROR__AUTH__PRIVATE_KEY_FILE", "is required"))
    }

    /// The issuer certificate file, required when `environment = custom`.
    pub fn required_certificate_file(&self) -> Result<&Path, ConfigError> {
        self.auth.certificate_file.as_deref().ok_or_else(|| {
            invalid(
                "MIRROR__AUTH__CERTIFICATE_FILE",
                "is required when MIRROR__AUTH__ENVIRONMENT is custom",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.http.listen, "127.0.0.1:8080");
        assert_eq!(s.http.path, "/Mirroring/MirroringClientService.svc");
        assert_eq!(s.auth.environment, AuthEnvironment::Production);
        assert_eq!(s.amqp.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(s.amqp.prefix, "mirror");
        assert_eq!(s.amqp.partitions, 32);
        assert_eq!(
            s.database.url,
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(s.database.name_template, "Mirror_{context_id}");
        assert_eq!(s.metrics.listen, "127.0.0.1:9090");
        assert_eq!(s.http.body_limit_bytes, 64 * 1024 * 1024);
        assert_eq!(s.http.header_timeout(), Duration::from_secs(30));
        assert_eq!(s.amqp.schema_reply_timeout_secs, 45);
        assert_eq!(s.amqp.member_heartbeat(), Duration::from_secs(1));
        assert_eq!(s.amqp.membership_timeout(), Duration::from_secs(5));
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("mirror-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("mirror.toml");
        std::fs::write(
            &file,
            "[amqp]\npartitions = 8\nprefix = \"fromfile\"\n[auth]\nenvironment = \"development\"\n",
        )
        .unwrap();
        let s = Settings::load(
            Some(&file),
            env(&[
                ("MIRROR__AMQP__PARTITIONS", "4"),
                (
                    "MIRROR__AUTH__CLIENT_ID",
                    "6cf25376616343b38d14ddcd804f2891",
                ),
                ("MIRROR__HTTP__LISTEN", "0.0.0.0:80"),
                ("OTHER__AMQP__PARTITIONS", "9"),
            ]),
        )
        .unwrap();
        assert_eq!(s.amqp.partitions, 4);
        assert_eq!(s.amqp.prefix, "fromfile");
        assert_eq!(s.auth.environment, AuthEnvironment::Development);
        assert_eq!(s.http.listen, "0.0.0.0:80");
        assert_eq!(
            s.required_client_id().unwrap(),
            "6cf25376616343b38d14ddcd804f2891"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_settings_name_their_key() {
        let err = Settings::load(None, env(&[("MIRROR__AMQP__PARTITIONS", "0")])).unwrap_err();
        assert!(
            err.to_string().contains("MIRROR__AMQP__PARTITIONS"),
            "{err}"
        );
        let err = Settings::load(None, env(&[("MIRROR__AMQP__PARTITIONS", "many")])).unwrap_err();
        assert!(err.to_string().contains("partitions"), "{err}");
        let err =
            Settings::load(None, env(&[("MIRROR__HTTP__HEADER_TIMEOUT_SECS", "0")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("MIRROR__HTTP__HEADER_TIMEOUT_SECS"),
            "{err}"
        );
        let err = Settings::load(None, env(&[("MIRROR__AUTH__ENVIRONMENT", "moon")])).unwrap_err();
        assert!(err.to_string().contains("moon"), "{err}");
        let err =
            Settings::load(None, env(&[("MIRROR__AMQP__MEMBER_HEARTBEAT_MS", "0")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("MIRROR__AMQP__MEMBER_HEARTBEAT_MS"),
            "{err}"
        );
        let err = Settings::load(
            None,
            env(&[
                ("MIRROR__AMQP__MEMBER_HEARTBEAT_MS", "1000"),
                ("MIRROR__AMQP__MEMBERSHIP_TIMEOUT_MS", "1500"),
            ]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("MIRROR__AMQP__MEMBERSHIP_TIMEOUT_MS"),
            "{err}"
        );
        let s = Settings::load(None, env(&[])).unwrap();
        let err = s.required_client_id().unwrap_err();
        assert!(err.to_string().contains("MIRROR__AUTH__CLIENT_ID"), "{err}");
    }
}
