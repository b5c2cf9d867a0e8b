//! `mirrorctl status`: tenants, their tables (LSN, epoch, quarantine, parked batches, last
//! cycle), and the partition queues' backlog and the dead-letter queue's depth.

use std::io::Write;

use clap::Args;
use mirror_common::config::Settings;
use serde::Serialize;

use super::mirror::{Mirrors, TableStatus};
use super::output::{or_dash, table, time};
use super::queues::Broker;

/// Longest quarantine reason shown in text output (`--json` has it whole).
const REASON_WIDTH: usize = 80;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this tenant (context id).
    #[arg(long)]
    pub tenant: Option<String>,
}

/// The whole answer, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Status {
    /// What holds each tenant's mirror: `schema` (PostgreSQL) or `database` (SQL Server).
    #[serde(skip)]
    pub storage_kind: &'static str,
    pub tenants: Vec<TenantStatus>,
    pub partitions: Vec<PartitionStatus>,
    pub dead_letter_queue: QueueStatus,
}

#[derive(Debug, Serialize)]
pub struct TenantStatus {
    pub tenant: String,
    /// The schema (PostgreSQL) or database (SQL Server) holding the mirror.
    pub storage: String,
    pub partition: u16,
    pub last_cycle: Option<chrono::DateTime<chrono::Utc>>,
    pub tables: Vec<TableStatus>,
}

#[derive(Debug, Serialize)]
pub struct PartitionStatus {
    pub partition: u16,
    #[serde(flatten)]
    pub queue: QueueStatus,
}

/// `exists: false` when the queue has not been declared.
#[derive(Debug, Serialize)]
pub struct QueueStatus {
    pub queue: String,
    pub exists: bool,
    /// Ready messages (unacknowledged ones not included).
    pub messages: u32,
    pub consumers: u32,
}

pub async fn run(
    args: StatusArgs,
    settings: &Settings,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mirrors = Mirrors::connect(&settings.database).await?;
    let broker = Broker::connect(&settings.amqp).await?;
    let status = gather(&mirrors, &broker, args.tenant.as_deref()).await;
    broker.close().await;
    let status = status?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &status)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", render(&status))?;
    }
    Ok(())
}

async fn gather(mirrors: &Mirrors, broker: &Broker, only: Option<&str>) -> anyhow::Result<Status> {
    let tenants = match only {
        Some(id) => vec![mirrors.known_tenant(id).await?],
        None => mirrors.tenants().await?,
    };
    let mut statuses = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        let tables = match mirrors.tables(&tenant).await {
            Ok(tables) => tables,
            // Listed a moment ago and dropped since: a tenant being removed is not an error.
            Err(error) if only.is_none() && mirrors.is_missing(&error) => continue,
            Err(error) => return Err(error),
        };
        statuses.push(TenantStatus {
            partition: broker.topology.partition_of(&tenant.context_id),
            last_cycle: mirrors.last_cycle(&tenant).await?,
            tables,
            tenant: tenant.context_id,
            storage: tenant.storage,
        });
    }
    let mut partitions = Vec::with_capacity(usize::from(broker.topology.partitions));
    for partition in 0..broker.topology.partitions {
        partitions.push(PartitionStatus {
            partition,
            queue: queue_status(broker, broker.topology.queue(partition)).await?,
        });
    }
    Ok(Status {
        storage_kind: mirrors.storage_kind(),
        tenants: statuses,
        partitions,
        dead_letter_queue: queue_status(broker, broker.topology.dead_letter_queue()).await?,
    })
}

async fn queue_status(broker: &Broker, queue: String) -> anyhow::Result<QueueStatus> {
    let depth = broker.depth(&queue).await?;
    Ok(QueueStatus {
        queue,
        exists: depth.is_some(),
        messages: depth.map_or(0, |d| d.messages),
        consumers: depth.map_or(0, |d| d.consumers),
    })
}

/// The text form: a block per tenant, then the queues.
pub fn render(status: &Status) -> String {
    let mut text = String::new();
    if status.tenants.is_empty() {
        text.push_str("No mirrors yet.\n\n");
    }
    for tenant in &status.tenants {
        text.push_str(&format!(
            "Tenant {} ({} {}, partition {}, last cycle {})\n",
            tenant.tenant,
            status.storage_kind,
            tenant.storage,
            tenant.partition,
            time(tenant.last_cycle)
        ));
        let rows: Vec<Vec<String>> = tenant
            .tables
            .iter()
            .map(|t| {
                vec![
                    t.table.clone(),
                    t.lsn.to_string(),
                    t.epoch.to_string(),
                    t.parked.to_string(),
                    if t.loading { "yes" } else { "no" }.to_owned(),
                    time(t.last_cycle_at),
                    quarantine(t),
                ]
            })
            .collect();
        text.push_str(&table(
            &[
                "table",
                "lsn",
                "epoch",
                "parked",
                "loading",
                "last cycle",
                "quarantine",
            ],
            &rows,
        ));
        text.push('\n');
    }
    let rows: Vec<Vec<String>> = status
        .partitions
        .iter()
        .map(|p| (p.partition.to_string(), &p.queue))
        .chain(std::iter::once((
            "dlq".to_owned(),
            &status.dead_letter_queue,
        )))
        .map(|(name, q)| {
            vec![
                name,
                q.queue.clone(),
                or_dash(q.exists.then_some(q.messages)),
                or_dash(q.exists.then_some(q.consumers)),
            ]
        })
        .collect();
    text.push_str(&table(&["partition", "queue", "ready", "consumers"], &rows));
    text
}

fn quarantine(t: &TableStatus) -> String {
    match &t.quarantine {
        None => "-".to_owned(),
        Some(reason) => {
            let short: String = reason.chars().take(REASON_WIDTH).collect();
            let ellipsis = if short.len() < reason.len() {
                "…"
            } else {
                ""
            };
            format!("since {}: {short}{ellipsis}", time(t.quarantined_at))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn sample() -> Status {
        let at = DateTime::from_timestamp(1_700_000_000, 0);
        Status {
            storage_kind: "schema",
            tenants: vec![TenantStatus {
                tenant: "Cust1".into(),
                storage: "Mirror_Cust1".into(),
                partition: 1,
                last_cycle: at,
                tables: vec![TableStatus {
                    table: "contact".into(),
                    lsn: -1,
                    epoch: 2,
                    quarantine: Some("x".repeat(REASON_WIDTH + 5)),
                    quarantined_at: at,
                    parked: 3,
                    loading: false,
                    updated_at: at.unwrap(),
                    last_cycle_at: None,
                }],
            }],
            partitions: vec![PartitionStatus {
                partition: 0,
                queue: QueueStatus {
                    queue: "mirror.p00".into(),
                    exists: true,
                    messages: 7,
                    consumers: 1,
                },
            }],
            dead_letter_queue: QueueStatus {
                queue: "mirror.dlq".into(),
                exists: false,
                messages: 0,
                consumers: 0,
            },
        }
    }

    #[test]
    fn text_shows_tables_quarantines_and_queues() {
        let text = render(&sample());
        let expected_reason = format!("since 2023-11-14 22:13:20Z: {}…", "x".repeat(REASON_WIDTH));
        assert!(
            text.starts_with(
                "Tenant Cust1 (schema Mirror_Cust1, partition 1, last cycle 2023-11-14 22:13:20Z)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "contact  -1   2      3       no       -           {expected_reason}"
            )),
            "{text}"
        );
        assert!(text.contains("0          mirror.p00  7      1\n"), "{text}");
        assert!(text.contains("dlq        mirror.dlq  -      -\n"), "{text}");
        let on_sql_server = render(&Status {
            storage_kind: "database",
            ..sample()
        });
        assert!(
            on_sql_server.starts_with("Tenant Cust1 (database Mirror_Cust1, partition 1,"),
            "{on_sql_server}"
        );
    }

    #[test]
    fn json_nests_the_queue_of_each_partition_flat() {
        let value = serde_json::to_value(sample()).unwrap();
        assert_eq!(value["partitions"][0]["queue"], "mirror.p00");
        assert_eq!(value["partitions"][0]["messages"], 7);
        assert_eq!(value["tenants"][0]["tables"][0]["parked"], 3);
        assert_eq!(value["dead_letter_queue"]["exists"], false);
    }
}
