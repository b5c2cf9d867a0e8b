//! Messages that cannot be applied reach the dead-letter queue with their reason, table, epoch and
//! partition; only their table is quarantined, and the partition keeps flowing behind them.

mod consumer_support;

use std::time::Duration;

use lapin::BasicProperties;
use lapin::types::AMQPValue;
use mirror_common::topology::header;
use mirror_common::value::Value;
use mirror_common::wire::{self, Message, Operation, Row, RowBatch};

use consumer_support::{Harness, eventually_within, rows_message, schema_message, table};

const WAIT: Duration = Duration::from_secs(15);

fn header<'a>(properties: &'a BasicProperties, name: &str) -> Option<&'a AMQPValue> {
    properties.headers().as_ref()?.inner().get(name)
}

fn text(value: Option<&AMQPValue>) -> Option<String> {
    match value? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn a_failing_batch_is_dead_lettered_and_only_its_table_quarantined() {
    let h = Harness::new(2).await;
    let worker = h.start().await;
    h.publish(&h.envelope(schema_message(&["contact", "person"])))
        .await;
    h.publish(&h.envelope(rows_message("contact", 10, &[(1, "kept")])))
        .await;
    // An insert that carries only its key: the engine cannot apply it, ever.
    let poison = h.envelope(Message::RowData {
        batches: vec![RowBatch {
            table: table("contact"),
            lsn: 11,
            rows: vec![Row {
                op: Operation::Insert,
                values: vec![Value::Int(2)],
            }],
        }],
    });
    h.publish(&poison).await;
    h.publish(&h.envelope(rows_message("person", 5, &[(1, "unaffected")])))
        .await;
    h.publish(&h.envelope(rows_message("contact", 12, &[(3, "parked")])))
        .await;

    eventually_within("the later contact batch to be parked", WAIT, || async {
        (worker.metric(r#"mirror_applier_messages_total{kind="RowData",outcome="parked"}"#) == 1.0)
            .then_some(())
    })
    .await;
    let letters = h.take_dead_letters().await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        letter.data,
        wire::encode(&poison).unwrap(),
        "the original body"
    );
    let props = &letter.properties;
    assert_eq!(
        props.message_id().as_ref().map(|s| s.to_string()),
        Some(poison.id.to_string())
    );
    assert_eq!(props.delivery_mode(), &Some(2));
    assert_eq!(text(header(props, header::TENANT)), Some(h.tenant.clone()));
    assert_eq!(
        text(header(props, header::TRACE_ID)),
        Some(poison.trace_id.clone())
    );
    let reason = text(header(props, header::REASON)).unwrap();
    assert!(
        reason.contains("contact") && reason.contains("values"),
        "{reason}"
    );
    assert_eq!(
        text(header(props, header::TABLE)).as_deref(),
        Some("contact")
    );
    assert_eq!(
        header(props, header::ATTEMPTS),
        Some(&AMQPValue::LongLongInt(1))
    );
    assert_eq!(
        header(props, header::PARTITION),
        Some(&AMQPValue::LongLongInt(i64::from(
            h.topology.partition_of(&h.tenant)
        )))
    );
    let epoch: i64 = h
        .scalar(&format!(
            r#"SELECT epoch FROM "{}"."{}_mirroring" WHERE tablename = 'contact'"#,
            h.storage(),
            h.tenant
        ))
        .await;
    assert_eq!(
        header(props, header::EPOCH),
        Some(&AMQPValue::LongLongInt(epoch))
    );

    // contact is quarantined (LSN -1: the next cycle reloads it); person is untouched.
    let state =
        h.pg.query(
            &format!(
                r#"SELECT tablename, lsn, quarantine IS NOT NULL FROM "{}"."{}_mirroring"
                   ORDER BY tablename"#,
                h.storage(),
                h.tenant
            ),
            &[],
        )
        .await
        .unwrap();
    let state: Vec<(String, i64, bool)> = state
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        state,
        vec![
            ("contact".to_owned(), -1, true),
            ("person".to_owned(), 5, false)
        ]
    );
    assert_eq!(h.rows("contact").await, vec![(1, Some("kept".to_owned()))]);
    assert_eq!(
        h.rows("person").await,
        vec![(1, Some("unaffected".to_owned()))]
    );
    assert_eq!(
        worker.metric(r#"mirror_applier_dead_letters_total{reason="failed"}"#),
        1.0
    );
    assert_eq!(
        worker.metric(r#"mirror_applier_messages_total{kind="RowData",outcome="dead_lettered"}"#),
        1.0
    );
    let queue = h.partition_queue();
    worker.stop().await;
    assert_eq!(h.ready(&queue).await, 0);
    h.cleanup().await;
}

#[tokio::test]
async fn a_body_that_is_not_an_envelope_is_dead_lettered() {
    let h = Harness::new(2).await;
    let worker = h.start().await;
    let properties = BasicProperties::default()
        .with_message_id("not-an-envelope".into())
        .with_delivery_mode(2);
    h.publish_raw(b"\x93\x01\x02garbage", properties).await;
    // The partition keeps going behind it.
    h.publish(&h.envelope(schema_message(&["contact"]))).await;
    h.publish(&h.envelope(rows_message("contact", 1, &[(1, "after")])))
        .await;

    eventually_within("the batch behind the garbage", WAIT, || async {
        (h.rows("contact").await.len() == 1).then_some(())
    })
    .await;
    let letters = h.take_dead_letters().await;
    assert_eq!(letters.len(), 1);
    let props = &letters[0].properties;
    assert_eq!(letters[0].data, b"\x93\x01\x02garbage");
    assert_eq!(
        props.message_id().as_ref().map(|s| s.as_str()),
        Some("not-an-envelope")
    );
    let reason = text(header(props, header::REASON)).unwrap();
    assert!(reason.contains("decode"), "{reason}");
    assert_eq!(header(props, header::TABLE), None);
    assert_eq!(header(props, header::EPOCH), None);
    assert_eq!(
        header(props, header::PARTITION),
        Some(&AMQPValue::LongLongInt(i64::from(
            h.topology.partition_of(&h.tenant)
        )))
    );
    assert_eq!(
        worker.metric(r#"mirror_applier_messages_total{kind="unknown",outcome="undecodable"}"#),
        1.0
    );
    assert_eq!(
        worker.metric(r#"mirror_applier_dead_letters_total{reason="undecodable"}"#),
        1.0
    );
    let queue = h.partition_queue();
    worker.stop().await;
    assert_eq!(h.ready(&queue).await, 0);
    h.cleanup().await;
}
