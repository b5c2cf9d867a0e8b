//! PostgreSQL stopped half-way through a large initial load and started again. The worker keeps
//! the message in hand, retries it with backoff, reports itself not ready meanwhile, and resumes
//! on its own once the database is back; nothing acknowledged is lost or applied twice.

use std::sync::Arc;
use std::time::Duration;

use mirror_applier::metrics::{RETRIES, ROWS};
use mirror_sim::driver::Quiet;
use mirror_tests::services::Service;
use mirror_tests::{Pipeline, eventually, eventually_within};

use crate::{
    Load, RUN_TIMEOUT, assert_no_dead_letters, finish, mirror_rows, serial, verify_mirror,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_mid_load_makes_the_worker_wait_and_resume() {
    let _serial = serial().await;
    let pipeline = Pipeline::start(1).await;
    let load = Load::new(&pipeline);
    let simulator = load.start(&pipeline, Arc::new(Quiet));
    let inserted = format!("{ROWS}{{operation=\"insert\"}}");
    let retried = format!("{RETRIES}{{stage=\"apply\"}}");
    let part = load.rows / 10;
    eventually_within(
        "the worker to apply a tenth of the load",
        RUN_TIMEOUT,
        || {
            let applied = pipeline.metric(&inserted);
            async move { (applied >= part as f64).then_some(()) }
        },
    )
    .await;
    let retries_before = pipeline.metric(&retried);

    let outage = Service::Postgres.stop().await;
    // The worker notices: it says it is not ready, and retries the message it holds.
    let readyz = format!("http://127.0.0.1:{}/readyz", pipeline.workers[0].port);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    eventually("the worker to report itself not ready", || async {
        let response = http.get(&readyz).send().await.ok()?;
        (!response.status().is_success()).then_some(())
    })
    .await;
    eventually("the worker to retry the message in hand", || async {
        (pipeline.metric(&retried) > retries_before).then_some(())
    })
    .await;
    // Nothing commits while the database is down, so this is what was applied before the stop.
    let applied = pipeline.metric(&inserted);
    assert!(
        applied >= part as f64 && applied < load.rows as f64,
        "the stop landed mid-load: {applied} of {} rows applied",
        load.rows
    );
    eprintln!(
        "database stopped after {applied} of {} rows were applied",
        load.rows
    );
    outage.end().await;

    // The same worker, never restarted, carries on.
    eventually("the worker to be ready again", || async {
        let response = http.get(&readyz).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    let run = finish(simulator).await;
    let resumed = pipeline.metric(&inserted);
    assert!(
        resumed > applied,
        "the worker applied more after the restart: {resumed} rows in all, {applied} before"
    );
    assert_eq!(mirror_rows(&pipeline, &load.tenant).await, load.rows);
    verify_mirror(&pipeline, &run).await;
    assert_no_dead_letters(&pipeline).await;
    pipeline.stop().await;
}
