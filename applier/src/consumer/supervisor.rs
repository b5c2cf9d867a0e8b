//! Keeps one broker connection up and the partitions this worker owns consumed on it.
//!
//! Each session joins the worker group ([`Group`]) and, whenever the live members change and
//! have settled for one heartbeat interval, consumes the partitions [`assignment::owned`] gives
//! this worker ([`Owned`] starts and hands over the difference). Single active consumer stays on
//! the partition queues as the safety net while two workers' views of the group differ.
//!
//! Reconnecting is done here rather than by lapin's auto-recovery so that a lost connection is
//! visible (readiness, metrics, logs), the topology is declared again explicitly, and every
//! partition restarts from a clean channel. lapin can hang on some broker failures, so besides
//! the connection's error events the supervisor also polls its state, and every broker call made
//! anywhere in the worker carries a timeout.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::{Connection, Event};
use mirror_common::broker;
use mirror_common::config::AmqpSettings;
use mirror_common::topology::{self, Topology};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::assignment;
use super::group::{Group, GroupError};
use super::owned::{Ended, Owned};
use super::{Context, Mirror, RetryPolicy};
use crate::health::BrokerStatus;
use crate::metrics::Metrics;

/// How often the connection's state is checked besides its error events.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// AMQP reply code of a normal close.
const REPLY_SUCCESS: u16 = 200;

/// Why a connection's session ended other than by shutdown.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Connect(#[from] broker::BrokerError),
    #[error("cannot declare the topology: {0}")]
    Declare(lapin::Error),
    #[error("cannot declare the topology: no answer from the broker within {0:?}")]
    DeclareTimeout(Duration),
    #[error("the connection failed: {0}")]
    Connection(lapin::Error),
    #[error("the connection is no longer open")]
    Closed,
    #[error(transparent)]
    Partition(#[from] Ended),
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error("the worker group stopped")]
    GroupStopped,
}

/// The consuming side of a worker: give it the mirror and run it until shutdown.
pub struct Supervisor {
    ctx: Arc<Context>,
    /// This worker's id in the group, for its whole life (sessions come and go).
    member: Uuid,
}

impl Supervisor {
    pub fn new(
        mirror: Arc<dyn Mirror>,
        amqp: AmqpSettings,
        metrics: Metrics,
        broker: BrokerStatus,
        retry: RetryPolicy,
    ) -> Supervisor {
        let topology = Topology::new(&amqp);
        Supervisor {
            ctx: Arc::new(Context {
                mirror,
                amqp,
                topology,
                metrics,
                broker,
                retry,
            }),
            member: Uuid::new_v4(),
        }
    }

    /// Connects, consumes and reconnects until `shutdown` is cancelled; then lets every partition
    /// finish the message in hand, closes the channels and the connection, and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = self.ctx.retry.backoff();
        let mut sessions: u64 = 0;
        while !shutdown.is_cancelled() {
            let connected = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                connected = broker::connect(&self.ctx.amqp) => connected,
            };
            let result = match connected {
                Ok(connection) => {
                    sessions += 1;
                    self.session(connection, sessions > 1, &mut backoff, &shutdown)
                        .await
                }
                Err(error) => Err(SessionError::Connect(error)),
            };
            match result {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%error, "Broker session ended; reconnecting.");
                    if !backoff.wait(&shutdown).await {
                        break;
                    }
                }
            }
        }
        tracing::info!("Consumer stopped.");
    }

    /// One connection's life: declare, join the group, consume the owned partitions, watch.
    /// `Ok` on shutdown.
    async fn session(
        &self,
        connection: Connection,
        reconnect: bool,
        backoff: &mut crate::retry::Backoff,
        shutdown: &CancellationToken,
    ) -> Result<(), SessionError> {
        let connection = Arc::new(connection);
        let mut events = connection.events_listener();
        if let Err(error) = self.declare(&connection).await {
            close(&connection, self.ctx.broker_timeout()).await;
            return Err(error);
        }
        backoff.reset();
        self.ctx.broker.set(true);
        self.ctx.metrics.broker_connected(true, reconnect);
        tracing::info!(
            partitions = self.ctx.topology.partitions,
            prefix = %self.ctx.topology.prefix,
            member = %self.member,
            "Connected to the broker."
        );

        let stop = shutdown.child_token();
        let group = match Group::join(
            self.ctx.clone(),
            &connection,
            self.member,
            shutdown.clone(),
            stop.clone(),
        )
        .await
        {
            Ok(group) => group,
            Err(error) => {
                self.disconnected();
                close(&connection, self.ctx.broker_timeout()).await;
                return Err(SessionError::Group(error));
            }
        };
        let mut members = group.members();
        let mut owned = Owned::new(self.ctx.clone(), connection.clone(), stop.clone());
        // The first split waits two heartbeats: every live member speaks within one, also those
        // that already knew this worker from an earlier session (they do not answer at once).
        let settle = self.ctx.amqp.member_heartbeat();
        let mut split_at = Some(Instant::now() + 2 * settle);
        let mut watch = tokio::time::interval(WATCH_INTERVAL);
        let outcome = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break Ok(()),
                ended = owned.failed() => break Err(SessionError::Partition(ended)),
                changed = members.changed() => {
                    if changed.is_err() {
                        // The group's task ended on its own; its error is collected below.
                        break Err(SessionError::GroupStopped);
                    }
                    // Membership changes come in bursts (a deployment scaling up): let it settle.
                    split_at = Some(Instant::now() + settle);
                }
                () = sleep_until_some(split_at) => {
                    split_at = None;
                    let live = members.borrow_and_update().clone();
                    let mine = assignment::owned(self.ctx.topology.partitions, &live, self.member);
                    owned.set(mine, live.len());
                }
                Some(event) = events.next() => {
                    if let Event::Error(error) = event {
                        break Err(SessionError::Connection(error));
                    }
                }
                _ = watch.tick() => {
                    if !connection.status().connected() {
                        break Err(SessionError::Closed);
                    }
                }
            }
        };
        self.disconnected();
        // Stop intake: the group says goodbye on shutdown, and every partition finishes (and
        // acknowledges) the message in hand.
        stop.cancel();
        owned.stop_all().await;
        let group_ended = group.ended().await;
        let outcome = match (outcome, group_ended) {
            (Err(SessionError::GroupStopped), Err(error)) => Err(SessionError::Group(error)),
            (outcome, Err(error)) => {
                tracing::debug!(%error, "The worker group ended with an error.");
                outcome
            }
            (outcome, Ok(())) => outcome,
        };
        close(&connection, self.ctx.broker_timeout()).await;
        outcome
    }

    /// Readiness and metrics follow the connection.
    fn disconnected(&self) {
        self.ctx.broker.set(false);
        self.ctx.metrics.broker_connected(false, false);
    }

    /// Declares the topology on a channel of its own (a mismatch closes that channel).
    async fn declare(&self, connection: &Connection) -> Result<(), SessionError> {
        let timeout = self.ctx.amqp.connect_timeout();
        let declared = tokio::time::timeout(timeout, async {
            let channel = connection.create_channel().await?;
            topology::declare(&channel, &self.ctx.topology).await?;
            channel.close(REPLY_SUCCESS, "OK".into()).await
        })
        .await;
        match declared {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(SessionError::Declare(error)),
            Err(_) => Err(SessionError::DeclareTimeout(timeout)),
        }
    }
}

/// Waits until `at`, or forever when there is nothing to wait for.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Closes the connection, bounded: a dead connection may never answer.
async fn close(connection: &Connection, timeout: Duration) {
    match tokio::time::timeout(timeout, connection.close(REPLY_SUCCESS, "OK".into())).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "Connection close failed."),
        Err(_) => tracing::debug!("Connection close timed out."),
    }
}
