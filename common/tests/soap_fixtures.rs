//! The SOAP codec against SuperOffice's real messages: every request fixture parses to what it
//! says, rendering a request reproduces its fixture, and our responses have exactly the shape of
//! SuperOffice's own client's answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod soap_support;

use std::borrow::Cow;

use chrono::NaiveDateTime;
use mirror_common::batch::decode_batches;
use mirror_common::schema::{ColumnType, DefaultValue, validate_tables};
use mirror_common::soap::{
    AuthenticateAnswer, Limits, Outcome, Request, RequestBody, Response, parse_request,
    parse_response, render_request, render_response,
};
use mirror_common::value::Value;
use mirror_common::wire::{Operation, TableLsn};
use soap_support::{assert_same_xml, fixture, http_body};

fn parse(body: &[u8]) -> Request<'_> {
    parse_request(body, &Limits::default()).unwrap_or_else(|e| panic!("parse failed: {e}"))
}

fn dt(s: &str) -> Value {
    Value::DateTime(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap())
}

fn assert_token(request: &Request<'_>, claims_prefix: &str) {
    let token = &request.token;
    assert_eq!(token.trim(), token, "the token is trimmed");
    assert_eq!(token.split('.').count(), 3, "a JWT has three parts");
    assert!(token.starts_with("eyJhbGciOiJSUzI1NiIsImtpZCI6IjE2QjdGQjhDM0Y5QUIwNjg4NUE4MDBDNjRF"));
    assert!(token.split('.').nth(1).unwrap().starts_with(claims_prefix));
}

#[test]
fn authenticate_request_fixture() {
    let body = fixture("authenticate-request.xml");
    let request = parse(&body);
    assert_token(&request, "eyJzdWIiOiJDdXN0MTAwMDMi");
    assert!(request.token.ends_with("03yXZIsyNmwg"));
    assert_eq!(request.client_state, "");
    assert_eq!(request.body, RequestBody::Authenticate);
}

#[test]
fn wipe_request_fixture() {
    let body = fixture("wipe-request.xml");
    let request = parse(&body);
    assert_token(&request, "eyJzdWIiOiJDdXN0MjQ3MDki");
    assert_eq!(
        request.body,
        RequestBody::Wipe {
            table: "projstatusgrouplink".into()
        }
    );
}

#[test]
fn replication_completed_request_fixture() {
    let body = fixture("replication-completed-request.xml");
    let request = parse(&body);
    assert_token(&request, "eyJzdWIiOiJDdXN0MjQ3MDki");
    assert_eq!(
        request.body,
        RequestBody::ReplicationCompleted { summaries: vec![] }
    );
}

#[test]
fn rowdata_request_fixture() {
    let body = fixture("rowdata-request.xml");
    let request = parse(&body);
    assert_token(&request, "eyJzdWIiOiJDdXN0MjQ3MDki");
    let RequestBody::RowData { batches } = &request.body else {
        panic!("not RowData: {:?}", request.body.operation());
    };
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.lsn, 1_506_269);
    assert_eq!(batch.table.name, "invitation");
    assert_eq!(batch.table.columns.len(), 14);
    assert_eq!(batch.table.columns[7].name, "updated");
    assert_eq!(batch.table.columns[7].ty, "datetime");
    assert!(!batch.table.columns[7].nullable);
    assert!(batch.table.columns[1].nullable);
    assert_eq!(batch.rows.len(), 2);
    for row in &batch.rows {
        assert_eq!(row.operation, "I");
        assert_eq!(row.values.len(), 14);
        // Nothing needed unescaping, so every value borrows from the body.
        assert!(
            row.values
                .iter()
                .all(|v| matches!(v, Some(Cow::Borrowed(_))))
        );
    }
    assert_eq!(
        batch.rows[1].values[10].as_deref(),
        Some("Dennis.Kessler@melchers.de")
    );
    assert_eq!(
        batch.rows[0].values[3].as_deref(),
        Some("[DT:05/18/2020 10:40:43.0000000]")
    );

    let decoded = decode_batches(batches).unwrap();
    assert_eq!(decoded.len(), 1);
    let typed = &decoded[0];
    assert_eq!(typed.lsn, 1_506_269);
    assert_eq!(typed.table.name, "invitation");
    assert_eq!(typed.table.columns[9].ty, ColumnType::SmallInt);
    assert_eq!(typed.rows.len(), 2);
    assert_eq!(typed.rows[0].op, Operation::Insert);
    assert_eq!(
        typed.rows[0].values,
        vec![
            Value::Int(1),
            Value::Text(
                "040000008200E00074C5B7101A82E00800000000DD1E2178E92CD6010000000000000000100000005315E9D8BC5F824BA6502093D637FCB2".into()
            ),
            Value::Int(0),
            dt("2020-05-18 10:40:43"),
            Value::Int(135),
            dt("2020-05-18 08:40:44"),
            Value::Int(6),
            dt("2020-05-18 08:40:45"),
            Value::Int(6),
            Value::SmallInt(0),
            Value::Text("Leon.Nonnast@melchers.de".into()),
            Value::Text("Nonnast, Leon".into()),
            dt("1760-01-01 00:00:00"),
            dt("1760-01-01 00:00:00"),
        ]
    );
    assert_eq!(typed.rows[1].values[0], Value::Int(2));
    assert_eq!(typed.rows[1].values[4], Value::Int(137));
    assert_eq!(
        typed.rows[1].values[11],
        Value::Text("Kessler, Dennis".into())
    );
}

#[test]
fn tableschema_request_fixture() {
    let raw = fixture("tableschema-request.http");
    let request = parse(http_body(&raw));
    assert_token(&request, "eyJzdWIiOiJDdXN0MjQ3MDki");
    let RequestBody::TableSchema { tables } = &request.body else {
        panic!("not TableSchema: {:?}", request.body.operation());
    };
    assert_eq!(tables.len(), 413);
    assert_eq!(tables[0].name, "access_script");
    assert_eq!(tables[412].name, "ziptocity");
    assert_eq!(tables.iter().map(|t| t.columns.len()).sum::<usize>(), 5270);
    let table = |name: &str| tables.iter().find(|t| t.name == name).unwrap();
    let column = |t: &str, c: &str| {
        table(t)
            .columns
            .iter()
            .find(|col| col.name == c)
            .unwrap_or_else(|| panic!("{t}.{c}"))
            .clone()
    };

    let access = &tables[0].columns;
    assert_eq!(access.len(), 3);
    assert_eq!(
        (
            access[0].name.as_str(),
            access[0].ty.as_str(),
            access[0].nullable
        ),
        ("id", "int", false)
    );
    assert_eq!(access[1].default, "default (N'')");
    assert_eq!(access[2].ty, "nvarchar(max)");
    assert_eq!(access[2].default, "");
    assert_eq!(table("contact").columns.len(), 38);
    assert_eq!(table("udappntsmall").columns.len(), 111);
    assert_eq!(
        column("attachment", "dbi_agent_id").default,
        "default ((-1))"
    );
    assert_eq!(
        column("ticket", "created_at").default,
        "default (N'1760-01-01 00:00:00')"
    );
    assert!(column("ticket_log", "log_when").nullable);
    assert_eq!(column("person", "rank").ty, "smallint");

    // The whole real schema passes validation: every type is on the allow-list, every default
    // parses, every key is an int.
    let validated = validate_tables(tables).unwrap();
    assert_eq!(validated.len(), 413);
    let attachment = validated.iter().find(|t| t.name == "attachment").unwrap();
    let agent = attachment
        .columns
        .iter()
        .find(|c| c.name == "dbi_agent_id")
        .unwrap();
    assert_eq!(agent.default, Some(DefaultValue::Integer(-1)));
}

#[test]
fn rendered_requests_match_their_fixtures() {
    for name in [
        "authenticate-request.xml",
        "wipe-request.xml",
        "replication-completed-request.xml",
        "rowdata-request.xml",
    ] {
        let body = fixture(name);
        let request = parse(&body);
        assert_same_xml(render_request(&request.token, &request).as_bytes(), &body);
    }
    let raw = fixture("tableschema-request.http");
    let body = http_body(&raw);
    let request = parse(body);
    assert_same_xml(render_request(&request.token, &request).as_bytes(), body);
}

fn parsed_response(name: &str) -> Response {
    parse_response(&fixture(name), &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn authenticate_response_matches_fixture() {
    let response = Response::Authenticate {
        outcome: Outcome::success(),
        answer: AuthenticateAnswer {
            signed_application_token: "BDB65A558F193A8DD88E50E7416C0D86.202109161125.OKNE8l9YOXm4AJRCfzNx4egvU/jTjwii6XU+fM2P6bFjQpYSBi0w4VH0dN82CQdWEkcuGW9yjsLU82za08myMWelFKWvwqIY0oaaTYAPzhj27JNa5OZw3tUc1zunR7DrwpLSkwC3cEK3s3u3VDN8GKoMMeQVOogxS7f1hT3a4/Q=".into(),
            supported_interfaces: "1".into(),
            build: "4.0.0.0/Release_1".into(),
            client_state: String::new(),
            additional_information_json: String::new(),
        },
    };
    let fixture_bytes = fixture("authenticate-response.xml");
    assert_same_xml(render_response(&response).as_bytes(), &fixture_bytes);
    assert_eq!(parsed_response("authenticate-response.xml"), response);
}

#[test]
fn tableschema_response_matches_fixture() {
    // The LSNs the fixture answers, in the order of the schema request's tables.
    let raw = fixture("tableschema-request.http");
    let request = parse(http_body(&raw));
    let RequestBody::TableSchema { tables } = &request.body else {
        panic!("not TableSchema");
    };
    let bumped = [
        "currency",
        "email",
        "message_id",
        "notice_frame",
        "saintconfiguration",
        "schedule",
        "statusdef",
        "temporarykey",
        "word_relations",
    ];
    let lsns: Vec<TableLsn> = tables
        .iter()
        .map(|t| TableLsn {
            table: t.name.clone(),
            lsn: if bumped.contains(&t.name.as_str()) {
                1_506_336
            } else {
                1_506_269
            },
        })
        .collect();
    assert_eq!(lsns.len(), 413);
    let response = Response::TableSchema {
        outcome: Outcome::success(),
        lsns,
    };
    assert_same_xml(
        render_response(&response).as_bytes(),
        &fixture("tableschema-response.xml"),
    );
    assert_eq!(parsed_response("tableschema-response.xml"), response);
}

#[test]
fn outcome_only_responses_match_fixtures() {
    for (name, response) in [
        (
            "rowdata-response.xml",
            Response::RowData(Outcome::success()),
        ),
        ("wipe-response.xml", Response::Wipe(Outcome::success())),
        (
            "replication-completed-response.xml",
            Response::ReplicationCompleted(Outcome::success()),
        ),
    ] {
        assert_same_xml(render_response(&response).as_bytes(), &fixture(name));
        assert_eq!(parsed_response(name), response, "{name}");
    }
}

#[test]
fn the_comparer_notices_differences() {
    let ok = render_response(&Response::Wipe(Outcome::success()));
    let failed = render_response(&Response::Wipe(Outcome::failure("x")));
    let other_op = render_response(&Response::RowData(Outcome::success()));
    for different in [failed, other_op] {
        let result = std::panic::catch_unwind(|| {
            assert_same_xml(different.as_bytes(), &fixture("wipe-response.xml"))
        });
        assert!(
            result.is_err(),
            "{different} should differ from the fixture"
        );
    }
    assert_same_xml(ok.as_bytes(), &fixture("wipe-response.xml"));
}
