//! RabbitMQ restarted half-way through a large initial load. While it is down the receiver answers
//! `IsSuccessful=false` at once (it accepts nothing it cannot make durable), so the simulated
//! Mirroring Task's cycle fails cleanly; the receiver and the worker reconnect by themselves, a
//! later cycle completes, and every row acknowledged before the outage is in the mirror.

use std::time::Duration;

use mirror_applier::metrics::{RECONNECTS, ROWS};
use mirror_common::soap::RequestBody;
use mirror_receiver::error::BROKER_UNAVAILABLE;
use mirror_sim::driver::CycleStatus;
use mirror_tests::checkpoint::Checkpoint;
use mirror_tests::services::Service;
use mirror_tests::{Pipeline, eventually_within};

use crate::{
    Load, RUN_TIMEOUT, assert_no_dead_letters, finish, mirror_rows, serial, verify_mirror,
};

/// Far longer than the receiver needs to notice the broker is gone and say so.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_restart_mid_load_fails_the_cycle_cleanly_and_loses_nothing_acknowledged() {
    let _serial = serial().await;
    let pipeline = Pipeline::start(1).await;
    let load = Load::new(&pipeline);
    let probe = pipeline.tenant();
    // Hold the load a third of the way through, between two RowData calls.
    let (checkpoint, mut hold) = Checkpoint::after_rows(load.rows / 3);
    let simulator = load.start(&pipeline, checkpoint);
    let acknowledged = hold.reached().await;
    eventually_within("the worker to apply part of the load", RUN_TIMEOUT, || {
        let applied = pipeline.metric(&format!("{ROWS}{{operation=\"insert\"}}"));
        async move { (applied > 0.0).then_some(()) }
    })
    .await;

    let outage = Service::RabbitMq.stop().await;
    // A call that must publish is refused promptly and plainly: no hang, no crash.
    let reply = tokio::time::timeout(
        ANSWER_TIMEOUT,
        probe.send(RequestBody::Wipe {
            table: "contact".to_owned(),
        }),
    )
    .await
    .expect("the receiver answers while the broker is down");
    let outcome = reply.outcome();
    assert!(
        !outcome.ok,
        "nothing can be acknowledged without the broker"
    );
    assert_eq!(outcome.error, BROKER_UNAVAILABLE);

    // The held cycle goes on, and its next call is refused the same way.
    hold.release();
    let failed = hold.next_finished().await;
    assert_eq!(failed.cycle, 1);
    match &failed.status {
        CycleStatus::Failed(message) => assert!(
            message.contains(BROKER_UNAVAILABLE),
            "refused with the broker's reason: {message}"
        ),
        other => panic!("the load's cycle fails while the broker is down, not {other:?}"),
    }
    assert!(
        failed.rows() >= acknowledged && failed.rows() < load.rows,
        "the outage hit mid-load: {} of {} rows acknowledged",
        failed.rows(),
        load.rows
    );
    let applied = mirror_rows(&pipeline, &load.tenant).await;
    assert!(
        applied < load.rows,
        "{applied} of {} rows applied",
        load.rows
    );
    eprintln!(
        "broker stopped after {acknowledged} of {} rows were acknowledged, {applied} applied",
        load.rows
    );
    outage.end().await;

    // No service was restarted: the same receiver and worker carry on.
    let run = finish(simulator).await;
    assert!(
        run.cycles[1..].iter().any(|c| c.completed()),
        "a later cycle completes"
    );
    verify_mirror(&pipeline, &run).await;
    assert!(
        pipeline.metric(RECONNECTS) >= 1.0,
        "the worker reconnected to the broker"
    );
    assert_no_dead_letters(&pipeline).await;
    pipeline.stop().await;
}
