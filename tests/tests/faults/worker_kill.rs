//! A worker process killed with SIGKILL half-way through a large initial load: its transaction
//! in progress is rolled back by PostgreSQL, its unacknowledged messages go back to the front of
//! the partition queue, and the worker that replaces it applies them exactly once.

use std::os::unix::process::ExitStatusExt as _;
use std::sync::Arc;

use mirror_applier::metrics::ROWS;
use mirror_sim::driver::Quiet;
use mirror_tests::process::WorkerProcess;
use mirror_tests::{Pipeline, PipelineOptions, eventually_within};

use crate::{
    Load, RUN_TIMEOUT, assert_no_dead_letters, finish, mirror_rows, serial, verify_mirror,
};

/// SIGKILL's number on every Unix.
const SIGKILL: i32 = 9;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_load_is_replaced_and_nothing_is_lost() {
    let _serial = serial().await;
    // The receiver in this process; the workers are real processes.
    let pipeline = Pipeline::start_with(PipelineOptions {
        workers: 0,
        ..PipelineOptions::default()
    })
    .await;
    let load = Load::new(&pipeline);
    let first = WorkerProcess::start(&pipeline.settings).await;
    let simulator = load.start(&pipeline, Arc::new(Quiet));

    // Kill it once it has applied part of the load, while the rest is queued or in its hands.
    let part = load.rows / 10;
    eventually_within(
        "the worker to apply a tenth of the load",
        RUN_TIMEOUT,
        || {
            let first = &first;
            async move { (first.metric(ROWS).await >= part as f64).then_some(()) }
        },
    )
    .await;
    let status = first.kill().await;
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "killed, not exited: {status}"
    );

    // With no worker running, the mirror holds exactly what the killed one committed.
    let applied = mirror_rows(&pipeline, &load.tenant).await;
    assert!(
        applied >= part && applied < load.rows,
        "the kill landed mid-load: {applied} of {} rows applied",
        load.rows
    );

    eprintln!("killed after {applied} of {} rows were applied", load.rows);
    let second = WorkerProcess::start(&pipeline.settings).await;
    let run = finish(simulator).await;
    assert!(
        run.cycles[0].completed(),
        "the load was acknowledged in full: {:?}",
        run.cycles[0].status
    );
    let resumed = second.metric(ROWS).await;
    assert!(
        resumed >= (load.rows - applied) as f64,
        "the new worker applied the rest: {resumed} rows, {applied} of {} before the kill",
        load.rows
    );
    verify_mirror(&pipeline, &run).await;
    assert_no_dead_letters(&pipeline).await;
    second.terminate().await;
    pipeline.stop().await;
}
