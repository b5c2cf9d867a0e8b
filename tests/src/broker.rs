//! Looking into a pipeline's queues. Partition queues are quorum queues with single active
//! consumer, which refuse `basic.get`: they are inspected by their message counts. The
//! dead-letter queue has no such restriction and is read with `basic.get`.

use lapin::options::BasicGetOptions;
use lapin::types::AMQPValue;
use lapin::{BasicProperties, Channel, Connection};
use mirror_common::config::AmqpSettings;
use mirror_common::topology::Topology;
use mirror_common::wire::{self, Envelope};

/// A connection of the test's own to the pipeline's queues.
pub struct Queues {
    connection: Connection,
    topology: Topology,
}

impl Queues {
    pub async fn connect(amqp: &AmqpSettings) -> Queues {
        let connection = mirror_common::broker::connect(amqp)
            .await
            .expect("RabbitMQ on 127.0.0.1:5672");
        Queues {
            connection,
            topology: Topology::new(amqp),
        }
    }

    async fn channel(&self) -> Channel {
        self.connection
            .create_channel()
            .await
            .expect("a channel to RabbitMQ")
    }

    /// Ready messages in `queue` (unacknowledged ones not included).
    pub async fn ready(&self, queue: &str) -> u32 {
        let channel = self.channel().await;
        let declared = mirror_common::topology::inspect(&channel, queue)
            .await
            .unwrap_or_else(|e| panic!("queue {queue} exists: {e}"));
        let _ = channel.close(200, "OK".into()).await;
        declared.message_count()
    }

    /// Ready messages in every partition queue, by partition.
    pub async fn partition_counts(&self) -> Vec<u32> {
        let mut counts = Vec::with_capacity(usize::from(self.topology.partitions));
        for partition in 0..self.topology.partitions {
            counts.push(self.ready(&self.topology.queue(partition)).await);
        }
        counts
    }

    /// Ready messages in the dead-letter queue.
    pub async fn dead_letter_count(&self) -> u32 {
        self.ready(&self.topology.dead_letter_queue()).await
    }

    /// Takes every message out of the dead-letter queue, oldest first.
    pub async fn take_dead_letters(&self) -> Vec<DeadLetter> {
        let channel = self.channel().await;
        let queue = self.topology.dead_letter_queue();
        let mut letters = Vec::new();
        while let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get on the dead-letter queue")
        {
            letters.push(DeadLetter {
                body: message.delivery.data,
                properties: message.delivery.properties,
            });
        }
        let _ = channel.close(200, "OK".into()).await;
        letters
    }

    pub async fn close(self) {
        let _ = self.connection.close(200, "OK".into()).await;
    }
}

/// A message taken from the dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub body: Vec<u8>,
    pub properties: BasicProperties,
}

impl DeadLetter {
    fn header(&self, name: &str) -> Option<&AMQPValue> {
        self.properties.headers().as_ref()?.inner().get(name)
    }

    /// A string header (`x-mirror-reason`, `x-mirror-table`, `x-mirror-tenant` …).
    pub fn text(&self, name: &str) -> Option<String> {
        match self.header(name)? {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
            _ => None,
        }
    }

    /// An integer header (`x-mirror-attempts`, `x-mirror-epoch`, `x-mirror-partition`).
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.header(name)? {
            AMQPValue::LongLongInt(n) => Some(*n),
            AMQPValue::LongInt(n) => Some(i64::from(*n)),
            AMQPValue::ShortInt(n) => Some(i64::from(*n)),
            AMQPValue::LongUInt(n) => Some(i64::from(*n)),
            _ => None,
        }
    }

    /// The message as the receiver published it.
    pub fn envelope(&self) -> Envelope {
        wire::decode(&self.body).expect("a dead letter holding an envelope")
    }
}
