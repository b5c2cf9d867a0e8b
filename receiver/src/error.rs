//! Everything that can go wrong with one call, and the one place that decides how SuperOffice
//! hears about it: a SOAP fault (HTTP 500) when the request cannot be understood at all, otherwise
//! `IsSuccessful=false` with a precise `ErrorMessage`, so the Mirroring Task logs it and resends
//! in a later cycle.

use mirror_common::auth::AuthError;
use mirror_common::batch::BatchError;
use mirror_common::schema::SchemaError;
use mirror_common::soap::SoapError;

use crate::publisher::{PublishError, SchemaRequestError};

/// The answer to a broker outage. Nothing was accepted, so MT must send the same changes again.
pub const BROKER_UNAVAILABLE: &str =
    "message broker unavailable; nothing was accepted, resend later";
/// The answer when the applier did not reply to TableSchema in time. The schema message is in the
/// queue and will be applied; the next cycle gets the LSNs.
pub const MIRROR_BUSY: &str =
    "mirror busy applying earlier changes; the schema will be applied, retry next cycle";

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("cannot read the request body: {0}")]
    BodyRead(String),
    #[error("unknown SOAPAction {0:?}")]
    UnknownAction(String),
    #[error("SOAPAction {header} does not match the body's operation {body}")]
    ActionMismatch {
        header: &'static str,
        body: &'static str,
    },
    #[error("{0}")]
    Soap(#[from] SoapError),
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Batch(#[from] BatchError),
    #[error("{0}")]
    Schema(#[from] SchemaError),
    #[error("{BROKER_UNAVAILABLE}")]
    Publish(#[from] PublishError),
    #[error("{0}")]
    SchemaRequest(#[from] SchemaRequestError),
    /// The applier could not apply the schema; its reason is passed on.
    #[error("the mirror could not apply the schema: {0}")]
    SchemaFailed(String),
    /// The service is stopping and takes no more calls.
    #[error("the service is shutting down; resend later")]
    ShuttingDown,
}

/// How a failed call is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// SOAP fault, HTTP 500: the request cannot be understood.
    Fault(String),
    /// HTTP 200 with `IsSuccessful=false` and this `ErrorMessage`.
    Failure(String),
}

impl CallError {
    pub fn answer(&self) -> Answer {
        match self {
            CallError::BodyTooLarge { .. }
            | CallError::BodyRead(_)
            | CallError::UnknownAction(_)
            | CallError::ActionMismatch { .. } => Answer::Fault(self.to_string()),
            CallError::Soap(error) => {
                if error.is_unreadable() {
                    Answer::Fault(self.to_string())
                } else {
                    Answer::Failure(self.to_string())
                }
            }
            CallError::Auth(_)
            | CallError::Batch(_)
            | CallError::Schema(_)
            | CallError::SchemaFailed(_)
            | CallError::ShuttingDown => Answer::Failure(self.to_string()),
            CallError::Publish(_) => Answer::Failure(BROKER_UNAVAILABLE.to_owned()),
            CallError::SchemaRequest(error) => match error {
                SchemaRequestError::Publish(_) => Answer::Failure(BROKER_UNAVAILABLE.to_owned()),
                SchemaRequestError::ReplyTimeout(_) | SchemaRequestError::ReplyLost(_) => {
                    Answer::Failure(MIRROR_BUSY.to_owned())
                }
                SchemaRequestError::BadReply(reason) => Answer::Failure(format!(
                    "the mirror's schema reply is unreadable ({reason}); the schema will be applied, retry next cycle"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_requests_are_faults_and_bad_content_is_a_failure() {
        assert_eq!(
            CallError::Soap(SoapError::Doctype).answer(),
            Answer::Fault(SoapError::Doctype.to_string())
        );
        assert_eq!(
            CallError::Soap(SoapError::MissingToken).answer(),
            Answer::Failure(SoapError::MissingToken.to_string())
        );
        assert_eq!(
            CallError::BodyTooLarge { limit: 2048 }.answer(),
            Answer::Fault("the request body is larger than the limit of 2048 bytes".into())
        );
        assert!(matches!(
            CallError::UnknownAction("\"x\"".into()).answer(),
            Answer::Fault(_)
        ));
    }

    #[test]
    fn broker_trouble_never_claims_acceptance() {
        assert_eq!(
            CallError::Publish(PublishError::Nacked).answer(),
            Answer::Failure(BROKER_UNAVAILABLE.into())
        );
        assert_eq!(
            CallError::SchemaRequest(SchemaRequestError::Publish(PublishError::Timeout(15)))
                .answer(),
            Answer::Failure(BROKER_UNAVAILABLE.into())
        );
        assert_eq!(
            CallError::SchemaRequest(SchemaRequestError::ReplyTimeout(45)).answer(),
            Answer::Failure(MIRROR_BUSY.into())
        );
        assert_eq!(
            CallError::SchemaFailed("disk full".into()).answer(),
            Answer::Failure("the mirror could not apply the schema: disk full".into())
        );
    }
}
