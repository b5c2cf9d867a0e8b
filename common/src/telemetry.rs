//! One place that sets up logging for every binary: text or JSON, filter from configuration
//! unless `RUST_LOG` is set.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. Call once, from `main`.
pub fn init_subscriber(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(std::io::stderr);
    // A second call (tests that start several apps) keeps the first subscriber.
    let _ = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// A fresh trace id: 32 lowercase hex digits, as W3C `traceparent` uses.
pub fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The trace id of a W3C `traceparent` header (`00-<trace id>-<span id>-<flags>`), if well-formed.
pub fn trace_id_from_traceparent(header: &str) -> Option<String> {
    let mut parts = header.trim().split('-');
    let _version = parts.next()?;
    let trace = parts.next()?;
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit()) && trace != "0".repeat(32))
        .then(|| trace.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_trace_id_superoffice_sends() {
        assert_eq!(
            trace_id_from_traceparent("00-8e7c226a62b25848aa9e99baaf7dde5c-3d3b2c778f977d45-00")
                .as_deref(),
            Some("8e7c226a62b25848aa9e99baaf7dde5c")
        );
        assert_eq!(trace_id_from_traceparent("garbage"), None);
        assert_eq!(
            trace_id_from_traceparent("00-00000000000000000000000000000000-3d3b2c778f977d45-00"),
            None
        );
        assert_eq!(new_trace_id().len(), 32);
    }
}
