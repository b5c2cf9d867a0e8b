//! The five operations, once a call is parsed and its token verified: validate the content,
//! publish it to the tenant's partition, and build the answer.

use mirror_common::auth::Claims;
use mirror_common::schema;
use mirror_common::soap::{AuthenticateAnswer, Operation, Outcome, Request, RequestBody, Response};
use mirror_common::wire::{Envelope, Message, SchemaReply};
use mirror_common::{batch, telemetry};
use uuid::Uuid;

use crate::backlog::Backlog;
use crate::error::CallError;
use crate::state::AppState;

/// `SuperOfficeMirroringBuild` in our Authenticate answer.
pub const BUILD: &str = concat!("mirror-receiver ", env!("CARGO_PKG_VERSION"));
/// `SupportedInterfaces`: the only interface version SuperOffice defines.
pub const SUPPORTED_INTERFACES: &str = "1";
/// `AdditionalInformationJson` asking the Mirroring Task to skip this cycle.
pub const DO_NOT_REPLICATE: &str = r#"{"doNotReplicate":"true"}"#;

/// Carries out a verified call. `Ok` holds the answer to send, successful or not.
pub async fn execute(
    state: &AppState,
    request: Request<'_>,
    claims: &Claims,
    trace_id: &str,
) -> Result<Response, CallError> {
    let message = match request.body {
        RequestBody::Authenticate => {
            return Ok(authenticate(state, claims, request.client_state).await);
        }
        RequestBody::TableSchema { tables } => Message::TableSchema {
            tables: schema::validate_tables(&tables)?,
        },
        RequestBody::RowData { batches } => Message::RowData {
            batches: batch::decode_batches(&batches)?,
        },
        RequestBody::Wipe { table } => {
            schema::check_identifier(&table)?;
            Message::Wipe { table }
        }
        RequestBody::ReplicationCompleted { summaries } => {
            for summary in &summaries {
                schema::check_identifier(&summary.table)?;
            }
            Message::ReplicationCompleted { summaries }
        }
    };
    let envelope = Envelope {
        id: Uuid::now_v7(),
        tenant: claims.context_id.clone(),
        received_at_ms: state.now().timestamp_millis(),
        trace_id: if trace_id.is_empty() {
            telemetry::new_trace_id()
        } else {
            trace_id.to_owned()
        },
        message,
    };
    match &envelope.message {
        Message::TableSchema { tables } => {
            tracing::debug!(tables = tables.len(), id = %envelope.id, "Requesting schema apply.");
            match state.publisher.request_schema(&envelope).await? {
                SchemaReply::Applied { lsns } => Ok(Response::TableSchema {
                    outcome: Outcome::success(),
                    lsns,
                }),
                SchemaReply::Failed { error } => Err(CallError::SchemaFailed(error)),
            }
        }
        Message::RowData { .. } | Message::Wipe { .. } | Message::ReplicationCompleted { .. } => {
            state.publisher.publish(&envelope).await?;
            tracing::debug!(id = %envelope.id, "Message accepted.");
            Ok(success(envelope.message.kind()))
        }
    }
}

/// Answers Authenticate: our signature over the caller's nonce, and `doNotReplicate` when the
/// tenant's partition is backlogged or the broker is unreachable (MT then skips the cycle cleanly
/// instead of sending calls we would refuse).
async fn authenticate(state: &AppState, claims: &Claims, client_state: String) -> Response {
    let partition = state.broker.topology().partition_of(&claims.context_id);
    let backlog = state.backlog.check(&state.broker, partition).await;
    match backlog {
        Backlog::Clear => {}
        Backlog::Above(ready) => {
            tracing::info!(
                partition,
                ready,
                "Partition backlogged; asking to skip this cycle."
            );
        }
        Backlog::BrokerUnavailable => {
            tracing::warn!("Message broker unavailable; asking to skip this cycle.");
        }
    }
    Response::Authenticate {
        outcome: Outcome::success(),
        answer: AuthenticateAnswer {
            signed_application_token: state.key.sign_answer(&claims.nonce, state.now()),
            supported_interfaces: SUPPORTED_INTERFACES.to_owned(),
            build: BUILD.to_owned(),
            client_state,
            additional_information_json: if backlog.do_not_replicate() {
                DO_NOT_REPLICATE.to_owned()
            } else {
                String::new()
            },
        },
    }
}

fn success(kind: mirror_common::wire::Kind) -> Response {
    use mirror_common::wire::Kind;
    match kind {
        Kind::RowData => Response::RowData(Outcome::success()),
        Kind::Wipe => Response::Wipe(Outcome::success()),
        Kind::ReplicationCompleted => Response::ReplicationCompleted(Outcome::success()),
        Kind::TableSchema => Response::TableSchema {
            outcome: Outcome::success(),
            lsns: Vec::new(),
        },
    }
}

/// The `IsSuccessful=false` answer of `operation` with `message`.
pub fn failure(operation: Operation, message: String) -> Response {
    let outcome = Outcome::failure(message);
    match operation {
        Operation::Authenticate => Response::Authenticate {
            outcome,
            answer: AuthenticateAnswer {
                signed_application_token: String::new(),
                supported_interfaces: SUPPORTED_INTERFACES.to_owned(),
                build: BUILD.to_owned(),
                client_state: String::new(),
                additional_information_json: String::new(),
            },
        },
        Operation::TableSchema => Response::TableSchema {
            outcome,
            lsns: Vec::new(),
        },
        Operation::RowData => Response::RowData(outcome),
        Operation::Wipe => Response::Wipe(outcome),
        Operation::ReplicationCompleted => Response::ReplicationCompleted(outcome),
    }
}
