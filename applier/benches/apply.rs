//! How fast the applier writes to PostgreSQL, as ratios against baselines measured in the same
//! run on the same rows (DESIGN.md, "What fast means here"):
//!
//! - a) a plain binary `COPY` of the rows into an empty table, one transaction; and a') the same
//!   `COPY` with one transaction per RowData message, which prices the promise of one transaction
//!   per message apart from the engine's own overhead;
//! - b) the engine loading the rows as RowData messages of ~1 MB into an empty table;
//! - c) the engine applying a 50/30/20 insert/update/delete mix, and a pure update set, to a
//!   populated table;
//! - d) the same changes as a row-by-row loop of prepared `INSERT … ON CONFLICT DO UPDATE`
//!   (and `DELETE`) statements in one transaction.
//!
//! For a narrow and a wide SuperOffice table, each measurement repeated on a fresh tenant; the
//! report is a Markdown table of medians and ratios. Two measurements of the same changes must
//! leave identical tables, or the run fails.
//!
//! ```sh
//! cargo bench -p mirror-applier --bench apply                 # ~100k narrow, 20k wide rows
//! cargo bench -p mirror-applier --bench apply -- --quick      # tiny sizes, seconds
//! cargo bench -p mirror-applier --bench apply -- --help       # every flag and its variable
//! ```
//!
//! Run without `--bench` (as `cargo test --benches` does), it uses the quick sizes.

mod harness;

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use clap::builder::BoolishValueParser;
use tokio::signal::unix::{SignalKind, signal};

use harness::fixture::superoffice_tables_named;
use harness::lab::Lab;
use harness::report::{Machine, misses, render};
use harness::run::{Plan, run};
use harness::workload::{SUPEROFFICE_BATCH_BYTES, Sizes};

#[derive(Debug, Parser)]
#[command(
    name = "apply",
    about = "Applier apply rate on PostgreSQL against COPY and a row-by-row upsert loop"
)]
struct Args {
    /// Tiny sizes (2,000 narrow and 400 wide rows) that run in seconds.
    #[arg(long, env = "MIRROR_BENCH_QUICK", value_parser = BoolishValueParser::new())]
    quick: bool,
    /// The narrow SuperOffice table.
    #[arg(long, env = "MIRROR_BENCH_NARROW_TABLE", default_value = "invitation")]
    narrow_table: String,
    /// The wide SuperOffice tables, comma-separated (`udcontactsmall` has 111 columns, `ticket` 71
    /// of every type SuperOffice uses).
    #[arg(
        long,
        env = "MIRROR_BENCH_WIDE_TABLES",
        value_delimiter = ',',
        default_value = "udcontactsmall"
    )]
    wide_tables: Vec<String>,
    /// Rows loaded into the narrow table [default: 100000, quick: 2000].
    #[arg(long, env = "MIRROR_BENCH_NARROW_ROWS")]
    narrow_rows: Option<usize>,
    /// Rows loaded into each wide table [default: 20000, quick: 400].
    #[arg(long, env = "MIRROR_BENCH_WIDE_ROWS")]
    wide_rows: Option<usize>,
    /// Size of each change set, in percent of the loaded rows.
    #[arg(long, env = "MIRROR_BENCH_CHANGE_PERCENT", default_value_t = 20)]
    change_percent: usize,
    /// Runs of each measurement; the report shows the median.
    #[arg(long, env = "MIRROR_BENCH_REPEAT", default_value_t = 3)]
    repeat: usize,
    /// Bytes of data per RowData message (SuperOffice's `BatchSize`).
    #[arg(long, env = "MIRROR_BENCH_BATCH_BYTES", default_value_t = SUPEROFFICE_BATCH_BYTES)]
    batch_bytes: usize,
    /// The PostgreSQL database to measure in (scratch schemas `Mirror_Bench…` are created and
    /// dropped).
    #[arg(
        long,
        env = "MIRROR_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// Longest one measurement may take, setup included.
    #[arg(long, env = "MIRROR_BENCH_STEP_TIMEOUT_SECS", default_value_t = 900)]
    step_timeout_secs: u64,
    /// Exit non-zero when a ratio misses its DESIGN.md target.
    #[arg(long, env = "MIRROR_BENCH_ENFORCE_TARGETS", value_parser = BoolishValueParser::new())]
    enforce_targets: bool,
    /// Passed by `cargo bench`; without it (`cargo test --benches`) the quick sizes are used.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Args {
    fn quick(&self) -> bool {
        self.quick || !self.bench
    }

    fn plan(&self) -> anyhow::Result<Plan> {
        let (narrow, wide) = if self.quick() {
            (2_000, 400)
        } else {
            (100_000, 20_000)
        };
        let sizes = |rows: usize| Sizes {
            rows,
            changes: (rows * self.change_percent / 100).max(1),
            batch_bytes: self.batch_bytes.max(1),
        };
        let narrow = sizes(self.narrow_rows.unwrap_or(narrow).max(1));
        let wide = sizes(self.wide_rows.unwrap_or(wide).max(1));
        let mut names = vec![self.narrow_table.clone()];
        names.extend(self.wide_tables.iter().filter(|t| !t.is_empty()).cloned());
        let tables = superoffice_tables_named(&names)?
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, if i == 0 { narrow } else { wide }))
            .collect();
        Ok(Plan {
            tables,
            repeat: self.repeat.max(1),
            step_timeout: Duration::from_secs(self.step_timeout_secs),
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = args.plan()?;
    let lab = Lab::connect(&args.database_url)
        .await
        .with_context(|| format!("connecting to {}", args.database_url))?;
    let machine = Machine::probe(lab.server().await?);
    let mut terminate = signal(SignalKind::terminate())?;
    let outcome = tokio::select! {
        outcome = run(&lab, &plan) => outcome.map_err(anyhow::Error::from),
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        _ = terminate.recv() => Err(anyhow::anyhow!("terminated")),
    };
    if let Err(error) = lab.cleanup().await {
        eprintln!("Could not drop every scratch schema: {error}");
    }
    let results = outcome?;
    println!(
        "{}",
        render(&machine, plan.repeat, args.batch_bytes, &results)
    );
    let missed = misses(&results);
    if args.enforce_targets && !missed.is_empty() {
        anyhow::bail!("targets missed:\n{}", missed.join("\n"));
    }
    Ok(())
}
