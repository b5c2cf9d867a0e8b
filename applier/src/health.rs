//! The worker's HTTP side: `/healthz` (the process answers), `/readyz` (the broker is connected
//! and the database answers a ping) and `/metrics` (Prometheus text).
//!
//! Kubernetes restarts a worker whose `/healthz` fails and stops counting one whose `/readyz`
//! fails; a worker waiting out a database outage is alive but not ready, and must not be restarted
//! for it (it holds the partition's next message and would only lose its place).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::consumer::Mirror;
use crate::metrics::Metrics;

/// Longest a readiness probe waits for the database before calling it down.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether the broker connection is up; the connection supervisor flips it, probes read it.
#[derive(Debug, Clone, Default)]
pub struct BrokerStatus(Arc<AtomicBool>);

impl BrokerStatus {
    pub fn set(&self, connected: bool) {
        self.0.store(connected, Ordering::Release);
    }

    pub fn connected(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// What the probes look at.
#[derive(Clone)]
pub struct HealthState {
    pub broker: BrokerStatus,
    pub mirror: Arc<dyn Mirror>,
    pub metrics: Metrics,
}

/// The routes, ready to serve.
pub fn router(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<HealthState>) -> Response {
    if !state.broker.connected() {
        return (StatusCode::SERVICE_UNAVAILABLE, "broker not connected\n").into_response();
    }
    match tokio::time::timeout(PING_TIMEOUT, state.mirror.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(error)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database not ready: {error}\n"),
        )
            .into_response(),
        Err(_elapsed) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database not ready: no answer within {PING_TIMEOUT:?}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<HealthState>) -> Response {
    match state.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "Failed to render metrics.");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render metrics\n").into_response()
        }
    }
}
