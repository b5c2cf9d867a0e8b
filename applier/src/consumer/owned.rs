//! The partitions this worker consumes in one broker session, kept equal to the ones it owns.
//!
//! A partition that is gained starts a [`partition::run`] task; one that is lost is handed over:
//! its stop token is cancelled, so the task finishes and acknowledges the message in hand, then
//! closes the partition's channels — the broker returns what was prefetched, in order, and makes
//! the new owner's waiting consumer the single active one. A partition regained while it is still
//! being handed over starts again once the old task has ended, so a worker never holds two
//! consumers of one queue.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lapin::Connection;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Context;
use super::partition::{self, PartitionError};

/// Why a partition task ended without being asked to.
#[derive(Debug, thiserror::Error)]
pub(super) enum Ended {
    #[error("partition {0} stopped consuming")]
    Closed(u16),
    #[error(transparent)]
    Partition(#[from] PartitionError),
    #[error("a partition task ended unexpectedly: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One running partition task.
struct Running {
    stop: CancellationToken,
    /// Lost: being handed over.
    releasing: bool,
}

/// The partition tasks of one session.
pub(super) struct Owned {
    ctx: Arc<Context>,
    connection: Arc<Connection>,
    /// The session's stop token; each partition's is a child of it.
    stop: CancellationToken,
    tasks: JoinSet<(u16, Result<(), PartitionError>)>,
    running: BTreeMap<u16, Running>,
    wanted: BTreeSet<u16>,
}

impl Owned {
    pub fn new(ctx: Arc<Context>, connection: Arc<Connection>, stop: CancellationToken) -> Owned {
        Owned {
            ctx,
            connection,
            stop,
            tasks: JoinSet::new(),
            running: BTreeMap::new(),
            wanted: BTreeSet::new(),
        }
    }

    /// Makes `wanted` the partitions this worker consumes: hands over the lost ones and starts
    /// the gained ones.
    pub fn set(&mut self, wanted: BTreeSet<u16>, members: usize) {
        if wanted == self.wanted {
            return;
        }
        let released: Vec<u16> = self.wanted.difference(&wanted).copied().collect();
        let gained: Vec<u16> = wanted.difference(&self.wanted).copied().collect();
        tracing::info!(
            owned = ?wanted,
            ?gained,
            ?released,
            members,
            "Partition ownership changed."
        );
        self.wanted = wanted;
        for partition in released {
            if let Some(running) = self.running.get_mut(&partition) {
                running.releasing = true;
                running.stop.cancel();
            }
        }
        for partition in gained {
            if !self.running.contains_key(&partition) {
                self.start(partition);
            }
        }
    }

    /// Waits until a partition task ends without having been asked to (never, if none does).
    /// Handed-over partitions are reaped on the way, and restarted if owned again meanwhile.
    /// Cancel-safe: the only wait is on the task set.
    pub async fn failed(&mut self) -> Ended {
        loop {
            let Some(joined) = self.tasks.join_next().await else {
                return std::future::pending().await;
            };
            let (partition, result) = match joined {
                Ok(ended) => ended,
                Err(error) => return Ended::Task(error),
            };
            let released = self
                .running
                .remove(&partition)
                .is_some_and(|running| running.releasing);
            if !released {
                return match result {
                    Ok(()) => Ended::Closed(partition),
                    Err(error) => Ended::Partition(error),
                };
            }
            match result {
                Ok(()) => tracing::info!(partition, "Partition handed over."),
                Err(error) => tracing::warn!(%error, partition, "Partition handover failed."),
            }
            if self.wanted.contains(&partition) {
                self.start(partition);
            }
        }
    }

    /// Stops every partition (each finishes and acknowledges the message in hand) and waits.
    pub async fn stop_all(mut self) {
        self.stop.cancel();
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((partition, Err(error))) => {
                    tracing::debug!(%error, partition, "Partition ended with an error.");
                }
                Err(error) => tracing::error!(%error, "Partition task failed."),
            }
        }
    }

    fn start(&mut self, partition: u16) {
        let stop = self.stop.child_token();
        let run = partition::run(
            self.ctx.clone(),
            self.connection.clone(),
            partition,
            stop.clone(),
        );
        self.tasks.spawn(async move { (partition, run.await) });
        self.running.insert(
            partition,
            Running {
                stop,
                releasing: false,
            },
        );
    }
}
