//! The receiver end to end against the local RabbitMQ: what an accepted call leaves in the queues,
//! what Authenticate answers, and the TableSchema request/reply.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::NaiveDate;
use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable};
use mirror_common::soap::{Operation, RequestBody, Response};
use mirror_common::topology::{self, header};
use mirror_common::value::Value;
use mirror_common::wire::{self, Envelope, Message, ReplicationSummary, SchemaReply, TableLsn};
use mirror_receiver::call::{BUILD, DO_NOT_REPLICATE};
use mirror_receiver::error::MIRROR_BUSY;
use mirror_receiver::metrics;
use support::*;

const TENANT: &str = "Cust24709";

fn text_header(props: &BasicProperties, name: &str) -> Option<String> {
    let headers = props.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn row_data_is_acknowledged_only_once_it_is_in_its_partition() {
    let app = TestApp::spawn(|_| {}).await;
    app.wait_ready().await;
    let partition = app.topology.partition_of(TENANT);

    let token = app.token(TENANT).token;
    let xml = render(&token, row_data(contact_table(), 1_506_269, contact_rows()));
    let reply = app
        .client
        .post(format!("{}{}", app.base, app.path))
        .header("SOAPAction", quoted_action(Operation::RowData))
        .header("Content-Type", "text/xml; charset=utf-8")
        .header(
            "traceparent",
            "00-8e7c226a62b25848aa9e99baaf7dde5c-3d3b2c778f977d45-00",
        )
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let text = reply.text().await.unwrap();
    let answer = Reply {
        status: 200,
        content_type: "text/xml; charset=utf-8".into(),
        text,
    };
    assert_eq!(answer.outcome(), (true, String::new()));

    // The answer came after the confirm: the message is already there, and only there.
    let mut expected = vec![0; usize::from(PARTITIONS)];
    expected[usize::from(partition)] = 1;
    assert_eq!(app.ready_counts().await, expected);

    let (envelope, props) = app.take(partition).await;
    assert_eq!(envelope.tenant, TENANT);
    assert_eq!(envelope.trace_id, "8e7c226a62b25848aa9e99baaf7dde5c");
    let Message::RowData { batches } = &envelope.message else {
        panic!("expected RowData, got {:?}", envelope.message);
    };
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.lsn, 1_506_269);
    assert_eq!(batch.table.name, "contact");
    assert_eq!(batch.rows.len(), 2);
    assert_eq!(batch.rows[0].op, wire::Operation::Insert);
    assert_eq!(
        batch.rows[0].values,
        vec![
            Value::Int(1),
            Value::Text("Acme <&> Sons".into()),
            Value::DateTime(
                NaiveDate::from_ymd_opt(2020, 5, 18)
                    .unwrap()
                    .and_hms_opt(10, 40, 43)
                    .unwrap()
            ),
        ]
    );
    assert_eq!(batch.rows[1].op, wire::Operation::Update);
    assert_eq!(batch.rows[1].values[0], Value::Int(2));
    assert_eq!(batch.rows[1].values[1], Value::Null);

    assert_eq!(props.delivery_mode(), &Some(2));
    assert_eq!(
        props.content_type().as_ref().map(|s| s.as_str()),
        Some(topology::CONTENT_TYPE)
    );
    assert_eq!(
        props.message_id().as_ref().map(|s| s.as_str().to_owned()),
        Some(envelope.id.to_string())
    );
    assert_eq!(props.kind().as_ref().map(|s| s.as_str()), Some("RowData"));
    assert!(props.timestamp().is_some_and(|t| t > 1_600_000_000));
    assert_eq!(text_header(&props, header::TENANT).as_deref(), Some(TENANT));
    assert_eq!(
        text_header(&props, header::TRACE_ID).as_deref(),
        Some("8e7c226a62b25848aa9e99baaf7dde5c")
    );
    app.assert_queues_empty().await;

    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(&format!(
            "{}{{operation=\"RowData\",outcome=\"success\"}} 1",
            metrics::CALLS_TOTAL
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "{}_count{{kind=\"RowData\"}} 1",
        metrics::CONFIRM_SECONDS
    )));
    app.stop().await;
}

#[tokio::test]
async fn every_kind_of_call_goes_through_the_tenants_partition_in_order() {
    let app = TestApp::spawn(|_| {}).await;
    app.wait_ready().await;
    let partition = app.topology.partition_of(TENANT);

    let wipe = app
        .call(
            TENANT,
            RequestBody::Wipe {
                table: "contact".into(),
            },
        )
        .await;
    assert_eq!(wipe.outcome(), (true, String::new()));
    assert!(matches!(wipe.response(), Response::Wipe(_)));

    // Without a SOAPAction header the body's element decides.
    let token = app.token(TENANT).token;
    let rows = app
        .post(
            None,
            render(&token, row_data(contact_table(), 7, contact_rows())),
        )
        .await;
    assert_eq!(rows.outcome(), (true, String::new()));

    let summaries = vec![ReplicationSummary {
        table: "contact".into(),
        inserts: 1,
        updates: 1,
        deletes: 0,
    }];
    let done = app
        .call(
            TENANT,
            RequestBody::ReplicationCompleted {
                summaries: summaries.clone(),
            },
        )
        .await;
    assert_eq!(done.outcome(), (true, String::new()));

    let mut expected = vec![0; usize::from(PARTITIONS)];
    expected[usize::from(partition)] = 3;
    assert_eq!(app.ready_counts().await, expected);

    let channel = app.channel().await;
    let mut consumer = channel
        .basic_consume(
            app.topology.queue(partition).as_str().into(),
            "order-test".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut messages = Vec::new();
    for _ in 0..3 {
        let delivery = tokio::time::timeout(PATIENCE, consumer.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        messages.push(wire::decode::<Envelope>(&delivery.data).unwrap().message);
    }
    assert_eq!(
        messages[0],
        Message::Wipe {
            table: "contact".into()
        }
    );
    assert!(matches!(&messages[1], Message::RowData { batches } if batches[0].lsn == 7));
    assert_eq!(messages[2], Message::ReplicationCompleted { summaries });
    app.stop().await;
}

#[tokio::test]
async fn authenticate_answers_with_a_verifiable_signature() {
    let app = TestApp::spawn(|_| {}).await;
    app.wait_ready().await;
    let issued = app.token(TENANT);
    let reply = app
        .call_with_token(&issued.token, RequestBody::Authenticate)
        .await;
    let Response::Authenticate { outcome, answer } = reply.response() else {
        panic!("expected an Authenticate response: {}", reply.text);
    };
    assert!(outcome.ok, "{}", outcome.error);
    app.public_key()
        .verify_answer(&answer.signed_application_token, &issued.nonce, app.now())
        .unwrap();
    // The answer is bound to the nonce it answers.
    assert!(
        app.public_key()
            .verify_answer(
                &answer.signed_application_token,
                "00000000000000000000000000000000",
                app.now()
            )
            .is_err()
    );
    assert_eq!(answer.supported_interfaces, "1");
    assert_eq!(answer.build, BUILD);
    assert!(answer.build.starts_with("mirror-receiver "));
    assert_eq!(answer.additional_information_json, "");
    app.assert_queues_empty().await;
    app.stop().await;
}

#[tokio::test]
async fn a_backlogged_partition_asks_superoffice_to_skip_the_cycle() {
    let app = TestApp::spawn(|s| s.amqp.backlog_threshold = 1).await;
    app.wait_ready().await;
    let partition = app.topology.partition_of(TENANT);
    let quiet = (0..)
        .map(|i| format!("Quiet{i}"))
        .find(|t| app.topology.partition_of(t) != partition)
        .unwrap();

    for lsn in [1, 2] {
        let reply = app
            .call(TENANT, row_data(contact_table(), lsn, contact_rows()))
            .await;
        assert_eq!(reply.outcome(), (true, String::new()));
    }
    let authenticate = |tenant: String| {
        let app = &app;
        async move {
            let reply = app.call(&tenant, RequestBody::Authenticate).await;
            match reply.response() {
                Response::Authenticate { outcome, answer } => {
                    assert!(outcome.ok, "{}", outcome.error);
                    answer.additional_information_json
                }
                other => panic!("expected Authenticate, got {other:?}"),
            }
        }
    };
    assert_eq!(authenticate(TENANT.to_owned()).await, DO_NOT_REPLICATE);
    assert_eq!(authenticate(quiet).await, "");
    app.stop().await;
}

/// Plays the applier's part for TableSchema: takes the schema message off the partition and
/// replies to its `reply_to` with its correlation id. Returns how many messages it answered.
fn spawn_schema_replier(
    channel: lapin::Channel,
    queue: String,
    answer: impl Fn(&Envelope) -> SchemaReply + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "schema-replier".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        while let Some(Ok(delivery)) = consumer.next().await {
            let envelope = wire::decode::<Envelope>(&delivery.data).unwrap();
            let reply_to = delivery.properties.reply_to().clone().unwrap();
            let correlation = delivery.properties.correlation_id().clone().unwrap();
            assert_eq!(correlation.as_str(), envelope.id.to_string());
            let reply = wire::encode(&answer(&envelope)).unwrap();
            channel
                .basic_publish(
                    "".into(),
                    reply_to,
                    BasicPublishOptions::default(),
                    &reply,
                    BasicProperties::default()
                        .with_correlation_id(correlation)
                        .with_content_type(topology::CONTENT_TYPE.into()),
                )
                .await
                .unwrap();
            delivery.ack(BasicAckOptions::default()).await.unwrap();
        }
    })
}

#[tokio::test]
async fn table_schema_answers_with_the_lsns_the_applier_replies() {
    let app = TestApp::spawn(|_| {}).await;
    app.wait_ready().await;
    let partition = app.topology.partition_of(TENANT);
    let replier = spawn_schema_replier(
        app.channel().await,
        app.topology.queue(partition),
        |envelope| match &envelope.message {
            Message::TableSchema { tables } if tables[0].name == "broken" => SchemaReply::Failed {
                error: "cannot alter table broken".into(),
            },
            Message::TableSchema { tables } => SchemaReply::Applied {
                lsns: tables
                    .iter()
                    .map(|t| TableLsn {
                        table: t.name.clone(),
                        lsn: 42,
                    })
                    .collect(),
            },
            other => panic!("unexpected message {other:?}"),
        },
    );

    let mut person = contact_table();
    person.name = "person".into();
    person.columns[0].name = "person_id".into();
    let reply = app
        .call(
            TENANT,
            RequestBody::TableSchema {
                tables: vec![contact_table(), person],
            },
        )
        .await;
    assert_eq!(
        reply.response(),
        Response::TableSchema {
            outcome: mirror_common::soap::Outcome::success(),
            lsns: vec![
                TableLsn {
                    table: "contact".into(),
                    lsn: 42
                },
                TableLsn {
                    table: "person".into(),
                    lsn: 42
                },
            ],
        }
    );

    let mut broken = contact_table();
    broken.name = "broken".into();
    let reply = app
        .call(
            TENANT,
            RequestBody::TableSchema {
                tables: vec![broken],
            },
        )
        .await;
    assert_eq!(
        reply.outcome(),
        (
            false,
            "the mirror could not apply the schema: cannot alter table broken".into()
        )
    );
    replier.abort();
    app.stop().await;
}

#[tokio::test]
async fn table_schema_without_a_reply_is_answered_busy_and_stays_queued() {
    let app = TestApp::spawn(|s| s.amqp.schema_reply_timeout_secs = 1).await;
    app.wait_ready().await;
    let partition = app.topology.partition_of(TENANT);
    let started = std::time::Instant::now();
    let reply = app
        .call(
            TENANT,
            RequestBody::TableSchema {
                tables: vec![contact_table()],
            },
        )
        .await;
    assert_eq!(reply.outcome(), (false, MIRROR_BUSY.to_owned()));
    let Response::TableSchema { lsns, .. } = reply.response() else {
        panic!("expected a TableSchema response");
    };
    assert!(lsns.is_empty());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // The schema is still applied later: the message stays in the partition.
    let mut expected = vec![0; usize::from(PARTITIONS)];
    expected[usize::from(partition)] = 1;
    assert_eq!(app.ready_counts().await, expected);
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains(&format!("{}_count 1", metrics::SCHEMA_REPLY_WAIT_SECONDS)));
    app.stop().await;
}

#[tokio::test]
async fn health_routes_report_liveness_and_readiness() {
    let app = TestApp::spawn(|_| {}).await;
    app.wait_ready().await;
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains(&format!("{} 1", metrics::BROKER_CONNECTED)));
    app.stop().await;
}

#[tokio::test]
async fn shutdown_stops_intake_but_lets_in_flight_calls_finish() {
    let app = TestApp::spawn(|s| s.amqp.schema_reply_timeout_secs = 2).await;
    app.wait_ready().await;
    let partition = app.topology.partition_of(TENANT);
    let in_flight = app.call(
        TENANT,
        RequestBody::TableSchema {
            tables: vec![contact_table()],
        },
    );
    let stop_while_waiting = async {
        // The schema message is published: the call now waits for its reply.
        eventually("the schema request to be queued", || async {
            (app.ready_counts().await[usize::from(partition)] == 1).then_some(())
        })
        .await;
        app.request_shutdown();
    };
    let (reply, ()) = tokio::join!(in_flight, stop_while_waiting);
    assert_eq!(reply.outcome(), (false, MIRROR_BUSY.to_owned()));
    eventually("the receiver to stop accepting calls", || async {
        app.client
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .is_err()
            .then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn an_unroutable_message_is_refused_and_the_topology_heals_on_reconnect() {
    let app = TestApp::spawn(|_| {}).await;
    app.wait_ready().await;
    let partition = app.topology.partition_of(TENANT);
    // Someone deletes the tenant's partition queue: the exchange has no route for it any more.
    app.channel()
        .await
        .queue_delete(
            app.topology.queue(partition).as_str().into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();

    let reply = app
        .call(TENANT, row_data(contact_table(), 1, contact_rows()))
        .await;
    assert_eq!(
        reply.outcome(),
        (false, mirror_receiver::error::BROKER_UNAVAILABLE.to_owned())
    );
    let (_, text) = app.get("/metrics").await;
    assert!(
        text.contains(&format!(
            "{}{{reason=\"returned\"}} 1",
            metrics::PUBLISH_FAILURES_TOTAL
        )),
        "{text}"
    );

    // Authenticate finds the queue missing, skips the cycle and has the link rebuilt, which
    // declares the topology again.
    let reply = app.call(TENANT, RequestBody::Authenticate).await;
    let Response::Authenticate { answer, .. } = reply.response() else {
        panic!("expected Authenticate: {}", reply.text);
    };
    assert_eq!(answer.additional_information_json, DO_NOT_REPLICATE);
    eventually("the partition queue to be declared again", || async {
        let reply = app
            .call(TENANT, row_data(contact_table(), 2, contact_rows()))
            .await;
        reply.outcome().0.then_some(())
    })
    .await;
    let (envelope, _) = app.take(partition).await;
    assert!(matches!(envelope.message, Message::RowData { ref batches } if batches[0].lsn == 2));
    app.stop().await;
}
