//! Backpressure for Authenticate: is the tenant's partition too far behind?
//!
//! When a partition holds more ready messages than `amqp.backlog_threshold`, Authenticate answers
//! `{"doNotReplicate":"true"}` and SuperOffice skips the cycle cleanly instead of pushing more
//! into a queue the appliers cannot drain. Counts come from a passive queue declare and are cached
//! per partition for a moment, so a burst of tenants authenticating does not become a burst of
//! broker round trips.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

use crate::broker::Broker;

/// How long a partition's message count is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(2);

/// What Authenticate should tell SuperOffice about this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// Replicate as usual.
    Clear,
    /// The partition holds this many ready messages, above the threshold.
    Above(u32),
    /// The broker is unreachable: nothing could be accepted this cycle.
    BrokerUnavailable,
}

impl Backlog {
    pub fn do_not_replicate(self) -> bool {
        match self {
            Backlog::Clear => false,
            Backlog::Above(_) | Backlog::BrokerUnavailable => true,
        }
    }
}

#[derive(Debug)]
pub struct BacklogCheck {
    threshold: u32,
    cache: Mutex<HashMap<u16, (Instant, u32)>>,
}

impl BacklogCheck {
    pub fn new(threshold: u32) -> BacklogCheck {
        BacklogCheck {
            threshold,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn check(&self, broker: &Broker, partition: u16) -> Backlog {
        let Some(link) = broker.link() else {
            return Backlog::BrokerUnavailable;
        };
        let count = match self.cached(partition) {
            Some(count) => count,
            None => {
                let queue = broker.topology().queue(partition);
                let declare = link.inspect.queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                );
                match tokio::time::timeout(broker.settings().publish_timeout(), declare).await {
                    Ok(Ok(queue)) => {
                        let count = queue.message_count();
                        self.store(partition, count);
                        count
                    }
                    Ok(Err(error)) => {
                        // A missing queue closes the inspection channel; reconnecting declares
                        // the topology again.
                        tracing::warn!(%error, %queue, "Cannot read the partition backlog.");
                        link.report_broken();
                        return Backlog::BrokerUnavailable;
                    }
                    Err(_elapsed) => {
                        tracing::warn!(%queue, "Reading the partition backlog timed out.");
                        link.report_broken();
                        return Backlog::BrokerUnavailable;
                    }
                }
            }
        };
        if count > self.threshold {
            Backlog::Above(count)
        } else {
            Backlog::Clear
        }
    }

    fn cached(&self, partition: u16) -> Option<u32> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(&partition)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|&(_, count)| count)
    }

    fn store(&self, partition: u16, count: u32) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(partition, (Instant::now(), count));
    }
}
