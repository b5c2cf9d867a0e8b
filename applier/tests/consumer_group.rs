//! The worker group against the real broker: one worker consumes every partition; two more join
//! and the partitions spread evenly over the three; one leaves gracefully and one dies without a
//! word, and the survivor takes everything back. A tenant's messages published all along are
//! applied in order across every handover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod consumer_support;

use std::time::Duration;

use mirror_applier::metrics::ACTIVE_PARTITIONS;
use tokio::task::JoinHandle;

use consumer_support::{Harness, Worker, eventually_within, rows_message, schema_message};

const PARTITIONS: u16 = 6;
/// Bound on a split settling; far above the heartbeat and membership timeout set below.
const WAIT: Duration = Duration::from_secs(30);

/// Consumers of every partition queue, as the broker counts them (waiting ones included).
async fn consumers(h: &Harness) -> Vec<u32> {
    let channel = h.amqp.create_channel().await.unwrap();
    let mut counts = Vec::new();
    for partition in 0..PARTITIONS {
        let queue =
            mirror_common::topology::inspect(&channel, h.topology.queue(partition).as_str())
                .await
                .unwrap();
        counts.push(queue.consumer_count());
    }
    let _ = channel.close(200, "OK".into()).await;
    counts
}

/// Waits until the workers consume `expected` partitions each and every queue has exactly one
/// consumer (so a partition that changed hands was let go by its previous owner).
async fn split(h: &Harness, workers: &[&Worker], expected: &[f64], what: &str) {
    eventually_within(what, WAIT, || async {
        let held: Vec<f64> = workers
            .iter()
            .map(|w| w.metric(ACTIVE_PARTITIONS))
            .collect();
        let single = consumers(h).await.iter().all(|&c| c == 1);
        (held == expected && single).then_some(())
    })
    .await;
}

/// Publishes `count` upserts of the tenant's key 1 (and one new key each), one message each,
/// with a short pause between them, starting at `first`.
fn publish_load(h: &Harness, first: i32, count: i32) -> JoinHandle<()> {
    let messages: Vec<_> = (first..first + count)
        .map(|i| {
            let name = format!("v{i}");
            h.envelope(rows_message(
                "contact",
                i64::from(i),
                &[(1, name.as_str()), (i, name.as_str())],
            ))
        })
        .collect();
    let (channel, topology, tenant) = (h.channel.clone(), h.topology.clone(), h.tenant.clone());
    let properties: Vec<_> = messages.iter().map(|e| h.properties(e)).collect();
    tokio::spawn(async move {
        let partition = topology.partition_of(&tenant);
        for (envelope, properties) in messages.iter().zip(properties) {
            let body = mirror_common::wire::encode(envelope).unwrap();
            let confirm = channel
                .basic_publish(
                    topology.exchange().as_str().into(),
                    topology.routing_key(partition).as_str().into(),
                    lapin::options::BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    &body,
                    properties,
                )
                .await
                .unwrap()
                .await
                .unwrap();
            assert!(confirm.is_ack());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Waits until the tenant's mirror shows every message up to `last` applied, in order.
async fn applied_up_to(h: &Harness, last: i32) {
    let expected = format!("v{last}");
    eventually_within(&format!("message {last} applied"), WAIT, || async {
        let rows = h.rows("contact").await;
        let latest = rows.iter().find(|(key, _)| *key == 1)?.1.clone()?;
        (latest == expected).then_some(rows)
    })
    .await;
    let rows = h.rows("contact").await;
    // Key 1 carries the last message's name only if no earlier message was applied after it;
    // every other key was written by its own message once.
    assert_eq!(rows.len(), usize::try_from(last).unwrap(), "{rows:?}");
    for (key, name) in rows.iter().skip(1) {
        assert_eq!(name.as_deref(), Some(format!("v{key}").as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_spread_over_the_group_and_come_back_when_members_go() {
    let mut h = Harness::new(PARTITIONS).await;
    h.settings.amqp.member_heartbeat_ms = 200;
    h.settings.amqp.membership_timeout_ms = 2_000;
    h.publish(&h.envelope(schema_message(&["contact"]))).await;

    let first = h.start().await;
    split(
        &h,
        &[&first],
        &[6.0],
        "one worker to consume all 6 partitions",
    )
    .await;
    let load = publish_load(&h, 2, 150);

    let second = h.start().await;
    let third = h.start().await;
    split(
        &h,
        &[&first, &second, &third],
        &[2.0, 2.0, 2.0],
        "three workers to consume 2 partitions each",
    )
    .await;

    // One leaves saying goodbye, one dies silently (its tasks and connection just vanish).
    second.stop().await;
    third.handle.abort();
    split(
        &h,
        &[&first],
        &[6.0],
        "the survivor to consume all 6 partitions again",
    )
    .await;
    load.await.unwrap();
    applied_up_to(&h, 151).await;

    first.stop().await;
    h.cleanup().await;
}
