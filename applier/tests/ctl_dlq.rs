//! `mirrorctl` as operators run it: the real binary against the local RabbitMQ and PostgreSQL,
//! with dead letters published the way the worker publishes them. Checks the JSON it prints, its
//! exit codes and messages, that listing leaves the dead-letter queue as it was, and that a replay
//! sends the selected messages to their partition in order, drops the stale ones and leaves the
//! rest in the dead-letter queue in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod consumer_support;
mod ctl_support;

use std::time::Duration;

use consumer_support::Harness;
use ctl_support::{dead_letter, ids, mirrorctl};
use futures::StreamExt;
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use mirror_applier::ctl::queues::{Broker, HeldLetter};
use mirror_applier::dialect::postgres::{PgBackend, PgOptions};
use mirror_applier::dialect::{Backend, Tenant};
use mirror_applier::state::TableState;
use mirror_common::topology::header;
use mirror_common::wire::{self, Envelope};
use uuid::Uuid;

/// Gives the harness's tenant a mirror whose `contact` is quarantined in epoch 2.
async fn quarantined_mirror(h: &Harness) {
    let backend = PgBackend::connect(&h.settings.database, &PgOptions::default()).unwrap();
    let tenant = Tenant {
        context_id: h.tenant.clone(),
        storage: h.storage(),
    };
    let (mut tx, _) = backend.begin(&tenant, Uuid::new_v4(), &[]).await.unwrap();
    let mut contact = TableState::new("contact");
    contact.epoch = 2;
    contact.quarantine("contact: refused by the mirror".into());
    tx.save_state(&contact).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_returns_the_selected_letters_in_order_and_keeps_the_rest_in_order() {
    let h = Harness::new(2).await;
    quarantined_mirror(&h).await;
    let other = format!("Gone{}", &Uuid::new_v4().simple().to_string()[..8]);
    // DLQ: other, ours (replayable), other, ours (replayable), ours (failed in an older epoch).
    let kept_first = dead_letter(&h, &other, "contact", 1).await;
    let replay_first = dead_letter(&h, &h.tenant, "contact", 2).await;
    let kept_second = dead_letter(&h, &other, "contact", 1).await;
    let replay_second = dead_letter(&h, &h.tenant, "contact", 2).await;
    let stale = dead_letter(&h, &h.tenant, "contact", 1).await;
    let all = vec![
        kept_first.clone(),
        replay_first.clone(),
        kept_second.clone(),
        replay_second.clone(),
        stale.clone(),
    ];

    // Listing twice shows the same letters in the same order: nothing is consumed.
    let first = mirrorctl(&h.settings, &["--json", "dlq", "list"])
        .await
        .json();
    assert_eq!(ids(&first), all);
    assert_eq!(first[1]["tenant"], h.tenant.as_str());
    assert_eq!(first[1]["table"], "contact");
    assert_eq!(first[1]["epoch"], 2);
    assert_eq!(first[1]["kind"], "Wipe");
    assert_eq!(first[1]["reason"], "contact: refused by the mirror");
    assert_eq!(first[1]["partition"], h.topology.partition_of(&h.tenant));
    let second = mirrorctl(&h.settings, &["--json", "dlq", "list"])
        .await
        .json();
    assert_eq!(ids(&second), all);
    let text = mirrorctl(&h.settings, &["dlq", "list", "--tenant", &other]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.starts_with("id "), "{}", text.stdout);
    assert!(text.stdout.contains("2 dead letter(s)"), "{}", text.stdout);

    // A dry run changes nothing.
    let dry = mirrorctl(
        &h.settings,
        &[
            "--json",
            "dlq",
            "replay",
            "--tenant",
            &h.tenant,
            "--dry-run",
        ],
    )
    .await
    .json();
    assert_eq!((&dry["replayed"], &dry["dropped"]), (&2.into(), &1.into()));
    let partition = h.partition_queue();
    assert_eq!(h.ready(&partition).await, 0);
    let after_dry = mirrorctl(&h.settings, &["--json", "dlq", "list"])
        .await
        .json();
    assert_eq!(ids(&after_dry), all);

    // The replay: ours go back to the tenant's partition in order, the stale one is dropped,
    // the other tenant's stay where they were.
    let report = mirrorctl(
        &h.settings,
        &["--json", "dlq", "replay", "--tenant", &h.tenant],
    )
    .await
    .json();
    let verdicts: Vec<(&str, &str)> = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap(), m["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            (replay_first.as_str(), "replay"),
            (replay_second.as_str(), "replay"),
            (stale.as_str(), "stale"),
        ]
    );
    let left = mirrorctl(&h.settings, &["--json", "dlq", "list"])
        .await
        .json();
    assert_eq!(ids(&left), vec![kept_first, kept_second]);

    let channel = h.amqp.create_channel().await.unwrap();
    let mut consumer = channel
        .basic_consume(
            partition.as_str().into(),
            "ctl-test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut replayed = Vec::new();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("a replayed message on the partition")
            .unwrap()
            .unwrap();
        let headers = delivery.properties.headers().clone().unwrap_or_default();
        assert!(headers.inner().contains_key(header::TENANT));
        for added in [header::REASON, header::EPOCH, header::PARTITION] {
            assert!(!headers.inner().contains_key(added), "{added} was removed");
        }
        let envelope: Envelope = wire::decode(&delivery.data).unwrap();
        assert_eq!(
            delivery.properties.message_id().as_ref().unwrap().as_str(),
            envelope.id.to_string()
        );
        replayed.push(envelope.id.to_string());
    }
    assert_eq!(replayed, vec![replay_first, replay_second]);
    let _ = channel.close(200, "OK".into()).await;

    // status: the quarantined table; the partition holds nothing ready (they are being read).
    let status = mirrorctl(&h.settings, &["--json", "status", "--tenant", &h.tenant])
        .await
        .json();
    let contact = &status["tenants"][0]["tables"][0];
    assert_eq!(contact["table"], "contact");
    assert_eq!(
        (&contact["epoch"], &contact["lsn"]),
        (&2.into(), &(-1).into())
    );
    assert!(contact["quarantine"].as_str().unwrap().contains("refused"));
    assert_eq!(status["dead_letter_queue"]["messages"], 2);

    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_takes_the_letters_ready_at_its_start_one_at_a_time() {
    let h = Harness::new(1).await;
    let first = dead_letter(&h, &h.tenant, "contact", 1).await;
    let second = dead_letter(&h, &h.tenant, "contact", 1).await;
    let broker = Broker::connect(&h.settings.amqp).await.unwrap();
    let mut held = broker.hold_dead_letters().await.unwrap();
    assert_eq!(held.ready, 2);
    // Dead-lettered while the queue is read (as a replayed message failing again would be).
    let late = dead_letter(&h, &h.tenant, "contact", 1).await;

    let id = |l: &HeldLetter| l.properties.message_id().as_ref().unwrap().to_string();
    let a = held.next().await.unwrap().expect("the first letter");
    assert_eq!(id(&a), first);
    held.remove(a.tag).await.unwrap();
    let b = held.next().await.unwrap().expect("the second letter");
    assert_eq!(id(&b), second);
    assert!(
        held.next().await.unwrap().is_none(),
        "the letter that arrived during the reading is left for the next one"
    );
    held.release(&broker).await;
    broker.close().await;

    // The removed one is gone; the returned one is back in front of the late one.
    let left = ids(&mirrorctl(&h.settings, &["--json", "dlq", "list"])
        .await
        .json());
    assert_eq!(left, vec![second, late]);
    h.cleanup().await;
}

#[tokio::test]
async fn errors_name_what_is_wrong_and_exit_with_1() {
    let h = Harness::new(1).await;
    let unknown = mirrorctl(&h.settings, &["dlq", "show", "no-such-id"]).await;
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("unknown id no-such-id"),
        "{}",
        unknown.stderr
    );

    let tenant = mirrorctl(&h.settings, &["resync", "--tenant", "NoSuchTenant"]).await;
    assert_eq!(tenant.code, 1);
    assert!(
        tenant.stderr.contains("unknown tenant NoSuchTenant"),
        "{}",
        tenant.stderr
    );

    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut no_broker = h.settings.clone();
    no_broker.amqp.url = format!("amqp://guest:secret@127.0.0.1:{closed_port}/%2f");
    let run = mirrorctl(&no_broker, &["dlq", "list"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("cannot connect to the message broker"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("secret"), "{}", run.stderr);

    let mut no_database = h.settings.clone();
    no_database.database.url = format!("postgres://postgres@127.0.0.1:{closed_port}/postgres");
    let run = mirrorctl(&no_database, &["status"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("cannot connect to the database at 127.0.0.1"),
        "{}",
        run.stderr
    );

    let mut sql_server = h.settings.clone();
    sql_server.database.url = format!("mssql://sa:s3cret@127.0.0.1:{closed_port}/master");
    let run = mirrorctl(&sql_server, &["resync", "--tenant", "Cust1"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!(
            "cannot connect to the database at 127.0.0.1:{closed_port}"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);

    let usage = mirrorctl(&h.settings, &["dlq", "replay", "--no-such-flag"]).await;
    assert_ne!(usage.code, 0);
    h.cleanup().await;
}
