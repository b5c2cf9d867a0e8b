//! The worker group on the broker: each worker binds an exclusive queue of its own to the
//! `<prefix>.members` fanout exchange, says it is alive there every heartbeat interval, and keeps
//! a [`Membership`] view from what the others say. The live member ids are published on a `watch`
//! channel; the supervisor turns them into the partitions this worker owns.
//!
//! ```text
//! worker A ──alive/leaving──▶ <prefix>.members (fanout) ──▶ amq.gen-… (A, exclusive) ──▶ A's view
//!                                                        └─▶ amq.gen-… (B, exclusive) ──▶ B's view
//! ```
//!
//! A newcomer is answered at once with a heartbeat, so it learns the group within a round trip.
//! A worker that shuts down says `leaving`, so the others take over without waiting; one that dies
//! is dropped after the membership timeout. The group lives as long as the broker session: a new
//! session declares a new exclusive queue and starts with an empty view (keeping the member id).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, Consumer};
use mirror_common::topology;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use uuid::Uuid;

use super::Context;
use super::membership::{Beacon, Heard, Membership};

/// AMQP reply code of a normal close.
const REPLY_SUCCESS: u16 = 200;

/// `delivery_mode` of a message the broker may keep in memory only.
const TRANSIENT: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub(super) enum GroupError {
    #[error("worker group: {operation} failed: {source}")]
    Broker {
        operation: &'static str,
        source: lapin::Error,
    },
    #[error("worker group: {operation}: no answer from the broker within {timeout:?}")]
    Timeout {
        operation: &'static str,
        timeout: Duration,
    },
    #[error("worker group: the broker cancelled the members consumer")]
    Cancelled,
    #[error("worker group: the task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// This worker's membership in the group for one broker session.
pub(super) struct Group {
    members: watch::Receiver<Vec<Uuid>>,
    /// Aborted with the session if the session itself is dropped (a worker's task aborted).
    task: AbortOnDropHandle<Result<(), GroupError>>,
}

impl Group {
    /// Joins the group on `connection` as `member`: declares the members exchange and this
    /// session's queue, then heartbeats and listens until `stop` is cancelled. When `shutdown`
    /// (the worker's, of which `stop` is a child) is cancelled, it says goodbye first.
    pub async fn join(
        ctx: Arc<Context>,
        connection: &Connection,
        member: Uuid,
        shutdown: CancellationToken,
        stop: CancellationToken,
    ) -> Result<Group, GroupError> {
        let timeout = ctx.broker_timeout();
        let channel = bounded("open channel", timeout, connection.create_channel()).await?;
        bounded(
            "declare the members exchange",
            timeout,
            topology::declare_members(&channel, &ctx.topology),
        )
        .await?;
        // Server-named, exclusive: the queue goes with this connection, whatever ends it.
        let queue = bounded(
            "declare the member queue",
            timeout,
            channel.queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await?;
        let exchange = ctx.topology.members_exchange();
        bounded(
            "bind the member queue",
            timeout,
            channel.queue_bind(
                queue.name().clone(),
                exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        let beacons = bounded(
            "consume the member queue",
            timeout,
            channel.basic_consume(
                queue.name().clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    exclusive: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await?;
        let (publish, members) = watch::channel(vec![member]);
        let beat = Beat {
            view: Membership::new(member, ctx.amqp.membership_timeout()),
            member,
            exchange,
            channel,
            publish,
            ctx,
        };
        let task = AbortOnDropHandle::new(tokio::spawn(beat.run(beacons, shutdown, stop)));
        Ok(Group { members, task })
    }

    /// The live member ids (sorted, this worker included); changes whenever the view does.
    pub fn members(&self) -> watch::Receiver<Vec<Uuid>> {
        self.members.clone()
    }

    /// Waits for the group's task to end: `Ok` after `stop`, the failure otherwise.
    pub async fn ended(self) -> Result<(), GroupError> {
        self.task.await?
    }
}

/// The running side of a [`Group`].
struct Beat {
    view: Membership,
    member: Uuid,
    exchange: String,
    channel: Channel,
    publish: watch::Sender<Vec<Uuid>>,
    ctx: Arc<Context>,
}

impl Beat {
    async fn run(
        mut self,
        mut beacons: Consumer,
        shutdown: CancellationToken,
        stop: CancellationToken,
    ) -> Result<(), GroupError> {
        let mut tick = tokio::time::interval(self.ctx.amqp.member_heartbeat());
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let result = loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {
                    // Best effort: a lost goodbye costs the others one membership timeout.
                    if let Err(error) = self.say(Beacon::Leaving(self.member)).await {
                        tracing::debug!(%error, "Could not say goodbye to the group.");
                    }
                    break Ok(());
                }
                () = stop.cancelled() => break Ok(()),
                _ = tick.tick() => {
                    if let Err(error) = self.say(Beacon::Alive(self.member)).await {
                        break Err(error);
                    }
                    let expired = self.view.expire(Instant::now());
                    if !expired.is_empty() {
                        tracing::info!(?expired, "Group members fell silent.");
                        self.changed();
                    }
                }
                next = beacons.next() => match next {
                    Some(Ok(delivery)) => {
                        let kind = delivery.properties.kind().as_ref().map(|k| k.as_str());
                        if let Err(error) = self.hear(kind, &delivery.data).await {
                            break Err(error);
                        }
                    }
                    Some(Err(source)) => {
                        break Err(GroupError::Broker { operation: "consume", source });
                    }
                    None => break Err(GroupError::Cancelled),
                },
            }
        };
        match tokio::time::timeout(
            self.ctx.broker_timeout(),
            self.channel.close(REPLY_SUCCESS, "OK".into()),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(%error, "Member channel close failed."),
            Err(_) => tracing::debug!("Member channel close timed out."),
        }
        result
    }

    /// Takes in one message from the members exchange.
    async fn hear(&mut self, kind: Option<&str>, body: &[u8]) -> Result<(), GroupError> {
        let Some(beacon) = Beacon::parse(kind, body) else {
            tracing::debug!(?kind, "Ignoring a message on the members exchange.");
            return Ok(());
        };
        match self.view.heard(beacon, Instant::now()) {
            Heard::Joined => {
                tracing::info!(?beacon, "A group member joined.");
                self.changed();
                // Answer at once, so a newcomer learns the group within a round trip.
                self.say(Beacon::Alive(self.member)).await
            }
            Heard::Left => {
                tracing::info!(?beacon, "A group member left.");
                self.changed();
                Ok(())
            }
            Heard::Refreshed | Heard::Ignored => Ok(()),
        }
    }

    /// Publishes the live members.
    fn changed(&self) {
        // No receiver means the session is ending; nothing to tell.
        let _ = self.publish.send(self.view.live());
    }

    /// Publishes a beacon; it expires with the membership timeout, so a backlog never replays.
    async fn say(&self, beacon: Beacon) -> Result<(), GroupError> {
        let timeout = self.ctx.broker_timeout();
        let properties = BasicProperties::default()
            .with_type(beacon.kind().into())
            .with_delivery_mode(TRANSIENT)
            .with_expiration(self.ctx.amqp.membership_timeout_ms.to_string().into());
        let confirm = bounded(
            "publish a heartbeat",
            timeout,
            self.channel.basic_publish(
                self.exchange.as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                &beacon.body(),
                properties,
            ),
        )
        .await?;
        // Without confirm mode this resolves at once; bounded all the same.
        bounded("publish a heartbeat", timeout, confirm)
            .await
            .map(drop)
    }
}

/// One broker operation, bounded by `timeout`.
async fn bounded<T>(
    operation: &'static str,
    timeout: Duration,
    call: impl Future<Output = lapin::Result<T>>,
) -> Result<T, GroupError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(GroupError::Broker { operation, source }),
        Err(_) => Err(GroupError::Timeout { operation, timeout }),
    }
}
