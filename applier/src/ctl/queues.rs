//! The queues as `mirrorctl` sees them: depths from passive declares, the dead-letter queue read
//! without consuming it, and republishing a dead letter to its partition.
//!
//! # Reading the dead-letter queue safely
//! The dead-letter queue is a quorum queue without single active consumer, so `basic.get` works
//! (the partition queues refuse it with `RESOURCE_LOCKED`: they are only counted). Messages are
//! fetched one at a time, unacknowledged, on one channel; a message is removed only by
//! acknowledging it, and closing the channel returns everything else to the queue, in delivery
//! order. The broker keeps what is held: a command keeps only the message in hand, so a queue of
//! any size is read in the memory of one message. The queue is declared without a delivery limit,
//! so returning a message, however often, never drops it (the broker only counts the returns in
//! `x-delivery-count`, which a replay leaves out).
//!
//! A command reads the messages that were ready when it started, and no more. One dead-lettered
//! meanwhile (a replayed message failing again, say) lands behind them and is left for the next
//! command, so a replay never meets its own messages again. Once the channel closes, the quorum
//! queue serves the returned messages first, in their order, so it stays behind them.

use std::time::Duration;

use anyhow::{Context as _, bail};
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::DeliveryTag;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ErrorKind};
use mirror_common::config::AmqpSettings;
use mirror_common::topology::Topology;

/// A connection of `mirrorctl`'s own to the broker.
pub struct Broker {
    connection: Connection,
    pub topology: Topology,
    publish_timeout: Duration,
}

/// Ready messages and consumers of one queue (`None`: the queue does not exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub messages: u32,
    pub consumers: u32,
}

/// A message fetched from the dead-letter queue and not yet acknowledged.
pub struct HeldLetter {
    pub tag: DeliveryTag,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
}

/// The dead-letter queue, read in order by [`Held::next`]; what was read is held by one channel
/// until [`Held::release`].
pub struct Held {
    channel: Channel,
    queue: String,
    /// Messages ready when reading started: the ones [`Held::next`] returns.
    pub ready: u32,
    /// How many were fetched, and how many of those removed.
    fetched: usize,
    removed: usize,
}

/// How long [`Held::release`] waits for the returned messages to be ready again.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

impl Broker {
    pub async fn connect(amqp: &AmqpSettings) -> anyhow::Result<Broker> {
        let connection = mirror_common::broker::connect(amqp)
            .await
            .with_context(|| format!("RabbitMQ at {}", redact(&amqp.url)))?;
        Ok(Broker {
            connection,
            topology: Topology::new(amqp),
            publish_timeout: amqp.publish_timeout(),
        })
    }

    async fn channel(&self) -> anyhow::Result<Channel> {
        self.connection
            .create_channel()
            .await
            .context("cannot open a channel to RabbitMQ")
    }

    /// The depth of `queue`, or `None` when it does not exist (a passive declare answers both).
    pub async fn depth(&self, queue: &str) -> anyhow::Result<Option<Depth>> {
        let channel = self.channel().await?;
        let declared = mirror_common::topology::inspect(&channel, queue).await;
        match declared {
            Ok(q) => {
                let _ = channel.close(200, "OK".into()).await;
                Ok(Some(Depth {
                    messages: q.message_count(),
                    consumers: q.consumer_count(),
                }))
            }
            // The broker closed the channel with the 404.
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(error).with_context(|| format!("cannot inspect queue {queue}")),
        }
    }

    /// Opens the dead-letter queue for reading, oldest message first (see [`Held::next`]).
    pub async fn hold_dead_letters(&self) -> anyhow::Result<Held> {
        let queue = self.topology.dead_letter_queue();
        let Some(depth) = self.depth(&queue).await? else {
            bail!(
                "the dead-letter queue {queue} does not exist: is MIRROR__AMQP__PREFIX right \
                 (start a service once to declare the queues)?"
            );
        };
        Ok(Held {
            channel: self.channel().await?,
            queue,
            ready: depth.messages,
            fetched: 0,
            removed: 0,
        })
    }

    /// A channel in confirm mode for [`Broker::republish`].
    pub async fn publisher(&self) -> anyhow::Result<Channel> {
        let channel = self.channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("cannot enable publisher confirms")?;
        Ok(channel)
    }

    /// Publishes `body` with `properties` (made persistent) to `partition` through the partition
    /// exchange, mandatory, and waits for the broker's confirm.
    pub async fn republish(
        &self,
        channel: &Channel,
        partition: u16,
        properties: BasicProperties,
        body: &[u8],
    ) -> anyhow::Result<()> {
        let queue = self.topology.queue(partition);
        let publish = channel.basic_publish(
            self.topology.exchange().as_str().into(),
            self.topology.routing_key(partition).as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            body,
            properties.with_delivery_mode(2),
        );
        let timeout = self.publish_timeout;
        let confirm = tokio::time::timeout(timeout, publish)
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {timeout:?}"))?
            .with_context(|| format!("cannot publish to {queue}"))?;
        let confirmation = tokio::time::timeout(timeout, confirm)
            .await
            .map_err(|_| anyhow::anyhow!("no confirm from {queue} within {timeout:?}"))?
            .with_context(|| format!("cannot publish to {queue}"))?;
        match confirmation {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_)) => bail!("{queue} does not exist: the message was returned"),
            Confirmation::Nack(_) => bail!("{queue} refused the message (is it full?)"),
        }
    }

    pub async fn close(self) {
        let _ = self.connection.close(200, "OK".into()).await;
    }
}

impl Held {
    /// The next message, fetched without acknowledging it; `None` once the messages that were
    /// ready at the start were all read (or the queue is empty).
    pub async fn next(&mut self) -> anyhow::Result<Option<HeldLetter>> {
        if self.fetched >= usize::try_from(self.ready).unwrap_or(usize::MAX) {
            return Ok(None);
        }
        let message = self
            .channel
            .basic_get(
                self.queue.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .with_context(|| format!("cannot read {}", self.queue))?;
        Ok(message.map(|message| {
            self.fetched += 1;
            let delivery = message.delivery;
            HeldLetter {
                tag: delivery.delivery_tag,
                properties: delivery.properties,
                body: delivery.data,
            }
        }))
    }

    /// Removes one held message from the queue.
    pub async fn remove(&mut self, tag: DeliveryTag) -> anyhow::Result<()> {
        self.channel
            .basic_ack(tag, BasicAckOptions::default())
            .await
            .context("cannot remove the message from the dead-letter queue")?;
        self.removed += 1;
        Ok(())
    }

    /// Returns every message not removed to the queue, in order. The quorum queue takes them
    /// back asynchronously after the channel closed, so this waits (at most [`SETTLE_TIMEOUT`])
    /// until they are ready again: a command run right after sees them.
    pub async fn release(self, broker: &Broker) {
        let _ = self.channel.close(200, "OK".into()).await;
        let returned = self.fetched.saturating_sub(self.removed);
        if returned == 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            match broker.depth(&self.queue).await {
                Ok(Some(depth)) if usize::try_from(depth.messages).unwrap_or(0) < returned => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => return,
            }
        }
    }
}

fn is_not_found(error: &lapin::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ProtocolError(e) if matches!(e.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND))
    )
}

/// The broker URL without its password.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        assert_eq!(
            redact("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(redact("amqp://host"), "amqp://host");
    }
}
