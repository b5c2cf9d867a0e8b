//! The worker's RabbitMQ side: one connection, kept up by a supervisor; membership in the worker
//! group; one task and one channel per partition queue this worker owns, handling that
//! partition's messages strictly one after another.
//!
//! ```text
//! supervisor ── connect (backoff) ── declare topology ── join the group ── watch connection
//!     group: heartbeats on <prefix>.members ── live members ── assignment ── owned partitions
//!     partition n (owned): channel + qos(prefetch) ── consume mirror.pNN ── handle ── ack
//! ```
//!
//! Workers split the partitions among themselves (see [`assignment`]); a partition that changes
//! hands is handed over cleanly: the message in hand is finished and acknowledged, then the
//! partition's channel is closed, which lets the new owner's waiting consumer become active.
//!
//! A message is acknowledged only after its effect is committed (or it is safely in the
//! dead-letter queue). Transient failures are retried in place, so a partition never skips ahead.
//! On shutdown an apply in progress is finished and acknowledged; a message waiting for its next
//! attempt, or one whose ack is lost with the connection, stays with the broker, which hands it
//! out again first — and the engine recognises it if it was committed.

mod assignment;
mod group;
mod handler;
mod membership;
mod mirror;
mod owned;
mod partition;
mod reply;
mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use mirror_common::config::AmqpSettings;
use mirror_common::topology::Topology;

use crate::health::BrokerStatus;
use crate::metrics::Metrics;
use crate::retry::Backoff;

pub use mirror::Mirror;
pub use supervisor::Supervisor;

/// Pauses between attempts of a message that failed transiently, and between reconnects.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: crate::retry::DEFAULT_INITIAL,
            max: crate::retry::DEFAULT_MAX,
        }
    }
}

impl RetryPolicy {
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.initial, self.max)
    }
}

/// Everything the partitions of one worker share.
pub(crate) struct Context {
    pub mirror: Arc<dyn Mirror>,
    pub amqp: AmqpSettings,
    pub topology: Topology,
    pub metrics: Metrics,
    pub broker: BrokerStatus,
    pub retry: RetryPolicy,
}

impl Context {
    /// Bound on one broker operation (publish, confirm, ack, channel open or close).
    pub fn broker_timeout(&self) -> Duration {
        self.amqp.publish_timeout()
    }
}
