//! Round trips (render → parse) for every request and response, and the parser's tolerance of
//! what WCF or another SOAP stack may legitimately write: other prefixes, default namespaces,
//! members in another order, unknown members, comments, CDATA and an XML declaration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;

use mirror_common::schema::{RawColumn, RawTableSchema};
use mirror_common::soap::{
    AuthenticateAnswer, Limits, Outcome, RawRow, RawRowBatch, Request, RequestBody, Response,
    SoapError, parse_request, parse_response, render_fault, render_request, render_response,
};
use mirror_common::wire::{ReplicationSummary, TableLsn};
use proptest::prelude::*;

fn column(name: &str, ty: &str, nullable: bool, default: &str) -> RawColumn {
    RawColumn {
        name: name.into(),
        ty: ty.into(),
        nullable,
        default: default.into(),
    }
}

fn table(name: &str) -> RawTableSchema {
    RawTableSchema {
        name: name.into(),
        columns: vec![
            column(&format!("{name}_id"), "int", false, ""),
            column("text", "nvarchar(max)", true, "default (N'')"),
            column(
                "when",
                "datetime",
                false,
                "default (N'1760-01-01 00:00:00')",
            ),
        ],
    }
}

fn request(body: RequestBody<'_>) -> Request<'_> {
    Request {
        token: "eyJ.eyJ.sig".into(),
        client_state: "state <&> \"'".into(),
        body,
    }
}

fn round_trip(request: &Request<'_>) {
    let xml = render_request(&request.token, request);
    let parsed =
        parse_request(xml.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(&parsed, request);
}

#[test]
fn every_request_round_trips() {
    round_trip(&request(RequestBody::Authenticate));
    round_trip(&request(RequestBody::Wipe {
        table: "projstatusgrouplink".into(),
    }));
    round_trip(&request(RequestBody::TableSchema {
        tables: vec![table("contact"), table("person")],
    }));
    round_trip(&request(RequestBody::TableSchema { tables: vec![] }));
    round_trip(&request(RequestBody::ReplicationCompleted {
        summaries: vec![
            ReplicationSummary {
                table: "contact".into(),
                inserts: 3,
                updates: i32::MAX,
                deletes: -1,
            },
            ReplicationSummary {
                table: "person".into(),
                inserts: 0,
                updates: 0,
                deletes: 0,
            },
        ],
    }));
    let rows = |op: &'static str| RawRow {
        operation: op.into(),
        values: vec![
            Some(Cow::Borrowed("[I:1]")),
            None,
            Some(Cow::Borrowed("")),
            Some(Cow::Borrowed("  spaced  ")),
            Some(Cow::Borrowed("a\r\nb\rc\n<&>]]>")),
        ],
    };
    round_trip(&request(RequestBody::RowData {
        batches: vec![
            RawRowBatch {
                table: table("invitation"),
                lsn: -1,
                rows: vec![rows("I"), rows("U"), rows("D")],
            },
            RawRowBatch {
                table: table("empty"),
                lsn: i64::MAX,
                rows: vec![],
            },
        ],
    }));
    round_trip(&request(RequestBody::RowData { batches: vec![] }));
}

#[test]
fn the_header_token_is_the_one_given_to_render() {
    let req = request(RequestBody::Authenticate);
    let xml = render_request("  other.token.here \r\n", &req);
    let parsed = parse_request(xml.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(parsed.token, "other.token.here");
}

fn response_round_trip(response: &Response) {
    let xml = render_response(response);
    let parsed =
        parse_response(xml.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(&parsed, response);
}

#[test]
fn every_response_round_trips() {
    response_round_trip(&Response::Authenticate {
        outcome: Outcome::success(),
        answer: AuthenticateAnswer {
            signed_application_token: "NONCE.202109161125.c2lnbmF0dXJl+/=".into(),
            supported_interfaces: "1".into(),
            build: "mirror 0.1.0".into(),
            client_state: "s".into(),
            additional_information_json: r#"{"doNotReplicate":"true"}"#.into(),
        },
    });
    response_round_trip(&Response::TableSchema {
        outcome: Outcome::success(),
        lsns: vec![
            TableLsn {
                table: "contact".into(),
                lsn: -1,
            },
            TableLsn {
                table: "person".into(),
                lsn: 1_506_336,
            },
        ],
    });
    response_round_trip(&Response::TableSchema {
        outcome: Outcome::failure("mirror busy, retry next cycle"),
        lsns: vec![],
    });
    for outcome in [
        Outcome::success(),
        Outcome::failure("table <x>: \"bad\" & worse\r\nsecond line"),
    ] {
        response_round_trip(&Response::RowData(outcome.clone()));
        response_round_trip(&Response::Wipe(outcome.clone()));
        response_round_trip(&Response::ReplicationCompleted(outcome));
    }
}

#[test]
fn faults_parse_as_fault_errors() {
    let xml = render_fault("cannot read <this> & that");
    let err = parse_response(xml.as_bytes(), &Limits::default()).unwrap_err();
    assert_eq!(
        err,
        SoapError::Fault {
            code: "s:Client".into(),
            message: "cannot read <this> & that".into()
        }
    );
    assert!(!err.is_unreadable());
}

/// The same RowData as the fixture's first row, written as another SOAP stack might: other
/// prefixes, default namespaces, members in reverse order, unknown members, comments, CDATA.
const UNUSUAL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
<!-- a comment before the root -->\r\n\
<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
 xmlns:m=\"http://www.superoffice.com/online/mirroring/0.1\" \
 xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\r\n\
 <soap:Body>\r\n\
  <m:RowDataRequest>\r\n\
   <m:DataBatches>\r\n\
    <RowDataBatch xmlns=\"http://schemas.datacontract.org/2004/07/SuperOffice.Online.Mirroring.Contract.V1\">\r\n\
     <TableInfo><TableName>invitation</TableName><Columns>\r\n\
      <ColumnInfo><Type>int</Type><Name>invitation_id</Name><IsNullable> false </IsNullable><FutureMember><x/></FutureMember></ColumnInfo>\r\n\
      <ColumnInfo><Name>event_uid</Name><Type>nvarchar(255)</Type><IsNullable>1</IsNullable><DefaultValue xsi:nil=\"true\"/></ColumnInfo>\r\n\
     </Columns></TableInfo>\r\n\
     <LSN> 1506269 </LSN>\r\n\
     <Data><RowData>\r\n\
      <Operation>I</Operation>\r\n\
      <ColumnValues xmlns:arr=\"http://schemas.microsoft.com/2003/10/Serialization/Arrays\">\r\n\
       <string xmlns=\"http://schemas.microsoft.com/2003/10/Serialization/Arrays\">[I:1]</string>\r\n\
       <arr:string> two\r\nlines&#xD;<!-- values may contain comments --><![CDATA[<cdata & more>]]> </arr:string>\r\n\
      </ColumnValues>\r\n\
     </RowData></Data>\r\n\
    </RowDataBatch>\r\n\
   </m:DataBatches>\r\n\
   <m:ClientState>opaque</m:ClientState>\r\n\
   <m:FutureField>ignored</m:FutureField>\r\n\
  </m:RowDataRequest>\r\n\
 </soap:Body>\r\n\
 <soap:Header><x:Addressing xmlns:x=\"urn:ws-addressing\">ignored</x:Addressing>\
<m:SignedToken soap:mustUnderstand=\"1\">\r\n  a.b.c\r\n</m:SignedToken></soap:Header>\r\n\
</soap:Envelope>\r\n<!-- and after -->\r\n";

#[test]
fn accepts_other_prefixes_orders_and_unknown_members() {
    let request = parse_request(UNUSUAL.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(request.token, "a.b.c");
    assert_eq!(request.client_state, "opaque");
    let expected = RawRowBatch {
        table: RawTableSchema {
            name: "invitation".into(),
            columns: vec![
                column("invitation_id", "int", false, ""),
                column("event_uid", "nvarchar(255)", true, ""),
            ],
        },
        lsn: 1_506_269,
        rows: vec![RawRow {
            operation: "I".into(),
            values: vec![
                Some("[I:1]".into()),
                Some(" two\nlines\r<cdata & more> ".into()),
            ],
        }],
    };
    assert_eq!(
        request.body,
        RequestBody::RowData {
            batches: vec![expected]
        }
    );
}

/// Text that exercises escaping: markup characters, quotes, CR/LF, white space at the ends,
/// non-ASCII, wrapped-value look-alikes.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        Just("\r".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("<&>\"'".to_owned()),
        Just("]]>".to_owned()),
        Just("&amp;".to_owned()),
        Just("[I:1]".to_owned()),
        Just("[DT:05/18/2020 10:40:43.0000000]".to_owned()),
        "[a-zA-Z0-9æøåÆØÅ€😀 ]{1,8}",
        any::<char>()
            .prop_filter("XML 1.0 character", |c| {
                matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
            })
            .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

fn raw_row() -> impl Strategy<Value = (String, Vec<Option<String>>)> {
    (
        prop_oneof![
            Just("I".to_owned()),
            Just("U".to_owned()),
            Just("D".to_owned())
        ],
        prop::collection::vec(prop::option::weighted(0.8, tricky_text()), 0..8),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rowdata_round_trips(
        client_state in tricky_text(),
        lsn in any::<i64>(),
        rows in prop::collection::vec(raw_row(), 0..6),
        table_name in tricky_text(),
    ) {
        let batch = RawRowBatch {
            table: RawTableSchema { name: table_name, ..table("t") },
            lsn,
            rows: rows
                .iter()
                .map(|(op, values)| RawRow {
                    operation: op.clone(),
                    values: values.iter().map(|v| v.as_deref().map(Cow::Borrowed)).collect(),
                })
                .collect(),
        };
        let request = Request {
            token: "h.p.s".into(),
            client_state,
            body: RequestBody::RowData { batches: vec![batch] },
        };
        let xml = render_request(&request.token, &request);
        let parsed = parse_request(xml.as_bytes(), &Limits::default());
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, xml);
        let parsed = parsed.unwrap();
        prop_assert_eq!(&parsed, &request);
        // Values that needed no escaping are borrowed from the body, the others owned.
        let RequestBody::RowData { batches } = &parsed.body else { unreachable!() };
        for value in batches[0].rows.iter().flat_map(|r| &r.values).flatten() {
            let escaped = value.contains(['&', '<', '>', '\r']);
            prop_assert_eq!(matches!(value, Cow::Borrowed(_)), !escaped, "{:?}", value);
        }
    }

    #[test]
    fn error_messages_round_trip(message in tricky_text()) {
        let response = Response::RowData(Outcome::failure(message));
        let xml = render_response(&response);
        prop_assert_eq!(parse_response(xml.as_bytes(), &Limits::default()).unwrap(), response);
    }
}
