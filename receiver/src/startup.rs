//! Building the receiver from settings, and running it until shutdown.
//!
//! `Application::build` does everything that can fail at start-up (settings, keys, certificate,
//! binding the port) so a bad setting stops the process with a message naming its key. Tests bind
//! port 0 and read [`Application::port`]. The broker is not needed to start: the supervisor
//! connects in the background and calls are answered `IsSuccessful=false` until it does.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use mirror_common::auth::{ApplicationKey, AuthError, TokenVerifier};
use mirror_common::config::{AuthEnvironment, ConfigError, Settings};
use mirror_common::shutdown::CancellationToken;
use mirror_common::soap::Limits;
use mirror_common::topology::Topology;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::backlog::BacklogCheck;
use crate::broker::Broker;
use crate::metrics::Metrics;
use crate::publisher::Publisher;
use crate::serve::serve;
use crate::state::{AppState, Clock, Shared, system_clock};
use crate::{handler, health};

/// Extra time in-flight calls get at shutdown beyond their own publish and reply timeouts.
const DRAIN_MARGIN: Duration = Duration::from_secs(5);
/// Bound on the broker supervisor closing its connection at shutdown.
const BROKER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("MIRROR__HTTP__LISTEN: cannot listen on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Options that are not configuration: what tests and embedders replace.
#[derive(Clone)]
pub struct BuildOptions {
    pub clock: Clock,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            clock: system_clock(),
        }
    }
}

impl BuildOptions {
    pub fn with_clock(clock: Clock) -> BuildOptions {
        BuildOptions { clock }
    }
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions").finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    router: Router,
    state: AppState,
    drain: Duration,
    header_timeout: Duration,
}

impl Application {
    pub async fn build(
        settings: Settings,
        options: BuildOptions,
    ) -> Result<Application, StartupError> {
        settings.required_client_id()?;
        settings.required_private_key_file()?;
        if settings.auth.environment == AuthEnvironment::Custom {
            settings.required_certificate_file()?;
        }
        let verifier = TokenVerifier::from_settings(&settings.auth)?;
        let key = ApplicationKey::from_settings(&settings.auth)?;
        let metrics = Metrics::new()?;
        let topology = Topology::new(&settings.amqp);
        let broker = Broker::new(settings.amqp.clone(), topology, metrics.clone());
        let state = AppState::new(Shared {
            body_limit: settings.http.body_limit_bytes,
            body_timeout: settings.http.body_timeout(),
            limits: Limits {
                max_depth: settings.http.max_xml_depth,
            },
            verifier,
            key,
            publisher: Publisher::new(broker.clone(), metrics.clone()),
            backlog: BacklogCheck::new(settings.amqp.backlog_threshold),
            broker,
            metrics,
            calls: Semaphore::new(settings.http.max_concurrent_calls),
            clock: options.clock,
        });
        let router = router(&settings.http.path, state.clone());
        let listener = TcpListener::bind(&settings.http.listen)
            .await
            .map_err(|source| StartupError::Bind {
                address: settings.http.listen.clone(),
                source,
            })?;
        let address = listener.local_addr().map_err(|source| StartupError::Bind {
            address: settings.http.listen.clone(),
            source,
        })?;
        let drain =
            settings.amqp.publish_timeout() + settings.amqp.schema_reply_timeout() + DRAIN_MARGIN;
        Ok(Application {
            listener,
            address,
            router,
            state,
            drain,
            header_timeout: settings.http.header_timeout(),
        })
    }

    /// The bound port (the real one when `http.listen` asked for port 0).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The broker handle (tests wait on [`Broker::connected`]).
    pub fn broker(&self) -> &crate::broker::Broker {
        &self.state.broker
    }

    /// Serves until `shutdown`, then stops accepting, lets in-flight calls finish (bounded by
    /// their own timeouts plus a margin) and closes the broker connection.
    pub async fn run(self, shutdown: CancellationToken) {
        let Application {
            listener,
            address,
            router,
            state,
            drain,
            header_timeout,
        } = self;
        let broker_stop = CancellationToken::new();
        let supervisor = tokio::spawn(state.broker.clone().supervise(broker_stop.clone()));
        tracing::info!(%address, "Receiver listening.");
        let server = serve(listener, router, header_timeout, shutdown.clone());
        let deadline = async {
            shutdown.cancelled().await;
            tracing::info!("Shutting down: finishing in-flight calls.");
            tokio::time::sleep(drain).await;
        };
        tokio::select! {
            () = server => {}
            () = deadline => {
                tracing::warn!("In-flight calls did not finish in time; stopping anyway.");
            }
        }
        broker_stop.cancel();
        if tokio::time::timeout(BROKER_STOP_TIMEOUT, supervisor)
            .await
            .is_err()
        {
            tracing::warn!("The message broker supervisor did not stop in time.");
        }
        tracing::info!("Receiver stopped.");
    }
}

fn router(path: &str, state: AppState) -> Router {
    Router::new()
        .route(path, post(handler::mirroring))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn build_error(settings: Settings) -> String {
        Application::build(settings, BuildOptions::default())
            .await
            .unwrap_err()
            .to_string()
    }

    #[tokio::test]
    async fn missing_settings_stop_start_up_naming_their_key() {
        let mut settings = Settings::default();
        settings.http.listen = "127.0.0.1:0".into();
        let err = build_error(settings.clone()).await;
        assert!(err.contains("MIRROR__AUTH__CLIENT_ID"), "{err}");

        settings.auth.client_id = Some("6cf25376616343b38d14ddcd804f2891".into());
        let err = build_error(settings.clone()).await;
        assert!(err.contains("MIRROR__AUTH__PRIVATE_KEY_FILE"), "{err}");

        settings.auth.private_key_file = Some("/nonexistent/key.xml".into());
        settings.auth.environment = AuthEnvironment::Custom;
        let err = build_error(settings.clone()).await;
        assert!(err.contains("MIRROR__AUTH__CERTIFICATE_FILE"), "{err}");

        settings.auth.environment = AuthEnvironment::Development;
        let err = build_error(settings).await;
        assert!(err.contains("MIRROR__AUTH__PRIVATE_KEY_FILE"), "{err}");
        assert!(err.contains("/nonexistent/key.xml"), "{err}");
    }
}
