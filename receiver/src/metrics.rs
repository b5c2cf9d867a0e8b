//! The receiver's Prometheus metrics. Names are constants so dashboards, alerts and tests agree
//! on them; every metric lives in the application's own registry (no global state), so several
//! applications in one test process do not share counters.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Calls by operation (`Authenticate`, …, `unknown`) and outcome (`success`, `failure`, `fault`).
pub const CALLS_TOTAL: &str = "mirror_receiver_calls_total";
/// Request body bytes read, by operation.
pub const REQUEST_BYTES_TOTAL: &str = "mirror_receiver_request_bytes_total";
/// Seconds from publishing a message to the broker's confirm, by message kind.
pub const CONFIRM_SECONDS: &str = "mirror_receiver_confirm_seconds";
/// Publishes that did not end in a positive confirm, by reason.
pub const PUBLISH_FAILURES_TOTAL: &str = "mirror_receiver_publish_failures_total";
/// Seconds a TableSchema call waited for the applier's reply (timeouts included).
pub const SCHEMA_REPLY_WAIT_SECONDS: &str = "mirror_receiver_schema_reply_wait_seconds";
/// 1 while the broker connection is up, 0 otherwise.
pub const BROKER_CONNECTED: &str = "mirror_receiver_broker_connected";

/// Confirm latency buckets: a persistent 1 MB message into a quorum queue confirms in ~10 ms on
/// one publisher and ~150 ms under load; the top buckets catch a struggling broker.
const CONFIRM_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Schema replies wait for the applier to drain a partition: up to the 45 s default timeout.
const SCHEMA_REPLY_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 45.0, 90.0,
];

/// Outcome label of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Fault,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Fault => "fault",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    calls: IntCounterVec,
    request_bytes: IntCounterVec,
    confirm_seconds: HistogramVec,
    publish_failures: IntCounterVec,
    schema_reply_wait: Histogram,
    broker_connected: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let calls = IntCounterVec::new(
            Opts::new(CALLS_TOTAL, "Mirroring calls by operation and outcome."),
            &["operation", "outcome"],
        )?;
        let request_bytes = IntCounterVec::new(
            Opts::new(
                REQUEST_BYTES_TOTAL,
                "Request body bytes read, by operation.",
            ),
            &["operation"],
        )?;
        let confirm_seconds = HistogramVec::new(
            HistogramOpts::new(
                CONFIRM_SECONDS,
                "Publish-to-confirm latency, by message kind.",
            )
            .buckets(CONFIRM_BUCKETS.to_vec()),
            &["kind"],
        )?;
        let publish_failures = IntCounterVec::new(
            Opts::new(
                PUBLISH_FAILURES_TOTAL,
                "Publishes without a positive confirm, by reason.",
            ),
            &["reason"],
        )?;
        let schema_reply_wait = Histogram::with_opts(
            HistogramOpts::new(
                SCHEMA_REPLY_WAIT_SECONDS,
                "Time TableSchema calls waited for the applier's reply.",
            )
            .buckets(SCHEMA_REPLY_BUCKETS.to_vec()),
        )?;
        let broker_connected = IntGauge::new(BROKER_CONNECTED, "1 while the broker is connected.")?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(request_bytes.clone()))?;
        registry.register(Box::new(confirm_seconds.clone()))?;
        registry.register(Box::new(publish_failures.clone()))?;
        registry.register(Box::new(schema_reply_wait.clone()))?;
        registry.register(Box::new(broker_connected.clone()))?;
        Ok(Metrics {
            registry,
            calls,
            request_bytes,
            confirm_seconds,
            publish_failures,
            schema_reply_wait,
            broker_connected,
        })
    }

    pub fn call(&self, operation: &str, outcome: Outcome) {
        self.calls
            .with_label_values(&[operation, outcome.label()])
            .inc();
    }

    pub fn request_bytes(&self, operation: &str, bytes: usize) {
        self.request_bytes
            .with_label_values(&[operation])
            .inc_by(u64::try_from(bytes).unwrap_or(u64::MAX));
    }

    pub fn confirm_latency(&self, kind: &str, seconds: f64) {
        self.confirm_seconds
            .with_label_values(&[kind])
            .observe(seconds);
    }

    pub fn publish_failure(&self, reason: &str) {
        self.publish_failures.with_label_values(&[reason]).inc();
    }

    pub fn schema_reply_wait(&self, seconds: f64) {
        self.schema_reply_wait.observe(seconds);
    }

    pub fn broker_connected(&self, connected: bool) {
        self.broker_connected.set(i64::from(connected));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        TextEncoder::new().encode_to_string(&self.registry.gather())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_by_its_constant_name() {
        let m = Metrics::new().unwrap();
        m.call("RowData", Outcome::Success);
        m.call("RowData", Outcome::Success);
        m.call("unknown", Outcome::Fault);
        m.request_bytes("RowData", 1234);
        m.confirm_latency("RowData", 0.004);
        m.publish_failure("timeout");
        m.schema_reply_wait(1.5);
        m.broker_connected(true);
        let text = m.render().unwrap();
        assert!(
            text.contains(&format!(
                "{CALLS_TOTAL}{{operation=\"RowData\",outcome=\"success\"}} 2"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "{CALLS_TOTAL}{{operation=\"unknown\",outcome=\"fault\"}} 1"
        )));
        assert!(text.contains(&format!(
            "{REQUEST_BYTES_TOTAL}{{operation=\"RowData\"}} 1234"
        )));
        assert!(text.contains(&format!(
            "{CONFIRM_SECONDS}_bucket{{kind=\"RowData\",le=\"0.005\"}} 1"
        )));
        assert!(text.contains(&format!("{PUBLISH_FAILURES_TOTAL}{{reason=\"timeout\"}} 1")));
        assert!(text.contains(&format!("{SCHEMA_REPLY_WAIT_SECONDS}_count 1")));
        assert!(text.contains(&format!("{BROKER_CONNECTED} 1")));
    }
}
