//! Bad input never crashes the receiver and never publishes: each kind gets the right answer
//! (SOAP fault or `IsSuccessful=false`) with a precise message, the queues stay empty, and the
//! service answers a valid call afterwards.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeDelta, Utc};
use mirror_common::auth::CONTEXT_ID_CLAIM;
use mirror_common::schema::RawTableSchema;
use mirror_common::soap::{Operation, RequestBody};
use mirror_common::wire::ReplicationSummary;
use mirror_receiver::metrics;
use serde_json::json;
use support::*;

const TENANT: &str = "Cust24709";
const BODY_LIMIT: usize = 64 * 1024;

fn unsigned(header: serde_json::Value, claims: &serde_json::Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn valid_rows() -> RequestBody<'static> {
    row_data(contact_table(), 1, contact_rows())
}

/// Asserts a SOAP fault whose message contains `expected`.
async fn expect_fault(
    app: &TestApp,
    action: Option<&str>,
    body: impl Into<reqwest::Body>,
    expected: &str,
) {
    let reply = app.post(action, body).await;
    let fault = reply.fault();
    assert!(
        fault.contains(expected),
        "fault {fault:?} should contain {expected:?}"
    );
}

/// Asserts `IsSuccessful=false` with a message containing `expected`, for `operation`.
fn expect_failure(reply: &Reply, operation: Operation, expected: &str) {
    assert_eq!(reply.response().operation(), operation, "{}", reply.text);
    let (ok, error) = reply.outcome();
    assert!(!ok, "expected a refusal: {}", reply.text);
    assert!(
        error.contains(expected),
        "error {error:?} should contain {expected:?}"
    );
}

#[tokio::test]
async fn unreadable_requests_get_a_soap_fault() {
    let app = TestApp::spawn(|s| s.http.body_limit_bytes = BODY_LIMIT).await;
    app.wait_ready().await;
    let rows = quoted_action(Operation::RowData);
    let token = app.token(TENANT).token;
    let valid = render(&token, valid_rows());

    expect_fault(&app, Some(&rows), "<s:Envelope><unclosed", "malformed XML").await;
    expect_fault(&app, Some(&rows), "", "malformed XML").await;
    expect_fault(
        &app,
        Some(&rows),
        vec![0xff, 0xfe, 0x00, 0x3c],
        "malformed XML",
    )
    .await;
    expect_fault(&app, Some(&rows), "<hello/>", "not a SOAP 1.1 envelope").await;
    // Entity and DTD tricks: a billion-laughs DTD, an external entity, an undefined entity.
    let laughs = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>{}",
        valid.replacen("<?xml version=\"1.0\" encoding=\"utf-8\"?>", "", 1)
    );
    expect_fault(
        &app,
        Some(&rows),
        laughs,
        "DOCTYPE declarations are refused",
    )
    .await;
    let external = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><x>&xxe;</x>";
    expect_fault(
        &app,
        Some(&rows),
        external,
        "DOCTYPE declarations are refused",
    )
    .await;
    let undefined = valid.replacen("[I:1]", "&xxe;", 1);
    assert_ne!(undefined, valid);
    expect_fault(
        &app,
        Some(&rows),
        undefined,
        "unknown entity reference &xxe;",
    )
    .await;
    // Absurd nesting.
    assert!(valid.contains("<s:Header>"));
    let deep = valid.replacen(
        "<s:Header>",
        &format!("<s:Header>{}{}", "<a>".repeat(5000), "</a>".repeat(5000)),
        1,
    );
    expect_fault(
        &app,
        Some(&rows),
        deep,
        "nested deeper than the limit of 32 levels",
    )
    .await;
    // Oversize body.
    let big = valid.replacen("Acme", &"A".repeat(BODY_LIMIT), 1);
    expect_fault(
        &app,
        Some(&rows),
        big,
        &format!("larger than the limit of {BODY_LIMIT} bytes"),
    )
    .await;
    // Operation names.
    expect_fault(
        &app,
        Some("\"http://www.superoffice.com/online/mirroring/0.1/IMirroringClientService/DropDatabase\""),
        valid.clone(),
        "unknown SOAPAction",
    )
    .await;
    expect_fault(
        &app,
        Some(&quoted_action(Operation::Wipe)),
        valid.clone(),
        "SOAPAction Wipe does not match the body's operation RowData",
    )
    .await;
    let unknown_operation = valid.replace("RowDataRequest", "DropDatabaseRequest");
    expect_fault(&app, None, unknown_operation, "holds no known operation").await;

    app.assert_queues_empty().await;
    let (_, text) = app.get("/metrics").await;
    assert!(
        text.contains(&format!(
            "{}{{operation=\"RowData\",outcome=\"fault\"}}",
            metrics::CALLS_TOTAL
        )),
        "{text}"
    );
    // Still serving.
    let reply = app.post(Some(&rows), valid).await;
    assert_eq!(reply.outcome(), (true, String::new()));
    app.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_refused_with_the_reason() {
    let app = TestApp::spawn(|_| {}).await;
    app.wait_ready().await;
    let issuer = app.issuer();
    let good = app.token(TENANT).token;

    let mut header = issuer.header();
    header["kid"] = json!("0000000000000000000000000000000000000000");
    let other_kid = issuer.sign_token(&header, &claims(TENANT, |_| {}));

    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload[CONTEXT_ID_CLAIM] = json!("Cust1");
    payload["sub"] = json!("Cust1");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    let tampered = parts.join(".");

    let cases: Vec<(String, String)> = vec![
        ("".into(), "SignedToken header is missing or empty".into()),
        ("not-a-token".into(), "malformed token".into()),
        (
            issuer.sign_claims(&claims(TENANT, |c| {
                c["nbf"] = json!((Utc::now() - TimeDelta::minutes(20)).timestamp());
                c["exp"] = json!((Utc::now() - TimeDelta::minutes(10)).timestamp());
            })),
            "token expired at".into(),
        ),
        (
            issuer.sign_claims(&claims(TENANT, |c| {
                c["nbf"] = json!((Utc::now() + TimeDelta::minutes(10)).timestamp());
                c["exp"] = json!((Utc::now() + TimeDelta::minutes(20)).timestamp());
            })),
            "token is not valid before".into(),
        ),
        (
            tampered,
            "token signature does not verify against the custom certificate".into(),
        ),
        (
            unsigned(
                json!({"alg": "none", "typ": "JWT"}),
                &claims(TENANT, |_| {}),
                "",
            ),
            "token algorithm \"none\" is not allowed (RS256 only)".into(),
        ),
        (
            unsigned(
                json!({"alg": "HS256", "typ": "JWT", "kid": issuer.certificate().thumbprint_hex()}),
                &claims(TENANT, |_| {}),
                "c2lnbmF0dXJl",
            ),
            "token algorithm \"HS256\" is not allowed (RS256 only)".into(),
        ),
        (
            issuer.sign_claims(&claims(TENANT, |c| c["aud"] = json!("spn:someoneelse"))),
            "token audience \"spn:someoneelse\" is not this application".into(),
        ),
        (
            issuer.sign_claims(&claims(TENANT, |c| c["iss"] = json!("Evil Corp"))),
            "token issuer \"Evil Corp\" is not SuperOffice AS".into(),
        ),
        (other_kid, "does not match the custom certificate".into()),
        (
            issuer.sign_claims(&claims(TENANT, |c| {
                c[CONTEXT_ID_CLAIM] = json!("../../etc");
                c["sub"] = json!("../../etc");
            })),
            "is not a valid context id".into(),
        ),
    ];
    for (token, expected) in &cases {
        let reply = app.call_with_token(token, valid_rows()).await;
        expect_failure(&reply, Operation::RowData, expected);
        let reply = app.call_with_token(token, RequestBody::Authenticate).await;
        expect_failure(&reply, Operation::Authenticate, expected);
    }
    app.assert_queues_empty().await;
    let reply = app.call(TENANT, valid_rows()).await;
    assert_eq!(reply.outcome(), (true, String::new()));
    app.stop().await;
}

#[tokio::test]
async fn bad_content_is_refused_with_a_precise_message() {
    let app = TestApp::spawn(|_| {}).await;
    app.wait_ready().await;

    let with_table = |change: &dyn Fn(&mut RawTableSchema)| {
        let mut table = contact_table();
        change(&mut table);
        table
    };
    let cases: Vec<(RequestBody<'static>, &str)> = vec![
        (
            row_data(
                with_table(&|t| t.name = "contact; drop table x".into()),
                1,
                contact_rows(),
            ),
            "unsafe identifier \"contact; drop table x\"",
        ),
        (
            row_data(
                with_table(&|t| t.columns[1].name = "name]--".into()),
                1,
                contact_rows(),
            ),
            "unsafe identifier \"name]--\"",
        ),
        (
            row_data(
                with_table(&|t| t.columns[2].ty = "geography".into()),
                1,
                contact_rows(),
            ),
            "column registered: unsupported column type \"geography\"",
        ),
        (
            row_data(
                contact_table(),
                1,
                vec![row("I", &[Some("[I:abc]"), Some("x"), None])],
            ),
            "table contact, row 0, column contact_id (int)",
        ),
        (
            row_data(
                contact_table(),
                1,
                vec![row(
                    "I",
                    &[
                        Some("[I:1]"),
                        Some("x"),
                        Some("[DT:13/45/2020 99:00:00.0000000]"),
                    ],
                )],
            ),
            "table contact, row 0, column registered (datetime)",
        ),
        (
            row_data(
                contact_table(),
                1,
                vec![row("I", &[Some("[I:1]"), Some("x")])],
            ),
            "table contact, row 0: 2 values for 3 columns",
        ),
        (
            row_data(
                contact_table(),
                1,
                vec![row("X", &[Some("[I:1]"), Some("x"), None])],
            ),
            "table contact, row 0: unknown operation \"X\"",
        ),
        (
            RequestBody::Wipe {
                table: "contact\"; drop".into(),
            },
            "unsafe identifier",
        ),
        (
            RequestBody::ReplicationCompleted {
                summaries: vec![ReplicationSummary {
                    table: "x y".into(),
                    inserts: 0,
                    updates: 0,
                    deletes: 0,
                }],
            },
            "unsafe identifier \"x y\"",
        ),
        (
            RequestBody::TableSchema {
                tables: vec![with_table(&|t| t.columns[1].ty = "sql_variant".into())],
            },
            "unsupported column type \"sql_variant\"",
        ),
        (
            RequestBody::TableSchema {
                tables: vec![contact_table(), contact_table()],
            },
            "table contact appears more than once",
        ),
    ];
    for (body, expected) in cases {
        let operation = body.operation();
        let reply = app.call(TENANT, body).await;
        expect_failure(&reply, operation, expected);
    }
    // A readable call missing a required part is refused, not faulted.
    let token = app.token(TENANT).token;
    let xml = render(
        &token,
        RequestBody::Wipe {
            table: "contact".into(),
        },
    );
    let start = xml.find("<TableName").unwrap();
    let end = xml.find("</TableName>").unwrap() + "</TableName>".len();
    let without_table = format!("{}{}", &xml[..start], &xml[end..]);
    let reply = app.post(None, without_table).await;
    expect_failure(&reply, Operation::Wipe, "missing element TableName");

    app.assert_queues_empty().await;
    let reply = app.call(TENANT, valid_rows()).await;
    assert_eq!(reply.outcome(), (true, String::new()));
    app.stop().await;
}

/// Reads from `stream` until the receiver closes it; returns what it sent before closing.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let closing = async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), closing)
        .await
        .expect("the receiver closes a connection whose headers stall");
    received
}

#[tokio::test]
async fn connections_whose_headers_stall_are_closed() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn(|s| s.http.header_timeout_secs = 1).await;
    app.wait_ready().await;
    let address = app.base.trim_start_matches("http://").to_owned();

    // Half a request head, then nothing.
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {address}\r\nContent-Ty",
        app.path
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    // A connection that never sends a byte.
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    for (what, stream) in [("stalled", &mut stalled), ("silent", &mut silent)] {
        let answer = String::from_utf8_lossy(&until_closed(stream).await).into_owned();
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{what}: {answer}"
        );
    }
    // A kept-alive connection is answered, then closed once it idles past the deadline.
    let mut kept = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n");
    kept.write_all(request.as_bytes()).await.unwrap();
    let answer = String::from_utf8_lossy(&until_closed(&mut kept).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    app.assert_queues_empty().await;
    let reply = app.call(TENANT, valid_rows()).await;
    assert_eq!(reply.outcome(), (true, String::new()));
    app.stop().await;
}
