//! The receiver without its broker: it starts, stays up, refuses what it cannot make durable, asks
//! SuperOffice to skip the cycle, and recovers by itself when the broker comes back.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use mirror_common::soap::{RequestBody, Response};
use mirror_receiver::call::DO_NOT_REPLICATE;
use mirror_receiver::error::BROKER_UNAVAILABLE;
use mirror_receiver::metrics;
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const TENANT: &str = "Cust24709";
const RABBITMQ: &str = "127.0.0.1:5672";

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A TCP forwarder to RabbitMQ that the test can cut: aborting it drops the listener and every
/// forwarded connection, as a broker crash or a network partition would.
struct Proxy {
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(port: u16) -> Proxy {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(RABBITMQ).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { tasks }
    }

    async fn cut(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

fn outage_settings(port: u16) -> impl FnOnce(&mut mirror_common::config::Settings) {
    move |s| {
        s.amqp.url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
        s.amqp.connect_timeout_secs = 1;
    }
}

async fn assert_refused_while_down(app: &TestApp) {
    let reply = app
        .call(TENANT, row_data(contact_table(), 1, contact_rows()))
        .await;
    assert_eq!(reply.outcome(), (false, BROKER_UNAVAILABLE.to_owned()));
    let reply = app
        .call(
            TENANT,
            RequestBody::TableSchema {
                tables: vec![contact_table()],
            },
        )
        .await;
    assert_eq!(reply.outcome(), (false, BROKER_UNAVAILABLE.to_owned()));
    // Authenticate still succeeds, and asks MT to skip the cycle cleanly.
    let reply = app.call(TENANT, RequestBody::Authenticate).await;
    let Response::Authenticate { outcome, answer } = reply.response() else {
        panic!("expected Authenticate: {}", reply.text);
    };
    assert!(outcome.ok);
    assert_eq!(answer.additional_information_json, DO_NOT_REPLICATE);
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 503);
}

#[tokio::test]
async fn an_unreachable_broker_gives_clear_refusals_and_the_service_stays_up() {
    let port = closed_port();
    let app = TestApp::spawn(outage_settings(port)).await;
    assert_refused_while_down(&app).await;
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(&format!(
            "{}{{reason=\"unavailable\"}} 2",
            metrics::PUBLISH_FAILURES_TOTAL
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "{}{{operation=\"RowData\",outcome=\"failure\"}} 1",
        metrics::CALLS_TOTAL
    )));
    assert!(text.contains(&format!("{} 0", metrics::BROKER_CONNECTED)));
    app.stop().await;
}

#[tokio::test]
async fn the_receiver_reconnects_by_itself_when_the_broker_returns() {
    let port = closed_port();
    let app = TestApp::spawn(outage_settings(port)).await;
    assert_refused_while_down(&app).await;

    // The broker comes up: the supervisor connects and declares the topology without a restart.
    let proxy = Proxy::start(port).await;
    app.wait_ready().await;
    let reply = app
        .call(TENANT, row_data(contact_table(), 1, contact_rows()))
        .await;
    assert_eq!(reply.outcome(), (true, String::new()));
    let (envelope, _) = app.take(app.topology.partition_of(TENANT)).await;
    assert_eq!(envelope.tenant, TENANT);

    // The connection drops: the receiver notices and refuses again.
    proxy.cut().await;
    eventually("the receiver to notice the lost connection", || async {
        (app.get("/readyz").await.0 == 503).then_some(())
    })
    .await;
    assert_refused_while_down(&app).await;

    // And recovers once more.
    let proxy = Proxy::start(port).await;
    app.wait_ready().await;
    let reply = app
        .call(TENANT, row_data(contact_table(), 2, contact_rows()))
        .await;
    assert_eq!(reply.outcome(), (true, String::new()));
    let (envelope, _) = app.take(app.topology.partition_of(TENANT)).await;
    let mirror_common::wire::Message::RowData { batches } = envelope.message else {
        panic!("expected RowData");
    };
    assert_eq!(batches[0].lsn, 2);
    app.assert_queues_empty().await;
    app.stop().await;
    proxy.cut().await;
}
