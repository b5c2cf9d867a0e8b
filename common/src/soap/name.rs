//! Expanded names (namespace URI + local name) of the elements the codec meets, in a form that is
//! cheap to compare: the contract's namespaces as an enum and its local names as static strings,
//! so reading an element allocates nothing unless it is foreign to the contract.

use std::borrow::Cow;

use super::{NS_ARRAYS, NS_CONTRACT, NS_ENVELOPE, NS_MIRRORING, NS_XSI};

/// The namespaces of the contract, recognised once per element so comparisons are cheap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ns {
    /// No namespace (unprefixed name without a default namespace in scope).
    None,
    Envelope,
    Mirroring,
    Contract,
    Arrays,
    Xsi,
    Other(Box<str>),
}

impl Ns {
    pub(crate) fn from_uri(uri: &[u8]) -> Ns {
        match uri {
            b"" => Ns::None,
            u if u == NS_ENVELOPE.as_bytes() => Ns::Envelope,
            u if u == NS_MIRRORING.as_bytes() => Ns::Mirroring,
            u if u == NS_CONTRACT.as_bytes() => Ns::Contract,
            u if u == NS_ARRAYS.as_bytes() => Ns::Arrays,
            u if u == NS_XSI.as_bytes() => Ns::Xsi,
            other => Ns::Other(String::from_utf8_lossy(other).into()),
        }
    }

    fn uri(&self) -> &str {
        match self {
            Ns::None => "",
            Ns::Envelope => NS_ENVELOPE,
            Ns::Mirroring => NS_MIRRORING,
            Ns::Contract => NS_CONTRACT,
            Ns::Arrays => NS_ARRAYS,
            Ns::Xsi => NS_XSI,
            Ns::Other(uri) => uri,
        }
    }
}

/// An element start: its expanded name and whether it carries `xsi:nil="true"`.
#[derive(Debug, Clone)]
pub(crate) struct Element {
    pub ns: Ns,
    pub name: Cow<'static, str>,
    pub nil: bool,
}

impl Element {
    pub fn is(&self, ns: &Ns, name: &str) -> bool {
        self.ns == *ns && self.name == name
    }

    /// The expanded name in Clark notation (`{uri}local`), for messages.
    pub fn display(&self) -> String {
        match self.ns {
            Ns::None => self.name.to_string(),
            _ => format!("{{{}}}{}", self.ns.uri(), self.name),
        }
    }
}

/// Local names of the contract as static strings, so the hot path allocates nothing per element.
pub(crate) fn intern(local: &[u8]) -> Cow<'static, str> {
    const NAMES: &[&str] = &[
        "string",
        "RowData",
        "ColumnValues",
        "Operation",
        "ColumnInfo",
        "DefaultValue",
        "IsNullable",
        "Name",
        "Type",
        "Envelope",
        "Header",
        "Body",
        "Fault",
        "faultcode",
        "faultstring",
        "faultactor",
        "detail",
        "SignedToken",
        "ClientState",
        "AuthenticateRequest",
        "TableSchemaRequest",
        "RowDataRequest",
        "WipeRequest",
        "ReplicationCompletedRequest",
        "AuthenticateResponse",
        "TableSchemaResponse",
        "RowDataResponse",
        "WipeResponse",
        "ReplicationCompletedResponse",
        "Tables",
        "TableSchemaInfo",
        "Columns",
        "TableName",
        "DataBatches",
        "RowDataBatch",
        "Data",
        "LSN",
        "TableInfo",
        "ChangedTables",
        "ReplicationSummary",
        "Deletes",
        "Inserts",
        "Updates",
        "IsSuccessful",
        "ErrorMessage",
        "SignedApplicationToken",
        "SupportedInterfaces",
        "SuperOfficeMirroringBuild",
        "AdditionalInformationJson",
        "MirrorLSN",
        "TableLSN",
    ];
    match NAMES.iter().find(|n| n.as_bytes() == local) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(String::from_utf8_lossy(local).into_owned()),
    }
}
