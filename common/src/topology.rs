//! The RabbitMQ topology every service agrees on: names, arguments, and idempotent declaration.
//!
//! ```text
//! <prefix>.partitions (direct) ──routing key "<n>"──▶ <prefix>.p00 … quorum, single active consumer
//!                                                        │ delivery limit / rejected
//! <prefix>.dlx (fanout) ◀──at-least-once dead-lettering──┘
//!     └──▶ <prefix>.dlq (quorum)
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
