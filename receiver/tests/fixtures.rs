//! SuperOffice's own captured requests, verified against its development certificate with the
//! clock set inside each token's validity (they were issued on 2021-09-16/17).

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions};
use lapin::types::FieldTable;
use mirror_common::config::AuthEnvironment;
use mirror_common::soap::{Operation, Response};
use mirror_common::wire::{self, Envelope, Message, SchemaReply, TableLsn};
use support::*;

const SUPEROFFICE_CLIENT_ID: &str = "6cf25376616343b38d14ddcd804f2891";

/// The `SignedToken` of a fixture request.
fn token_of(xml: &[u8]) -> String {
    let text = String::from_utf8_lossy(xml);
    let start = text.find("SignedToken").unwrap();
    let start = start + text[start..].find('>').unwrap() + 1;
    let end = start + text[start..].find('<').unwrap();
    text[start..end].trim().to_owned()
}

/// One claim of a JWT, read without verifying it.
fn claim(token: &str, name: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    json[name].clone()
}

/// A minute after the token's `nbf`: well inside its validity.
fn inside_validity(token: &str) -> DateTime<Utc> {
    let nbf = claim(token, "nbf").as_i64().unwrap();
    DateTime::from_timestamp(nbf, 0).unwrap() + TimeDelta::minutes(1)
}

/// Splits the captured HTTP request into its headers and body.
fn http_request(raw: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]);
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (headers, raw[split + 4..].to_vec())
}

async fn spawn_superoffice_app() -> TestApp {
    let clock = TestClock::new(Utc::now());
    let app = TestApp::spawn_with(Some(clock), |s| {
        s.auth.environment = AuthEnvironment::Development;
        s.auth.client_id = Some(SUPEROFFICE_CLIENT_ID.into());
        s.auth.certificate_file = None;
    })
    .await;
    app.wait_ready().await;
    app
}

#[tokio::test]
async fn superoffices_captured_calls_are_accepted_inside_their_tokens_validity() {
    let app = spawn_superoffice_app().await;
    let clock = app.clock.clone().unwrap();

    // Authenticate (tenant Cust10003): our answer signs the token's own nonce.
    let xml = fixture("authenticate-request.xml");
    let token = token_of(&xml);
    clock.set(inside_validity(&token));
    let reply = app
        .post(Some(&quoted_action(Operation::Authenticate)), xml)
        .await;
    let Response::Authenticate { outcome, answer } = reply.response() else {
        panic!("expected Authenticate: {}", reply.text);
    };
    assert!(outcome.ok, "{}", outcome.error);
    let nonce = claim(&token, "nonce");
    assert_eq!(nonce, "BDB65A558F193A8DD88E50E7416C0D86");
    app.public_key()
        .verify_answer(
            &answer.signed_application_token,
            nonce.as_str().unwrap(),
            clock.now(),
        )
        .unwrap();
    assert!(
        answer
            .signed_application_token
            .starts_with("BDB65A558F193A8DD88E50E7416C0D86.20210916")
    );

    // RowData (tenant Cust24709): two `invitation` rows at LSN 1506269.
    let xml = fixture("rowdata-request.xml");
    clock.set(inside_validity(&token_of(&xml)));
    let reply = app
        .post(Some(&quoted_action(Operation::RowData)), xml)
        .await;
    assert_eq!(reply.outcome(), (true, String::new()));
    let partition = app.topology.partition_of("Cust24709");
    let (envelope, _) = app.take(partition).await;
    assert_eq!(envelope.tenant, "Cust24709");
    let Message::RowData { batches } = envelope.message else {
        panic!("expected RowData");
    };
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].table.name, "invitation");
    assert_eq!(batches[0].lsn, 1_506_269);
    assert_eq!(batches[0].rows.len(), 2);
    assert_eq!(
        batches[0].rows[0].values.len(),
        batches[0].table.columns.len()
    );

    // Wipe and ReplicationCompleted.
    for (file, operation) in [
        ("wipe-request.xml", Operation::Wipe),
        (
            "replication-completed-request.xml",
            Operation::ReplicationCompleted,
        ),
    ] {
        let xml = fixture(file);
        clock.set(inside_validity(&token_of(&xml)));
        let reply = app.post(Some(&quoted_action(operation)), xml).await;
        assert_eq!(reply.outcome(), (true, String::new()), "{file}");
        assert_eq!(reply.response().operation(), operation);
    }
    let (wipe, _) = app.take(partition).await;
    assert_eq!(
        wipe.message,
        Message::Wipe {
            table: "projstatusgrouplink".into()
        }
    );
    let (completed, _) = app.take(partition).await;
    assert!(matches!(
        completed.message,
        Message::ReplicationCompleted { .. }
    ));
    app.assert_queues_empty().await;
    app.stop().await;
}

#[tokio::test]
async fn superoffices_413_table_schema_call_round_trips() {
    let app = spawn_superoffice_app().await;
    let clock = app.clock.clone().unwrap();
    let (headers, body) = http_request(&fixture("tableschema-request.http"));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    clock.set(inside_validity(&token_of(&body)));

    let channel = app.channel().await;
    let queue = app.topology.queue(app.topology.partition_of("Cust24709"));
    let replier = tokio::spawn(async move {
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "fixture-replier".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let delivery = consumer.next().await.unwrap().unwrap();
        let envelope = wire::decode::<Envelope>(&delivery.data).unwrap();
        let Message::TableSchema { tables } = &envelope.message else {
            panic!("expected TableSchema");
        };
        let reply = SchemaReply::Applied {
            lsns: tables
                .iter()
                .map(|t| TableLsn {
                    table: t.name.clone(),
                    lsn: -1,
                })
                .collect(),
        };
        channel
            .basic_publish(
                "".into(),
                delivery.properties.reply_to().clone().unwrap(),
                BasicPublishOptions::default(),
                &wire::encode(&reply).unwrap(),
                BasicProperties::default()
                    .with_correlation_id(delivery.properties.correlation_id().clone().unwrap()),
            )
            .await
            .unwrap();
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        (envelope.trace_id, tables.len())
    });

    let reply = app
        .client
        .post(format!("{}{}", app.base, app.path))
        .header("SOAPAction", header("soapaction"))
        .header("Content-Type", header("content-type"))
        .header("traceparent", header("traceparent"))
        .body(body)
        .send()
        .await
        .unwrap();
    let reply = Reply {
        status: reply.status().as_u16(),
        content_type: reply
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned(),
        text: reply.text().await.unwrap(),
    };
    let Response::TableSchema { outcome, lsns } = reply.response() else {
        panic!("expected TableSchema: {}", reply.text);
    };
    assert!(outcome.ok, "{}", outcome.error);
    assert_eq!(lsns.len(), 413);
    assert!(lsns.iter().all(|l| l.lsn == -1));
    let (trace_id, tables) = replier.await.unwrap();
    assert_eq!(tables, 413);
    assert_eq!(trace_id, "8e7c226a62b25848aa9e99baaf7dde5c");
    app.assert_queues_empty().await;
    app.stop().await;
}

#[tokio::test]
async fn superoffices_captured_calls_are_refused_as_expired_today() {
    let app = spawn_superoffice_app().await;
    for (file, operation) in [
        ("rowdata-request.xml", Operation::RowData),
        ("authenticate-request.xml", Operation::Authenticate),
    ] {
        let reply = app
            .post(Some(&quoted_action(operation)), fixture(file))
            .await;
        let (ok, error) = reply.outcome();
        assert!(!ok, "{file}");
        assert!(
            error.starts_with("token expired at 2021-09-1"),
            "{file}: {error}"
        );
        if let Response::Authenticate { answer, .. } = reply.response() {
            assert_eq!(answer.signed_application_token, "");
        }
    }
    app.assert_queues_empty().await;
    app.stop().await;
}
