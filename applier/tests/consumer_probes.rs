//! `/healthz`, `/readyz` and `/metrics` on the worker's own port.

mod consumer_support;

use std::time::{Duration, Instant};

use consumer_support::{Harness, Proxy, eventually_within};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn probes_report_liveness_readiness_and_metrics() {
    let h = Harness::new(3).await;
    let worker = h.start().await;
    assert_eq!(worker.get("/healthz").await, (200, "ok\n".to_owned()));
    eventually_within("the worker to be ready", WAIT, || async {
        (worker.get("/readyz").await == (200, "ready\n".to_owned())).then_some(())
    })
    .await;
    let metrics = eventually_within("every partition consumed", WAIT, || async {
        let (status, metrics) = worker.get("/metrics").await;
        assert_eq!(status, 200);
        metrics
            .contains("mirror_applier_active_partitions 3")
            .then_some(metrics)
    })
    .await;
    assert!(metrics.contains("mirror_applier_broker_connected 1"));
    assert_eq!(worker.get("/nothing").await.0, 404);
    worker.stop().await;
    h.cleanup().await;
}

#[tokio::test]
async fn a_worker_started_without_a_broker_is_alive_not_ready_and_connects_later() {
    let mut h = Harness::new(2).await;
    let proxy = Proxy::start("127.0.0.1:5672").await;
    proxy.down();
    h.settings.amqp.url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port);
    let worker = h.start().await;
    assert_eq!(worker.get("/healthz").await.0, 200);
    let (status, body) = worker.get("/readyz").await;
    assert_eq!((status, body.as_str()), (503, "broker not connected\n"));

    proxy.up();
    eventually_within("the worker to connect by itself", WAIT, || async {
        (worker.get("/readyz").await.0 == 200).then_some(())
    })
    .await;

    // Shutdown while reconnecting is prompt: it does not wait out the backoff.
    proxy.down();
    eventually_within("the worker to notice the lost connection", WAIT, || async {
        (worker.get("/readyz").await.0 == 503).then_some(())
    })
    .await;
    let started = Instant::now();
    worker.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    h.cleanup().await;
}
