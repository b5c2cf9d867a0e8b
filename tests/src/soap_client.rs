//! Calling the receiver as SuperOffice's Mirroring Task does: a fresh signed token per call, the
//! quoted `SOAPAction`, `text/xml; charset=utf-8`, and the answer parsed by the SOAP codec.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use mirror_common::auth::{IssuedToken, TokenIssuer};
use mirror_common::schema::RawTableSchema;
use mirror_common::soap::{
    self, AuthenticateAnswer, Limits, Operation, Outcome, RawRowBatch, Request, RequestBody,
    Response,
};
use mirror_common::wire::ReplicationSummary;

use crate::mirror::Mirror;

/// Bound on one call; the receiver itself waits at most its schema-reply timeout for the mirror.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// An HTTP client for one receiver, signing with one token issuer.
#[derive(Clone)]
pub struct SoapClient {
    url: String,
    http: reqwest::Client,
    issuer: TokenIssuer,
    client_id: String,
}

/// An HTTP answer, before interpretation.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl Reply {
    /// The parsed SOAP response; panics unless it is a 200 `text/xml` answer that parses.
    pub fn response(&self) -> Response {
        assert_eq!(self.status, 200, "expected a SOAP response: {}", self.text);
        assert_eq!(self.content_type, "text/xml; charset=utf-8");
        soap::parse_response(self.text.as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("unparsable response ({e}): {}", self.text))
    }

    /// `IsSuccessful` and `ErrorMessage`.
    pub fn outcome(&self) -> Outcome {
        self.response().outcome().clone()
    }
}

impl SoapClient {
    /// A client for the mirroring endpoint at `url`, with tokens of `issuer` for `client_id`.
    pub fn new(url: &str, issuer: TokenIssuer, client_id: &str) -> SoapClient {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .expect("an HTTP client");
        SoapClient {
            url: url.to_owned(),
            http,
            issuer,
            client_id: client_id.to_owned(),
        }
    }

    /// The same endpoint, with tokens signed by `issuer` instead.
    pub fn with_issuer(&self, issuer: TokenIssuer) -> SoapClient {
        SoapClient {
            issuer,
            ..self.clone()
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    /// A token for `tenant` valid now.
    pub fn token(&self, tenant: &str) -> IssuedToken {
        self.issuer.issue(tenant, &self.client_id, Utc::now())
    }

    /// The request envelope of `body`, signed with `token`.
    pub fn render(token: &str, body: RequestBody<'_>) -> String {
        soap::render_request(
            token,
            &Request {
                token: token.to_owned(),
                client_state: String::new(),
                body,
            },
        )
    }

    /// POSTs an envelope for `operation`.
    pub async fn post(&self, operation: Operation, xml: String) -> Reply {
        let response = self
            .http
            .post(&self.url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", format!("\"{}\"", operation.soap_action()))
            .body(xml)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", operation.name()));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("the answer's body");
        Reply {
            status,
            content_type,
            text,
        }
    }

    /// Sends `body` signed with `token`.
    pub async fn call_with_token(&self, token: &str, body: RequestBody<'_>) -> Reply {
        let operation = body.operation();
        self.post(operation, SoapClient::render(token, body)).await
    }

    /// Sends `body` for `tenant` with a fresh token.
    pub async fn call(&self, tenant: &str, body: RequestBody<'_>) -> Reply {
        let token = self.token(tenant).token;
        self.call_with_token(&token, body).await
    }
}

/// One tenant of a pipeline: its context id, its calls and its mirror.
#[derive(Clone)]
pub struct Tenant {
    id: String,
    schema: String,
    client: SoapClient,
}

impl Tenant {
    pub fn new(id: String, schema: String, client: SoapClient) -> Tenant {
        Tenant { id, schema, client }
    }

    /// The context id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tenant's mirror schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub fn client(&self) -> &SoapClient {
        &self.client
    }

    /// A connection to the tenant's mirror.
    pub async fn mirror(&self) -> Mirror {
        Mirror::connect(&self.id, &self.schema).await
    }

    /// Sends `body` with a fresh token and returns the raw answer.
    pub async fn send(&self, body: RequestBody<'_>) -> Reply {
        self.client.call(&self.id, body).await
    }

    /// Sends `body` and returns the parsed answer, which must be of the same operation.
    pub async fn call(&self, body: RequestBody<'_>) -> Response {
        let operation = body.operation();
        let response = self.send(body).await.response();
        assert_eq!(response.operation(), operation);
        response
    }

    /// Sends `body`, which must succeed.
    async fn call_ok(&self, body: RequestBody<'_>) -> Response {
        let operation = body.operation();
        let response = self.call(body).await;
        let outcome = response.outcome();
        assert!(
            outcome.ok,
            "{} for {} failed: {}",
            operation.name(),
            self.id,
            outcome.error
        );
        response
    }

    /// Authenticate; returns the answer and the nonce of the token it answers.
    pub async fn authenticate(&self) -> (Outcome, AuthenticateAnswer, String) {
        let token = self.client.token(&self.id);
        let reply = self
            .client
            .call_with_token(&token.token, RequestBody::Authenticate)
            .await;
        match reply.response() {
            Response::Authenticate { outcome, answer } => (outcome, answer, token.nonce),
            other => panic!("expected an Authenticate answer, got {other:?}"),
        }
    }

    /// TableSchema with `tables`, which must succeed; the LSN the mirror holds per table.
    pub async fn table_schema(&self, tables: &[RawTableSchema]) -> BTreeMap<String, i64> {
        let body = RequestBody::TableSchema {
            tables: tables.to_vec(),
        };
        match self.call_ok(body).await {
            Response::TableSchema { lsns, .. } => {
                let answered: BTreeMap<String, i64> =
                    lsns.into_iter().map(|l| (l.table, l.lsn)).collect();
                assert_eq!(
                    answered.len(),
                    tables.len(),
                    "one LSN per table of the call: {answered:?}"
                );
                answered
            }
            other => panic!("expected a TableSchema answer, got {other:?}"),
        }
    }

    /// RowData with `batches`, which must be acknowledged.
    pub async fn row_data(&self, batches: Vec<RawRowBatch<'_>>) {
        self.call_ok(RequestBody::RowData { batches }).await;
    }

    /// Wipe of `table`, which must be acknowledged.
    pub async fn wipe(&self, table: &str) {
        self.call_ok(RequestBody::Wipe {
            table: table.to_owned(),
        })
        .await;
    }

    /// ReplicationCompleted for `tables` (counts are informative only), which must be acknowledged.
    pub async fn completed(&self, tables: &[&str]) {
        let summaries = tables
            .iter()
            .map(|t| ReplicationSummary {
                table: (*t).to_owned(),
                inserts: 0,
                updates: 0,
                deletes: 0,
            })
            .collect();
        self.call_ok(RequestBody::ReplicationCompleted { summaries })
            .await;
    }

    /// The envelope `body` would be sent as, with a fresh token (for tests that alter it).
    pub fn render(&self, body: RequestBody<'_>) -> String {
        SoapClient::render(&self.client.token(&self.id).token, body)
    }

    /// POSTs an envelope made by [`Tenant::render`] (and possibly altered).
    pub async fn post(&self, operation: Operation, xml: String) -> Reply {
        self.client.post(operation, xml).await
    }
}
