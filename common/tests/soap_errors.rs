//! Every kind of bad input gets a precise error and the right classification (SOAP fault versus
//! `IsSuccessful=false`), and nothing panics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod soap_support;

use mirror_common::batch::decode_batches;
use mirror_common::soap::{Limits, Problem, RequestBody, SoapError, parse_request};
use proptest::prelude::*;
use soap_support::fixture;

fn rowdata() -> String {
    String::from_utf8(fixture("rowdata-request.xml")).unwrap()
}

/// The RowData fixture with the first occurrence of `from` replaced.
fn rowdata_with(from: &str, to: &str) -> String {
    let xml = rowdata();
    assert!(xml.contains(from), "fixture has no {from:?}");
    xml.replacen(from, to, 1)
}

fn error_of(xml: &str) -> SoapError {
    match parse_request(xml.as_bytes(), &Limits::default()) {
        Ok(r) => panic!("accepted: {:?}", r.body.operation()),
        Err(e) => e,
    }
}

/// A request around `body` (the Body's content) with a token header.
fn envelope(body: &str) -> String {
    format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:SignedToken xmlns:h="http://www.superoffice.com/online/mirroring/0.1">t.t.t</h:SignedToken></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    )
}

const MIRRORING: &str = "http://www.superoffice.com/online/mirroring/0.1";

#[test]
fn malformed_xml_is_unreadable() {
    for xml in [
        String::new(),
        "not xml at all".to_owned(),
        rowdata()[..5000].to_owned(),
        rowdata_with("</a:LSN>", "</a:LSNX>"),
        rowdata_with("<a:LSN>", "<a:LSN a=\"1\" a=\"2\">"),
        rowdata_with("<a:LSN>", "<x:LSN>"),
        format!("{}<second/>", rowdata()),
        format!("<?xml version=\"1.0\" encoding=\"utf-16\"?>{}", rowdata()),
        format!(" <?xml version=\"1.0\"?>{}", rowdata()),
        rowdata_with("Nonnast, Leon", "Nonnast, \u{1}&#1;"),
    ] {
        let err = error_of(&xml);
        assert!(matches!(err, SoapError::Malformed { .. }), "{err:?}");
        assert!(err.is_unreadable());
        assert!(
            err.to_string().starts_with("malformed XML at byte "),
            "{err}"
        );
    }
}

#[test]
fn invalid_utf8_is_malformed() {
    let mut bytes = rowdata().into_bytes();
    let at = bytes.windows(6).position(|w| w == b"Nonnas").unwrap();
    bytes[at] = 0xFF;
    let err = parse_request(&bytes, &Limits::default()).unwrap_err();
    assert!(matches!(err, SoapError::Malformed { .. }), "{err:?}");
    // Anywhere in the document, even where nothing is decoded.
    let mut bytes = rowdata_with("<s:Header>", "<s:Header><!-- \u{FFFD} -->").into_bytes();
    let at = bytes
        .windows(3)
        .position(|w| w == "\u{FFFD}".as_bytes())
        .unwrap();
    bytes[at..at + 3].copy_from_slice(&[0xC3, 0x28, 0x20]);
    let err = parse_request(&bytes, &Limits::default()).unwrap_err();
    assert!(matches!(err, SoapError::Malformed { .. }), "{err:?}");
}

#[test]
fn doctype_is_refused_before_any_entity_is_defined() {
    let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>"#;
    let external = r#"<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>"#;
    for prolog in [billion_laughs, external, "<!DOCTYPE s:Envelope>"] {
        let xml = format!("{prolog}{}", rowdata_with("Nonnast, Leon", "&lol9;&xxe;"));
        let err = error_of(&xml);
        assert_eq!(err, SoapError::Doctype);
        assert!(err.is_unreadable());
        assert_eq!(
            err.to_string(),
            "DOCTYPE declarations are refused: SOAP messages carry no DTD and no entity definitions"
        );
    }
}

#[test]
fn unknown_entity_references_are_refused() {
    let err = error_of(&rowdata_with("Nonnast, Leon", "Nonnast, &xxe;"));
    assert_eq!(err, SoapError::UnknownEntity("xxe".into()));
    assert!(err.is_unreadable());
    assert!(
        err.to_string()
            .starts_with("unknown entity reference &xxe;")
    );
    // The same inside a skipped header entry.
    let xml = rowdata_with(
        "<s:Header>",
        "<s:Header><x:Other xmlns:x=\"urn:x\">&nbsp;</x:Other>",
    );
    assert_eq!(error_of(&xml), SoapError::UnknownEntity("nbsp".into()));
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    // Real RowData nests 9 levels deep.
    let xml = rowdata();
    assert!(parse_request(xml.as_bytes(), &Limits { max_depth: 9 }).is_ok());
    let err = parse_request(xml.as_bytes(), &Limits { max_depth: 8 }).unwrap_err();
    assert_eq!(err, SoapError::TooDeep { limit: 8 });
    assert!(err.is_unreadable());
    // Deep nesting in a part that would be skipped is refused too.
    let deep = format!(
        "{}{}",
        "<x:d xmlns:x=\"urn:x\">".repeat(40),
        "</x:d>".repeat(40)
    );
    let err = error_of(&rowdata_with("<s:Header>", &format!("<s:Header>{deep}")));
    assert_eq!(err, SoapError::TooDeep { limit: 32 });
    assert_eq!(
        err.to_string(),
        "elements are nested deeper than the limit of 32 levels"
    );
}

#[test]
fn envelope_errors_are_unreadable() {
    let soap12 = rowdata().replace(
        "http://schemas.xmlsoap.org/soap/envelope/",
        "http://www.w3.org/2003/05/soap-envelope",
    );
    let cases = [
        (
            "<RowDataRequest xmlns=\"http://www.superoffice.com/online/mirroring/0.1\"/>".to_owned(),
            "not a SOAP 1.1 envelope: the root element is {http://www.superoffice.com/online/mirroring/0.1}RowDataRequest",
        ),
        (
            soap12,
            "not a SOAP 1.1 envelope: the root element is {http://www.w3.org/2003/05/soap-envelope}Envelope",
        ),
        (
            "<Envelope/>".to_owned(),
            "not a SOAP 1.1 envelope: the root element is Envelope",
        ),
        (
            envelope(&format!("<FooRequest xmlns=\"{MIRRORING}\"/>")),
            "the SOAP Body holds no known operation: {http://www.superoffice.com/online/mirroring/0.1}FooRequest",
        ),
        (
            envelope("<RowDataRequest xmlns=\"http://example.com/wrong\"><DataBatches/></RowDataRequest>"),
            "the SOAP Body holds no known operation: {http://example.com/wrong}RowDataRequest",
        ),
        (
            envelope(&format!("<RowDataResponse xmlns=\"{MIRRORING}\"/>")),
            "the SOAP Body holds no known operation: {http://www.superoffice.com/online/mirroring/0.1}RowDataResponse",
        ),
        (envelope(""), "the SOAP Body holds no known operation: the Body is empty"),
        (
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Header/></s:Envelope>".to_owned(),
            "the SOAP envelope has no Body",
        ),
    ];
    for (xml, message) in cases {
        let err = error_of(&xml);
        assert_eq!(err.to_string(), message);
        assert!(err.is_unreadable(), "{err:?}");
    }
}

#[test]
fn missing_or_blank_token_is_a_content_error() {
    let token_start = "<h:SignedToken";
    let xml = rowdata();
    let start = xml.find(token_start).unwrap();
    let end = xml.find("</h:SignedToken>").unwrap() + "</h:SignedToken>".len();
    let without = format!("{}{}", &xml[..start], &xml[end..]);
    let blank = format!(
        "{}<h:SignedToken xmlns:h=\"{MIRRORING}\">  \r\n </h:SignedToken>{}",
        &xml[..start],
        &xml[end..]
    );
    let other_ns = format!(
        "{}<h:SignedToken xmlns:h=\"urn:other\">a.b.c</h:SignedToken>{}",
        &xml[..start],
        &xml[end..]
    );
    let no_header = xml.replace(
        &xml[xml.find("<s:Header>").unwrap()..xml.find("<s:Body>").unwrap()],
        "",
    );
    for xml in [without, blank, other_ns, no_header] {
        let err = error_of(&xml);
        assert_eq!(err, SoapError::MissingToken);
        assert!(!err.is_unreadable());
        assert_eq!(
            err.to_string(),
            "the SignedToken header is missing or empty"
        );
    }
}

#[test]
fn content_errors_name_their_place() {
    let cases = [
        (
            rowdata_with("<a:LSN>1506269</a:LSN>", "<a:LSN>15x</a:LSN>"),
            "RowDataRequest/DataBatches/RowDataBatch[0]/LSN: \"15x\" is not a valid 64-bit integer",
        ),
        (
            rowdata_with(
                "<a:LSN>1506269</a:LSN>",
                "<a:LSN>99999999999999999999</a:LSN>",
            ),
            "RowDataRequest/DataBatches/RowDataBatch[0]/LSN: \"99999999999999999999\" is not a valid 64-bit integer",
        ),
        (
            rowdata_with("<a:LSN>1506269</a:LSN>", "<a:LSN></a:LSN>"),
            "RowDataRequest/DataBatches/RowDataBatch[0]/LSN: \"\" is not a valid 64-bit integer",
        ),
        (
            rowdata_with("<a:LSN>1506269</a:LSN>", ""),
            "RowDataRequest/DataBatches/RowDataBatch[0]: missing element LSN",
        ),
        (
            rowdata_with("<a:LSN>1506269</a:LSN>", "<a:LSN>1</a:LSN><a:LSN>2</a:LSN>"),
            "RowDataRequest/DataBatches/RowDataBatch[0]: element LSN appears more than once",
        ),
        (
            rowdata_with("<a:LSN>1506269</a:LSN>", "<a:LSN i:nil=\"true\"/>"),
            "RowDataRequest/DataBatches/RowDataBatch[0]/LSN: element LSN is nil but a value is required",
        ),
        (
            rowdata_with(
                "<a:IsNullable>false</a:IsNullable>",
                "<a:IsNullable>False</a:IsNullable>",
            ),
            "RowDataRequest/DataBatches/RowDataBatch[0]/TableInfo/Columns/ColumnInfo[0]/IsNullable: \"False\" is not a valid boolean (true or false)",
        ),
        (
            rowdata_with("<a:Name>invitation_id</a:Name>", ""),
            "RowDataRequest/DataBatches/RowDataBatch[0]/TableInfo/Columns/ColumnInfo[0]: missing element Name",
        ),
        (
            rowdata_with("<a:Operation>I</a:Operation>", ""),
            "RowDataRequest/DataBatches/RowDataBatch[0]/Data/RowData[0]: missing element Operation",
        ),
        (
            rowdata_with(
                "<a:TableName>invitation</a:TableName>",
                "<TableName>invitation</TableName>",
            ),
            "RowDataRequest/DataBatches/RowDataBatch[0]/TableInfo: unexpected element {http://www.superoffice.com/online/mirroring/0.1}TableName",
        ),
        (
            rowdata_with("<b:string>[I:0]</b:string>", "<a:string>[I:0]</a:string>"),
            "RowDataRequest/DataBatches/RowDataBatch[0]/Data/RowData[0]/ColumnValues: unexpected element {http://schemas.datacontract.org/2004/07/SuperOffice.Online.Mirroring.Contract.V1}string",
        ),
        (
            rowdata_with(
                "<b:string>[I:0]</b:string>",
                "<b:string>[I:<b>0</b>]</b:string>",
            ),
            "RowDataRequest/DataBatches/RowDataBatch[0]/Data/RowData[0]/ColumnValues/string[2]: unexpected element {http://www.superoffice.com/online/mirroring/0.1}b",
        ),
        (
            rowdata_with(
                "<b:string>[I:0]</b:string>",
                "<b:string i:nil=\"true\">[I:0]</b:string>",
            ),
            "RowDataRequest/DataBatches/RowDataBatch[0]/Data/RowData[0]/ColumnValues/string[2]: element string is nil but has content",
        ),
        (
            rowdata_with("<b:string>[I:0]</b:string>", "<b:string i:nil=\"maybe\"/>"),
            "RowDataRequest/DataBatches/RowDataBatch[0]/Data/RowData[0]/ColumnValues: \"maybe\" is not a valid xsi:nil value (true or false)",
        ),
        (
            rowdata_with("<a:RowDataBatch>", "stray text<a:RowDataBatch>"),
            // Text is reported as it is, with its leading white space (CR LF normalised to LF).
            "RowDataRequest/DataBatches: unexpected text \"\\n                stray text\"",
        ),
        (
            rowdata_with("<a:RowDataBatch>", "<a:RowDataBatchX/><a:RowDataBatch>"),
            "RowDataRequest/DataBatches: unexpected element {http://schemas.datacontract.org/2004/07/SuperOffice.Online.Mirroring.Contract.V1}RowDataBatchX",
        ),
        (
            rowdata_with(
                "</RowDataRequest>",
                "</RowDataRequest><Extra xmlns=\"urn:x\"/>",
            ),
            "Body: unexpected element {urn:x}Extra",
        ),
        (
            envelope(&format!(
                "<RowDataRequest xmlns=\"{MIRRORING}\"><ClientState/></RowDataRequest>"
            )),
            "RowDataRequest: missing element DataBatches",
        ),
        (
            envelope(&format!(
                "<WipeRequest xmlns=\"{MIRRORING}\"><TableName xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\" i:nil=\"true\"/></WipeRequest>"
            )),
            "WipeRequest/TableName: element TableName is nil but a value is required",
        ),
        (
            envelope(&format!(
                "<ReplicationCompletedRequest xmlns=\"{MIRRORING}\"><ChangedTables xmlns:a=\"http://schemas.datacontract.org/2004/07/SuperOffice.Online.Mirroring.Contract.V1\"><a:ReplicationSummary><a:Deletes>0</a:Deletes><a:Inserts>1.5</a:Inserts><a:TableName>t</a:TableName><a:Updates>0</a:Updates></a:ReplicationSummary></ChangedTables></ReplicationCompletedRequest>"
            )),
            "ReplicationCompletedRequest/ChangedTables/ReplicationSummary[0]/Inserts: \"1.5\" is not a valid 32-bit integer",
        ),
    ];
    for (xml, message) in cases {
        let err = error_of(&xml);
        assert_eq!(err.to_string(), message);
        assert!(!err.is_unreadable(), "{err:?}");
        assert!(matches!(err, SoapError::Invalid { .. }), "{err:?}");
    }
}

#[test]
fn a_content_error_in_a_document_that_is_not_xml_is_reported_as_malformed() {
    let xml = rowdata_with("<a:LSN>1506269</a:LSN>", "<a:LSN>15x</a:LSN>");
    let truncated = &xml[..xml.len() - 30];
    let err = error_of(truncated);
    assert!(matches!(err, SoapError::Malformed { .. }), "{err:?}");
}

#[test]
fn bad_rows_are_refused_by_batch_decoding() {
    let decode = |xml: &str| {
        let request = parse_request(xml.as_bytes(), &Limits::default()).unwrap();
        let RequestBody::RowData { batches } = request.body else {
            panic!("not RowData")
        };
        decode_batches(&batches).unwrap_err().to_string()
    };
    // The second row loses its last value.
    let xml = rowdata();
    let second_row = xml.find("<b:string>[I:2]</b:string>").unwrap();
    let last_value = second_row + xml[second_row..].find("<b:string>[DT:01/01/1760").unwrap();
    let short = format!(
        "{}{}",
        &xml[..last_value],
        &xml[last_value + "<b:string>[DT:01/01/1760 00:00:00.0000000]</b:string>".len()..]
    );
    assert_eq!(
        decode(&short),
        "table invitation, row 1: 13 values for 14 columns"
    );
    assert_eq!(
        decode(&rowdata_with("[DT:05/18/2020 08:40:45.0000000]", "[DT:x]")),
        "table invitation, row 0, column updated (datetime): \"[DT:x]\" is not a valid datetime value"
    );
    assert_eq!(
        decode(&rowdata_with(
            "<a:Operation>I</a:Operation>",
            "<a:Operation>X</a:Operation>"
        )),
        "table invitation, row 0: unknown operation \"X\""
    );
    assert_eq!(
        decode(&rowdata_with(
            "<a:Type>smallint</a:Type>",
            "<a:Type>money</a:Type>"
        )),
        "table invitation: column updatedcount: unsupported column type \"money\""
    );
    assert_eq!(
        decode(&rowdata_with(
            "<b:string>[I:1]</b:string>",
            "<b:string i:nil=\"true\"/>"
        )),
        "table invitation, row 0, column invitation_id (int): NULL in a non-nullable int column"
    );
}

#[test]
fn every_truncation_of_a_request_is_an_error_not_a_panic() {
    let xml = rowdata().into_bytes();
    for end in 0..xml.len() - 1 {
        let result = parse_request(&xml[..end], &Limits::default());
        // Cutting inside the trailing white space after the root still leaves a whole document.
        if end < xml.len() - 2 {
            assert!(result.is_err(), "prefix of {end} bytes was accepted");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_request(&bytes, &Limits::default());
    }

    #[test]
    fn mutated_requests_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
    ) {
        let mut xml = rowdata().into_bytes();
        for (at, byte) in edits {
            let i = at.index(xml.len());
            xml[i] = byte;
        }
        if let Ok(request) = parse_request(&xml, &Limits::default())
            && let RequestBody::RowData { batches } = &request.body
        {
            let _ = decode_batches(batches);
        }
    }
}

#[test]
fn problem_messages_are_precise() {
    assert_eq!(Problem::Missing("LSN").to_string(), "missing element LSN");
    assert_eq!(
        SoapError::Fault {
            code: "s:Client".into(),
            message: "bad".into()
        }
        .to_string(),
        "SOAP fault s:Client: bad"
    );
}
