//! The RabbitMQ topology every service agrees on: names, arguments, and idempotent declaration.
//!
//! ```text
//! <prefix>.partitions (direct) ──routing key "<n>"──▶ <prefix>.p00 … quorum, single active consumer
//!                                                        │ delivery limit / rejected
//! <prefix>.dlx (fanout) ◀──at-least-once dead-lettering──┘
//!     └──▶ <prefix>.dlq (quorum)
//!
//! <prefix>.members (fanout, transient) ──▶ one exclusive queue per applier worker (heartbeats)
//! ```

use crate::config::AmqpSettings;

/// Names derived from the configured prefix and partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub prefix: String,
    pub partitions: u16,
    pub delivery_limit: u32,
}

impl Topology {
    pub fn new(settings: &AmqpSettings) -> Topology {
        Topology {
            prefix: settings.prefix.clone(),
            partitions: settings.partitions,
            delivery_limit: settings.delivery_limit,
        }
    }

    /// The direct exchange partition queues are bound to.
    pub fn exchange(&self) -> String {
        format!("{}.partitions", self.prefix)
    }

    /// The dead-letter exchange (fanout).
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.prefix)
    }

    /// The dead-letter queue.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dlq", self.prefix)
    }

    /// The fanout exchange the applier workers of a group exchange heartbeats on.
    pub fn members_exchange(&self) -> String {
        format!("{}.members", self.prefix)
    }

    /// Queue name of partition `n` (`mirror.p07`).
    pub fn queue(&self, partition: u16) -> String {
        format!("{}.p{partition:02}", self.prefix)
    }

    /// Routing key of partition `n` on the partition exchange.
    pub fn routing_key(&self, partition: u16) -> String {
        partition.to_string()
    }

    /// The partition of a tenant.
    pub fn partition_of(&self, context_id: &str) -> u16 {
        crate::partition::partition_of(context_id, self.partitions)
    }
}

/// `content_type` of every message we publish.
pub const CONTENT_TYPE: &str = "application/msgpack";

/// AMQP headers carried by every partition message (the body is a MessagePack `wire::Envelope`;
/// `message_id` is the envelope id, `type` the kind name, `timestamp` the receive time).
pub mod header {
    /// The tenant's context id.
    pub const TENANT: &str = "x-mirror-tenant";
    /// Trace id of the HTTP call that produced the message.
    pub const TRACE_ID: &str = "x-mirror-trace-id";
    /// Dead-letter metadata added by the applier: why it failed permanently.
    pub const REASON: &str = "x-mirror-reason";
    /// Dead-letter metadata: how many times the applier tried.
    pub const ATTEMPTS: &str = "x-mirror-attempts";
    /// Dead-letter metadata: the table the failure concerns, if one.
    pub const TABLE: &str = "x-mirror-table";
    /// Dead-letter metadata: the table's epoch when it failed (a later wipe makes it stale).
    pub const EPOCH: &str = "x-mirror-epoch";
    /// Dead-letter metadata: the partition the message came from (replay goes back there).
    pub const PARTITION: &str = "x-mirror-partition";
}

/// A queue's message and consumer counts, as the broker reports them to a passive declare. Fails
/// (closing `channel`) with `NOT_FOUND` when the queue does not exist.
pub async fn inspect(channel: &lapin::Channel, queue: &str) -> Result<lapin::Queue, lapin::Error> {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::FieldTable;

    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
}

/// Declares the exchanges, queues and bindings of `topology` (idempotent: every service calls it
/// on each connect). A queue that already exists with different arguments fails with
/// `PRECONDITION_FAILED`, which closes `channel`: that is a deployment error worth surfacing.
pub async fn declare(channel: &lapin::Channel, topology: &Topology) -> Result<(), lapin::Error> {
    use lapin::ExchangeKind;
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;

    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let durable_queue = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let dlx = topology.dead_letter_exchange();
    channel
        .exchange_declare(
            dlx.as_str().into(),
            ExchangeKind::Fanout,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;
    let dlq = topology.dead_letter_queue();
    channel
        .queue_declare(
            dlq.as_str().into(),
            durable_queue,
            dead_letter_queue_arguments(),
        )
        .await?;
    channel
        .queue_bind(
            dlq.as_str().into(),
            dlx.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let exchange = topology.exchange();
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Direct,
            durable_exchange,
            FieldTable::default(),
        )
        .await?;
    for partition in 0..topology.partitions {
        let queue = topology.queue(partition);
        channel
            .queue_declare(
                queue.as_str().into(),
                durable_queue,
                partition_queue_arguments(topology),
            )
            .await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                topology.routing_key(partition).as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Declares the members exchange of `topology`: a fanout exchange that only lives while workers
/// are bound to it (transient, auto-deleted with the last member's queue), because heartbeats are
/// worth nothing after the workers that sent them are gone.
pub async fn declare_members(
    channel: &lapin::Channel,
    topology: &Topology,
) -> Result<(), lapin::Error> {
    use lapin::ExchangeKind;
    use lapin::options::ExchangeDeclareOptions;
    use lapin::types::FieldTable;

    channel
        .exchange_declare(
            topology.members_exchange().as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Arguments of every partition queue. `x-delivery-limit` matters beyond poison handling: without
/// it a nacked message goes to the BACK of a 3.x quorum queue, breaking per-tenant order.
/// At-least-once dead-lettering requires `reject-publish` overflow.
pub fn partition_queue_arguments(topology: &Topology) -> lapin::types::FieldTable {
    use lapin::types::{AMQPValue, FieldTable, LongString};

    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(i64::from(topology.delivery_limit)),
    );
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(LongString::from(topology.dead_letter_exchange().as_str())),
    );
    args.insert(
        "x-dead-letter-strategy".into(),
        AMQPValue::LongString("at-least-once".into()),
    );
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    args
}

/// Arguments of the dead-letter queue: a quorum queue, so dead letters are as durable as the rest.
pub fn dead_letter_queue_arguments() -> lapin::types::FieldTable {
    use lapin::types::{AMQPValue, FieldTable};

    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use lapin::options::{
        BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    };
    use lapin::types::FieldTable;

    fn settings(prefix: &str) -> AmqpSettings {
        AmqpSettings {
            prefix: prefix.to_owned(),
            partitions: 3,
            ..AmqpSettings::default()
        }
    }

    #[test]
    fn names_follow_the_prefix() {
        let t = Topology::new(&settings("mirror"));
        assert_eq!(t.exchange(), "mirror.partitions");
        assert_eq!(t.dead_letter_exchange(), "mirror.dlx");
        assert_eq!(t.dead_letter_queue(), "mirror.dlq");
        assert_eq!(t.members_exchange(), "mirror.members");
        assert_eq!(t.queue(7), "mirror.p07");
        assert_eq!(t.routing_key(7), "7");
        assert!(t.partition_of("Cust24709") < 3);
    }

    async fn delete_all(channel: &lapin::Channel, t: &Topology) {
        for n in 0..t.partitions {
            let _ = channel
                .queue_delete(t.queue(n).as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = channel
            .queue_delete(
                t.dead_letter_queue().as_str().into(),
                QueueDeleteOptions::default(),
            )
            .await;
        for exchange in [t.exchange(), t.dead_letter_exchange()] {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }

    #[tokio::test]
    async fn declare_is_idempotent_and_routes_by_partition() {
        let prefix = format!("topotest-{}", uuid::Uuid::new_v4().simple());
        let settings = settings(&prefix);
        let t = Topology::new(&settings);
        let conn = crate::broker::connect(&settings).await.unwrap();
        let channel = conn.create_channel().await.unwrap();
        declare(&channel, &t).await.unwrap();
        // A second declaration with the same arguments must be accepted.
        declare(&channel, &t).await.unwrap();

        // The queues exist with the expected type: a passive declare of a quorum queue succeeds,
        // and re-declaring it as a classic queue is refused.
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        for n in 0..t.partitions {
            let q = channel
                .queue_declare(t.queue(n).as_str().into(), passive, FieldTable::default())
                .await
                .unwrap();
            assert_eq!(q.message_count(), 0);
        }
        let other = conn.create_channel().await.unwrap();
        let conflicting = other
            .queue_declare(
                t.queue(0).as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await;
        assert!(conflicting.is_err(), "a classic re-declaration must fail");

        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let confirm = channel
            .basic_publish(
                t.exchange().as_str().into(),
                t.routing_key(2).as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                b"hello",
                lapin::BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
        assert!(confirm.take_message().is_none(), "the message was routed");
        // Quorum queues with single active consumer refuse basic.get: count, then consume.
        for n in 0..t.partitions {
            let q = channel
                .queue_declare(t.queue(n).as_str().into(), passive, FieldTable::default())
                .await
                .unwrap();
            let expected = u32::from(n == 2);
            assert_eq!(q.message_count(), expected, "partition {n}");
        }
        let mut consumer = channel
            .basic_consume(
                t.queue(2).as_str().into(),
                "topotest".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let delivery = tokio::time::timeout(std::time::Duration::from_secs(5), consumer.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(delivery.data, b"hello");
        delete_all(&channel, &t).await;
        let _ = conn.close(200, "OK".into()).await;
    }
}
