//! Transient faults wait, they don't reorder: a failing apply is retried in place, a lost broker
//! connection is re-established by the worker itself, and a database outage is waited out.

mod consumer_support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use mirror_applier::consumer::Mirror;
use mirror_applier::engine::{Applied, Engine, Quarantine};
use mirror_applier::error::ApplyError;
use mirror_common::wire::{Envelope, Kind};
use uuid::Uuid;

use consumer_support::{Harness, Proxy, eventually_within, rows_message, schema_message};

const WAIT: Duration = Duration::from_secs(20);

/// Fails the first RowData apply `failures` times with a transient error; records every attempt.
struct Flaky {
    engine: Engine,
    failures: AtomicU32,
    attempts: Mutex<Vec<Uuid>>,
}

#[async_trait]
impl Mirror for Flaky {
    async fn apply(&self, envelope: &Envelope) -> Result<Applied, ApplyError> {
        self.attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(envelope.id);
        let fail = envelope.message.kind() == Kind::RowData
            && self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if fail {
            return Err(ApplyError::Unavailable {
                message: "connection reset".into(),
            });
        }
        self.engine.apply(envelope).await
    }

    async fn quarantine(
        &self,
        envelope: &Envelope,
        failure: &ApplyError,
    ) -> Result<Quarantine, ApplyError> {
        self.engine.quarantine(envelope, failure).await
    }

    async fn ping(&self) -> Result<(), ApplyError> {
        self.engine.ping().await
    }
}

#[tokio::test]
async fn a_transient_failure_is_retried_in_place_without_reordering() {
    let h = Harness::new(2).await;
    let flaky = Arc::new(Flaky {
        engine: Engine::connect(&h.settings.database).await.unwrap(),
        failures: AtomicU32::new(3),
        attempts: Mutex::new(Vec::new()),
    });
    let worker = h.start_with(flaky.clone()).await;
    let schema = h.envelope(schema_message(&["contact"]));
    let first = h.envelope(rows_message("contact", 0, &[(1, "first")]));
    let second = h.envelope(rows_message("contact", 0, &[(1, "second")]));
    for envelope in [&schema, &first, &second] {
        h.publish(envelope).await;
    }
    eventually_within("the second batch to be applied", WAIT, || async {
        (h.rows("contact").await == vec![(1, Some("second".to_owned()))]).then_some(())
    })
    .await;
    // The failing batch was tried again and again before anything behind it.
    assert_eq!(
        *flaky.attempts.lock().unwrap(),
        vec![schema.id, first.id, first.id, first.id, first.id, second.id]
    );
    assert_eq!(
        worker.metric(r#"mirror_applier_retries_total{stage="apply"}"#),
        3.0
    );
    assert_eq!(
        worker.metric(r#"mirror_applier_messages_total{kind="RowData",outcome="done"}"#),
        2.0
    );
    let queue = h.partition_queue();
    worker.stop().await;
    assert_eq!(h.ready(&queue).await, 0);
    h.cleanup().await;
}

#[tokio::test]
async fn the_worker_reconnects_after_losing_the_broker() {
    let mut h = Harness::new(2).await;
    let proxy = Proxy::start("127.0.0.1:5672").await;
    h.settings.amqp.url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port);
    let worker = h.start().await;
    h.publish(&h.envelope(schema_message(&["contact"]))).await;
    h.publish(&h.envelope(rows_message("contact", 0, &[(1, "before")])))
        .await;
    eventually_within("the first batch", WAIT, || async {
        (h.rows("contact").await.len() == 1).then_some(())
    })
    .await;

    proxy.down();
    eventually_within("the worker to notice the lost connection", WAIT, || async {
        (worker.metric("mirror_applier_broker_connected") == 0.0).then_some(())
    })
    .await;
    let (status, body) = worker.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("broker"), "{body}");
    // Published while the worker is away: waits in the queue.
    h.publish(&h.envelope(rows_message("contact", 0, &[(2, "during")])))
        .await;
    proxy.up();

    eventually_within("the batch published during the outage", WAIT, || async {
        (h.rows("contact").await.len() == 2).then_some(())
    })
    .await;
    assert_eq!(worker.metric("mirror_applier_broker_reconnects_total"), 1.0);
    assert_eq!(worker.metric("mirror_applier_broker_connected"), 1.0);
    eventually_within("every partition consumed again", WAIT, || async {
        (worker.metric("mirror_applier_active_partitions") == 2.0).then_some(())
    })
    .await;
    let queue = h.partition_queue();
    worker.stop().await;
    assert_eq!(h.ready(&queue).await, 0);
    h.cleanup().await;
}

#[tokio::test]
async fn the_worker_waits_out_a_database_outage() {
    let mut h = Harness::new(2).await;
    let proxy = Proxy::start("127.0.0.1:5432").await;
    h.settings.database.url = format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port);
    let worker = h.start().await;
    h.publish(&h.envelope(schema_message(&["contact"]))).await;
    h.publish(&h.envelope(rows_message("contact", 0, &[(1, "before")])))
        .await;
    eventually_within("the first batch", WAIT, || async {
        (h.rows("contact").await.len() == 1).then_some(())
    })
    .await;
    eventually_within("the worker to be ready", WAIT, || async {
        (worker.get("/readyz").await.0 == 200).then_some(())
    })
    .await;

    proxy.down();
    h.publish(&h.envelope(rows_message("contact", 0, &[(2, "during")])))
        .await;
    eventually_within("the worker to retry the batch", WAIT, || async {
        (worker.metric(r#"mirror_applier_retries_total{stage="apply"}"#) >= 2.0).then_some(())
    })
    .await;
    let (status, body) = worker.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database"), "{body}");
    // Held, not acknowledged, not requeued, nothing dead-lettered.
    assert_eq!(h.rows("contact").await.len(), 1);
    assert_eq!(h.ready(&h.topology.dead_letter_queue()).await, 0);
    proxy.up();

    eventually_within("the batch held during the outage", WAIT, || async {
        (worker.metric(r#"mirror_applier_messages_total{kind="RowData",outcome="done"}"#) == 2.0)
            .then_some(())
    })
    .await;
    assert_eq!(h.rows("contact").await.len(), 2);
    let queue = h.partition_queue();
    worker.stop().await;
    assert_eq!(h.ready(&queue).await, 0);
    h.cleanup().await;
}
