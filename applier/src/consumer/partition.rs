//! One partition queue: its channels, its consumer, and the loop that handles its deliveries one
//! after another — the per-tenant order promise rests on this loop never running two at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio_util::sync::CancellationToken;

use super::Context;
use super::handler::{self, Disposition};

/// AMQP reply code of a normal close.
const REPLY_SUCCESS: u16 = 200;

#[derive(Debug, thiserror::Error)]
pub(super) enum PartitionError {
    #[error("partition {partition}: {operation} failed: {source}")]
    Broker {
        partition: u16,
        operation: &'static str,
        source: lapin::Error,
    },
    #[error("partition {partition}: {operation}: no answer from the broker within {timeout:?}")]
    Timeout {
        partition: u16,
        operation: &'static str,
        timeout: Duration,
    },
    #[error("partition {partition}: the broker cancelled the consumer")]
    Cancelled { partition: u16 },
}

/// The channels of one partition: `consume` receives (and carries schema replies), `confirm` is
/// in confirm mode for dead letters.
pub(super) struct Link {
    pub partition: u16,
    pub consume: Channel,
    pub confirm: Channel,
}

/// Keeps the active-partitions gauge right however the task ends.
struct Active<'a>(&'a Context);

impl<'a> Active<'a> {
    fn new(ctx: &'a Context) -> Active<'a> {
        ctx.metrics.partition_started();
        Active(ctx)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.metrics.partition_stopped();
    }
}

/// Consumes partition `partition` until `stop` is cancelled (`Ok`) or the broker side fails.
/// On stop, the message in hand is finished and acknowledged first, then the channels are closed,
/// which returns prefetched messages to the queue in order.
pub(super) async fn run(
    ctx: Arc<Context>,
    connection: Arc<Connection>,
    partition: u16,
    stop: CancellationToken,
) -> Result<(), PartitionError> {
    let timeout = ctx.broker_timeout();
    let call = |operation: &'static str| Call {
        partition,
        operation,
        timeout,
    };
    let consume = call("open channel")
        .run(connection.create_channel())
        .await?;
    call("basic.qos")
        .run(consume.basic_qos(ctx.amqp.prefetch, BasicQosOptions::default()))
        .await?;
    let confirm = call("open channel")
        .run(connection.create_channel())
        .await?;
    call("confirm.select")
        .run(confirm.confirm_select(ConfirmSelectOptions::default()))
        .await?;
    let link = Link {
        partition,
        consume,
        confirm,
    };
    let queue = ctx.topology.queue(partition);
    let mut deliveries = call("basic.consume")
        .run(link.consume.basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await?;
    let _active = Active::new(&ctx);
    tracing::info!(partition, %queue, "Consuming partition.");
    let result = loop {
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => break Ok(()),
            next = deliveries.next() => next,
        };
        let delivery = match next {
            Some(Ok(delivery)) => delivery,
            Some(Err(source)) => {
                break Err(PartitionError::Broker {
                    partition,
                    operation: "consume",
                    source,
                });
            }
            None => break Err(PartitionError::Cancelled { partition }),
        };
        match handler::handle(&ctx, &link, &delivery, &stop).await {
            Disposition::Ack => {
                let ack = call("basic.ack")
                    .run(delivery.acker.ack(BasicAckOptions::default()))
                    .await;
                if let Err(error) = ack {
                    break Err(error);
                }
            }
            Disposition::Abandon => break Ok(()),
        }
    };
    close(&link, timeout).await;
    tracing::info!(partition, "Stopped consuming partition.");
    result
}

/// Closes both channels; unacknowledged deliveries go back to the queue. Failures only matter
/// to the log: a channel of a broken connection is gone already.
async fn close(link: &Link, timeout: Duration) {
    for channel in [&link.consume, &link.confirm] {
        match tokio::time::timeout(timeout, channel.close(REPLY_SUCCESS, "OK".into())).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(%error, partition = link.partition, "Channel close failed.");
            }
            Err(_) => {
                tracing::debug!(partition = link.partition, "Channel close timed out.");
            }
        }
    }
}

/// One broker operation, bounded by the broker timeout.
struct Call {
    partition: u16,
    operation: &'static str,
    timeout: Duration,
}

impl Call {
    async fn run<T>(
        self,
        operation: impl Future<Output = lapin::Result<T>>,
    ) -> Result<T, PartitionError> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(source)) => Err(PartitionError::Broker {
                partition: self.partition,
                operation: self.operation,
                source,
            }),
            Err(_) => Err(PartitionError::Timeout {
                partition: self.partition,
                operation: self.operation,
                timeout: self.timeout,
            }),
        }
    }
}
