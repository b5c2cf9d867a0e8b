//! `mirrorctl` as operators run it: the real binary with the settings in its environment, and dead
//! letters published the way the worker publishes them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use mirror_applier::dead_letter::DeadLetter;
use mirror_common::config::Settings;
use mirror_common::wire::{self, Envelope, Message};
use serde_json::Value;
use uuid::Uuid;

use crate::consumer_support::Harness;

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "mirrorctl failed: {}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `mirrorctl <args>` with `settings` passed as the services get them: environment variables.
pub async fn mirrorctl(settings: &Settings, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_mirrorctl"))
        .args(args)
        .env_remove("MIRROR_CONFIG")
        .env("MIRROR__AMQP__URL", &settings.amqp.url)
        .env("MIRROR__AMQP__PREFIX", &settings.amqp.prefix)
        .env(
            "MIRROR__AMQP__PARTITIONS",
            settings.amqp.partitions.to_string(),
        )
        .env("MIRROR__AMQP__CONNECT_TIMEOUT_SECS", "5")
        .env("MIRROR__DATABASE__URL", &settings.database.url)
        .env(
            "MIRROR__DATABASE__NAME_TEMPLATE",
            &settings.database.name_template,
        )
        .output()
        .await
        .expect("the mirrorctl binary runs");
    Run {
        code: output.status.code().expect("mirrorctl exits"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Dead-letters a Wipe of `table` of `tenant` as the worker would, failed in `epoch`.
pub async fn dead_letter(h: &Harness, tenant: &str, table: &str, epoch: i64) -> String {
    let envelope = Envelope {
        id: Uuid::now_v7(),
        tenant: tenant.to_owned(),
        received_at_ms: chrono::Utc::now().timestamp_millis(),
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        message: Message::Wipe {
            table: table.to_owned(),
        },
    };
    let mut original = h.properties(&envelope);
    original = original.with_message_id(envelope.id.to_string().as_str().into());
    let letter = DeadLetter {
        reason: format!("{table}: refused by the mirror"),
        attempts: 1,
        table: Some(table.to_owned()),
        epoch: Some(epoch),
        partition: h.topology.partition_of(tenant),
    };
    letter
        .publish(
            &h.channel,
            &h.topology,
            &wire::encode(&envelope).unwrap(),
            &original,
            Duration::from_secs(5),
        )
        .await
        .expect("the dead letter is confirmed");
    envelope.id.to_string()
}

/// The ids of a JSON list of dead letters, in order.
pub fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect()
}
