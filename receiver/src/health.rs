//! Liveness, readiness and metrics, served on the receiver's own port.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// `GET /healthz`: the process is alive and serving.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 while the broker is connected, else 503 (calls would be refused).
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.broker.is_connected() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "message broker unavailable\n",
        )
            .into_response()
    }
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, "Cannot render metrics.");
            (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
        }
    }
}
