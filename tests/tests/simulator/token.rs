//! A token signed by a key the receiver does not trust is refused, and nothing is published.

use std::sync::Arc;

use mirror_common::auth::CONTEXT_ID_CLAIM;
use mirror_common::shutdown::CancellationToken;
use mirror_common::soap::{RequestBody, Response};
use mirror_sim::driver::{CycleStatus, Quiet, RunConfig, run};
use mirror_sim::scenario::Step;
use mirror_tests::values::{batch, simple_row, simple_table};
use mirror_tests::{CLIENT_ID, Pipeline, PipelineOptions, keys};

use crate::endpoint;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signed_by_another_key_is_refused_and_nothing_is_published() {
    // No workers: whatever is published stays in its partition queue, where it can be counted.
    let pipeline = Pipeline::start_with(PipelineOptions {
        workers: 0,
        schema_reply_timeout_secs: 5,
        ..PipelineOptions::default()
    })
    .await;
    let tenant = pipeline.tenant();
    let queues = pipeline.queues().await;
    let keys = keys::shared();

    // The simulator, holding the wrong key, cannot even authenticate.
    let config = RunConfig {
        tenants: vec![tenant.id().to_owned()],
        cycles: 1,
        script: vec![Step::Initial],
        settle_cycles: 0,
        ..RunConfig::default()
    };
    let runs = run(
        endpoint(&pipeline, keys.foreign_issuer.clone()),
        &config,
        Arc::new(Quiet),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let status = &runs[0].cycles[0].status;
    let CycleStatus::Failed(reason) = status else {
        panic!("expected a failed cycle, got {status:?}");
    };
    assert!(reason.starts_with("Authenticate"), "{reason}");

    // Every operation, with the other issuer's own token, and with a token that names the trusted
    // certificate but is signed by the other key.
    let foreign = pipeline.client().with_issuer(keys.foreign_issuer.clone());
    let header = keys.issuer.header();
    let claims = serde_json::json!({
        "sub": tenant.id(),
        CONTEXT_ID_CLAIM: tenant.id(),
        "nonce": "0123456789ABCDEF0123456789ABCDEF",
        "nbf": chrono::Utc::now().timestamp() - 60,
        "exp": chrono::Utc::now().timestamp() + 300,
        "iss": "SuperOffice AS",
        "aud": format!("spn:{CLIENT_ID}"),
    });
    let forged = keys.foreign_issuer.sign_token(&header, &claims);
    let contact = simple_table("contact");
    let bodies = || {
        vec![
            RequestBody::Authenticate,
            RequestBody::TableSchema {
                tables: vec![contact.clone()],
            },
            RequestBody::Wipe {
                table: "contact".into(),
            },
            RequestBody::RowData {
                batches: vec![batch(&contact, 5, vec![simple_row("I", 1, "x")])],
            },
            RequestBody::ReplicationCompleted {
                summaries: Vec::new(),
            },
        ]
    };
    for (token, expected) in [
        (
            foreign.token(tenant.id()).token,
            "does not match the custom certificate",
        ),
        (forged, "signature does not verify"),
    ] {
        for body in bodies() {
            let operation = body.operation();
            let response = foreign.call_with_token(&token, body).await.response();
            assert_eq!(response.operation(), operation);
            let outcome = response.outcome();
            assert!(!outcome.ok, "{}: accepted", operation.name());
            assert!(
                outcome.error.contains(expected),
                "{}: {}",
                operation.name(),
                outcome.error
            );
            if let Response::Authenticate { answer, .. } = &response {
                assert_eq!(answer.signed_application_token, "");
            }
        }
    }
    assert_eq!(
        queues.partition_counts().await,
        vec![0, 0],
        "nothing published"
    );
    assert_eq!(queues.dead_letter_count().await, 0);

    // The same call with a trusted token is published: the counting above could see it.
    tenant
        .row_data(vec![batch(&contact, 5, vec![simple_row("I", 1, "x")])])
        .await;
    let mut expected = vec![0, 0];
    expected[usize::from(pipeline.topology.partition_of(tenant.id()))] = 1;
    assert_eq!(queues.partition_counts().await, expected);
    queues.close().await;
    pipeline.stop().await;
}
