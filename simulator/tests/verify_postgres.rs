//! The verifier against a real PostgreSQL mirror that the test writes itself (no receiver, no
//! applier): an exact copy is clean, and every kind of difference is reported.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use mirror_common::schema::{ColumnType, RawColumn, RawTableSchema};
use mirror_common::value::Value;
use mirror_sim::source::Source;
use mirror_sim::verify::{DiffKind, PgReader, pg_type, verify};
use tokio_postgres::types::ToSql;

const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn col(name: &str, ty: &str, nullable: bool) -> RawColumn {
    RawColumn {
        name: name.into(),
        ty: ty.into(),
        nullable,
        default: String::new(),
    }
}

fn tables() -> Vec<RawTableSchema> {
    vec![
        RawTableSchema {
            name: "contact".into(),
            columns: vec![
                col("contact_id", "int", false),
                col("name", "nvarchar(219)", false),
                col("xstop", "smallint", true),
                col("registered", "datetime", false),
                col("amount", "float", true),
                col("notes", "nvarchar(max)", true),
                col("x_beschreibung", "ntext", true),
                col("blob", "varbinary(max)", true),
            ],
        },
        RawTableSchema {
            name: "person".into(),
            columns: vec![
                col("person_id", "int", false),
                col("firstname", "nvarchar(99)", false),
            ],
        },
        RawTableSchema {
            name: "y_missing".into(),
            columns: vec![
                col("id", "int", false),
                col("x_name", "nvarchar(255)", true),
            ],
        },
    ]
}

/// A typed SQL parameter for a value of a column of type `ty` (typed NULLs included).
fn param(ty: ColumnType, value: &Value) -> Box<dyn ToSql + Sync + Send> {
    match (ty, value) {
        (_, Value::Int(v)) => Box::new(*v),
        (_, Value::SmallInt(v)) => Box::new(*v),
        (_, Value::Float(v)) => Box::new(*v),
        (_, Value::DateTime(v)) => Box::new(*v),
        (_, Value::Text(v)) => Box::new(v.clone()),
        (_, Value::Binary(v)) => Box::new(v.clone()),
        (ColumnType::Int, Value::Null) => Box::new(None::<i32>),
        (ColumnType::SmallInt, Value::Null) => Box::new(None::<i16>),
        (ColumnType::Float, Value::Null) => Box::new(None::<f64>),
        (ColumnType::DateTime, Value::Null) => Box::new(None::<chrono::NaiveDateTime>),
        (ColumnType::VarBinary(_), Value::Null) => Box::new(None::<Vec<u8>>),
        (_, Value::Null) => Box::new(None::<String>),
        (ty, other) => panic!("no parameter for {other:?} in a {ty} column"),
    }
}

/// Creates `table` in `schema` as the mirror would (optionally without a primary key, so a
/// duplicate can be planted) and copies the source's rows into it.
async fn copy_table(
    client: &tokio_postgres::Client,
    schema: &str,
    source: &Source,
    table: &str,
    key: bool,
) {
    let t = source.table(table).unwrap();
    let columns: Vec<String> = t
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let pk = if i == 0 && key { " PRIMARY KEY" } else { "" };
            format!("\"{}\" {}{pk}", c.name(), pg_type(c.ty()))
        })
        .collect();
    client
        .batch_execute(&format!(
            "CREATE TABLE \"{schema}\".\"{table}\" ({})",
            columns.join(", ")
        ))
        .await
        .unwrap();
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let insert = client
        .prepare(&format!(
            "INSERT INTO \"{schema}\".\"{table}\" VALUES ({})",
            placeholders.join(", ")
        ))
        .await
        .unwrap();
    for k in t.live_keys() {
        let row = t.row(k).unwrap();
        let params: Vec<Box<dyn ToSql + Sync + Send>> = t
            .columns()
            .iter()
            .zip(&row)
            .map(|(c, v)| param(c.ty(), v))
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        client.execute(&insert, &refs).await.unwrap();
    }
}

#[tokio::test]
async fn an_exact_copy_is_clean_and_every_difference_is_reported() {
    let tenant = format!("V{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let template = "SimVerify_{context_id}";
    let schema = format!("SimVerify_{tenant}");
    let source = Source::with_tables(&tenant, 5, 400, &tables()).unwrap();
    let mut reader = PgReader::connect(DATABASE_URL, template, &tenant)
        .await
        .unwrap();
    reader
        .client()
        .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
        .await
        .unwrap();

    let result = async {
        copy_table(reader.client(), &schema, &source, "contact", false).await;
        copy_table(reader.client(), &schema, &source, "person", true).await;
        let clean = verify(&mut reader, &source).await.unwrap();

        let contact_keys: Vec<i32> = source.table("contact").unwrap().live_keys().collect();
        let (wrong, lost, doubled) = (contact_keys[2], contact_keys[4], contact_keys[6]);
        let client = reader.client();
        client
            .batch_execute(&format!(
                "UPDATE \"{schema}\".contact SET amount = 123.25, notes = 'changed' WHERE contact_id = {wrong};
                 DELETE FROM \"{schema}\".contact WHERE contact_id = {lost};
                 INSERT INTO \"{schema}\".contact SELECT * FROM \"{schema}\".contact WHERE contact_id = {doubled};
                 INSERT INTO \"{schema}\".contact (contact_id, name, registered) VALUES (999999, 'ghost', now());
                 ALTER TABLE \"{schema}\".person ALTER COLUMN firstname TYPE text;
                 CREATE TABLE \"{schema}\".\"{tenant}_mirroring\" (tablename text, lsn bigint);
                 INSERT INTO \"{schema}\".\"{tenant}_mirroring\" VALUES ('contact', 4711);
                 CREATE TABLE \"{schema}\".y_extra (id integer);"
            ))
            .await
            .unwrap();
        let broken = verify(&mut reader, &source).await.unwrap();
        (clean, broken, wrong, lost, doubled)
    }
    .await;
    reader
        .client()
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
    let (clean, broken, wrong, lost, doubled) = result;

    // The copy: clean except the table that was never created.
    assert!(clean.table("contact").unwrap().is_clean(), "{clean}");
    assert!(clean.table("person").unwrap().is_clean(), "{clean}");
    let missing = clean.table("y_missing").unwrap();
    assert!(!missing.exists);
    assert_eq!(missing.lost, missing.source_rows);
    assert!(!clean.is_clean());
    assert!(clean.table("contact").unwrap().source_rows > 100);

    // The damage.
    let contact = broken.table("contact").unwrap();
    assert_eq!(
        (
            contact.wrong,
            contact.lost,
            contact.duplicated,
            contact.unexpected
        ),
        (1, 1, 1, 1),
        "{broken}"
    );
    assert_eq!(contact.mirror_lsn, Some(4711));
    let sample = |kind| contact.samples.iter().find(|s| s.kind == kind).unwrap();
    assert_eq!(sample(DiffKind::Wrong).key, i64::from(wrong));
    let changed: Vec<&str> = sample(DiffKind::Wrong)
        .columns
        .iter()
        .map(|(c, _, _)| c.as_str())
        .collect();
    assert!(
        changed.contains(&"amount") && changed.contains(&"notes"),
        "{changed:?}"
    );
    assert_eq!(sample(DiffKind::Lost).key, i64::from(lost));
    assert_eq!(sample(DiffKind::Duplicated).key, i64::from(doubled));
    assert_eq!(sample(DiffKind::Unexpected).key, 999_999);

    let person = broken.table("person").unwrap();
    assert_eq!(
        person.schema_problems,
        ["column firstname is text instead of character varying(99)"]
    );
    assert!(!person.values_compared);
    assert_eq!(person.differences(), 0, "keys still match");
    assert!(!person.is_clean());
    assert_eq!(broken.extra_tables, ["y_extra"]);
    assert!(broken.to_string().contains("Wrong key"), "{broken}");
}
