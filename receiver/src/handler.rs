//! The one POST route SuperOffice calls: dispatch on `SOAPAction`, bounded body reading, token
//! verification, and the translation of every outcome into a SOAP answer.

use std::error::Error as _;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use mirror_common::soap::{self, Operation, Response, SoapError};
use mirror_common::telemetry;
use tracing::Instrument;
use tracing::field::Empty;

use crate::body::{self, BodyError};
use crate::call;
use crate::error::{Answer, CallError};
use crate::metrics::Outcome;
use crate::state::AppState;

/// `Content-Type` of every answer, successful or not.
pub const XML_CONTENT_TYPE: &str = "text/xml; charset=utf-8";
/// The header naming the operation (quoted action URI).
pub const SOAP_ACTION: &str = "soapaction";
/// W3C trace context header; its trace id follows the call into the queue.
pub const TRACEPARENT: &str = "traceparent";

/// What became of a call, with the operation when it is known.
struct Handled {
    operation: Option<Operation>,
    result: Result<Response, CallError>,
}

fn handled(operation: Option<Operation>, error: impl Into<CallError>) -> Handled {
    Handled {
        operation,
        result: Err(error.into()),
    }
}

/// The POST handler.
pub async fn mirroring(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> HttpResponse {
    let trace_id = headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(telemetry::trace_id_from_traceparent)
        .unwrap_or_else(telemetry::new_trace_id);
    let span = tracing::info_span!("call", operation = Empty, tenant = Empty, trace_id = %trace_id);
    let started = Instant::now();
    let handled = process(&state, &headers, body, &trace_id)
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    respond(&state, handled, started)
}

async fn process(state: &AppState, headers: &HeaderMap, body: Body, trace_id: &str) -> Handled {
    let span = tracing::Span::current();
    let announced = match operation_from_header(headers) {
        Ok(operation) => operation,
        Err(error) => return handled(None, error),
    };
    if let Some(operation) = announced {
        span.record("operation", operation.name());
    }
    // Waiting here, before the body is read, is what bounds memory to limit × permits.
    let Ok(_permit) = state.calls.acquire().await else {
        return handled(announced, CallError::ShuttingDown);
    };
    let expected = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let bytes = match body::read(body, expected, state.body_limit, state.body_timeout).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge { limit }) => {
            return handled(announced, CallError::BodyTooLarge { limit });
        }
        Err(error @ (BodyError::Read(_) | BodyError::Timeout(_))) => {
            return handled(announced, CallError::BodyRead(error.to_string()));
        }
    };
    let request = match soap::parse_request(&bytes, &state.limits) {
        Ok(request) => request,
        Err(error) => {
            let operation = announced.or_else(|| operation_in_error(&error));
            let label = operation.map_or("unknown", Operation::name);
            state.metrics.request_bytes(label, bytes.len());
            return handled(operation, error);
        }
    };
    let operation = request.body.operation();
    state.metrics.request_bytes(operation.name(), bytes.len());
    if let Some(header) = announced
        && header != operation
    {
        return handled(
            Some(header),
            CallError::ActionMismatch {
                header: header.name(),
                body: operation.name(),
            },
        );
    }
    span.record("operation", operation.name());
    let claims = match state.verifier.verify(&request.token, state.now()) {
        Ok(claims) => claims,
        Err(error) => return handled(Some(operation), error),
    };
    span.record("tenant", claims.context_id.as_str());
    Handled {
        operation: Some(operation),
        result: call::execute(state, request, &claims, trace_id).await,
    }
}

/// The operation the `SOAPAction` header names; `None` when it is absent or empty (the body's
/// element decides then).
fn operation_from_header(headers: &HeaderMap) -> Result<Option<Operation>, CallError> {
    let Some(value) = headers.get(SOAP_ACTION) else {
        return Ok(None);
    };
    let Ok(text) = value.to_str() else {
        return Err(CallError::UnknownAction(
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        ));
    };
    if text.trim().trim_matches('"').is_empty() {
        return Ok(None);
    }
    soap::operation_from_soap_action(text)
        .map(Some)
        .ok_or_else(|| CallError::UnknownAction(text.to_owned()))
}

/// For a content error without a `SOAPAction` header: the operation wrapper the error path
/// starts with (`RowDataRequest/DataBatches/…`), so the answer can still be the operation's own.
fn operation_in_error(error: &SoapError) -> Option<Operation> {
    let SoapError::Invalid { at, .. } = error else {
        return None;
    };
    let wrapper = at.split('/').next()?.strip_suffix("Request")?;
    Operation::ALL.into_iter().find(|op| op.name() == wrapper)
}

fn respond(state: &AppState, handled: Handled, started: Instant) -> HttpResponse {
    let label = handled.operation.map_or("unknown", Operation::name);
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match handled.result {
        Ok(response) => {
            let outcome = response.outcome();
            if outcome.ok {
                state.metrics.call(label, Outcome::Success);
                tracing::info!(elapsed_ms, "Call succeeded.");
            } else {
                state.metrics.call(label, Outcome::Failure);
                tracing::warn!(elapsed_ms, error = %outcome.error, "Call failed.");
            }
            xml(StatusCode::OK, soap::render_response(&response))
        }
        Err(error) => {
            let cause = cause_chain(&error);
            match (error.answer(), handled.operation) {
                (Answer::Failure(message), Some(operation)) => {
                    state.metrics.call(label, Outcome::Failure);
                    tracing::warn!(elapsed_ms, error = %cause, "Call refused.");
                    xml(
                        StatusCode::OK,
                        soap::render_response(&call::failure(operation, message)),
                    )
                }
                (Answer::Fault(message) | Answer::Failure(message), _) => {
                    state.metrics.call(label, Outcome::Fault);
                    tracing::warn!(elapsed_ms, error = %cause, "Unreadable call.");
                    xml(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        soap::render_fault(&message),
                    )
                }
            }
        }
    }
}

fn xml(status: StatusCode, body: String) -> HttpResponse {
    (status, [(header::CONTENT_TYPE, XML_CONTENT_TYPE)], body).into_response()
}

/// The error and its sources, `: `-separated, for one log line.
fn cause_chain(error: &CallError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use mirror_common::soap::Problem;

    fn with_action(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SOAP_ACTION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_quoted_action_names_the_operation() {
        let action = format!("\"{}\"", Operation::RowData.soap_action());
        assert_eq!(
            operation_from_header(&with_action(&action)).unwrap(),
            Some(Operation::RowData)
        );
        assert_eq!(operation_from_header(&HeaderMap::new()).unwrap(), None);
        assert_eq!(operation_from_header(&with_action("\"\"")).unwrap(), None);
        let err = operation_from_header(&with_action("\"urn:other/Drop\"")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown SOAPAction "\"urn:other/Drop\"""#
        );
    }

    #[test]
    fn content_errors_name_their_operation() {
        let error = SoapError::Invalid {
            at: "WipeRequest/TableName".into(),
            problem: Problem::Missing("TableName"),
        };
        assert_eq!(operation_in_error(&error), Some(Operation::Wipe));
        assert_eq!(operation_in_error(&SoapError::MissingToken), None);
    }
}
