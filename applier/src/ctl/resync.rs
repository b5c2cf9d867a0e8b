//! `mirrorctl resync`: SuperOffice's force-resync procedure ("set the table's LSN to -1"), done in
//! one transaction on the tenant's state table so the next cycle wipes and resends the table.
//!
//! A quarantined table already has LSN -1; resyncing it changes nothing more: the next cycle's
//! Wipe starts a new epoch, lifts the quarantine and discards the batches parked behind it (its
//! dead letters then become stale). Resync never lifts a quarantine itself: until the Wipe
//! arrives, later batches must keep waiting behind the failed one.

use std::io::Write;

use clap::Args;
use mirror_common::config::Settings;
use serde::Serialize;

use super::mirror::{Mirrors, Resynced};
use super::output::table;

#[derive(Debug, Args)]
pub struct ResyncArgs {
    /// The tenant (context id).
    #[arg(long)]
    pub tenant: String,
    /// Only this table (default: every table of the tenant).
    #[arg(long)]
    pub table: Option<String>,
    /// Print what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    tenant: &'a str,
    dry_run: bool,
    tables: &'a [Resynced],
}

pub async fn run(
    args: ResyncArgs,
    settings: &Settings,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut mirrors = Mirrors::connect(&settings.database).await?;
    let tenant = mirrors.known_tenant(&args.tenant).await?;
    let tables = mirrors
        .resync(&tenant, args.table.as_deref(), args.dry_run)
        .await?;
    if json {
        let report = Report {
            tenant: &tenant.context_id,
            dry_run: args.dry_run,
            tables: &tables,
        };
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
        return Ok(());
    }
    write!(out, "{}", render(&tables))?;
    let verb = if args.dry_run {
        "Dry run, nothing changed: would set"
    } else {
        "Set"
    };
    writeln!(
        out,
        "{verb} the LSN of {} table(s) of tenant {} to -1: the next cycle wipes and resends them.",
        tables.len(),
        tenant.context_id
    )?;
    Ok(())
}

fn render(tables: &[Resynced]) -> String {
    let rows: Vec<Vec<String>> = tables
        .iter()
        .map(|t| {
            vec![
                t.table.clone(),
                t.lsn_before.to_string(),
                "-1".to_owned(),
                if t.quarantined {
                    "quarantined: the next cycle's wipe lifts it"
                } else {
                    "-"
                }
                .to_owned(),
            ]
        })
        .collect();
    table(&["table", "lsn before", "lsn now", "note"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_lsn_before_and_the_quarantine() {
        let text = render(&[
            Resynced {
                table: "contact".into(),
                lsn_before: 10,
                quarantined: false,
            },
            Resynced {
                table: "person".into(),
                lsn_before: -1,
                quarantined: true,
            },
        ]);
        assert_eq!(
            text,
            "table    lsn before  lsn now  note\n\
             contact  10          -1       -\n\
             person   -1          -1       quarantined: the next cycle's wipe lifts it\n"
        );
    }
}
