//! What can be wrong with a SOAP message, split the way the receiver must answer it: a message that
//! cannot be read at all gets a SOAP fault, a readable call with bad content gets
//! `IsSuccessful=false` and the message.

use std::fmt;

/// An error from parsing a SOAP request or response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    /// Not well-formed XML (syntax, mismatched tags, bad UTF-8, undeclared prefix …).
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    /// A `<!DOCTYPE …>`: refused outright, so no entity is ever defined or expanded.
    #[error(
        "DOCTYPE declarations are refused: SOAP messages carry no DTD and no entity definitions"
    )]
    Doctype,
    /// `&name;` other than the five predefined entities and character references.
    #[error(
        "unknown entity reference &{0}; (only &lt; &gt; &amp; &apos; &quot; and character references are allowed)"
    )]
    UnknownEntity(String),
    #[error("elements are nested deeper than the limit of {limit} levels")]
    TooDeep { limit: usize },
    /// An element with more attributes than [`MAX_ATTRIBUTES`](super::MAX_ATTRIBUTES).
    #[error("an element has more than {limit} attributes")]
    TooManyAttributes { limit: usize },
    /// More namespace declarations in scope than [`MAX_NAMESPACES`](super::MAX_NAMESPACES).
    #[error("more than {limit} namespace declarations are in scope")]
    TooManyNamespaces { limit: usize },
    #[error("not a SOAP 1.1 envelope: the root element is {0}")]
    NotEnvelope(String),
    #[error("the SOAP envelope has no Body")]
    NoBody,
    #[error("the SOAP Body holds no known operation: {0}")]
    UnknownOperation(String),
    #[error("the SignedToken header is missing or empty")]
    MissingToken,
    /// The operation is known but a part of its content is wrong; `at` is the element path.
    #[error("{at}: {problem}")]
    Invalid { at: String, problem: Problem },
    /// The peer answered with a SOAP fault (only from [`parse_response`](super::parse_response)).
    #[error("SOAP fault {code}: {message}")]
    Fault { code: String, message: String },
}

/// What is wrong at one place of a readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("missing element {0}")]
    Missing(&'static str),
    #[error("element {0} appears more than once")]
    Duplicate(String),
    #[error("unexpected element {0}")]
    UnexpectedElement(String),
    #[error("unexpected text {0:?}")]
    UnexpectedText(String),
    #[error("{value:?} is not a valid {expected}")]
    BadValue {
        value: String,
        expected: &'static str,
    },
    #[error("element {0} is nil but a value is required")]
    Nil(String),
    #[error("element {0} is nil but has content")]
    NilWithContent(String),
}

impl SoapError {
    /// True when the message cannot be identified as an operation at all (not XML, not an
    /// envelope, no known operation, refused DTD, over a structural limit): the receiver answers a
    /// SOAP fault. False when the operation is known but its content is bad: the receiver answers
    /// `IsSuccessful=false` with this error's message.
    pub fn is_unreadable(&self) -> bool {
        match self {
            SoapError::Malformed { .. }
            | SoapError::Doctype
            | SoapError::UnknownEntity(_)
            | SoapError::TooDeep { .. }
            | SoapError::TooManyAttributes { .. }
            | SoapError::TooManyNamespaces { .. }
            | SoapError::NotEnvelope(_)
            | SoapError::NoBody
            | SoapError::UnknownOperation(_) => true,
            SoapError::MissingToken | SoapError::Invalid { .. } | SoapError::Fault { .. } => false,
        }
    }

    /// A content problem at the current element; callers prepend the path with [`within`].
    ///
    /// [`within`]: SoapError::within
    pub(crate) fn invalid(problem: Problem) -> SoapError {
        SoapError::Invalid {
            at: String::new(),
            problem,
        }
    }

    /// Prepends one path segment to a content error (other errors pass through unchanged).
    /// Only called on the error path, so building the path costs nothing when parsing succeeds.
    pub(crate) fn within(self, segment: impl fmt::Display) -> SoapError {
        match self {
            SoapError::Invalid { at, problem } => SoapError::Invalid {
                at: if at.is_empty() {
                    segment.to_string()
                } else {
                    format!("{segment}/{at}")
                },
                problem,
            },
            other => other,
        }
    }
}

/// Shortens echoed input so an error message stays readable.
pub(crate) fn excerpt(raw: &str) -> String {
    const MAX: usize = 80;
    match raw.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &raw[..i]),
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_prepended_outermost_first() {
        let e = SoapError::invalid(Problem::Missing("LSN"))
            .within("RowDataBatch[0]")
            .within("DataBatches")
            .within("RowDataRequest");
        assert_eq!(
            e.to_string(),
            "RowDataRequest/DataBatches/RowDataBatch[0]: missing element LSN"
        );
        assert!(!e.is_unreadable());
    }

    #[test]
    fn unreadable_errors_keep_their_message() {
        let e = SoapError::Doctype.within("Body");
        assert_eq!(e, SoapError::Doctype);
        assert!(e.is_unreadable());
    }

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "é".repeat(100);
        assert_eq!(excerpt(&long).chars().count(), 81);
    }
}
