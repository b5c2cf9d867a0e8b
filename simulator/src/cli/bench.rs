//! `mirror-sim bench`: sizes and targets on the command line, the tables and ratios on stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use mirror_common::shutdown::CancellationToken;

use crate::bench::end_to_end::EndToEndPlan;
use crate::bench::receiver::ReceiverPlan;
use crate::bench::soak::SoakPlan;
use crate::bench::table::render_ratios;
use crate::bench::{BenchPlan, Environment, bench};
use crate::driver::DEFAULT_BATCH_BYTES;

/// Which parts to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    Receiver,
    EndToEnd,
    Soak,
    All,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which measurements to run.
    #[arg(long, value_enum, default_value_t = Part::All)]
    part: Part,
    /// Seconds-long sizes, to check that the harness runs (CI).
    #[arg(long)]
    tiny: bool,
    /// Receiver: calls per concurrency level [default: 64, tiny: 4].
    #[arg(long)]
    calls: Option<usize>,
    /// Receiver: size of each RowData call (SOAP body), in bytes.
    #[arg(long, default_value_t = 1_000_000)]
    call_bytes: usize,
    /// Receiver: concurrent calls, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    concurrency: Vec<usize>,
    /// End to end: rows over all tenants [default: 1000000, tiny: 3000].
    #[arg(long)]
    rows: Option<u64>,
    /// End to end: row changes of the incremental cycle [default: 50000, tiny: 150].
    #[arg(long)]
    changes: Option<u64>,
    /// End to end: tenants the rows are spread over. One tenant is one ordered stream on one
    /// partition: a second worker only helps with several.
    #[arg(long, default_value_t = 1)]
    tenants: usize,
    /// End to end: applier processes per measured phase, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    workers: Vec<usize>,
    /// End to end: bytes of data per RowData call (the tenant's BatchSize; SOAP makes the calls
    /// about three times larger).
    #[arg(long, default_value_t = DEFAULT_BATCH_BYTES)]
    batch_size: usize,
    /// Soak: tenants served at once [default: 8, tiny: 2].
    #[arg(long)]
    soak_tenants: Option<usize>,
    /// Soak: rows over all tenants, loaded by the first cycle [default: 200000, tiny: 2000].
    #[arg(long)]
    soak_rows: Option<u64>,
    /// Soak: cycles of row changes after the load [default: 100, tiny: 4].
    #[arg(long)]
    soak_cycles: Option<usize>,
    /// Soak: row changes per cycle, over all tenants [default: 10000, tiny: 100].
    #[arg(long)]
    soak_changes: Option<u64>,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory of the `mirror-receiver` and `mirror-applier` binaries [default: this
    /// program's directory].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    #[command(flatten)]
    services: super::Services,
    /// Exit non-zero when a ratio misses its target.
    #[arg(long)]
    enforce_targets: bool,
}

impl BenchArgs {
    fn plan(&self) -> BenchPlan {
        let receiver = matches!(self.part, Part::Receiver | Part::All).then(|| ReceiverPlan {
            calls: self.calls.unwrap_or(if self.tiny { 4 } else { 64 }),
            concurrency: self.concurrency.clone(),
            call_bytes: self.call_bytes,
        });
        let end_to_end = matches!(self.part, Part::EndToEnd | Part::All).then(|| EndToEndPlan {
            rows: self
                .rows
                .unwrap_or(if self.tiny { 3_000 } else { 1_000_000 }),
            changes: self.changes.unwrap_or(if self.tiny { 150 } else { 50_000 }),
            tenants: self.tenants,
            workers: self.workers.clone(),
            batch_bytes: self.batch_size,
            seed: self.seed,
        });
        let soak = matches!(self.part, Part::Soak | Part::All).then(|| SoakPlan {
            tenants: self.soak_tenants.unwrap_or(if self.tiny { 2 } else { 8 }),
            rows: self
                .soak_rows
                .unwrap_or(if self.tiny { 2_000 } else { 200_000 }),
            cycles: self.soak_cycles.unwrap_or(if self.tiny { 4 } else { 100 }),
            changes: self
                .soak_changes
                .unwrap_or(if self.tiny { 100 } else { 10_000 }),
            batch_bytes: self.batch_size,
            seed: self.seed,
        });
        BenchPlan {
            receiver,
            end_to_end,
            soak,
            seed: self.seed,
        }
    }
}

pub async fn command(args: BenchArgs, cancel: CancellationToken) -> anyhow::Result<ExitCode> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .context("cannot find this program's directory")?
            .parent()
            .map(PathBuf::from)
            .context("cannot find this program's directory")?,
    };
    let environment = Environment {
        bin_dir,
        amqp_url: args.services.amqp_url.clone(),
        database_url: args.services.database_url.clone(),
        key_bits: crate::keys::KEY_BITS,
    };
    let report = bench(&environment, &args.plan(), &cancel).await?;
    print!("{}", report.render());
    println!();
    print!("{}", render_ratios(&report.ratios()));
    if !report.mirrors_identical() || (args.enforce_targets && !report.targets_met()) {
        return Ok(ExitCode::from(super::EXIT_DIFFERENCES));
    }
    Ok(ExitCode::SUCCESS)
}
