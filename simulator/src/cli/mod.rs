//! The command line: `run` against a deployed receiver, `keys` for local key material, `demo` for
//! the whole pipeline in one process. Progress bars while it runs, a report table at the end, and
//! a non-zero exit when a mirror differs from its source.

mod bench;
mod progress;
mod summary;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use mirror_common::config::{LogFormat, LogSettings};
use mirror_common::shutdown::{self, CancellationToken};

use crate::demo::{DemoConfig, DemoError, demo};
use crate::driver::{
    CycleOptions, CycleStatus, DeleteShape, Endpoint, IntermediateLsn, RunConfig, TenantRun, run,
};
use crate::keys::{KEY_BITS, load_credentials, write_keys};
use crate::scenario::{Churn, DEFAULT_SCRIPT, Step};
use crate::verify::{TenantReport, verify};

pub use progress::Progress;

/// Exit code when a mirror differs from its source or a tenant did not settle.
pub const EXIT_DIFFERENCES: u8 = 1;
/// Exit code after Ctrl-C / SIGTERM.
pub const EXIT_CANCELLED: u8 = 130;

#[derive(Debug, Parser)]
#[command(
    name = "mirror-sim",
    version,
    about = "A SuperOffice Mirroring Task stand-in: drives real mirroring cycles and verifies the mirror row by row"
)]
pub struct Cli {
    /// More log output (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    json_logs: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run mirroring cycles against a receiver and optionally verify the mirror.
    Run(RunArgs),
    /// Write a throwaway issuer certificate and key, and an application key pair (PEM and RSA-XML).
    Keys(KeysArgs),
    /// Start the receiver and an applier in-process against the local RabbitMQ and PostgreSQL,
    /// run the cycles and verify every mirror.
    Demo(DemoArgs),
    /// Measure the receiver and the whole pipeline against their baselines (release binaries of
    /// the receiver and applier beside this one) and print the ratios.
    Bench(bench::BenchArgs),
}

/// What every way of running cycles shares.
#[derive(Debug, Args)]
struct Workload {
    /// Tenants mirrored concurrently (each strictly sequential).
    #[arg(long, default_value_t = 3)]
    tenants: usize,
    /// Rows per tenant, spread over the SuperOffice tables.
    #[arg(long, default_value_t = 20_000)]
    rows: u64,
    /// Scripted cycles per tenant.
    #[arg(long, default_value_t = 5)]
    cycles: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Step per cycle, comma-separated (initial, idle, changes, schema, skip-table, abort, restore,
    /// expire-history); cycles past the list make plain changes. Default: every step in turn.
    #[arg(long, value_delimiter = ',')]
    scenario: Vec<Step>,
    /// Bytes of data per RowData call (the tenant's BatchSize).
    #[arg(long, default_value_t = crate::driver::DEFAULT_BATCH_BYTES)]
    batch_size: usize,
    /// Row changes per cycle, per mille of the tenant's rows.
    #[arg(long, default_value_t = 20)]
    churn: u64,
    /// What a delete row carries besides its key.
    #[arg(long, value_enum, default_value_t = DeleteShape::default())]
    delete_shape: DeleteShape,
    /// LSN of a table's non-final RowData calls.
    #[arg(long, value_enum, default_value_t = IntermediateLsn::default())]
    intermediate_lsn: IntermediateLsn,
    /// Seconds between a tenant's cycles.
    #[arg(long, default_value_t = 0.0)]
    pause: f64,
    /// Idle cycles allowed after the script for the mirror to catch up before verifying.
    #[arg(long, default_value_t = 5)]
    settle: usize,
}

impl Workload {
    fn config(&self, tenants: Vec<String>) -> RunConfig {
        RunConfig {
            tenants,
            rows: self.rows,
            seed: self.seed,
            cycles: self.cycles,
            script: if self.scenario.is_empty() {
                DEFAULT_SCRIPT.to_vec()
            } else {
                self.scenario.clone()
            },
            churn: Churn::PerMille(self.churn),
            cycle: CycleOptions {
                batch_bytes: self.batch_size,
                delete_shape: self.delete_shape,
                intermediate_lsn: self.intermediate_lsn,
                abort_after_row_calls: None,
            },
            settle_cycles: self.settle,
            pause: Duration::from_secs_f64(self.pause.max(0.0)),
            concurrency: 256,
        }
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The receiver's mirroring URL.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080/Mirroring/MirroringClientService.svc"
    )]
    url: String,
    #[command(flatten)]
    workload: Workload,
    /// Context ids are this prefix plus a number (Cust1, Cust2 …).
    #[arg(long, default_value = "Cust")]
    tenant_prefix: String,
    /// Number of the first tenant.
    #[arg(long, default_value_t = 1)]
    first_tenant: u64,
    /// The token issuer's certificate (PEM), as configured in the receiver (custom environment).
    #[arg(long, value_name = "FILE")]
    issuer_cert: PathBuf,
    /// The token issuer's private key (PEM).
    #[arg(long, value_name = "FILE")]
    issuer_key: PathBuf,
    /// The application's public key (PEM or RSA-XML), to check Authenticate answers.
    #[arg(long, value_name = "FILE")]
    application_key: PathBuf,
    /// The application's client id (token audience `spn:<id>`).
    #[arg(long, env = "MIRROR__AUTH__CLIENT_ID")]
    client_id: String,
    /// Seconds one call may take.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Compare every mirror with its source after the cycles.
    #[arg(long)]
    verify: bool,
    /// The mirror database, for --verify: `postgres://…`, or SQL Server (`mssql://…`, an ADO.NET
    /// or a JDBC connection string), as the applier takes it.
    #[arg(
        long,
        env = "MIRROR__DATABASE__URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// The mirror's per-tenant schema (PostgreSQL) or database (SQL Server) name, for --verify.
    #[arg(
        long,
        env = "MIRROR__DATABASE__NAME_TEMPLATE",
        default_value = "Mirror_{context_id}"
    )]
    name_template: String,
}

#[derive(Debug, Args)]
struct KeysArgs {
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Key size in bits.
    #[arg(long, default_value_t = KEY_BITS)]
    bits: usize,
}

/// The RabbitMQ and PostgreSQL that in-process or spawned services use.
#[derive(Debug, Args)]
struct Services {
    #[arg(
        long,
        env = "MIRROR__AMQP__URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    #[arg(
        long,
        env = "MIRROR__DATABASE__URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
}

#[derive(Debug, Args)]
struct DemoArgs {
    #[command(flatten)]
    workload: Workload,
    #[command(flatten)]
    services: Services,
    /// Partition queues of the demo's topology.
    #[arg(long, default_value_t = 4)]
    partitions: u16,
    /// Drop the demo tenants' mirror schemas at the end (kept for inspection otherwise).
    #[arg(long)]
    drop_mirrors: bool,
}

/// Parses the command line and runs it.
pub async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    mirror_common::telemetry::init_subscriber(&LogSettings {
        format: if cli.json_logs {
            LogFormat::Json
        } else {
            LogFormat::Text
        },
        filter: filter.to_owned(),
    });
    let cancel = shutdown::on_signal();
    match cli.command {
        Command::Keys(args) => keys(&args),
        Command::Run(args) => run_command(args, cancel).await,
        Command::Demo(args) => demo_command(args, cancel).await,
        Command::Bench(args) => bench::command(args, cancel).await,
    }
}

fn keys(args: &KeysArgs) -> anyhow::Result<ExitCode> {
    let files = write_keys(&args.out, args.bits)?;
    println!(
        "Issuer certificate      {}",
        files.issuer_certificate.display()
    );
    println!("Issuer private key      {}", files.issuer_key.display());
    println!(
        "Application private key {} (RSA-XML: {})",
        files.application_key_pem.display(),
        files.application_key_xml.display()
    );
    println!(
        "Application public key  {} (RSA-XML: {})",
        files.application_public_pem.display(),
        files.application_public_xml.display()
    );
    println!();
    println!(
        "Receiver:  MIRROR__AUTH__ENVIRONMENT=custom MIRROR__AUTH__CERTIFICATE_FILE={} MIRROR__AUTH__PRIVATE_KEY_FILE={}",
        files.issuer_certificate.display(),
        files.application_key_pem.display()
    );
    println!(
        "Simulator: --issuer-cert {} --issuer-key {} --application-key {}",
        files.issuer_certificate.display(),
        files.issuer_key.display(),
        files.application_public_pem.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn run_command(args: RunArgs, cancel: CancellationToken) -> anyhow::Result<ExitCode> {
    let credentials = load_credentials(
        &args.issuer_cert,
        &args.issuer_key,
        &args.application_key,
        &args.client_id,
    )?;
    let endpoint = Arc::new(Endpoint::new(
        &args.url,
        credentials,
        Duration::from_secs(args.timeout),
    )?);
    let tenants = (0..args.workload.tenants as u64)
        .map(|n| format!("{}{}", args.tenant_prefix, args.first_tenant + n))
        .collect();
    let mut config = args.workload.config(tenants);
    if !args.verify {
        config.settle_cycles = 0;
    }
    let progress = Arc::new(Progress::new((config.tenants.len() * config.cycles) as u64));
    let runs = run(endpoint, &config, progress.clone(), cancel.clone()).await;
    progress.finish();
    let runs = runs?;
    print!("{}", summary::cycles(&runs));
    if cancel.is_cancelled() {
        eprintln!("Stopped by request.");
        return Ok(ExitCode::from(EXIT_CANCELLED));
    }
    if !args.verify {
        return Ok(exit_without_verify(&runs));
    }
    let mut reports = Vec::with_capacity(runs.len());
    for tenant in &runs {
        let mut reader =
            crate::verify::connect(&args.database_url, &args.name_template, tenant.tenant())
                .await
                .context("cannot verify")?;
        reports.push(verify(reader.as_mut(), &tenant.source).await?);
    }
    println!();
    print!("{}", summary::verification(&reports));
    Ok(verdict(&runs, &reports))
}

async fn demo_command(args: DemoArgs, cancel: CancellationToken) -> anyhow::Result<ExitCode> {
    let config = DemoConfig {
        run: args.workload.config(Vec::new()),
        tenants: args.workload.tenants,
        amqp_url: args.services.amqp_url,
        database_url: args.services.database_url,
        partitions: args.partitions,
        key_bits: KEY_BITS,
        drop_mirrors: args.drop_mirrors,
    };
    eprintln!(
        "Starting the receiver and an applier in-process (RabbitMQ {}, PostgreSQL {}) …",
        crate::verify::redact(&config.amqp_url),
        crate::verify::redact(&config.database_url)
    );
    let progress = Arc::new(Progress::new((config.tenants * config.run.cycles) as u64));
    let outcome = demo(&config, progress.clone(), cancel).await;
    progress.finish();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(DemoError::Cancelled) => {
            eprintln!("Stopped by request.");
            return Ok(ExitCode::from(EXIT_CANCELLED));
        }
        Err(error) => return Err(error.into()),
    };
    print!("{}", summary::cycles(&outcome.runs));
    println!();
    print!("{}", summary::verification(&outcome.reports));
    if !config.drop_mirrors {
        let storages: Vec<&str> = outcome.reports.iter().map(|r| r.storage.as_str()).collect();
        println!(
            "Mirrors kept in PostgreSQL schemas: {}",
            storages.join(", ")
        );
    }
    println!("Done in {:.1} s.", outcome.elapsed.as_secs_f64());
    Ok(verdict(&outcome.runs, &outcome.reports))
}

fn verdict(runs: &[TenantRun], reports: &[TenantReport]) -> ExitCode {
    let settled = runs.iter().all(|r| r.settled == Some(true));
    if settled && reports.iter().all(TenantReport::is_clean) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DIFFERENCES)
    }
}

/// Without verification: success when every tenant's last cycle did not fail.
fn exit_without_verify(runs: &[TenantRun]) -> ExitCode {
    let failed = runs.iter().any(|r| {
        r.cycles
            .last()
            .is_some_and(|c| matches!(c.status, CycleStatus::Failed(_)))
    });
    if failed {
        ExitCode::from(EXIT_DIFFERENCES)
    } else {
        ExitCode::SUCCESS
    }
}
