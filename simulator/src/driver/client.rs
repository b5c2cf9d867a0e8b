//! One SOAP call over HTTP, the way the Mirroring Task makes it: a fresh token per call, the
//! quoted `SOAPAction` header, `text/xml; charset=utf-8`, and a bounded wait for the answer.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use mirror_common::auth::{ApplicationPublicKey, TokenIssuer};
use mirror_common::soap::{
    Limits, Operation, Request, RequestBody, Response, parse_response, render_request,
};

use super::DriverError;

/// Everything a tenant's calls are signed and checked with: SuperOffice's part (the token issuer)
/// and the partner application's public key (its Authenticate answers must verify against it).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub issuer: TokenIssuer,
    pub application_key: ApplicationPublicKey,
    /// The partner application's client id: tokens carry audience `spn:<client id>`.
    pub client_id: String,
}

/// The receiver's URL and an HTTP client bound to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: String,
    http: reqwest::Client,
    credentials: Arc<Credentials>,
    timeout: Duration,
}

/// A call signed and rendered, ready to send.
#[derive(Debug)]
pub struct Prepared {
    op: Operation,
    xml: String,
    nonce: String,
}

/// A call's answer with what the cycle needs beside it.
#[derive(Debug)]
pub struct Answer {
    pub response: Response,
    /// The nonce of the token the call carried (Authenticate's answer must echo it).
    pub nonce: String,
    /// Size of the request body.
    pub request_bytes: usize,
    pub elapsed: Duration,
}

impl Endpoint {
    /// `timeout` bounds each whole call (connect, send, answer); the receiver itself waits up to
    /// 45 s for the mirror on TableSchema, so the default is well above that.
    pub fn new(
        url: &str,
        credentials: Credentials,
        timeout: Duration,
    ) -> Result<Endpoint, DriverError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| DriverError::BadUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if parsed.scheme() != "http" {
            return Err(DriverError::BadUrl {
                url: url.to_owned(),
                reason: "only http:// URLs are supported (put TLS in front of the receiver)".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|source| DriverError::Client { source })?;
        Ok(Endpoint {
            url: url.to_owned(),
            http,
            credentials: Arc::new(credentials),
            timeout,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Signs a fresh token for `tenant` and renders the call: the CPU work of a call, which a
    /// sender can do for its next call while the current one is in flight.
    pub fn prepare(&self, tenant: &str, body: RequestBody<'_>) -> Prepared {
        let op = body.operation();
        let issued = self
            .credentials
            .issuer
            .issue(tenant, &self.credentials.client_id, Utc::now());
        let request = Request {
            token: issued.token.clone(),
            client_state: String::new(),
            body,
        };
        Prepared {
            op,
            xml: render_request(&issued.token, &request),
            nonce: issued.nonce,
        }
    }

    /// Sends a prepared call and parses the answer. An answer with `IsSuccessful=false` is
    /// returned as is: the cycle decides what it means. The future owns all it needs, so it can
    /// run as a task of its own.
    pub fn send(
        &self,
        prepared: Prepared,
    ) -> impl Future<Output = Result<Answer, DriverError>> + Send + 'static {
        let Prepared { op, xml, nonce } = prepared;
        let request_bytes = xml.len();
        let pending = self
            .http
            .post(&self.url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", format!("\"{}\"", op.soap_action()))
            .body(xml)
            .send();
        let errors = self.clone();
        async move {
            let started = Instant::now();
            let sent = pending.await.map_err(|e| errors.http_error(op, e))?;
            let status = sent.status();
            let bytes = sent.bytes().await.map_err(|e| errors.http_error(op, e))?;
            let elapsed = started.elapsed();
            let parsed = parse_response(&bytes, &Limits::default());
            if !status.is_success() {
                let detail = match parsed {
                    Err(mirror_common::soap::SoapError::Fault { message, .. }) => message,
                    _ => snippet(&bytes),
                };
                return Err(DriverError::Status {
                    op: op.name(),
                    status: status.as_u16(),
                    detail,
                });
            }
            let response = parsed.map_err(|source| DriverError::Soap {
                op: op.name(),
                source,
            })?;
            if response.operation() != op {
                return Err(DriverError::WrongResponse {
                    op: op.name(),
                    got: response.operation().name(),
                });
            }
            Ok(Answer {
                response,
                nonce,
                request_bytes,
                elapsed,
            })
        }
    }

    fn http_error(&self, op: Operation, error: reqwest::Error) -> DriverError {
        if error.is_timeout() {
            DriverError::Timeout {
                op: op.name(),
                secs: self.timeout.as_secs(),
            }
        } else {
            DriverError::Http {
                op: op.name(),
                url: self.url.clone(),
                source: error,
            }
        }
    }
}

/// The start of an unexpected body, for an error message.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
