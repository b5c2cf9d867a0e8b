//! Answering a TableSchema request through direct reply-to.
//!
//! The receiver waits for the LSNs on `amq.rabbitmq.reply-to`; the worker publishes the answer to
//! the default exchange with the request's `reply_to` as routing key and its `correlation_id`.
//! Not persistent and not mandatory: the receiver may have given up waiting (it answers
//! SuperOffice "busy" after its timeout), and then the answer has nowhere to go. So a failure to
//! answer is logged and counted, never fatal: the message is applied either way, and SuperOffice
//! asks again next cycle.

use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel};
use mirror_common::topology::CONTENT_TYPE;
use mirror_common::wire::{self, SchemaReply};

use crate::metrics::Metrics;

/// `delivery_mode` of a message the broker may keep in memory only.
const TRANSIENT: u8 = 1;

/// Sends `reply` to whoever asked in `request`, if anyone did. Bounded by `timeout`.
pub(super) async fn send(
    channel: &Channel,
    request: &BasicProperties,
    reply: &SchemaReply,
    timeout: Duration,
    metrics: &Metrics,
) {
    let Some(reply_to) = request.reply_to().as_ref() else {
        return;
    };
    let outcome = match publish(channel, request, reply, timeout).await {
        Ok(()) => match reply {
            SchemaReply::Applied { .. } => "applied",
            SchemaReply::Failed { .. } => "failed",
        },
        Err(error) => {
            tracing::warn!(%error, reply_to = %reply_to, "Failed to send the schema reply.");
            "not_sent"
        }
    };
    metrics.schema_reply(outcome);
}

async fn publish(
    channel: &Channel,
    request: &BasicProperties,
    reply: &SchemaReply,
    timeout: Duration,
) -> Result<(), String> {
    let reply_to = request.reply_to().clone().unwrap_or_default();
    let body = wire::encode(reply).map_err(|e| e.to_string())?;
    let mut properties = BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(TRANSIENT);
    if let Some(correlation_id) = request.correlation_id() {
        properties = properties.with_correlation_id(correlation_id.clone());
    }
    let no_answer = |_| format!("no answer from the broker within {timeout:?}");
    let confirm = tokio::time::timeout(
        timeout,
        channel.basic_publish(
            "".into(),
            reply_to,
            BasicPublishOptions::default(),
            &body,
            properties,
        ),
    )
    .await
    .map_err(no_answer)?
    .map_err(|e| e.to_string())?;
    // Without confirm mode this resolves at once; bounded all the same.
    tokio::time::timeout(timeout, confirm)
        .await
        .map_err(no_answer)?
        .map_err(|e| e.to_string())?;
    Ok(())
}
