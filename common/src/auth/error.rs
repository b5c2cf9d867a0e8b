//! The one error type of the authentication layer.
//!
//! Messages travel back to the caller in `ErrorMessage`, so they are precise about what was wrong
//! with the caller's own token but never reveal our configuration or key material. Values copied
//! from a token are passed through [`printable`] first.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token is {size} bytes, more than the {limit} allowed")]
    TokenTooLarge { size: usize, limit: usize },
    #[error("malformed token: {0}")]
    MalformedToken(&'static str),
    #[error("token algorithm {0} is not allowed (RS256 only)")]
    Algorithm(String),
    #[error("token has no key id (kid)")]
    MissingKeyId,
    #[error("token key id {kid} does not match the {certificate} certificate")]
    KeyIdMismatch { kid: String, certificate: String },
    #[error("token thumbprint (x5t) {x5t} does not match the {certificate} certificate")]
    ThumbprintMismatch { x5t: String, certificate: String },
    #[error("token signature does not verify against the {certificate} certificate")]
    BadSignature { certificate: String },
    #[error("token has no {0} claim")]
    MissingClaim(&'static str),
    #[error("token claim {claim} is invalid: {reason}")]
    InvalidClaim {
        claim: &'static str,
        reason: &'static str,
    },
    #[error("token issuer {0} is not SuperOffice AS")]
    Issuer(String),
    #[error("token audience {0} is not this application")]
    Audience(String),
    #[error("token expired at {}", .0.format("%Y-%m-%dT%H:%M:%SZ"))]
    Expired(DateTime<Utc>),
    #[error("token is not valid before {}", .0.format("%Y-%m-%dT%H:%M:%SZ"))]
    NotYetValid(DateTime<Utc>),
    #[error("token context id {0} is not a valid context id")]
    ContextId(String),
    #[error("token subject {subject} does not match its context id {context_id}")]
    SubjectMismatch { subject: String, context_id: String },

    #[error("malformed application token: {0}")]
    MalformedAnswer(&'static str),
    #[error("application token nonce does not match the nonce sent")]
    AnswerNonce,
    #[error("application token time {stamp} is more than 15 minutes away from now")]
    AnswerTime { stamp: String },
    #[error("application token signature does not verify")]
    AnswerSignature,

    #[error("invalid certificate: {0}")]
    Certificate(String),
    #[error("invalid key: {0}")]
    Key(String),
    #[error("invalid token verifier settings: {0}")]
    Settings(String),
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{key}: {message}")]
    Config { key: &'static str, message: String },
}

/// Longest excerpt of caller-supplied text quoted in an error message.
const QUOTE_LIMIT: usize = 64;

/// Makes caller-supplied text safe to quote in a message: printable ASCII only, bounded length.
pub(crate) fn printable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(QUOTE_LIMIT)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if text.chars().count() > QUOTE_LIMIT {
        out.push('…');
    }
    format!("\"{out}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn printable_quotes_bounds_and_masks() {
        assert_eq!(printable("Cust1"), "\"Cust1\"");
        assert_eq!(printable("a\nb\u{7f}é"), "\"a?b??\"");
        let long = "x".repeat(100);
        let quoted = printable(&long);
        assert!(quoted.ends_with("…\""), "{quoted}");
        assert_eq!(quoted.chars().filter(|c| *c == 'x').count(), QUOTE_LIMIT);
    }

    #[test]
    fn time_messages_use_rfc3339_utc() {
        let at = Utc.with_ymd_and_hms(2021, 9, 16, 11, 23, 46).unwrap();
        assert_eq!(
            AuthError::Expired(at).to_string(),
            "token expired at 2021-09-16T11:23:46Z"
        );
        assert_eq!(
            AuthError::NotYetValid(at).to_string(),
            "token is not valid before 2021-09-16T11:23:46Z"
        );
    }
}
