//! Sending a message that cannot be applied to the dead-letter exchange.
//!
//! The worker publishes the ORIGINAL body with its original properties (message id, type, tenant
//! and trace headers) so `mirrorctl dlq replay` can put it back exactly as the receiver sent it,
//! and adds why it failed, how often it was tried, the table and epoch it concerns and the partition it
//! came from. Only after the broker confirmed the dead letter is the original acknowledged: a
//! message is never lost between the two queues, at worst it is dead-lettered twice.

use std::collections::BTreeMap;
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation};
use mirror_common::topology::{Topology, header};

/// Longest reason kept in the header; a header is one frame and must stay well below its limit.
const MAX_REASON_LEN: usize = 2000;

/// `delivery_mode` of a persistent message.
const PERSISTENT: u8 = 2;

/// Why and where a message failed, written into the dead letter's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The failure, as an operator should read it.
    pub reason: String,
    /// Attempts made before giving up.
    pub attempts: u32,
    /// The table the failure concerns, if it concerns one.
    pub table: Option<String>,
    /// The table's epoch when it failed; a later wipe makes the dead letter stale.
    pub epoch: Option<i64>,
    /// The partition the message came from; replay sends it back there.
    pub partition: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("cannot publish the dead letter: {0}")]
    Publish(#[from] lapin::Error),
    #[error("the broker did not confirm the dead letter within {0:?}")]
    Timeout(Duration),
    #[error("the broker refused the dead letter")]
    Nacked,
    #[error("the dead letter reached no queue (is the dead-letter queue bound?)")]
    Unroutable,
}

impl DeadLetter {
    /// The original properties, made persistent, with the dead-letter headers added (replacing
    /// any left from an earlier trip through the dead-letter queue).
    pub fn properties(&self, original: &BasicProperties) -> BasicProperties {
        let ours = [
            header::REASON,
            header::ATTEMPTS,
            header::TABLE,
            header::EPOCH,
            header::PARTITION,
        ];
        let mut headers: BTreeMap<ShortString, AMQPValue> = original
            .headers()
            .iter()
            .flatten()
            .filter(|(key, _)| !ours.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let mut put = |name: &str, value: AMQPValue| {
            headers.insert(ShortString::from(name), value);
        };
        put(
            header::REASON,
            AMQPValue::LongString(LongString::from(truncate(&self.reason, MAX_REASON_LEN))),
        );
        put(
            header::ATTEMPTS,
            AMQPValue::LongLongInt(i64::from(self.attempts)),
        );
        put(
            header::PARTITION,
            AMQPValue::LongLongInt(i64::from(self.partition)),
        );
        if let Some(table) = &self.table {
            put(
                header::TABLE,
                AMQPValue::LongString(LongString::from(table.as_str())),
            );
        }
        if let Some(epoch) = self.epoch {
            put(header::EPOCH, AMQPValue::LongLongInt(epoch));
        }
        original
            .clone()
            .with_headers(FieldTable::from(headers))
            .with_delivery_mode(PERSISTENT)
    }

    /// Publishes `body` to the dead-letter exchange on `channel` (which must be in confirm mode)
    /// and waits for the broker's confirm, at most `timeout` for the publish and again for the
    /// confirm: lapin can wait forever on some broker failures.
    pub async fn publish(
        &self,
        channel: &Channel,
        topology: &Topology,
        body: &[u8],
        original: &BasicProperties,
        timeout: Duration,
    ) -> Result<(), DeadLetterError> {
        let exchange = topology.dead_letter_exchange();
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let publish = channel.basic_publish(
            exchange.as_str().into(),
            "".into(),
            options,
            body,
            self.properties(original),
        );
        let confirm = tokio::time::timeout(timeout, publish)
            .await
            .map_err(|_| DeadLetterError::Timeout(timeout))??;
        let confirmation = tokio::time::timeout(timeout, confirm)
            .await
            .map_err(|_| DeadLetterError::Timeout(timeout))??;
        match confirmation {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
            Confirmation::Ack(Some(_returned)) => Err(DeadLetterError::Unroutable),
            Confirmation::Nack(_) => Err(DeadLetterError::Nacked),
        }
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(props: &'a BasicProperties, name: &str) -> Option<&'a AMQPValue> {
        props.headers().as_ref()?.inner().get(name)
    }

    #[test]
    fn keeps_the_original_properties_and_adds_the_failure() {
        let mut original_headers = FieldTable::default();
        original_headers.insert(header::TENANT.into(), AMQPValue::LongString("Cust1".into()));
        original_headers.insert(header::EPOCH.into(), AMQPValue::LongLongInt(99));
        let original = BasicProperties::default()
            .with_message_id("m-1".into())
            .with_type("RowData".into())
            .with_headers(original_headers);
        let letter = DeadLetter {
            reason: "value too long".into(),
            attempts: 3,
            table: Some("contact".into()),
            epoch: Some(4),
            partition: 7,
        };
        let props = letter.properties(&original);
        assert_eq!(props.message_id().as_ref().map(|s| s.as_str()), Some("m-1"));
        assert_eq!(props.kind().as_ref().map(|s| s.as_str()), Some("RowData"));
        assert_eq!(props.delivery_mode(), &Some(PERSISTENT));
        assert_eq!(
            header(&props, header::TENANT),
            Some(&AMQPValue::LongString("Cust1".into()))
        );
        assert_eq!(
            header(&props, header::REASON),
            Some(&AMQPValue::LongString("value too long".into()))
        );
        assert_eq!(
            header(&props, header::ATTEMPTS),
            Some(&AMQPValue::LongLongInt(3))
        );
        assert_eq!(
            header(&props, header::TABLE),
            Some(&AMQPValue::LongString("contact".into()))
        );
        assert_eq!(
            header(&props, header::EPOCH),
            Some(&AMQPValue::LongLongInt(4))
        );
        assert_eq!(
            header(&props, header::PARTITION),
            Some(&AMQPValue::LongLongInt(7))
        );
    }

    #[test]
    fn leaves_out_what_is_unknown_and_drops_stale_values() {
        let mut original_headers = FieldTable::default();
        original_headers.insert(header::TABLE.into(), AMQPValue::LongString("old".into()));
        original_headers.insert(header::EPOCH.into(), AMQPValue::LongLongInt(1));
        let original = BasicProperties::default().with_headers(original_headers);
        let letter = DeadLetter {
            reason: "x".repeat(MAX_REASON_LEN + 10),
            attempts: 1,
            table: None,
            epoch: None,
            partition: 0,
        };
        let props = letter.properties(&original);
        assert_eq!(header(&props, header::TABLE), None);
        assert_eq!(header(&props, header::EPOCH), None);
        match header(&props, header::REASON) {
            Some(AMQPValue::LongString(reason)) => assert_eq!(reason.len(), MAX_REASON_LEN),
            other => panic!("unexpected reason header {other:?}"),
        }
    }

    #[test]
    fn truncates_at_a_character_boundary() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("åäö", 3), "å");
        assert_eq!(truncate("åäö", 4), "åä");
    }
}
