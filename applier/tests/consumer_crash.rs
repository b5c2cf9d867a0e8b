//! Exactly-once effect across a crash: a worker that dies after its commit but before its ack
//! leaves the message to be redelivered, and the next worker recognises it and changes nothing.

mod consumer_support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mirror_applier::consumer::Mirror;
use mirror_applier::engine::{Applied, Engine, Quarantine};
use mirror_applier::error::ApplyError;
use mirror_common::wire::{Envelope, Kind};
use tokio::sync::Notify;

use consumer_support::{Harness, eventually_within, rows_message, schema_message};

const WAIT: Duration = Duration::from_secs(15);

/// Commits RowData for real, then never returns: the worker hangs between commit and ack until
/// the test kills it.
struct DiesAfterCommit {
    engine: Engine,
    committed: Notify,
}

#[async_trait]
impl Mirror for DiesAfterCommit {
    async fn apply(&self, envelope: &Envelope) -> Result<Applied, ApplyError> {
        let applied = self.engine.apply(envelope).await;
        if envelope.message.kind() == Kind::RowData {
            assert!(matches!(applied, Ok(Applied::Done { .. })), "{applied:?}");
            self.committed.notify_one();
            std::future::pending::<()>().await;
        }
        applied
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
async fn a_batch_committed_but_not_acknowledged_is_not_applied_twice() {
    let h = Harness::new(2).await;
    let dying = Arc::new(DiesAfterCommit {
        engine: Engine::connect(&h.settings.database).await.unwrap(),
        committed: Notify::new(),
    });
    let worker = h.start_with(dying.clone()).await;
    h.publish(&h.envelope(schema_message(&["contact"]))).await;
    h.publish(&h.envelope(rows_message("contact", 99, &[(1, "once"), (2, "once")])))
        .await;
    tokio::time::timeout(WAIT, dying.committed.notified())
        .await
        .expect("the batch is committed");
    // Each row's xmin is the transaction that last wrote it: applying again would change it.
    let xmins = format!(
        r#"SELECT string_agg(xmin::text, ',' ORDER BY contact_id) FROM "{}"."contact""#,
        h.storage()
    );
    let written: String = h.scalar(&xmins).await;

    // The crash: the worker's tasks and its broker connection vanish without an ack.
    worker.handle.abort();
    worker.shutdown.cancel();
    let queue = h.partition_queue();
    eventually_within(
        "the unacknowledged batch back in the queue",
        WAIT,
        || async { (h.ready(&queue).await == 1).then_some(()) },
    )
    .await;

    let worker = h.start().await;
    eventually_within("the redelivery to be recognised", WAIT, || async {
        (worker.metric(r#"mirror_applier_messages_total{kind="RowData",outcome="duplicate"}"#)
            == 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(
        worker.metric(r#"mirror_applier_messages_total{kind="RowData",outcome="done"}"#),
        0.0
    );
    assert_eq!(
        worker.metric(r#"mirror_applier_rows_applied_total{operation="insert"}"#),
        0.0
    );
    assert_eq!(h.scalar::<String>(&xmins).await, written);
    assert_eq!(
        h.rows("contact").await,
        vec![(1, Some("once".to_owned())), (2, Some("once".to_owned()))]
    );
    worker.stop().await;
    assert_eq!(h.ready(&queue).await, 0);
    h.cleanup().await;
}
