//! A worker against the real RabbitMQ and PostgreSQL: messages published as the receiver does are
//! applied in order, acknowledged, answered (TableSchema), deduplicated, and drained on shutdown.

mod consumer_support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use mirror_applier::consumer::Mirror;
use mirror_applier::engine::{Applied, Engine, Quarantine};
use mirror_applier::error::ApplyError;
use mirror_common::wire::{Envelope, Kind, SchemaReply, TableLsn};
use tokio::sync::Notify;

use consumer_support::{Harness, eventually_within, next_reply, rows_message, schema_message};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn applies_messages_in_order_and_drains_the_queue() {
    let h = Harness::new(2).await;
    let worker = h.start().await;
    h.publish(&h.envelope(schema_message(&["contact"]))).await;
    h.publish(&h.envelope(rows_message("contact", 0, &[(1, "one"), (2, "two")])))
        .await;
    h.publish(&h.envelope(rows_message("contact", 42, &[(1, "uno"), (3, "three")])))
        .await;

    let rows = eventually_within("three rows in the mirror", WAIT, || async {
        let rows = h.rows("contact").await;
        (rows.len() == 3).then_some(rows)
    })
    .await;
    assert_eq!(
        rows,
        vec![
            (1, Some("uno".to_owned())),
            (2, Some("two".to_owned())),
            (3, Some("three".to_owned())),
        ]
    );
    let queue = h.partition_queue();
    eventually_within("both batches to be applied", WAIT, || async {
        (worker.metric(r#"mirror_applier_messages_total{kind="RowData",outcome="done"}"#) == 2.0)
            .then_some(())
    })
    .await;
    assert_eq!(
        worker.metric(r#"mirror_applier_messages_total{kind="TableSchema",outcome="done"}"#),
        1.0
    );
    assert_eq!(
        worker.metric(r#"mirror_applier_rows_applied_total{operation="insert"}"#),
        4.0
    );
    assert_eq!(
        worker.metric(r#"mirror_applier_apply_seconds_count{kind="RowData"}"#),
        2.0
    );
    eventually_within("every partition consumed", WAIT, || async {
        (worker.metric("mirror_applier_active_partitions") == 2.0).then_some(())
    })
    .await;
    let lag = worker.metric(&format!(
        r#"mirror_applier_lag_seconds{{partition="{}"}}"#,
        h.topology.partition_of(&h.tenant)
    ));
    assert!(lag > 0.0 && lag < 60.0, "{lag}");
    let lsn: i64 = h
        .scalar(&format!(
            r#"SELECT lsn FROM "{}"."{}_mirroring" WHERE tablename = 'contact'"#,
            h.storage(),
            h.tenant
        ))
        .await;
    assert_eq!(lsn, 42);

    worker.stop().await;
    // Nothing went back to the queue on close: every message was acknowledged.
    assert_eq!(h.ready(&queue).await, 0);
    h.cleanup().await;
}

#[tokio::test]
async fn answers_table_schema_through_direct_reply_to() {
    let h = Harness::new(2).await;
    let worker = h.start().await;
    let mut replies = h
        .channel
        .basic_consume(
            "amq.rabbitmq.reply-to".into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    h.ask(h.envelope(schema_message(&["contact", "person"])), "first")
        .await;
    let (correlation, reply) = next_reply(&mut replies, WAIT).await;
    assert_eq!(correlation.as_deref(), Some("first"));
    let SchemaReply::Applied { mut lsns } = reply else {
        panic!("expected LSNs, got {reply:?}");
    };
    lsns.sort_by(|a, b| a.table.cmp(&b.table));
    assert_eq!(
        lsns,
        vec![
            TableLsn {
                table: "contact".into(),
                lsn: -1
            },
            TableLsn {
                table: "person".into(),
                lsn: -1
            },
        ]
    );

    // After rows with an LSN, the next TableSchema reports it.
    h.publish(&h.envelope(rows_message("contact", 1234, &[(1, "one")])))
        .await;
    h.ask(h.envelope(schema_message(&["contact", "person"])), "second")
        .await;
    let (correlation, reply) = next_reply(&mut replies, WAIT).await;
    assert_eq!(correlation.as_deref(), Some("second"));
    let SchemaReply::Applied { lsns } = reply else {
        panic!("expected LSNs, got {reply:?}");
    };
    assert!(lsns.contains(&TableLsn {
        table: "contact".into(),
        lsn: 1234
    }));

    // A schema the mirror cannot take is answered with the failure, and dead-lettered.
    let reserved = format!("{}_mirroring_extra", h.tenant.to_lowercase());
    h.ask(h.envelope(schema_message(&[reserved.as_str()])), "third")
        .await;
    let (correlation, reply) = next_reply(&mut replies, WAIT).await;
    assert_eq!(correlation.as_deref(), Some("third"));
    match reply {
        SchemaReply::Failed { error } => assert!(error.contains("reserved"), "{error}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    eventually_within(
        "the failed schema in the dead-letter queue",
        WAIT,
        || async { (h.ready(&h.topology.dead_letter_queue()).await == 1).then_some(()) },
    )
    .await;
    eventually_within("the replies to be counted", WAIT, || async {
        let applied = worker.metric(r#"mirror_applier_schema_replies_total{outcome="applied"}"#);
        let failed = worker.metric(r#"mirror_applier_schema_replies_total{outcome="failed"}"#);
        (applied == 2.0 && failed == 1.0).then_some(())
    })
    .await;
    worker.stop().await;
    h.cleanup().await;
}

#[tokio::test]
async fn a_message_published_twice_applies_once() {
    let h = Harness::new(2).await;
    let worker = h.start().await;
    h.publish(&h.envelope(schema_message(&["contact"]))).await;
    let rows = h.envelope(rows_message("contact", 7, &[(1, "one"), (2, "two")]));
    h.publish(&rows).await;
    h.publish(&rows).await;
    eventually_within("the second copy to be recognised", WAIT, || async {
        (worker.metric(r#"mirror_applier_messages_total{kind="RowData",outcome="duplicate"}"#)
            == 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(
        worker.metric(r#"mirror_applier_messages_total{kind="RowData",outcome="done"}"#),
        1.0
    );
    assert_eq!(
        worker.metric(r#"mirror_applier_rows_applied_total{operation="insert"}"#),
        2.0
    );
    assert_eq!(h.rows("contact").await.len(), 2);
    let queue = h.partition_queue();
    worker.stop().await;
    assert_eq!(h.ready(&queue).await, 0);
    h.cleanup().await;
}

/// Holds every RowData apply until released, to catch the worker with a message in hand.
struct Gated {
    engine: Engine,
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl Mirror for Gated {
    async fn apply(&self, envelope: &Envelope) -> Result<Applied, ApplyError> {
        if envelope.message.kind() == Kind::RowData {
            self.entered.notify_one();
            self.release.notified().await;
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
async fn shutdown_finishes_the_message_in_hand_and_takes_no_more() {
    let h = Harness::new(2).await;
    let gated = Arc::new(Gated {
        engine: Engine::connect(&h.settings.database).await.unwrap(),
        entered: Notify::new(),
        release: Notify::new(),
    });
    let worker = h.start_with(gated.clone()).await;
    h.publish(&h.envelope(schema_message(&["contact"]))).await;
    h.publish(&h.envelope(rows_message("contact", 0, &[(1, "in hand")])))
        .await;
    h.publish(&h.envelope(rows_message("contact", 0, &[(2, "next")])))
        .await;
    tokio::time::timeout(WAIT, gated.entered.notified())
        .await
        .expect("the first batch reaches the engine");

    // Shutdown arrives while the first batch is being applied.
    worker.shutdown.cancel();
    gated.release.notify_one();
    tokio::time::timeout(WAIT, worker.handle)
        .await
        .expect("the worker stops")
        .unwrap()
        .unwrap();

    assert_eq!(
        h.rows("contact").await,
        vec![(1, Some("in hand".to_owned()))]
    );
    // The batch in hand was acknowledged; the next one went back to the queue untouched (the
    // broker requeues it as the worker's channel closes, which it reports a moment later).
    let queue = h.partition_queue();
    eventually_within("the next batch to be ready again", WAIT, || async {
        (h.ready(&queue).await == 1).then_some(())
    })
    .await;

    let worker = h.start().await;
    eventually_within("the remaining batch to be applied", WAIT, || async {
        (h.rows("contact").await.len() == 2).then_some(())
    })
    .await;
    worker.stop().await;
    assert_eq!(h.ready(&queue).await, 0);
    h.cleanup().await;
}
