//! What happens to one delivery: decode, apply (retrying transient failures in place), answer a
//! TableSchema, or quarantine and dead-letter, and finally say whether it may be acknowledged.

use std::time::Instant;

use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::options::BasicPublishOptions;
use lapin::types::AMQPValue;
use mirror_common::topology::{CONTENT_TYPE, header};
use mirror_common::wire::{self, Envelope, Kind, Message, SchemaReply};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Context;
use super::partition::Link;
use crate::dead_letter::DeadLetter;
use crate::engine::{Applied, Quarantine};
use crate::error::ApplyError;
use crate::metrics::{Outcome, Stage};

/// `delivery_mode` of a message the broker may keep in memory only.
const TRANSIENT: u8 = 1;

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
    let envelope = match wire::decode::<Envelope>(&delivery.data) {
        Ok(envelope) => envelope,
        Err(error) => return undecodable(ctx, link, delivery, &error, stop).await,
    };
    let trace_id = header_text(&delivery.properties, header::TRACE_ID)
        .unwrap_or_else(|| envelope.trace_id.clone());
    let kind = envelope.message.kind();
    let span = tracing::info_span!(
        "message",
        trace_id = %trace_id,
        tenant = %envelope.tenant,
        kind = kind.as_str(),
        message_id = %envelope.id,
        partition = link.partition,
    );
    apply(ctx, link, delivery, &envelope, stop)
        .instrument(span)
        .await
}

/// Applies until committed or failed permanently; transient failures wait and try again.
async fn apply(
    ctx: &Context,
    link: &Link,
    delivery: &Delivery,
    envelope: &Envelope,
    stop: &CancellationToken,
) -> Disposition {
    let kind = envelope.message.kind();
    let started = Instant::now();
    let mut backoff = ctx.retry.backoff();
    let mut attempts: u32 = 0;
    loop {
        attempts = attempts.saturating_add(1);
        match ctx.mirror.apply(envelope).await {
            Ok(applied) => {
                committed(ctx, link, delivery, envelope, applied, started).await;
                return Disposition::Ack;
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, attempts, "Apply failed transiently; retrying the same message.");
                ctx.metrics.retry(Stage::Apply);
                if !backoff.wait(stop).await {
                    tracing::info!(attempts, "Stopping; leaving the message for redelivery.");
                    return Disposition::Abandon;
                }
            }
            Err(error) => {
                return failed(ctx, link, delivery, envelope, kind, error, attempts, stop).await;
            }
        }
    }
}

/// Records a commit and answers a TableSchema.
async fn committed(
    ctx: &Context,
    link: &Link,
    delivery: &Delivery,
    envelope: &Envelope,
    applied: Applied,
    started: Instant,
) {
    let kind = envelope.message.kind();
    let (outcome, reply) = match applied {
        Applied::Done { reply } => {
            ctx.metrics.committed(envelope, started.elapsed());
            (Outcome::Done, reply)
        }
        Applied::Duplicate { reply } => (Outcome::Duplicate, reply),
        Applied::Parked => (Outcome::Parked, None),
    };
    tracing::debug!(outcome = outcome.as_str(), "Message applied.");
    ctx.metrics.message(Some(kind), outcome);
    if let (Message::TableSchema { .. }, Some(reply)) = (&envelope.message, reply) {
        send_reply(ctx, link, &delivery.properties, &reply).await;
    }
}

/// A permanent failure: quarantine the table, dead-letter the original, answer a TableSchema.
#[allow(clippy::too_many_arguments)]
async fn failed(
    ctx: &Context,
    link: &Link,
    delivery: &Delivery,
    envelope: &Envelope,
    kind: Kind,
    failure: ApplyError,
    attempts: u32,
    stop: &CancellationToken,
) -> Disposition {
    tracing::error!(error = %failure, table = failure.table(), attempts, "Apply failed permanently; quarantining and dead-lettering.");
    let Some(quarantine) = quarantine(ctx, envelope, &failure, stop).await else {
        return Disposition::Abandon;
    };
    let letter = DeadLetter {
        reason: failure.to_string(),
        attempts,
        table: quarantine
            .as_ref()
            .and_then(|q| q.table.clone())
            .or_else(|| failure.table().map(str::to_owned)),
        epoch: quarantine
            .as_ref()
            .filter(|q| q.table.is_some())
            .map(|q| q.epoch),
        partition: link.partition,
    };
    if !dead_letter(ctx, link, delivery, &letter, stop).await {
        return Disposition::Abandon;
    }
    ctx.metrics.dead_letter("failed");
    ctx.metrics.message(Some(kind), Outcome::DeadLettered);
    if kind == Kind::TableSchema {
        let reply = SchemaReply::Failed {
            error: failure.to_string(),
        };
        send_reply(ctx, link, &delivery.properties, &reply).await;
    }
    Disposition::Ack
}

/// Quarantines, retrying transient failures. `None` when stopping; `Some(None)` when the
/// quarantine itself failed permanently (the message is still dead-lettered, with what is known).
async fn quarantine(
    ctx: &Context,
    envelope: &Envelope,
    failure: &ApplyError,
    stop: &CancellationToken,
) -> Option<Option<Quarantine>> {
    let mut backoff = ctx.retry.backoff();
    loop {
        match ctx.mirror.quarantine(envelope, failure).await {
            Ok(quarantine) => return Some(Some(quarantine)),
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, "Quarantine failed transiently; retrying.");
                ctx.metrics.retry(Stage::Quarantine);
                if !backoff.wait(stop).await {
                    return None;
                }
            }
            Err(error) => {
                tracing::error!(%error, "Quarantine failed; dead-lettering without it.");
                return Some(None);
            }
        }
    }
}

/// Publishes the dead letter until the broker confirms it. `false` when stopping first.
async fn dead_letter(
    ctx: &Context,
    link: &Link,
    delivery: &Delivery,
    letter: &DeadLetter,
    stop: &CancellationToken,
) -> bool {
    let mut backoff = ctx.retry.backoff();
    loop {
        let published = letter
            .publish(
                &link.confirm,
                &ctx.topology,
                &delivery.data,
                &delivery.properties,
                ctx.broker_timeout(),
            )
            .await;
        match published {
            Ok(()) => return true,
            Err(error) => {
                tracing::warn!(%error, "Failed to publish the dead letter; retrying.");
                ctx.metrics.retry(Stage::DeadLetter);
                if !backoff.wait(stop).await {
                    return false;
                }
            }
        }
    }
}

/// A body that is not an envelope: nothing can be applied, so it goes to the dead-letter queue.
async fn undecodable(
    ctx: &Context,
    link: &Link,
    delivery: &Delivery,
    error: &wire::WireError,
    stop: &CancellationToken,
) -> Disposition {
    tracing::error!(%error, partition = link.partition, message_id = ?delivery.properties.message_id(), "Undecodable message; dead-lettering.");
    let letter = DeadLetter {
        reason: error.to_string(),
        attempts: 1,
        table: None,
        epoch: None,
        partition: link.partition,
    };
    if !dead_letter(ctx, link, delivery, &letter, stop).await {
        return Disposition::Abandon;
    }
    ctx.metrics.dead_letter("undecodable");
    ctx.metrics.message(None, Outcome::Undecodable);
    Disposition::Ack
}

/// Answers the receiver waiting on `reply_to` (direct reply-to). Not persistent and not
/// mandatory: the receiver may have given up waiting, and then the answer has nowhere to go.
/// A failure is logged only; the receiver times out and SuperOffice asks again next cycle.
async fn send_reply(ctx: &Context, link: &Link, request: &BasicProperties, reply: &SchemaReply) {
    let Some(reply_to) = request.reply_to().as_ref() else {
        return;
    };
    let body = match wire::encode(reply) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "Cannot encode the schema reply.");
            ctx.metrics.schema_reply("not_sent");
            return;
        }
    };
    let mut properties = BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(TRANSIENT);
    if let Some(correlation_id) = request.correlation_id() {
        properties = properties.with_correlation_id(correlation_id.clone());
    }
    let timeout = ctx.broker_timeout();
    let publish = link.consume.basic_publish(
        "".into(),
        reply_to.clone(),
        BasicPublishOptions::default(),
        &body,
        properties,
    );
    let sent = match tokio::time::timeout(timeout, publish).await {
        Ok(Ok(confirm)) => tokio::time::timeout(timeout, confirm)
            .await
            .map_err(|_| "no answer from the broker".to_owned())
            .and_then(|r| r.map(drop).map_err(|e| e.to_string())),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer from the broker".to_owned()),
    };
    let outcome = match (reply, sent) {
        (_, Err(error)) => {
            tracing::warn!(%error, reply_to = %reply_to, "Failed to send the schema reply.");
            "not_sent"
        }
        (SchemaReply::Applied { .. }, Ok(())) => "applied",
        (SchemaReply::Failed { .. }, Ok(())) => "failed",
    };
    ctx.metrics.schema_reply(outcome);
}

/// A text header (`x-mirror-trace-id`), whichever string type the publisher chose.
fn header_text(properties: &BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}
