//! What operators observe: after a cycle, both services' `/metrics` (scraped over HTTP) moved by
//! exactly what the cycle did, and the trace id of an HTTP call reaches the applier's span.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mirror_common::soap::{Operation, RequestBody};
use mirror_tests::values::{batch, column, delete_row, int, row, simple_row, simple_table};
use mirror_tests::{Pipeline, Tenant, eventually};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

const TABLE: &str = "contact";

/// One scrape: every sample (`name{labels}`) and its value.
#[derive(Debug)]
struct Scrape(HashMap<String, f64>);

impl Scrape {
    async fn of(base: &str) -> Scrape {
        let text = reqwest::Client::new()
            .get(format!("{base}/metrics"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("/metrics answers")
            .error_for_status()
            .expect("/metrics succeeds")
            .text()
            .await
            .expect("the exposition");
        Scrape(
            text.lines()
                .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
                .map(|line| {
                    let (sample, value) = line.rsplit_once(' ').expect("`sample value`");
                    (sample.to_owned(), value.parse().expect("a number"))
                })
                .collect(),
        )
    }

    /// The sample's value; 0 when the series does not exist (yet).
    fn get(&self, sample: &str) -> f64 {
        self.0.get(sample).copied().unwrap_or(0.0)
    }

    /// How much `sample` moved since `before`.
    fn delta(&self, before: &Scrape, sample: &str) -> f64 {
        self.get(sample) - before.get(sample)
    }
}

/// Sends `body` for `tenant` and expects success; returns the request's size in bytes.
async fn send(tenant: &Tenant, body: RequestBody<'_>) -> usize {
    let operation = body.operation();
    let xml = tenant.render(body);
    let bytes = xml.len();
    let outcome = tenant.post(operation, xml).await.outcome();
    assert!(outcome.ok, "{}: {}", operation.name(), outcome.error);
    bytes
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_moves_both_services_metrics_by_exactly_what_it_did() {
    let pipeline = Pipeline::start(1).await;
    let tenant = pipeline.tenant();
    let receiver = pipeline
        .url()
        .strip_suffix(pipeline.settings.http.path.as_str())
        .unwrap()
        .to_owned();
    let worker = format!("http://127.0.0.1:{}", pipeline.workers[0].port);
    let schema = simple_table(TABLE);
    let (receiver_before, worker_before) = (Scrape::of(&receiver).await, Scrape::of(&worker).await);

    // A cycle: 6 inserts, then 2 updates and 1 delete, each operation's bytes counted.
    let mut sent: BTreeMap<&str, usize> = BTreeMap::new();
    *sent.entry("Authenticate").or_default() += send(&tenant, RequestBody::Authenticate).await;
    let tables = vec![schema.clone()];
    *sent.entry("TableSchema").or_default() +=
        send(&tenant, RequestBody::TableSchema { tables }).await;
    let wipe = RequestBody::Wipe {
        table: TABLE.into(),
    };
    *sent.entry("Wipe").or_default() += send(&tenant, wipe).await;
    let inserts = (1..=6).map(|k| simple_row("I", k, "new")).collect();
    let load = RequestBody::RowData {
        batches: vec![batch(&schema, 10, inserts)],
    };
    *sent.entry("RowData").or_default() += send(&tenant, load).await;
    let changes = vec![
        simple_row("U", 1, "changed"),
        simple_row("U", 2, "changed"),
        delete_row(3),
    ];
    let change = RequestBody::RowData {
        batches: vec![batch(&schema, 11, changes)],
    };
    *sent.entry("RowData").or_default() += send(&tenant, change).await;
    // One call that fails (a token that is not one is refused) and one that faults (not XML).
    let refused = pipeline
        .client()
        .call_with_token("not-a-token", RequestBody::Authenticate)
        .await;
    assert!(!refused.outcome().ok);
    let garbage = "<not a soap envelope";
    *sent.entry("RowData").or_default() += garbage.len();
    assert_eq!(
        tenant.post(Operation::RowData, garbage.into()).await.status,
        500
    );
    let started_completing = unix_now();
    let summary = mirror_common::wire::ReplicationSummary {
        table: TABLE.into(),
        inserts: 6,
        updates: 2,
        deletes: 1,
    };
    let completed = RequestBody::ReplicationCompleted {
        summaries: vec![summary],
    };
    *sent.entry("ReplicationCompleted").or_default() += send(&tenant, completed).await;

    let done = r#"mirror_applier_messages_total{kind="ReplicationCompleted",outcome="done"}"#;
    eventually("the cycle to be applied", || async {
        (pipeline.metric(done) >= 1.0).then_some(())
    })
    .await;
    let (receiver_after, worker_after) = (Scrape::of(&receiver).await, Scrape::of(&worker).await);
    let r = |sample: &str| receiver_after.delta(&receiver_before, sample);
    let w = |sample: &str| worker_after.delta(&worker_before, sample);

    // Receiver: calls by operation and outcome, bytes exactly as sent, one confirm per message.
    for (operation, outcome, calls) in [
        ("Authenticate", "success", 1.0),
        ("Authenticate", "failure", 1.0),
        ("TableSchema", "success", 1.0),
        ("Wipe", "success", 1.0),
        ("RowData", "success", 2.0),
        ("RowData", "fault", 1.0),
        ("ReplicationCompleted", "success", 1.0),
    ] {
        assert_eq!(
            r(&format!(
                r#"mirror_receiver_calls_total{{operation="{operation}",outcome="{outcome}"}}"#
            )),
            calls,
            "{operation} {outcome}: {receiver_after:?}"
        );
    }
    for (operation, bytes) in &sent {
        let sample = format!(r#"mirror_receiver_request_bytes_total{{operation="{operation}"}}"#);
        if *operation == "Authenticate" {
            // The refused call's bytes are counted too; its size is the client's business.
            assert!(r(&sample) > *bytes as f64, "{operation}");
        } else {
            assert_eq!(r(&sample), *bytes as f64, "{operation}");
        }
    }
    for (kind, messages) in [
        ("TableSchema", 1.0),
        ("Wipe", 1.0),
        ("RowData", 2.0),
        ("ReplicationCompleted", 1.0),
    ] {
        assert_eq!(
            r(&format!(
                r#"mirror_receiver_confirm_seconds_count{{kind="{kind}"}}"#
            )),
            messages,
            "confirms of {kind}"
        );
        assert_eq!(
            r(&format!(
                r#"mirror_receiver_confirm_seconds_bucket{{kind="{kind}",le="+Inf"}}"#
            )),
            messages
        );
        // Applier: the same messages done, each with one apply latency observation.
        let done = format!(r#"mirror_applier_messages_total{{kind="{kind}",outcome="done"}}"#);
        assert_eq!(w(&done), messages, "{kind} applied: {worker_after:?}");
        let count = format!(r#"mirror_applier_apply_seconds_count{{kind="{kind}"}}"#);
        assert_eq!(w(&count), messages, "apply latencies of {kind}");
    }
    assert_eq!(r("mirror_receiver_schema_reply_wait_seconds_count"), 1.0);
    assert_eq!(receiver_after.get("mirror_receiver_broker_connected"), 1.0);
    assert_eq!(
        receiver_after
            .0
            .keys()
            .filter(|k| k.starts_with("mirror_receiver_publish_failures_total"))
            .count(),
        0
    );

    // Applier: rows by operation as sent, the tenant's cycle clock, nothing dead or quarantined.
    for (operation, rows) in [("insert", 6.0), ("update", 2.0), ("delete", 1.0)] {
        let sample = format!(r#"mirror_applier_rows_applied_total{{operation="{operation}"}}"#);
        assert_eq!(w(&sample), rows, "{operation}");
    }
    let clock = worker_after.get(&format!(
        r#"mirror_applier_last_cycle_timestamp_seconds{{tenant="{}"}}"#,
        tenant.id()
    ));
    assert!(clock >= started_completing.floor(), "{clock}");
    assert!(clock <= unix_now(), "{clock}");
    assert_eq!(
        w(r#"mirror_applier_schema_replies_total{outcome="applied"}"#),
        1.0
    );
    for absent in [
        "mirror_applier_dead_letters_total",
        "mirror_applier_retries_total",
        "mirror_applier_quarantine_heals_total",
    ] {
        let series: Vec<_> = worker_after
            .0
            .keys()
            .filter(|k| k.starts_with(absent))
            .collect();
        assert!(series.is_empty(), "{series:?}");
    }
    assert_eq!(w("mirror_applier_quarantines_total"), 0.0);
    assert_eq!(worker_after.get("mirror_applier_active_partitions"), 2.0);
    assert_eq!(worker_after.get("mirror_applier_broker_connected"), 1.0);
    let lags: Vec<_> = worker_after
        .0
        .keys()
        .filter(|k| k.starts_with("mirror_applier_lag_seconds{"))
        .collect();
    assert_eq!(lags.len(), 1, "one partition handled messages: {lags:?}");

    pipeline.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_and_its_healing_are_counted_once_each() {
    let pipeline = Pipeline::start(1).await;
    let tenant = pipeline.tenant();
    let worker = format!("http://127.0.0.1:{}", pipeline.workers[0].port);
    let schema = simple_table(TABLE);
    tenant.table_schema(std::slice::from_ref(&schema)).await;
    tenant.wipe(TABLE).await;
    let wiped = r#"mirror_applier_messages_total{kind="Wipe",outcome="done"}"#;
    eventually("the first wipe to be applied", || async {
        (pipeline.metric(wiped) >= 1.0).then_some(())
    })
    .await;
    let before = Scrape::of(&worker).await;

    // A batch whose TableInfo is not the table's schema (a column the mirror was never told of)
    // fails permanently: the table is quarantined until the next cycle reloads it.
    let mut drifted = schema.clone();
    drifted.columns.push(column("extra", "int", true));
    let values = vec![
        Some(int(1)),
        Some("name".into()),
        Some(int(10)),
        Some(int(2)),
    ];
    tenant
        .row_data(vec![batch(&drifted, 5, vec![row("I", values)])])
        .await;
    let dead = r#"mirror_applier_dead_letters_total{reason="failed"}"#;
    eventually("the poison batch to be dead-lettered", || async {
        (pipeline.metric(dead) >= 1.0).then_some(())
    })
    .await;
    let quarantined = Scrape::of(&worker).await;
    assert_eq!(quarantined.delta(&before, dead), 1.0);
    assert_eq!(
        quarantined.delta(&before, "mirror_applier_quarantines_total"),
        1.0
    );
    let heals = r#"mirror_applier_quarantine_heals_total{cause="wipe"}"#;
    assert_eq!(quarantined.delta(&before, heals), 0.0);

    // The next cycle's wipe lifts it; a second wipe of a healthy table heals nothing.
    tenant.wipe(TABLE).await;
    tenant.wipe(TABLE).await;
    tenant.completed(&[TABLE]).await;
    let done = r#"mirror_applier_messages_total{kind="ReplicationCompleted",outcome="done"}"#;
    eventually("the cycle to be applied", || async {
        (pipeline.metric(done) >= 1.0).then_some(())
    })
    .await;
    let healed = Scrape::of(&worker).await;
    assert_eq!(healed.delta(&before, heals), 1.0);
    assert_eq!(
        healed.delta(&before, "mirror_applier_quarantines_total"),
        1.0
    );
    assert_eq!(
        healed.delta(
            &before,
            r#"mirror_applier_messages_total{kind="Wipe",outcome="done"}"#
        ),
        2.0
    );
    pipeline.stop().await;
}

/// Spans named `message` (the applier's, one per delivery): their tenant and trace id.
#[derive(Clone, Default)]
struct MessageSpans(Arc<Mutex<Vec<(String, String)>>>);

impl MessageSpans {
    fn trace_ids_of(&self, tenant: &str) -> Vec<String> {
        let spans = self.0.lock().unwrap();
        spans
            .iter()
            .filter(|(t, _)| t == tenant)
            .map(|(_, trace)| trace.clone())
            .collect()
    }
}

#[derive(Default)]
struct Fields {
    tenant: String,
    trace_id: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "tenant" => self.tenant = format!("{value:?}"),
            "trace_id" => self.trace_id = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for MessageSpans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        if attrs.metadata().name() == "message" {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            self.0
                .lock()
                .unwrap()
                .push((fields.tenant, fields.trace_id));
        }
    }
}

// One thread: the receiver's and the worker's tasks all run where the capturing subscriber is
// the default.
#[tokio::test(flavor = "current_thread")]
async fn the_trace_id_of_the_http_call_is_the_one_in_the_applier_span() {
    let spans = MessageSpans::default();
    let _default = tracing::subscriber::set_default(Registry::default().with(spans.clone()));
    let pipeline = Pipeline::start(1).await;
    let tenant = pipeline.tenant();
    let schema = simple_table(TABLE);
    tenant.table_schema(std::slice::from_ref(&schema)).await;
    let trace_id = mirror_common::telemetry::new_trace_id();

    let body = RequestBody::Wipe {
        table: TABLE.into(),
    };
    let reply = reqwest::Client::new()
        .post(pipeline.url())
        .header("Content-Type", "text/xml; charset=utf-8")
        .header(
            "SOAPAction",
            format!("\"{}\"", Operation::Wipe.soap_action()),
        )
        .header("traceparent", format!("00-{trace_id}-3d3b2c778f977d45-01"))
        .body(tenant.render(body))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);

    let traces = eventually("the applier to handle both messages", || async {
        let traces = spans.trace_ids_of(tenant.id());
        (traces.len() == 2).then_some(traces)
    })
    .await;
    // TableSchema came without a traceparent: the receiver made up a fresh id for it.
    assert_ne!(traces[0], trace_id);
    assert_eq!(traces[0].len(), 32);
    assert_eq!(traces[1], trace_id, "{traces:?}");
    pipeline.stop().await;
}
