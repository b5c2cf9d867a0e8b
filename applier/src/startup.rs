//! Builds a worker from settings: the mirror engine, the metrics registry, the probe and metrics
//! listener, and the broker consumer; `run` drives them until shutdown.
//!
//! The listener is bound in `build`, so an address in use fails start-up with a message, and a
//! test can bind port 0 and read the real port from `port()`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use mirror_common::config::Settings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::consumer::{Mirror, RetryPolicy, Supervisor};
use crate::engine::{Engine, EngineOptions};
use crate::health::{self, BrokerStatus, HealthState};
use crate::metrics::Metrics;

/// A worker, built and bound, not yet running.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    supervisor: Supervisor,
    health: HealthState,
}

impl Application {
    /// Connects the engine to `settings.database` and builds the worker around it.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let metrics = Metrics::new().context("cannot register metrics")?;
        let engine = Engine::connect_with(
            &settings.database,
            EngineOptions::for_settings(&settings.database, Some(metrics.clone())),
        )
        .await
        .context("cannot set up the mirror database")?;
        Application::build_with_metrics(settings, Arc::new(engine), metrics).await
    }

    /// Builds the worker around any mirror target (the engine, or a wrapper around it that
    /// injects faults).
    pub async fn build_with(
        settings: Settings,
        mirror: Arc<dyn Mirror>,
    ) -> anyhow::Result<Application> {
        let metrics = Metrics::new().context("cannot register metrics")?;
        Application::build_with_metrics(settings, mirror, metrics).await
    }

    /// Builds the worker around `mirror`, recording into `metrics` (which an engine built with
    /// them shares, for the quarantine counts).
    pub async fn build_with_metrics(
        settings: Settings,
        mirror: Arc<dyn Mirror>,
        metrics: Metrics,
    ) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&settings.metrics.listen)
            .await
            .with_context(|| {
                format!(
                    "MIRROR__METRICS__LISTEN: cannot listen on {}",
                    settings.metrics.listen
                )
            })?;
        let address = listener.local_addr()?;
        let broker = BrokerStatus::default();
        let supervisor = Supervisor::new(
            mirror.clone(),
            settings.amqp.clone(),
            metrics.clone(),
            broker.clone(),
            RetryPolicy::default(),
        );
        Ok(Application {
            listener,
            address,
            supervisor,
            health: HealthState {
                broker,
                mirror,
                metrics,
            },
        })
    }

    /// The port `/healthz`, `/readyz` and `/metrics` are served on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The address `/healthz`, `/readyz` and `/metrics` are served on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The worker's metrics (the same registry `/metrics` renders).
    pub fn metrics(&self) -> Metrics {
        self.health.metrics.clone()
    }

    /// Serves the probes and consumes until `shutdown` is cancelled, then drains: every partition
    /// finishes and acknowledges the message in hand before the connection closes.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(address = %self.address, "Serving /healthz, /readyz and /metrics.");
        let server = axum::serve(self.listener, health::router(self.health))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let server = tokio::spawn(async move { server.await });
        self.supervisor.run(shutdown.clone()).await;
        // The consumer only returns on shutdown, so the server is stopping too.
        server
            .await
            .context("the metrics server task failed")?
            .context("the metrics server failed")?;
        Ok(())
    }
}
