//! The worker's Prometheus metrics, served on `/metrics`.
//!
//! Each `Application` owns its own registry (not the process-global one), so several workers can
//! run in one test process without their counts mixing. Names are constants so dashboards, alerts
//! and tests refer to the same strings.

use std::time::Duration;

use mirror_common::wire::{Envelope, Kind, Message, Operation};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Messages handled, by `kind` and `outcome`.
pub const MESSAGES: &str = "mirror_applier_messages_total";
/// Rows applied, by `operation` (`insert`, `update`, `delete`), counted from committed batches.
pub const ROWS: &str = "mirror_applier_rows_applied_total";
/// Seconds from the start of a message's first attempt to its commit, by `kind`.
pub const APPLY_SECONDS: &str = "mirror_applier_apply_seconds";
/// Age of the message a partition handled last (receive to outcome), by `partition`: how far
/// behind the mirror runs.
pub const LAG_SECONDS: &str = "mirror_applier_lag_seconds";
/// Pauses taken after a transient failure, by `stage` (`apply`, `quarantine`, `dead_letter`).
pub const RETRIES: &str = "mirror_applier_retries_total";
/// Messages published to the dead-letter exchange, by `reason` (`undecodable`, `failed`).
pub const DEAD_LETTERS: &str = "mirror_applier_dead_letters_total";
/// Partitions this worker currently consumes.
pub const ACTIVE_PARTITIONS: &str = "mirror_applier_active_partitions";
/// 1 while the broker connection is up.
pub const BROKER_CONNECTED: &str = "mirror_applier_broker_connected";
/// Broker connections opened after the first one.
pub const RECONNECTS: &str = "mirror_applier_broker_reconnects_total";
/// TableSchema answers sent, by `outcome` (`applied`, `failed`, `not_sent`).
pub const SCHEMA_REPLIES: &str = "mirror_applier_schema_replies_total";
/// Tables put in quarantine after a permanent failure (each table counted once per quarantine,
/// the failing one and any quarantined along with it).
pub const QUARANTINES: &str = "mirror_applier_quarantines_total";
/// Quarantines lifted, by `cause`: `wipe` (the self-healing reload), `recreate` (TableSchema
/// created the table anew), `dropped` (the table left the schema), `replay` (an operator replayed
/// the dead letter). Summed over workers, quarantines minus heals is the number of tables
/// quarantined now (since the workers started).
pub const QUARANTINE_HEALS: &str = "mirror_applier_quarantine_heals_total";
/// Unix time at which the last ReplicationCompleted of a tenant was applied, by `tenant`: one
/// series per tenant, so alerts can name the tenant whose cycles stopped.
pub const LAST_CYCLE: &str = "mirror_applier_last_cycle_timestamp_seconds";

/// Apply latency buckets, seconds: a small batch commits in milliseconds, a 1 MB batch or a
/// 400-table schema in seconds, and an outage retried in place shows up in the last buckets.
const APPLY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Duplicate,
    Parked,
    DeadLettered,
    Undecodable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Duplicate => "duplicate",
            Outcome::Parked => "parked",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Undecodable => "undecodable",
        }
    }
}

/// Why a quarantine was lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heal {
    Wipe,
    Recreate,
    Dropped,
    Replay,
}

impl Heal {
    pub fn as_str(self) -> &'static str {
        match self {
            Heal::Wipe => "wipe",
            Heal::Recreate => "recreate",
            Heal::Dropped => "dropped",
            Heal::Replay => "replay",
        }
    }
}

/// Where a transient failure was retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Apply,
    Quarantine,
    DeadLetter,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Apply => "apply",
            Stage::Quarantine => "quarantine",
            Stage::DeadLetter => "dead_letter",
        }
    }
}

/// Handles to every metric; cheap to clone (each is reference-counted inside).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    messages: IntCounterVec,
    rows: IntCounterVec,
    apply_seconds: HistogramVec,
    lag_seconds: GaugeVec,
    retries: IntCounterVec,
    dead_letters: IntCounterVec,
    active_partitions: IntGauge,
    broker_connected: IntGauge,
    reconnects: IntCounter,
    schema_replies: IntCounterVec,
    quarantines: IntCounter,
    heals: IntCounterVec,
    last_cycle: GaugeVec,
}

impl Metrics {
    /// Creates and registers every metric in a fresh registry.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let messages = IntCounterVec::new(
            Opts::new(MESSAGES, "Messages handled, by kind and outcome."),
            &["kind", "outcome"],
        )?;
        let rows = IntCounterVec::new(
            Opts::new(ROWS, "Rows applied from committed batches, by operation."),
            &["operation"],
        )?;
        let apply_seconds = HistogramVec::new(
            HistogramOpts::new(
                APPLY_SECONDS,
                "Seconds from first attempt to commit, by kind.",
            )
            .buckets(APPLY_BUCKETS.to_vec()),
            &["kind"],
        )?;
        let lag_seconds = GaugeVec::new(
            Opts::new(
                LAG_SECONDS,
                "Age of the last message handled, by partition.",
            ),
            &["partition"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(RETRIES, "Pauses taken after a transient failure, by stage."),
            &["stage"],
        )?;
        let dead_letters = IntCounterVec::new(
            Opts::new(
                DEAD_LETTERS,
                "Messages sent to the dead-letter queue, by reason.",
            ),
            &["reason"],
        )?;
        let active_partitions = IntGauge::new(ACTIVE_PARTITIONS, "Partitions being consumed.")?;
        let broker_connected = IntGauge::new(BROKER_CONNECTED, "1 while the broker is connected.")?;
        let reconnects = IntCounter::new(RECONNECTS, "Broker connections opened after the first.")?;
        let schema_replies = IntCounterVec::new(
            Opts::new(SCHEMA_REPLIES, "TableSchema answers, by outcome."),
            &["outcome"],
        )?;
        let quarantines = IntCounter::new(QUARANTINES, "Tables put in quarantine.")?;
        let heals = IntCounterVec::new(
            Opts::new(QUARANTINE_HEALS, "Quarantines lifted, by cause."),
            &["cause"],
        )?;
        let last_cycle = GaugeVec::new(
            Opts::new(
                LAST_CYCLE,
                "Unix time the last ReplicationCompleted was applied, by tenant.",
            ),
            &["tenant"],
        )?;
        registry.register(Box::new(messages.clone()))?;
        registry.register(Box::new(rows.clone()))?;
        registry.register(Box::new(apply_seconds.clone()))?;
        registry.register(Box::new(lag_seconds.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(dead_letters.clone()))?;
        registry.register(Box::new(active_partitions.clone()))?;
        registry.register(Box::new(broker_connected.clone()))?;
        registry.register(Box::new(reconnects.clone()))?;
        registry.register(Box::new(schema_replies.clone()))?;
        registry.register(Box::new(quarantines.clone()))?;
        registry.register(Box::new(heals.clone()))?;
        registry.register(Box::new(last_cycle.clone()))?;
        Ok(Metrics {
            registry,
            messages,
            rows,
            apply_seconds,
            lag_seconds,
            retries,
            dead_letters,
            active_partitions,
            broker_connected,
            reconnects,
            schema_replies,
            quarantines,
            heals,
            last_cycle,
        })
    }

    /// Counts one handled message. `kind` is `None` for a body that is not an envelope.
    pub fn message(&self, kind: Option<Kind>, outcome: Outcome) {
        let kind = kind.map_or("unknown", Kind::as_str);
        self.messages
            .with_label_values(&[kind, outcome.as_str()])
            .inc();
    }

    /// Records a commit: its latency; for row data the rows by operation; for the end of a cycle
    /// the time, under the tenant.
    pub fn committed(&self, envelope: &Envelope, elapsed: Duration) {
        let kind = envelope.message.kind();
        if kind == Kind::ReplicationCompleted {
            self.last_cycle
                .with_label_values(&[envelope.tenant.as_str()])
                .set(unix_now_ms() as f64 / 1000.0);
        }
        self.apply_seconds
            .with_label_values(&[kind.as_str()])
            .observe(elapsed.as_secs_f64());
        let (inserts, updates, deletes) = row_counts(&envelope.message);
        for (operation, count) in [
            ("insert", inserts),
            ("update", updates),
            ("delete", deletes),
        ] {
            if count > 0 {
                self.rows.with_label_values(&[operation]).inc_by(count);
            }
        }
    }

    /// Records how old a partition's message was when its outcome was settled.
    pub fn lag(&self, partition: u16, received_at_ms: i64) {
        let age = unix_now_ms().saturating_sub(received_at_ms).max(0) as f64 / 1000.0;
        self.lag_seconds
            .with_label_values(&[partition.to_string().as_str()])
            .set(age);
    }

    pub fn retry(&self, stage: Stage) {
        self.retries.with_label_values(&[stage.as_str()]).inc();
    }

    /// Counts one dead letter; `reason` is `undecodable` or `failed`.
    pub fn dead_letter(&self, reason: &'static str) {
        self.dead_letters.with_label_values(&[reason]).inc();
    }

    pub fn partition_started(&self) {
        self.active_partitions.inc();
    }

    pub fn partition_stopped(&self) {
        self.active_partitions.dec();
    }

    /// Marks the broker connection up or down; `reconnect` counts a connection after the first.
    pub fn broker_connected(&self, up: bool, reconnect: bool) {
        self.broker_connected.set(i64::from(up));
        if up && reconnect {
            self.reconnects.inc();
        }
    }

    pub fn schema_reply(&self, outcome: &'static str) {
        self.schema_replies.with_label_values(&[outcome]).inc();
    }

    /// Counts `tables` newly put in quarantine (after the transaction that did it committed).
    pub fn quarantined(&self, tables: u64) {
        self.quarantines.inc_by(tables);
    }

    /// Counts `tables` whose quarantine was lifted (after the transaction that did it committed).
    pub fn healed(&self, cause: Heal, tables: u64) {
        if tables > 0 {
            self.heals
                .with_label_values(&[cause.as_str()])
                .inc_by(tables);
        }
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before it).
fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Inserts, updates and deletes carried by a message (zero for anything but row data).
pub fn row_counts(message: &Message) -> (u64, u64, u64) {
    let Message::RowData { batches } = message else {
        return (0, 0, 0);
    };
    let mut counts = (0u64, 0u64, 0u64);
    for row in batches.iter().flat_map(|b| &b.rows) {
        match row.op {
            Operation::Insert => counts.0 += 1,
            Operation::Update => counts.1 += 1,
            Operation::Delete => counts.2 += 1,
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_common::schema::{Column, ColumnType, TableSchema};
    use mirror_common::value::Value;
    use mirror_common::wire::{Row, RowBatch};

    fn row_data(ops: &[Operation]) -> Envelope {
        Envelope {
            id: uuid::Uuid::now_v7(),
            tenant: "Cust1".into(),
            received_at_ms: 0,
            trace_id: "t".into(),
            message: Message::RowData {
                batches: vec![RowBatch {
                    table: TableSchema {
                        name: "contact".into(),
                        columns: vec![Column {
                            name: "contact_id".into(),
                            ty: ColumnType::Int,
                            nullable: false,
                            default: None,
                        }],
                    },
                    lsn: 1,
                    rows: ops
                        .iter()
                        .enumerate()
                        .map(|(i, op)| Row {
                            op: *op,
                            values: vec![Value::Int(i as i32)],
                        })
                        .collect(),
                }],
            },
        }
    }

    #[test]
    fn counts_rows_by_operation() {
        use Operation::*;
        let env = row_data(&[Insert, Insert, Update, Delete, Insert]);
        assert_eq!(row_counts(&env.message), (3, 1, 1));
        let wipe = Message::Wipe {
            table: "contact".into(),
        };
        assert_eq!(row_counts(&wipe), (0, 0, 0));
    }

    #[test]
    fn renders_what_was_recorded() {
        let metrics = Metrics::new().unwrap();
        let env = row_data(&[Operation::Insert, Operation::Delete]);
        metrics.message(Some(Kind::RowData), Outcome::Done);
        metrics.message(None, Outcome::Undecodable);
        metrics.committed(&env, Duration::from_millis(30));
        metrics.retry(Stage::Apply);
        let two_seconds_ago = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            - 2000;
        metrics.lag(3, two_seconds_ago);
        metrics.dead_letter("undecodable");
        metrics.partition_started();
        metrics.partition_started();
        metrics.partition_stopped();
        metrics.broker_connected(true, true);
        let text = metrics.render().unwrap();
        assert!(
            text.contains(r#"mirror_applier_messages_total{kind="RowData",outcome="done"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"mirror_applier_messages_total{kind="unknown",outcome="undecodable"} 1"#
            )
        );
        assert!(text.contains(r#"mirror_applier_rows_applied_total{operation="insert"} 1"#));
        assert!(text.contains(r#"mirror_applier_rows_applied_total{operation="delete"} 1"#));
        assert!(!text.contains(r#"operation="update""#));
        assert!(
            text.contains(r#"mirror_applier_apply_seconds_bucket{kind="RowData",le="0.05"} 1"#)
        );
        assert!(
            text.contains(r#"mirror_applier_apply_seconds_bucket{kind="RowData",le="0.025"} 0"#)
        );
        assert!(text.contains(r#"mirror_applier_retries_total{stage="apply"} 1"#));
        let lag: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(r#"mirror_applier_lag_seconds{partition="3"} "#))
            .unwrap()
            .parse()
            .unwrap();
        assert!((2.0..10.0).contains(&lag), "{lag}");
        assert!(text.contains(r#"mirror_applier_dead_letters_total{reason="undecodable"} 1"#));
        assert!(text.contains("mirror_applier_active_partitions 1"));
        assert!(text.contains("mirror_applier_broker_connected 1"));
        assert!(text.contains("mirror_applier_broker_reconnects_total 1"));
    }

    #[test]
    fn cycles_set_the_tenant_clock_and_quarantines_count_both_ways() {
        let metrics = Metrics::new().unwrap();
        let mut completed = row_data(&[]);
        completed.tenant = "Cust42".into();
        completed.message = Message::ReplicationCompleted { summaries: vec![] };
        let before = unix_now_ms() as f64 / 1000.0;
        metrics.committed(&completed, Duration::from_millis(3));
        metrics.committed(&row_data(&[Operation::Insert]), Duration::from_millis(3));
        metrics.quarantined(2);
        metrics.healed(Heal::Wipe, 1);
        metrics.healed(Heal::Replay, 0);
        let text = metrics.render().unwrap();
        let stamp: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{LAST_CYCLE}{{tenant=\"Cust42\"}} ")))
            .unwrap()
            .parse()
            .unwrap();
        assert!(stamp >= before.floor(), "{stamp} < {before}");
        assert_eq!(
            text.matches(&format!("{LAST_CYCLE}{{")).count(),
            1,
            "{text}"
        );
        assert!(text.contains(&format!("{QUARANTINES} 2")), "{text}");
        assert!(text.contains(&format!("{QUARANTINE_HEALS}{{cause=\"wipe\"}} 1")));
        assert!(!text.contains("cause=\"replay\""));
    }
}
