//! SOAP 1.1 codec for SuperOffice's `IMirroringClientService` (WCF `basicHttpBinding`).
//!
//! Requests are parsed by namespace URI (never by prefix) with a streaming reader, no DTDs and no
//! entity expansion, within depth and size limits. Responses are emitted with exactly the member
//! order and namespaces of the WCF contract, because WCF silently drops out-of-order members.
//! Both directions exist for both sides: the receiver parses requests and renders responses; the
//! simulator renders requests and parses responses.

use std::borrow::Cow;

use crate::schema::RawTableSchema;
use crate::wire::{ReplicationSummary, TableLsn};

/// `http://schemas.xmlsoap.org/soap/envelope/`
pub const NS_ENVELOPE: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Operation wrappers and the `SignedToken` header.
pub const NS_MIRRORING: &str = "http://www.superoffice.com/online/mirroring/0.1";
/// Data contracts (TableSchemaInfo, ColumnInfo, RowData …).
pub const NS_CONTRACT: &str =
    "http://schemas.datacontract.org/2004/07/SuperOffice.Online.Mirroring.Contract.V1";
/// String arrays (items named `string`).
pub const NS_ARRAYS: &str = "http://schemas.microsoft.com/2003/10/Serialization/Arrays";
/// The `nil` attribute.
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The five operations of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Authenticate,
    TableSchema,
    RowData,
    Wipe,
    ReplicationCompleted,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::Authenticate,
        Operation::TableSchema,
        Operation::RowData,
        Operation::Wipe,
        Operation::ReplicationCompleted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::Authenticate => "Authenticate",
            Operation::TableSchema => "TableSchema",
            Operation::RowData => "RowData",
            Operation::Wipe => "Wipe",
            Operation::ReplicationCompleted => "ReplicationCompleted",
        }
    }

    /// The SOAPAction header value (without the surrounding quotes).
    pub fn soap_action(self) -> String {
        format!("{NS_MIRRORING}/IMirroringClientService/{}", self.name())
    }
}

/// A parsed request. Row values borrow from the request body where no unescaping was needed.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<'a> {
    /// The `SignedToken` header, trimmed.
    pub token: String,
    pub client_state: String,
    pub body: RequestBody<'a>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RequestBody<'a> {
    Authenticate,
    TableSchema { tables: Vec<RawTableSchema> },
    RowData { batches: Vec<RawRowBatch<'a>> },
    Wipe { table: String },
    ReplicationCompleted { summaries: Vec<ReplicationSummary> },
}

impl RequestBody<'_> {
    pub fn operation(&self) -> Operation {
        match self {
            RequestBody::Authenticate => Operation::Authenticate,
            RequestBody::TableSchema { .. } => Operation::TableSchema,
            RequestBody::RowData { .. } => Operation::RowData,
            RequestBody::Wipe { .. } => Operation::Wipe,
            RequestBody::ReplicationCompleted { .. } => Operation::ReplicationCompleted,
        }
    }
}

/// One `RowDataBatch`, before its values are decoded by type.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRowBatch<'a> {
    pub table: RawTableSchema,
    pub lsn: i64,
    pub rows: Vec<RawRow<'a>>,
}

/// One `RowData`: the operation letter and positional values (`None` = `i:nil="true"`).
#[derive(Debug, Clone, PartialEq)]
pub struct RawRow<'a> {
    pub operation: String,
    pub values: Vec<Option<Cow<'a, str>>>,
}

/// `IsSuccessful` + `ErrorMessage`, common to every response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub error: String,
}

impl Outcome {
    pub fn success() -> Outcome {
        Outcome {
            ok: true,
            error: String::new(),
        }
    }

    pub fn failure(error: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            error: error.into(),
        }
    }
}

/// The Authenticate answer's fields after `IsSuccessful`/`ErrorMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticateAnswer {
    pub signed_application_token: String,
    pub supported_interfaces: String,
    pub build: String,
    pub client_state: String,
    pub additional_information_json: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Authenticate {
        outcome: Outcome,
        answer: AuthenticateAnswer,
    },
    TableSchema {
        outcome: Outcome,
        lsns: Vec<TableLsn>,
    },
    RowData(Outcome),
    Wipe(Outcome),
    ReplicationCompleted(Outcome),
}

impl Response {
    pub fn operation(&self) -> Operation {
        match self {
            Response::Authenticate { .. } => Operation::Authenticate,
            Response::TableSchema { .. } => Operation::TableSchema,
            Response::RowData(_) => Operation::RowData,
            Response::Wipe(_) => Operation::Wipe,
            Response::ReplicationCompleted(_) => Operation::ReplicationCompleted,
        }
    }

    /// `IsSuccessful` + `ErrorMessage` of any response.
    pub fn outcome(&self) -> &Outcome {
        match self {
            Response::Authenticate { outcome, .. } | Response::TableSchema { outcome, .. } => {
                outcome
            }
            Response::RowData(outcome)
            | Response::Wipe(outcome)
            | Response::ReplicationCompleted(outcome) => outcome,
        }
    }
}

/// Most attributes one element may carry; real requests carry at most two. The reader checks an
/// element's attributes for duplicates pairwise, so without this bound a start tag of a few
/// megabytes would cost minutes of CPU.
pub const MAX_ATTRIBUTES: usize = 64;

/// Most namespace declarations in scope at once; real requests have a handful. Every element
/// name is resolved by a linear search of the declarations in scope, so without this bound a few
/// megabytes of declarations and elements would cost minutes of CPU.
pub const MAX_NAMESPACES: usize = 64;

/// Resource limits of the parser. The body size is limited before parsing (by the HTTP layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest element nesting accepted; real requests nest 9 levels.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_depth: 32 }
    }
}

mod client;
mod contract;
mod envelope;
mod error;
mod name;
mod namespaces;
mod reader;
mod request;
mod response;
mod tokens;
mod writer;

pub use client::{parse_response, render_request};
pub use error::{Problem, SoapError};
pub use request::{operation_from_soap_action, parse_request};
pub use response::{render_fault, render_response};
