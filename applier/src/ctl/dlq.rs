//! `mirrorctl dlq list | show ID | replay`: the dead-letter queue, read without consuming it (see
//! `super::queues`), and replays to the messages' original partitions in their original order.
//!
//! A replay checks each selected message against its table's state first: a message whose table
//! was wiped or recreated since (a newer epoch), is no longer quarantined, or has no mirror any
//! more is stale: reported and removed from the dead-letter queue, never republished. The others
//! are republished with their original properties and body and removed only after the broker
//! confirmed them. This check is for the operator's report; the applier's own check (the failure
//! record and epoch in the mirror, `crate::state`) is what guarantees a stale replay changes
//! nothing.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use mirror_common::config::Settings;
use serde::Serialize;

use super::letter::{self, Letter};
use super::mirror::{Mirrors, TableStatus};
use super::output::{or_dash, progress, table, time};
use super::queues::{Broker, Held};

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List the dead letters, oldest first (the queue is left as it is).
    List(Filter),
    /// Show one dead letter in full: headers and what its body holds.
    Show {
        /// The message id, as `dlq list` prints it.
        id: String,
    },
    /// Put dead letters back on their original partition, in their original order; stale ones
    /// (their table was wiped or healed since) are reported and dropped.
    Replay {
        #[command(flatten)]
        filter: Filter,
        /// Print what would happen and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which dead letters a command concerns (all when empty).
#[derive(Debug, Clone, Default, Args)]
pub struct Filter {
    /// Only this tenant's messages (context id).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only messages that failed on this table.
    #[arg(long)]
    pub table: Option<String>,
}

impl Filter {
    pub fn matches(&self, letter: &Letter) -> bool {
        let tenant = self
            .tenant
            .as_deref()
            .is_none_or(|t| letter.tenant.as_deref() == Some(t));
        let table = self.table.as_deref().is_none_or(|t| {
            letter
                .table
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(t))
        });
        tenant && table
    }
}

/// What a replay does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Republished to its partition, then removed from the dead-letter queue.
    Replay,
    /// Removed from the dead-letter queue without being republished.
    Stale,
    /// Left in the dead-letter queue: it cannot be routed (no tenant, no partition).
    Keep,
}

/// The tenant's mirror as far as judging a replay needs it: `None` when it has none.
pub type MirrorTables = Option<Vec<TableStatus>>;

/// Judges one dead letter against its tenant's mirror, with the reason shown to the operator.
pub fn judge(letter: &Letter, mirror: &MirrorTables) -> (Verdict, String) {
    let (Some(tenant), Some(_)) = (&letter.tenant, letter.partition) else {
        return (
            Verdict::Keep,
            "no tenant header: its partition is unknown".into(),
        );
    };
    let Some(tables) = mirror else {
        return (
            Verdict::Stale,
            format!("tenant {tenant} has no mirror any more"),
        );
    };
    let (Some(table), Some(epoch)) = (&letter.table, letter.epoch) else {
        return (
            Verdict::Replay,
            "no table recorded: the applier decides".into(),
        );
    };
    match tables.iter().find(|t| &t.table == table) {
        None => (
            Verdict::Stale,
            format!("table {table} has no state row: it was dropped since"),
        ),
        Some(t) if t.epoch != epoch => (
            Verdict::Stale,
            format!(
                "table {table} was wiped or recreated since (failed in epoch {epoch}, now {})",
                t.epoch
            ),
        ),
        Some(t) if t.quarantine.is_none() => (
            Verdict::Stale,
            format!("table {table} is no longer quarantined: it was healed since"),
        ),
        Some(_) => (
            Verdict::Replay,
            format!("table {table} is still quarantined in epoch {epoch}"),
        ),
    }
}

/// One line of `dlq replay`'s report.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub letter: Letter,
    pub verdict: Verdict,
    pub why: String,
}

#[derive(Debug, Serialize)]
struct ReplayReport<'a> {
    dry_run: bool,
    replayed: usize,
    dropped: usize,
    kept: usize,
    messages: &'a [Outcome],
}

pub async fn run(
    command: DlqCommand,
    settings: &Settings,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let broker = Broker::connect(&settings.amqp).await?;
    let result = match command {
        DlqCommand::List(filter) => list(&broker, &filter, json, out).await,
        DlqCommand::Show { id } => show(&broker, &id, json, out).await,
        DlqCommand::Replay { filter, dry_run } => {
            replay(&broker, settings, &filter, dry_run, json, out).await
        }
    };
    broker.close().await;
    result
}

async fn list(
    broker: &Broker,
    filter: &Filter,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut held = broker.hold_dead_letters().await?;
    let read = async {
        let mut letters = Vec::new();
        while let Some(held_letter) = held.next().await? {
            let letter = Letter::from_properties(&held_letter.properties, &broker.topology);
            if filter.matches(&letter) {
                letters.push(letter);
            }
        }
        anyhow::Ok(letters)
    }
    .await;
    held.release(broker).await;
    let letters = read?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &letters)?;
        writeln!(out)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|l| {
            vec![
                l.id.clone(),
                or_dash(l.tenant.as_deref()),
                or_dash(l.kind.as_deref()),
                or_dash(l.table.as_deref()),
                or_dash(l.epoch),
                or_dash(l.attempts),
                or_dash(l.partition),
                time(l.time),
                or_dash(l.reason.as_deref()),
            ]
        })
        .collect();
    let header = [
        "id",
        "tenant",
        "kind",
        "table",
        "epoch",
        "attempts",
        "partition",
        "time",
        "reason",
    ];
    write!(out, "{}", table(&header, &rows))?;
    writeln!(
        out,
        "{} dead letter(s) in {}",
        letters.len(),
        broker.topology.dead_letter_queue()
    )?;
    Ok(())
}

/// `dlq show`'s answer.
#[derive(Debug, Serialize)]
struct Shown {
    #[serde(flatten)]
    letter: Letter,
    headers: Vec<(String, String)>,
    bytes: usize,
    body: Option<letter::BodySummary>,
    /// Why the body could not be read, when it is not an envelope.
    body_error: Option<String>,
}

async fn show(broker: &Broker, id: &str, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut held = broker.hold_dead_letters().await?;
    let mut total = 0;
    let search = async {
        while let Some(l) = held.next().await? {
            total += 1;
            let letter = Letter::from_properties(&l.properties, &broker.topology);
            if letter.id == id {
                let body = letter::summarize(&l.body);
                return anyhow::Ok(Some(Shown {
                    letter,
                    headers: letter::headers(&l.properties),
                    bytes: l.body.len(),
                    body_error: body.as_ref().err().map(ToString::to_string),
                    body: body.ok(),
                }));
            }
        }
        Ok(None)
    }
    .await;
    held.release(broker).await;
    let Some(shown) = search? else {
        anyhow::bail!(
            "unknown id {id}: no such message among the {total} in {}",
            broker.topology.dead_letter_queue()
        );
    };
    if json {
        serde_json::to_writer_pretty(&mut *out, &shown)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "id         {}", shown.letter.id)?;
    writeln!(out, "time       {}", time(shown.letter.time))?;
    writeln!(out, "partition  {}", or_dash(shown.letter.partition))?;
    writeln!(
        out,
        "reason     {}",
        or_dash(shown.letter.reason.as_deref())
    )?;
    writeln!(out, "headers:")?;
    for (key, value) in &shown.headers {
        writeln!(out, "  {key}: {value}")?;
    }
    match (&shown.body, &shown.body_error) {
        (Some(body), _) => {
            writeln!(
                out,
                "body: {} of tenant {}, {} bytes, trace {}",
                body.kind, body.tenant, shown.bytes, body.trace_id
            )?;
            let rows: Vec<Vec<String>> = body
                .tables
                .iter()
                .map(|t| vec![t.table.clone(), t.rows.to_string(), or_dash(t.lsn)])
                .collect();
            write!(out, "{}", table(&["table", "rows", "lsn"], &rows))?;
        }
        (None, error) => writeln!(
            out,
            "body: {} bytes, not an envelope: {}",
            shown.bytes,
            or_dash(error.as_deref())
        )?,
    }
    Ok(())
}

async fn replay(
    broker: &Broker,
    settings: &Settings,
    filter: &Filter,
    dry_run: bool,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mirrors = Mirrors::connect(&settings.database).await?;
    let mut held = broker.hold_dead_letters().await?;
    let result = replay_held(broker, &mirrors, &mut held, filter, dry_run, json).await;
    // Whatever happened, what was not removed goes back to the queue in order.
    held.release(broker).await;
    let outcomes = result?;
    let count = |v: Verdict| outcomes.iter().filter(|o| o.verdict == v).count();
    let report = ReplayReport {
        dry_run,
        replayed: count(Verdict::Replay),
        dropped: count(Verdict::Stale),
        kept: count(Verdict::Keep),
        messages: &outcomes,
    };
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                o.letter.id.clone(),
                or_dash(o.letter.tenant.as_deref()),
                or_dash(o.letter.table.as_deref()),
                or_dash(o.letter.partition),
                match o.verdict {
                    Verdict::Replay => "replay",
                    Verdict::Stale => "drop (stale)",
                    Verdict::Keep => "keep",
                }
                .to_owned(),
                o.why.clone(),
            ]
        })
        .collect();
    write!(
        out,
        "{}",
        table(
            &["id", "tenant", "table", "partition", "action", "why"],
            &rows
        )
    )?;
    let prefix = if dry_run {
        "Dry run, nothing changed: would have"
    } else {
        "Done:"
    };
    writeln!(
        out,
        "{prefix} replayed {}, dropped {} stale, kept {}.",
        report.replayed, report.dropped, report.kept
    )?;
    Ok(())
}

/// Judges and (unless `dry_run`) replays or drops the selected letters, reading the queue in
/// order, one message at a time. Stops at the first failure: what was done so far stays done, the
/// rest stays in the queue.
async fn replay_held(
    broker: &Broker,
    mirrors: &Mirrors,
    held: &mut Held,
    filter: &Filter,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<Vec<Outcome>> {
    let bar = progress(u64::from(held.ready), json);
    let publisher = if dry_run {
        None
    } else {
        Some(broker.publisher().await?)
    };
    let mut tables: HashMap<String, MirrorTables> = HashMap::new();
    let mut outcomes = Vec::new();
    while let Some(held_letter) = held.next().await? {
        bar.inc(1);
        let letter = Letter::from_properties(&held_letter.properties, &broker.topology);
        if !filter.matches(&letter) {
            continue;
        }
        let mirror = match &letter.tenant {
            Some(tenant) => {
                if !tables.contains_key(tenant) {
                    tables.insert(tenant.clone(), mirror_tables(mirrors, tenant).await?);
                }
                tables.get(tenant).cloned().flatten()
            }
            None => None,
        };
        let (verdict, why) = judge(&letter, &mirror);
        if let Some(channel) = &publisher {
            match (verdict, letter.partition) {
                (Verdict::Replay, Some(partition)) => {
                    broker
                        .republish(
                            channel,
                            partition,
                            letter::original_properties(&held_letter.properties),
                            &held_letter.body,
                        )
                        .await
                        .with_context(|| format!("replaying {}", letter.id))?;
                    held.remove(held_letter.tag).await?;
                }
                (Verdict::Stale, _) => held.remove(held_letter.tag).await?,
                _ => {}
            }
        }
        outcomes.push(Outcome {
            letter,
            verdict,
            why,
        });
    }
    bar.finish_and_clear();
    if let Some(channel) = publisher {
        let _ = channel.close(200, "OK".into()).await;
    }
    Ok(outcomes)
}

/// The tenant's state rows, or `None` when it has no mirror.
async fn mirror_tables(mirrors: &Mirrors, tenant: &str) -> anyhow::Result<MirrorTables> {
    let known = mirrors.tenants().await?;
    match known.iter().find(|t| t.context_id == tenant) {
        Some(t) => Ok(Some(mirrors.tables(t).await?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn letter(tenant: Option<&str>, table: Option<&str>, epoch: Option<i64>) -> Letter {
        Letter {
            id: "m-1".into(),
            tenant: tenant.map(str::to_owned),
            kind: Some("RowData".into()),
            table: table.map(str::to_owned),
            epoch,
            reason: Some("bad".into()),
            attempts: Some(1),
            partition: tenant.map(|_| 0),
            time: None,
        }
    }

    fn state(table: &str, epoch: i64, quarantined: bool) -> TableStatus {
        TableStatus {
            table: table.into(),
            lsn: -1,
            epoch,
            quarantine: quarantined.then(|| "bad".to_owned()),
            quarantined_at: None,
            parked: 0,
            loading: false,
            updated_at: Utc::now(),
            last_cycle_at: None,
        }
    }

    #[test]
    fn replays_only_into_the_same_quarantined_epoch() {
        let l = letter(Some("Cust1"), Some("contact"), Some(2));
        let verdict = |tables: MirrorTables| judge(&l, &tables).0;
        assert_eq!(
            verdict(Some(vec![state("contact", 2, true)])),
            Verdict::Replay
        );
        assert_eq!(
            verdict(Some(vec![state("contact", 3, false)])),
            Verdict::Stale
        );
        assert_eq!(
            verdict(Some(vec![state("contact", 3, true)])),
            Verdict::Stale
        );
        assert_eq!(
            verdict(Some(vec![state("contact", 2, false)])),
            Verdict::Stale
        );
        assert_eq!(
            verdict(Some(vec![state("person", 2, true)])),
            Verdict::Stale
        );
        assert_eq!(verdict(None), Verdict::Stale);
    }

    #[test]
    fn says_why() {
        let l = letter(Some("Cust1"), Some("contact"), Some(2));
        let (_, why) = judge(&l, &Some(vec![state("contact", 5, false)]));
        assert_eq!(
            why,
            "table contact was wiped or recreated since (failed in epoch 2, now 5)"
        );
    }

    #[test]
    fn without_a_table_the_applier_decides_and_without_a_tenant_it_stays() {
        let no_table = letter(Some("Cust1"), None, None);
        assert_eq!(judge(&no_table, &Some(vec![])).0, Verdict::Replay);
        let no_tenant = letter(None, Some("contact"), Some(1));
        assert_eq!(judge(&no_tenant, &None).0, Verdict::Keep);
    }

    #[test]
    fn filters_by_tenant_and_table() {
        let l = letter(Some("Cust1"), Some("contact"), Some(1));
        let filter = |tenant: Option<&str>, table: Option<&str>| Filter {
            tenant: tenant.map(str::to_owned),
            table: table.map(str::to_owned),
        };
        assert!(filter(None, None).matches(&l));
        assert!(filter(Some("Cust1"), Some("Contact")).matches(&l));
        assert!(!filter(Some("Cust2"), None).matches(&l));
        assert!(!filter(None, Some("person")).matches(&l));
        assert!(!filter(None, Some("contact")).matches(&letter(Some("Cust1"), None, None)));
    }
}
