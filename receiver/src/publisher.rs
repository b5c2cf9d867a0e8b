//! Publishing a tenant's message to its partition queue, and the TableSchema request/reply.
//!
//! A message counts as accepted only when the broker confirmed it positively: persistent,
//! `mandatory` (an unroutable message comes back instead of vanishing), into the partition's
//! quorum queue. Everything else — a nack, a returned message, no confirm within the publish
//! timeout, no connection — is a [`PublishError`], and the caller answers `IsSuccessful=false`.
//! lapin can hang on some broker failures, so every step runs under a timeout.

use std::time::Instant;

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation};
use mirror_common::topology::{self, header};
use mirror_common::wire::{self, Envelope, SchemaReply, WireError};

use crate::broker::{Broker, Link};
use crate::metrics::Metrics;

/// RabbitMQ's direct reply-to pseudo-queue: replies go straight to the consumer on the
/// publishing channel, with no queue to declare or clean up.
pub const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Persistent delivery mode.
const PERSISTENT: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("no connection to the message broker")]
    Unavailable,
    #[error("the message broker refused the message")]
    Nacked,
    #[error("the message broker could not route the message: {code} {text}")]
    Returned { code: u16, text: String },
    #[error("the message broker did not confirm within {0} s")]
    Timeout(u64),
    #[error("the channel is not in confirm mode")]
    NotConfirmed,
    #[error("message broker error: {0}")]
    Broker(#[from] lapin::Error),
    #[error("cannot encode the message: {0}")]
    Encode(#[from] WireError),
}

impl PublishError {
    /// Label of the publish-failure metric.
    pub fn reason(&self) -> &'static str {
        match self {
            PublishError::Unavailable => "unavailable",
            PublishError::Nacked => "nack",
            PublishError::Returned { .. } => "returned",
            PublishError::Timeout(_) => "timeout",
            PublishError::NotConfirmed => "not_confirmed",
            PublishError::Broker(_) => "broker",
            PublishError::Encode(_) => "encode",
        }
    }
}

/// Why a TableSchema request got no usable reply.
#[derive(Debug, thiserror::Error)]
pub enum SchemaRequestError {
    /// The request itself was not accepted: nothing will be applied.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Accepted, but the applier did not answer in time; it will still apply it.
    #[error("no schema reply within {0} s")]
    ReplyTimeout(u64),
    /// Accepted, but the reply channel closed before an answer came.
    #[error("the schema reply channel closed: {0}")]
    ReplyLost(String),
    /// Accepted, but the reply could not be decoded.
    #[error("unreadable schema reply: {0}")]
    BadReply(#[from] WireError),
}

#[derive(Debug, Clone)]
pub struct Publisher {
    broker: Broker,
    metrics: Metrics,
}

impl Publisher {
    pub fn new(broker: Broker, metrics: Metrics) -> Publisher {
        Publisher { broker, metrics }
    }

    /// Publishes `envelope` to its tenant's partition; `Ok` only after a positive confirm.
    pub async fn publish(&self, envelope: &Envelope) -> Result<(), PublishError> {
        let result = match self.broker.link() {
            Some(link) => {
                let properties = properties(envelope);
                self.publish_on(&link, &link.publish, envelope, properties)
                    .await
            }
            None => Err(PublishError::Unavailable),
        };
        if let Err(error) = &result {
            self.metrics.publish_failure(error.reason());
        }
        result
    }

    /// Publishes a TableSchema envelope with a direct reply-to address and waits for the
    /// applier's [`SchemaReply`]. The reply consumer must exist on the publishing channel before
    /// the publish, so each request gets its own short-lived channel.
    pub async fn request_schema(
        &self,
        envelope: &Envelope,
    ) -> Result<SchemaReply, SchemaRequestError> {
        let result = self.request_schema_inner(envelope).await;
        if let Err(SchemaRequestError::Publish(error)) = &result {
            self.metrics.publish_failure(error.reason());
        }
        result
    }

    async fn request_schema_inner(
        &self,
        envelope: &Envelope,
    ) -> Result<SchemaReply, SchemaRequestError> {
        let link = self.broker.link().ok_or(PublishError::Unavailable)?;
        let settings = self.broker.settings();
        let correlation_id = envelope.id.to_string();
        let setup = async {
            let channel = link.connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            let replies = channel
                .basic_consume(
                    DIRECT_REPLY_TO.into(),
                    format!("schema-{correlation_id}").as_str().into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        ..BasicConsumeOptions::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            Ok::<_, lapin::Error>((channel, replies))
        };
        let (channel, mut replies) =
            match tokio::time::timeout(settings.publish_timeout(), setup).await {
                Ok(Ok(opened)) => opened,
                Ok(Err(error)) => {
                    check_link(&link);
                    return Err(PublishError::Broker(error).into());
                }
                Err(_elapsed) => {
                    link.report_broken();
                    return Err(PublishError::Timeout(settings.publish_timeout_secs).into());
                }
            };
        let properties = properties(envelope)
            .with_reply_to(DIRECT_REPLY_TO.into())
            .with_correlation_id(correlation_id.as_str().into());
        self.publish_on(&link, &channel, envelope, properties)
            .await?;

        let started = Instant::now();
        let wait = async {
            while let Some(delivery) = replies.next().await {
                let delivery =
                    delivery.map_err(|e| SchemaRequestError::ReplyLost(e.to_string()))?;
                let matches = delivery
                    .properties
                    .correlation_id()
                    .as_ref()
                    .is_some_and(|id| id.as_str() == correlation_id);
                if matches {
                    return Ok(wire::decode::<SchemaReply>(&delivery.data)?);
                }
                tracing::warn!(
                    expected = %correlation_id,
                    "Ignoring a schema reply for another request."
                );
            }
            Err(SchemaRequestError::ReplyLost("consumer cancelled".into()))
        };
        let result = tokio::time::timeout(settings.schema_reply_timeout(), wait)
            .await
            .unwrap_or(Err(SchemaRequestError::ReplyTimeout(
                settings.schema_reply_timeout_secs,
            )));
        self.metrics
            .schema_reply_wait(started.elapsed().as_secs_f64());
        // Dropping the last handle closes the channel and with it the reply consumer.
        drop(replies);
        drop(channel);
        result
    }

    async fn publish_on(
        &self,
        link: &Link,
        channel: &Channel,
        envelope: &Envelope,
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let topology = self.broker.topology();
        let settings = self.broker.settings();
        let payload = wire::encode(envelope)?;
        let routing_key = topology.routing_key(topology.partition_of(&envelope.tenant));
        let exchange = topology.exchange();
        let started = Instant::now();
        let publish = async {
            let confirm = channel
                .basic_publish(
                    exchange.as_str().into(),
                    routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &payload,
                    properties,
                )
                .await?;
            confirm.await
        };
        let confirmation = match tokio::time::timeout(settings.publish_timeout(), publish).await {
            Ok(Ok(confirmation)) => confirmation,
            Ok(Err(error)) => {
                check_link(link);
                return Err(PublishError::Broker(error));
            }
            Err(_elapsed) => {
                // A blocked connection (broker memory or disk alarm) recovers by itself; anything
                // else that swallows a confirm is a connection worth replacing.
                if !link.connection.status().blocked() {
                    link.report_broken();
                }
                return Err(PublishError::Timeout(settings.publish_timeout_secs));
            }
        };
        match confirmation {
            Confirmation::Ack(None) => {
                self.metrics.confirm_latency(
                    envelope.message.kind().as_str(),
                    started.elapsed().as_secs_f64(),
                );
                Ok(())
            }
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                Err(PublishError::Returned {
                    code: returned.reply_code,
                    text: returned.reply_text.to_string(),
                })
            }
            Confirmation::Nack(None) => Err(PublishError::Nacked),
            Confirmation::NotRequested => Err(PublishError::NotConfirmed),
        }
    }
}

/// After an error: a closed connection or publishing channel means the link must be replaced.
fn check_link(link: &Link) {
    if !link.connection.status().connected() || !link.publish.status().connected() {
        link.report_broken();
    }
}

/// The properties every partition message carries (see `mirror_common::topology::header`).
fn properties(envelope: &Envelope) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        header::TENANT.into(),
        AMQPValue::LongString(LongString::from(envelope.tenant.as_str())),
    );
    headers.insert(
        header::TRACE_ID.into(),
        AMQPValue::LongString(LongString::from(envelope.trace_id.as_str())),
    );
    BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type(topology::CONTENT_TYPE.into())
        .with_message_id(envelope.id.to_string().as_str().into())
        .with_type(envelope.message.kind().as_str().into())
        .with_timestamp(u64::try_from(envelope.received_at_ms / 1000).unwrap_or(0))
        .with_headers(headers)
}
