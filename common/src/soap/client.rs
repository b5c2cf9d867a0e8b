//! The Mirroring Task's side of the codec, for the simulator and tests: rendering requests in the
//! shape SuperOffice sends them and parsing the answers.

use super::contract::{array, boolean, member, required, set, string, table_lsn};
use super::envelope::parse_envelope;
use super::error::SoapError;
use super::name::{Element, Ns};
use super::reader::XmlReader;
use super::writer::Xml;
use super::{
    AuthenticateAnswer, Limits, Operation, Outcome, RawRowBatch, Request, RequestBody, Response,
};
use crate::schema::RawTableSchema;
use crate::wire::ReplicationSummary;

/// Renders a request envelope with `token` as its `SignedToken` header. The request's own `token`
/// field is not used, so one request can be sent again with a fresh token.
pub fn render_request(token: &str, request: &Request<'_>) -> String {
    let op = request.body.operation();
    let wrapper = format!("{}Request", op.name());
    let mut x = Xml::with_capacity(1024 + token.len() + estimated_size(&request.body));
    x.envelope_start(Some(token))
        .wrapper_start(&wrapper)
        .leaf("ClientState", &request.client_state);
    match &request.body {
        RequestBody::Authenticate => {}
        RequestBody::TableSchema { tables } => {
            if x.array_start("Tables", tables.is_empty()) {
                for table in tables {
                    table_schema(&mut x, "a:TableSchemaInfo", table);
                }
                x.close("Tables");
            }
        }
        RequestBody::RowData { batches } => {
            if x.array_start("DataBatches", batches.is_empty()) {
                for batch in batches {
                    row_batch(&mut x, batch);
                }
                x.close("DataBatches");
            }
        }
        RequestBody::Wipe { table } => {
            x.leaf("TableName", table);
        }
        RequestBody::ReplicationCompleted { summaries } => {
            if x.array_start("ChangedTables", summaries.is_empty()) {
                for summary in summaries {
                    replication_summary(&mut x, summary);
                }
                x.close("ChangedTables");
            }
        }
    }
    x.close(&wrapper).envelope_end();
    x.finish()
}

/// Roughly the rendered size, so a ~1 MB RowData call is written without reallocating.
fn estimated_size(body: &RequestBody<'_>) -> usize {
    let table = |t: &RawTableSchema| 96 + t.columns.len() * 160;
    match body {
        RequestBody::Authenticate | RequestBody::Wipe { .. } => 0,
        RequestBody::TableSchema { tables } => tables.iter().map(table).sum(),
        RequestBody::RowData { batches } => batches
            .iter()
            .map(|b| {
                let values: usize = b
                    .rows
                    .iter()
                    .flat_map(|r| &r.values)
                    .map(|v| 24 + v.as_ref().map_or(0, |v| v.len()))
                    .sum();
                table(&b.table) + values + b.rows.len() * 96
            })
            .sum(),
        RequestBody::ReplicationCompleted { summaries } => summaries.len() * 160,
    }
}

fn table_schema(x: &mut Xml, tag: &str, table: &RawTableSchema) {
    x.open(tag).open("a:Columns");
    for column in &table.columns {
        x.open("a:ColumnInfo")
            .leaf("a:DefaultValue", &column.default)
            .leaf(
                "a:IsNullable",
                if column.nullable { "true" } else { "false" },
            )
            .leaf("a:Name", &column.name)
            .leaf("a:Type", &column.ty)
            .close("a:ColumnInfo");
    }
    x.close("a:Columns")
        .leaf("a:TableName", &table.name)
        .close(tag);
}

fn row_batch(x: &mut Xml, batch: &RawRowBatch<'_>) {
    x.open("a:RowDataBatch").open("a:Data");
    for row in &batch.rows {
        x.open("a:RowData").string_array_start("a:ColumnValues");
        for value in &row.values {
            match value {
                None => x.raw("<b:string i:nil=\"true\"/>"),
                Some(v) => x.leaf("b:string", v),
            };
        }
        x.close("a:ColumnValues")
            .leaf("a:Operation", &row.operation)
            .close("a:RowData");
    }
    x.close("a:Data").number("a:LSN", batch.lsn);
    table_schema(x, "a:TableInfo", &batch.table);
    x.close("a:RowDataBatch");
}

fn replication_summary(x: &mut Xml, summary: &ReplicationSummary) {
    x.open("a:ReplicationSummary")
        .number("a:Deletes", summary.deletes)
        .number("a:Inserts", summary.inserts)
        .leaf("a:TableName", &summary.table)
        .number("a:Updates", summary.updates)
        .close("a:ReplicationSummary");
}

/// Parses a response body. A SOAP fault is returned as [`SoapError::Fault`].
pub fn parse_response(body: &[u8], limits: &Limits) -> Result<Response, SoapError> {
    let (_, response) = parse_envelope(body, limits, |r, el| {
        if el.is(&Ns::Envelope, "Fault") {
            return Err(fault(r).map_err(|e| e.within("Fault"))?);
        }
        let Some(op) = response_operation(el) else {
            return Ok(None);
        };
        response_body(r, op)
            .map(Some)
            .map_err(|e| e.within(&el.name))
    })?;
    Ok(response)
}

fn response_operation(el: &Element) -> Option<Operation> {
    if el.ns != Ns::Mirroring {
        return None;
    }
    let name = el.name.strip_suffix("Response")?;
    Operation::ALL.into_iter().find(|op| op.name() == name)
}

/// The answer's members in any order. Only `IsSuccessful` is required: a failed answer may omit
/// the rest, which then read as empty.
fn response_body(r: &mut XmlReader<'_>, op: Operation) -> Result<Response, SoapError> {
    let mut ok = None;
    let mut strings: [Option<String>; 6] = Default::default();
    let mut lsns = None;
    const NAMES: [&str; 6] = [
        "ErrorMessage",
        "SignedApplicationToken",
        "SupportedInterfaces",
        "SuperOfficeMirroringBuild",
        "ClientState",
        "AdditionalInformationJson",
    ];
    while let Some(el) = r.next_child()? {
        let field = member(&el, &Ns::Mirroring)?;
        let within = |e: SoapError| e.within(field);
        if field == "IsSuccessful" {
            set(&mut ok, field, boolean(r, &el).map_err(within)?)?;
        } else if field == "MirrorLSN" && op == Operation::TableSchema {
            let value = if el.nil {
                r.skip()?;
                Vec::new()
            } else {
                array(r, &el, "TableLSN", table_lsn).map_err(within)?
            };
            set(&mut lsns, field, value)?;
        } else if let Some(i) = NAMES.iter().position(|n| *n == field)
            && (i == 0 || op == Operation::Authenticate)
        {
            set(&mut strings[i], field, string(r, &el).map_err(within)?)?;
        } else {
            r.skip()?;
        }
    }
    let [error, token, interfaces, build, client_state, json] =
        strings.map(Option::unwrap_or_default);
    let outcome = Outcome {
        ok: required(ok, "IsSuccessful")?,
        error,
    };
    Ok(match op {
        Operation::Authenticate => Response::Authenticate {
            outcome,
            answer: AuthenticateAnswer {
                signed_application_token: token,
                supported_interfaces: interfaces,
                build,
                client_state,
                additional_information_json: json,
            },
        },
        Operation::TableSchema => Response::TableSchema {
            outcome,
            lsns: lsns.unwrap_or_default(),
        },
        Operation::RowData => Response::RowData(outcome),
        Operation::Wipe => Response::Wipe(outcome),
        Operation::ReplicationCompleted => Response::ReplicationCompleted(outcome),
    })
}

/// `s:Fault { faultcode, faultstring, faultactor?, detail? }` (children unqualified).
fn fault(r: &mut XmlReader<'_>) -> Result<SoapError, SoapError> {
    let mut code = None;
    let mut message = None;
    while let Some(el) = r.next_child()? {
        match member(&el, &Ns::None)? {
            "faultcode" => set(&mut code, "faultcode", string(r, &el)?)?,
            "faultstring" => set(&mut message, "faultstring", string(r, &el)?)?,
            _ => r.skip()?,
        }
    }
    Ok(SoapError::Fault {
        code: code.unwrap_or_default().trim().to_owned(),
        message: message.unwrap_or_default(),
    })
}
