//! Parsing the five requests of `IMirroringClientService` (the receiver's side).

use super::contract::{
    array, member, non_nil, required, row_batch, set, string, summary, table_schema,
};
use super::envelope::parse_envelope;
use super::error::SoapError;
use super::name::{Element, Ns};
use super::reader::XmlReader;
use super::{Limits, NS_MIRRORING, Operation, Request, RequestBody};

/// The operation named by a `SOAPAction` header: the exact action URI, with or without the
/// surrounding double quotes WCF sends. `None` for anything else.
pub fn operation_from_soap_action(header: &str) -> Option<Operation> {
    let action = header.trim();
    let action = action
        .strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .unwrap_or(action);
    let name = action
        .strip_prefix(NS_MIRRORING)?
        .strip_prefix("/IMirroringClientService/")?;
    Operation::ALL.into_iter().find(|op| op.name() == name)
}

/// Parses a request body. Row values borrow from `body` where nothing needed unescaping.
///
/// The operation is the Body's element (`<RowDataRequest xmlns="…/mirroring/0.1">` …); the caller
/// may compare it with the `SOAPAction` header through [`RequestBody::operation`].
pub fn parse_request<'a>(body: &'a [u8], limits: &Limits) -> Result<Request<'a>, SoapError> {
    let (token, (client_state, body)) = parse_envelope(body, limits, |r, el| {
        let Some(op) = request_operation(el) else {
            return Ok(None);
        };
        operation_body(r, op)
            .map(Some)
            .map_err(|e| e.within(&el.name))
    })?;
    let token = token.ok_or(SoapError::MissingToken)?;
    Ok(Request {
        token,
        client_state,
        body,
    })
}

fn request_operation(el: &Element) -> Option<Operation> {
    if el.ns != Ns::Mirroring {
        return None;
    }
    let name = el.name.strip_suffix("Request")?;
    Operation::ALL.into_iter().find(|op| op.name() == name)
}

/// The wrapper's members in any order; unknown members of the wrapper's namespace are skipped.
fn operation_body<'a>(
    r: &mut XmlReader<'a>,
    op: Operation,
) -> Result<(String, RequestBody<'a>), SoapError> {
    let mut client_state = None;
    let mut tables = None;
    let mut batches = None;
    let mut table = None;
    let mut summaries = None;
    while let Some(el) = r.next_child()? {
        let field = member(&el, &Ns::Mirroring)?;
        let within = |e: SoapError| e.within(field);
        match (op, field) {
            (_, "ClientState") => set(&mut client_state, field, string(r, &el).map_err(within)?)?,
            (Operation::TableSchema, "Tables") => {
                let value = array(r, &el, "TableSchemaInfo", table_schema).map_err(within)?;
                set(&mut tables, field, value)?;
            }
            (Operation::RowData, "DataBatches") => {
                let value = array(r, &el, "RowDataBatch", row_batch).map_err(within)?;
                set(&mut batches, field, value)?;
            }
            (Operation::Wipe, "TableName") => {
                let value = non_nil(r, &el).map_err(within)?.into_owned();
                set(&mut table, field, value)?;
            }
            (Operation::ReplicationCompleted, "ChangedTables") => {
                let value = array(r, &el, "ReplicationSummary", summary).map_err(within)?;
                set(&mut summaries, field, value)?;
            }
            _ => r.skip()?,
        }
    }
    let body = match op {
        Operation::Authenticate => RequestBody::Authenticate,
        Operation::TableSchema => RequestBody::TableSchema {
            tables: required(tables, "Tables")?,
        },
        Operation::RowData => RequestBody::RowData {
            batches: required(batches, "DataBatches")?,
        },
        Operation::Wipe => RequestBody::Wipe {
            table: required(table, "TableName")?,
        },
        Operation::ReplicationCompleted => RequestBody::ReplicationCompleted {
            summaries: required(summaries, "ChangedTables")?,
        },
    };
    Ok((client_state.unwrap_or_default(), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soap_action_is_matched_exactly() {
        let action =
            "http://www.superoffice.com/online/mirroring/0.1/IMirroringClientService/RowData";
        assert_eq!(operation_from_soap_action(action), Some(Operation::RowData));
        assert_eq!(
            operation_from_soap_action(&format!("\"{action}\"")),
            Some(Operation::RowData)
        );
        for op in Operation::ALL {
            assert_eq!(operation_from_soap_action(&op.soap_action()), Some(op));
        }
        for bad in [
            "",
            "\"\"",
            "RowData",
            "\"http://www.superoffice.com/online/mirroring/0.1/IMirroringClientService/RowData",
            "http://www.superoffice.com/online/mirroring/0.1/IMirroringClientService/rowdata",
            "http://www.superoffice.com/online/mirroring/0.2/IMirroringClientService/RowData",
            "http://www.superoffice.com/online/mirroring/0.1/IMirroringClientService/RowDataX",
            "http://www.superoffice.com/online/mirroring/0.1/Other/RowData",
        ] {
            assert_eq!(operation_from_soap_action(bad), None, "{bad:?}");
        }
    }
}
