//! A batch the mirror cannot take (its TableInfo has a column the table was not built with, as
//! when a source's schema changed between TableSchema and RowData) is dead-lettered with its
//! reason; only its table is quarantined, the tenant's other tables keep applying, and the next
//! Wipe and reload of the table heals it.

use mirror_common::topology::header;
use mirror_common::value::Value;
use mirror_common::wire::Message;
use mirror_tests::values::{batch, int, row, simple_row, simple_table, table};
use mirror_tests::{Pipeline, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_batch_is_dead_lettered_and_only_its_table_quarantined_until_reloaded() {
    let pipeline = Pipeline::start(1).await;
    let tenant = pipeline.tenant();
    let (contact, person) = (simple_table("contact"), simple_table("person"));
    let both = [contact.clone(), person.clone()];
    let mirror = tenant.mirror().await;
    let queues = pipeline.queues().await;

    tenant.table_schema(&both).await;
    for (schema, lsn) in [(&contact, 10), (&person, 20)] {
        tenant.wipe(&schema.name).await;
        let rows = (1..=2).map(|k| simple_row("I", k, "loaded")).collect();
        tenant.row_data(vec![batch(schema, lsn, rows)]).await;
    }
    tenant.completed(&["contact", "person"]).await;
    assert_eq!(
        tenant.table_schema(&both).await,
        [("contact".to_owned(), 10), ("person".to_owned(), 20)].into()
    );

    // The receiver accepts the batch (it is well-formed and decodes by its own TableInfo)…
    let changed = table(
        "contact",
        &[
            ("contact_id", "int", false),
            ("name", "nvarchar(50)", true),
            ("n", "int", true),
            ("added", "int", true),
        ],
    );
    let poison = row(
        "U",
        vec![
            Some(int(3)),
            Some("changed".into()),
            Some(int(30)),
            Some(int(1)),
        ],
    );
    tenant
        .row_data(vec![batch(&changed, 11, vec![poison])])
        .await;
    // …followed by a change of another table, and a later change of the same table.
    tenant
        .row_data(vec![batch(&person, 21, vec![simple_row("I", 3, "after")])])
        .await;
    tenant
        .row_data(vec![batch(
            &contact,
            12,
            vec![simple_row("I", 4, "parked")],
        )])
        .await;

    // The next TableSchema asks for contact again; person went on.
    assert_eq!(
        tenant.table_schema(&both).await,
        [("contact".to_owned(), -1), ("person".to_owned(), 21)].into()
    );
    let person_keys: Vec<i32> = mirror
        .query(&format!(
            "SELECT person_id FROM {} ORDER BY 1",
            mirror.qualified("person")
        ))
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(person_keys, vec![1, 2, 3]);
    let contact_rows = mirror.rows("contact").await;
    assert_eq!(
        contact_rows
            .iter()
            .map(|r| r[0].clone().unwrap())
            .collect::<Vec<_>>(),
        vec!["1", "2"],
        "neither the poison nor the batch behind it reached the table"
    );
    let quarantine = mirror.state("contact").await.unwrap();
    assert_eq!(quarantine.lsn, -1);
    assert!(quarantine.quarantine.is_some());
    assert_eq!(mirror.state("person").await.unwrap().quarantine, None);

    // The dead letter: the message as published, with why, where from and which table.
    let letters = eventually("the poison batch in the dead-letter queue", || async {
        let letters = queues.take_dead_letters().await;
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert_eq!(letters.len(), 1, "only the poison batch");
    let letter = &letters[0];
    let envelope = letter.envelope();
    assert_eq!(envelope.tenant, tenant.id());
    let Message::RowData { batches } = &envelope.message else {
        panic!("expected the RowData message, got {:?}", envelope.message);
    };
    assert_eq!(batches[0].table.name, "contact");
    assert_eq!(batches[0].rows[0].values[1], Value::Text("changed".into()));
    assert_eq!(
        letter
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string()),
        Some(envelope.id.to_string())
    );
    assert_eq!(letter.text(header::TENANT).as_deref(), Some(tenant.id()));
    assert_eq!(letter.text(header::TABLE).as_deref(), Some("contact"));
    let reason = letter.text(header::REASON).unwrap();
    assert!(reason.contains("contact"), "{reason}");
    assert!(
        reason.contains("schema"),
        "the reason says what is wrong: {reason}"
    );
    assert_eq!(
        letter.int(header::PARTITION),
        Some(i64::from(pipeline.topology.partition_of(tenant.id())))
    );
    assert!(letter.int(header::EPOCH).is_some());
    assert!(letter.int(header::ATTEMPTS).unwrap() >= 1);

    // The next cycle wipes and reloads contact: healed, and the quarantine is lifted.
    tenant.wipe("contact").await;
    let reload = (1..=4).map(|k| simple_row("I", k, "reloaded")).collect();
    tenant.row_data(vec![batch(&contact, 15, reload)]).await;
    tenant.completed(&["contact"]).await;
    assert_eq!(
        tenant.table_schema(&both).await,
        [("contact".to_owned(), 15), ("person".to_owned(), 21)].into()
    );
    let healed = mirror.rows("contact").await;
    assert_eq!(healed.len(), 4);
    assert!(healed.iter().all(|r| r[1].as_deref() == Some("reloaded")));
    assert_eq!(mirror.state("contact").await.unwrap().quarantine, None);
    assert_eq!(queues.dead_letter_count().await, 0, "nothing else failed");
    queues.close().await;
    pipeline.stop().await;
}
