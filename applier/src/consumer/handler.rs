//! What happens to one delivery: decode, apply (retrying transient failures in place), answer a
//! TableSchema, or quarantine and dead-letter; then say whether it may be acknowledged.

use std::time::Instant;

use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::types::AMQPValue;
use mirror_common::topology::header;
use mirror_common::wire::{self, Envelope, Kind, SchemaReply};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::partition::Link;
use super::{Context, reply};
use crate::dead_letter::DeadLetter;
use crate::engine::{Applied, Quarantine};
use crate::error::ApplyError;
use crate::metrics::{Outcome, Stage};

/// What to do with a delivery once its handling ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Disposition {
    /// Its effect is committed or it is in the dead-letter queue.
    Ack,
    /// The worker is stopping (shutdown or lost connection) while the message still waited for a
    /// retry: leave it unacknowledged so the broker hands it out again, first.
    Abandon,
}

/// Handles one delivery. Never returns before the outcome is durable, except with `Abandon`
/// when `stop` is cancelled during a retry pause; an apply already started always finishes.
pub(super) async fn handle(
    ctx: &Context,
    link: &Link,
    delivery: &Delivery,
    stop: &CancellationToken,
) -> Disposition {
    let job = Job {
        ctx,
        link,
        delivery,
        stop,
    };
    let envelope = match wire::decode::<Envelope>(&delivery.data) {
        Ok(envelope) => envelope,
        Err(error) => return job.undecodable(&error).await,
    };
    let trace_id = header_text(&delivery.properties, header::TRACE_ID)
        .unwrap_or_else(|| envelope.trace_id.clone());
    let span = tracing::info_span!(
        "message",
        trace_id = %trace_id,
        tenant = %envelope.tenant,
        kind = envelope.message.kind().as_str(),
        message_id = %envelope.id,
        partition = link.partition,
        redelivered = delivery.redelivered,
    );
    let disposition = job.apply(&envelope).instrument(span).await;
    if disposition == Disposition::Ack {
        ctx.metrics.lag(link.partition, envelope.received_at_ms);
    }
    disposition
}

/// One delivery in hand, and what handling it needs.
struct Job<'a> {
    ctx: &'a Context,
    link: &'a Link,
    delivery: &'a Delivery,
    stop: &'a CancellationToken,
}

/// How a quarantine attempt ended.
enum Quarantined {
    Yes(Quarantine),
    /// The quarantine failed permanently itself; the message is dead-lettered with what is known.
    Failed,
    /// The worker is stopping.
    Stopping,
}

impl Job<'_> {
    /// Applies until committed or failed permanently; transient failures wait and try again.
    async fn apply(&self, envelope: &Envelope) -> Disposition {
        let started = Instant::now();
        let mut backoff = self.ctx.retry.backoff();
        let mut attempts: u32 = 0;
        loop {
            attempts = attempts.saturating_add(1);
            match self.ctx.mirror.apply(envelope).await {
                Ok(applied) => {
                    self.committed(envelope, applied, started).await;
                    return Disposition::Ack;
                }
                Err(error) if error.is_transient() => {
                    tracing::warn!(%error, attempts, "Apply failed transiently; retrying.");
                    self.ctx.metrics.retry(Stage::Apply);
                    if !backoff.wait(self.stop).await {
                        tracing::info!(attempts, "Stopping; the message stays for redelivery.");
                        return Disposition::Abandon;
                    }
                }
                Err(error) => return self.failed(envelope, error, attempts).await,
            }
        }
    }

    /// Records a commit and answers a TableSchema.
    async fn committed(&self, envelope: &Envelope, applied: Applied, started: Instant) {
        let (outcome, reply) = match applied {
            Applied::Done { reply } => {
                self.ctx.metrics.committed(envelope, started.elapsed());
                (Outcome::Done, reply)
            }
            Applied::Duplicate { reply } => (Outcome::Duplicate, reply),
            Applied::Parked => (Outcome::Parked, None),
        };
        tracing::debug!(outcome = outcome.as_str(), "Message applied.");
        self.ctx
            .metrics
            .message(Some(envelope.message.kind()), outcome);
        if let Some(reply) = reply {
            self.reply(&reply).await;
        }
    }

    /// A permanent failure: quarantine the table, dead-letter the original, answer a TableSchema.
    async fn failed(&self, envelope: &Envelope, failure: ApplyError, attempts: u32) -> Disposition {
        let kind = envelope.message.kind();
        tracing::error!(
            error = %failure,
            table = failure.table(),
            attempts,
            "Apply failed permanently; quarantining and dead-lettering."
        );
        let quarantine = match self.quarantine(envelope, &failure).await {
            Quarantined::Yes(quarantine) => Some(quarantine),
            Quarantined::Failed => None,
            Quarantined::Stopping => return Disposition::Abandon,
        };
        // The epoch only means something for a table that was quarantined.
        let quarantined = quarantine.filter(|q| q.table.is_some());
        let letter = DeadLetter {
            reason: failure.to_string(),
            attempts,
            table: quarantined
                .as_ref()
                .and_then(|q| q.table.clone())
                .or_else(|| failure.table().map(str::to_owned)),
            epoch: quarantined.as_ref().map(|q| q.epoch),
            partition: self.link.partition,
        };
        if !self.dead_letter(&letter).await {
            return Disposition::Abandon;
        }
        self.ctx.metrics.dead_letter("failed");
        self.ctx.metrics.message(Some(kind), Outcome::DeadLettered);
        if kind == Kind::TableSchema {
            let error = failure.to_string();
            self.reply(&SchemaReply::Failed { error }).await;
        }
        Disposition::Ack
    }

    /// Quarantines, retrying transient failures.
    async fn quarantine(&self, envelope: &Envelope, failure: &ApplyError) -> Quarantined {
        let mut backoff = self.ctx.retry.backoff();
        loop {
            match self.ctx.mirror.quarantine(envelope, failure).await {
                Ok(quarantine) => return Quarantined::Yes(quarantine),
                Err(error) if error.is_transient() => {
                    tracing::warn!(%error, "Quarantine failed transiently; retrying.");
                    self.ctx.metrics.retry(Stage::Quarantine);
                    if !backoff.wait(self.stop).await {
                        return Quarantined::Stopping;
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "Quarantine failed; dead-lettering without it.");
                    return Quarantined::Failed;
                }
            }
        }
    }

    /// Publishes the dead letter until the broker confirms it. `false` when stopping first.
    async fn dead_letter(&self, letter: &DeadLetter) -> bool {
        let mut backoff = self.ctx.retry.backoff();
        loop {
            let published = letter
                .publish(
                    &self.link.confirm,
                    &self.ctx.topology,
                    &self.delivery.data,
                    &self.delivery.properties,
                    self.ctx.broker_timeout(),
                )
                .await;
            match published {
                Ok(()) => return true,
                Err(error) => {
                    tracing::warn!(%error, "Failed to publish the dead letter; retrying.");
                    self.ctx.metrics.retry(Stage::DeadLetter);
                    if !backoff.wait(self.stop).await {
                        return false;
                    }
                }
            }
        }
    }

    /// A body that is not an envelope: nothing can be applied, so it goes to the dead-letter queue.
    async fn undecodable(&self, error: &wire::WireError) -> Disposition {
        tracing::error!(
            %error,
            partition = self.link.partition,
            message_id = ?self.delivery.properties.message_id(),
            "Undecodable message; dead-lettering."
        );
        let letter = DeadLetter {
            reason: error.to_string(),
            attempts: 1,
            table: None,
            epoch: None,
            partition: self.link.partition,
        };
        if !self.dead_letter(&letter).await {
            return Disposition::Abandon;
        }
        self.ctx.metrics.dead_letter("undecodable");
        self.ctx.metrics.message(None, Outcome::Undecodable);
        Disposition::Ack
    }

    async fn reply(&self, reply: &SchemaReply) {
        reply::send(
            &self.link.consume,
            &self.delivery.properties,
            reply,
            self.ctx.broker_timeout(),
            &self.ctx.metrics,
        )
        .await;
    }
}

/// A text header (`x-mirror-trace-id`), whichever string type the publisher chose.
fn header_text(properties: &BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}
