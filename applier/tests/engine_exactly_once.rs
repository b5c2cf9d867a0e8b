//! Exactly-once effect, replays, poison batches and quarantine against the real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use engine_support::*;
use mirror_applier::engine::{Applied, Quarantine};
use mirror_common::wire::{Message, RowBatch};

/// Every message begins by reading its history and its tables' state in the same round trip as
/// the check for the state tables. When one of them was dropped, those reads fail: the message
/// must still apply once, on recreated bookkeeping, with the mirror table's state intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_bookkeeping_table_is_recreated_and_the_message_applies_once() {
    let h = Harness::new().await;
    let t = simple("contact");
    h.schema_call(std::slice::from_ref(&t)).await;
    h.rows(&t, 10, vec![ins(1, "v1")]).await;
    let applied = h.qualified(&format!("{}_mirroring_applied", h.tenant));
    h.exec(&format!("drop table {applied}")).await;

    let next = h.envelope(rowdata(&t, 20, vec![ins(2, "v2")]));
    assert_eq!(
        h.engine.apply(&next).await.unwrap(),
        Applied::Done { reply: None }
    );
    assert_eq!(
        h.engine.apply(&next).await.unwrap(),
        Applied::Duplicate { reply: None }
    );
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![(1, Some("v1".into())), (2, Some("v2".into()))]
    );
    assert_eq!(h.state("contact").await.unwrap().0, 20);
    let ids = h.query(&format!("select count(*) from {applied}")).await;
    assert_eq!(ids[0].get::<_, i64>(0), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_envelope_twice_has_one_effect() {
    let h = Harness::new().await;
    let t = simple("contact");
    let schema = h.envelope(Message::TableSchema {
        tables: vec![t.clone()],
    });
    assert!(matches!(
        h.engine.apply(&schema).await.unwrap(),
        Applied::Done { .. }
    ));
    let first = h.envelope(rowdata(&t, 10, vec![ins(1, "v1")]));
    assert!(matches!(
        h.engine.apply(&first).await.unwrap(),
        Applied::Done { .. }
    ));
    let second = h.envelope(rowdata(&t, 20, vec![upd(1, "v2"), ins(2, "other")]));
    h.engine.apply(&second).await.unwrap();

    // Redelivered and replayed older messages have no effect: no roll-back, no LSN change.
    assert_eq!(
        h.engine.apply(&first).await.unwrap(),
        Applied::Duplicate { reply: None }
    );
    assert_eq!(
        h.engine.apply(&second).await.unwrap(),
        Applied::Duplicate { reply: None }
    );
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![(1, Some("v2".into())), (2, Some("other".into()))]
    );
    assert_eq!(h.state("contact").await.unwrap().0, 20);

    // A duplicate TableSchema still answers, from the current state, and changes nothing.
    let again = h.engine.apply(&schema).await.unwrap();
    assert!(matches!(again, Applied::Duplicate { .. }));
    assert_eq!(lsns(again), vec![("contact".into(), 20)]);
    assert_eq!(h.count("contact").await, 2);

    // A redelivered wipe does not wipe twice.
    let wipe = h.envelope(Message::Wipe {
        table: "contact".into(),
    });
    h.engine.apply(&wipe).await.unwrap();
    h.rows(&t, 30, vec![ins(3, "reloaded")]).await;
    assert!(matches!(
        h.engine.apply(&wipe).await.unwrap(),
        Applied::Duplicate { .. }
    ));
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![(3, Some("reloaded".into()))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_batch_quarantines_only_its_table_until_a_wipe() {
    let h = Harness::new().await;
    let (contact, person) = (simple("contact"), simple("person"));
    h.schema_call(&[contact.clone(), person.clone()]).await;
    h.rows(&contact, 100, vec![ins(1, "fine")]).await;
    let epoch = h.state("contact").await.unwrap().1;

    // PostgreSQL text cannot hold U+0000: permanent, and it names the table.
    let poison = h.envelope(Message::RowData {
        batches: vec![
            RowBatch {
                table: person.clone(),
                lsn: 0,
                rows: vec![ins(7, "same message, other table")],
            },
            RowBatch {
                table: contact.clone(),
                lsn: 0,
                rows: vec![ins(2, "nul \u{0} inside")],
            },
        ],
    });
    let err = h.engine.apply(&poison).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert_eq!(err.table(), Some("contact"));
    assert_eq!(
        h.count("person").await,
        0,
        "the failed transaction left nothing behind"
    );

    let q = h.engine.quarantine(&poison, &err).await.unwrap();
    assert_eq!(
        q,
        Quarantine {
            table: Some("contact".into()),
            epoch
        }
    );
    let (lsn, state_epoch, reason) = h.state("contact").await.unwrap();
    assert_eq!((lsn, state_epoch), (-1, epoch));
    assert!(reason.unwrap().contains("contact"));
    // The failed message's other table was applied by the quarantine.
    assert_eq!(h.key_text("person", "name").await.len(), 1);
    assert_eq!(h.state("person").await.unwrap().2, None);

    // Later batches of the quarantined table are parked; other tables still apply.
    assert_eq!(
        h.rows(&contact, 0, vec![upd(1, "parked")]).await,
        Applied::Parked
    );
    assert!(matches!(
        h.rows(&person, 300, vec![ins(8, "p")]).await,
        Applied::Done { .. }
    ));
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![(1, Some("fine".into()))]
    );
    assert_eq!(h.count("person").await, 2);
    let parked = h
        .query(&format!(
            "SELECT count(*) FROM {}",
            h.qualified(&format!("{}_mirroring_parked", h.tenant))
        ))
        .await[0]
        .get::<_, i64>(0);
    assert_eq!(parked, 2, "the failed batch and the later one");

    // The next cycle asks for the table again; the wipe heals it.
    assert_eq!(
        h.schema_call(&[contact.clone(), person.clone()]).await,
        vec![("contact".into(), -1), ("person".into(), 300)]
    );
    h.wipe("contact").await;
    let (lsn, new_epoch, reason) = h.state("contact").await.unwrap();
    assert_eq!((lsn, new_epoch, reason), (-1, epoch + 1, None));
    assert!(matches!(
        h.rows(&contact, 400, vec![ins(1, "reloaded")]).await,
        Applied::Done { .. }
    ));
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![(1, Some("reloaded".into()))]
    );

    // Replaying the dead-lettered message now is stale: dropped without effect.
    assert_eq!(
        h.engine.apply(&poison).await.unwrap(),
        Applied::Duplicate { reply: None }
    );
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![(1, Some("reloaded".into()))]
    );
    assert_eq!(h.state("contact").await.unwrap().0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_into_the_same_epoch_drains_the_parked_batches_in_order() {
    let h = Harness::new().await;
    let t = simple("contact");
    h.schema_call(std::slice::from_ref(&t)).await;
    h.rows(&t, 10, vec![ins(1, "one")]).await;
    // An operator's constraint makes a batch fail permanently …
    h.exec(&format!(
        "ALTER TABLE {} ADD CONSTRAINT no_bad CHECK (name <> 'bad')",
        h.qualified("contact")
    ))
    .await;
    let failed = h.envelope(rowdata(&t, 0, vec![ins(2, "bad")]));
    let err = h.engine.apply(&failed).await.unwrap_err();
    assert!(!err.is_transient());
    h.engine.quarantine(&failed, &err).await.unwrap();
    assert_eq!(h.rows(&t, 0, vec![upd(2, "later")]).await, Applied::Parked);
    assert_eq!(h.rows(&t, 50, vec![ins(3, "last")]).await, Applied::Parked);

    // … and is replayed after the operator fixed it: everything applies in order.
    h.exec(&format!(
        "ALTER TABLE {} DROP CONSTRAINT no_bad",
        h.qualified("contact")
    ))
    .await;
    assert!(matches!(
        h.engine.apply(&failed).await.unwrap(),
        Applied::Done { .. }
    ));
    assert_eq!(
        h.key_text("contact", "name").await,
        vec![
            (1, Some("one".into())),
            (2, Some("later".into())),
            (3, Some("last".into()))
        ]
    );
    let (lsn, _, reason) = h.state("contact").await.unwrap();
    assert_eq!((lsn, reason), (50, None));
    // A second replay changes nothing.
    assert!(matches!(
        h.engine.apply(&failed).await.unwrap(),
        Applied::Duplicate { .. }
    ));
    assert_eq!(
        h.rows(&t, 60, vec![del(1)]).await,
        Applied::Done { reply: None }
    );
    assert_eq!(h.count("contact").await, 2);
}
