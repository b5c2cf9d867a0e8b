//! Test harness: the real receiver on a random port, against the local RabbitMQ, with its own
//! queue prefix, its own token issuer and application key, and helpers to look into the queues.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod process;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeleteOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use mirror_common::auth::{ApplicationKey, ApplicationPublicKey, IssuedToken, TokenIssuer};
use mirror_common::config::{AuthEnvironment, Settings};
use mirror_common::schema::{RawColumn, RawTableSchema};
use mirror_common::shutdown::CancellationToken;
use mirror_common::soap::{self, Limits, Operation, RawRow, RawRowBatch, Request, RequestBody};
pub use mirror_common::testing::eventually;
use mirror_common::topology::Topology;
use mirror_common::wire::{self, Envelope};
use mirror_receiver::{Application, BuildOptions, Clock};
use tokio::task::JoinHandle;

pub const CLIENT_ID: &str = "0123456789abcdef0123456789abcdef";

/// Claims like SuperOffice's for `tenant`, valid now, with `change` applied (for forging tokens).
pub fn claims(tenant: &str, change: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
    let now = chrono::Utc::now();
    let mut claims = serde_json::json!({
        "sub": tenant,
        "nonce": "A221BC27F364E29E2C60BF4D18BFF49D",
        mirror_common::auth::CONTEXT_ID_CLAIM: tenant,
        "nbf": (now - chrono::TimeDelta::minutes(1)).timestamp(),
        "exp": (now + chrono::TimeDelta::minutes(5)).timestamp(),
        "iss": "SuperOffice AS",
        "aud": format!("spn:{CLIENT_ID}"),
    });
    change(&mut claims);
    claims
}
pub const PARTITIONS: u16 = 4;
/// How long `eventually` keeps trying.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Keys are slow to generate in debug builds: one set per test binary.
struct Keys {
    issuer: TokenIssuer,
    application_pem: String,
    application_public: ApplicationPublicKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let issuer_key = ApplicationKey::generate(1024).unwrap();
        let issuer = TokenIssuer::from_key(issuer_key, "mirror-test-issuer").unwrap();
        let application = ApplicationKey::generate(1024).unwrap();
        Keys {
            issuer,
            application_pem: application.to_pem(),
            application_public: application.public_key(),
        }
    })
}

/// A clock tests can set.
#[derive(Clone)]
pub struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    pub fn new(now: DateTime<Utc>) -> TestClock {
        TestClock(Arc::new(Mutex::new(now)))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap() = now;
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }

    pub fn clock(&self) -> Clock {
        let inner = Arc::clone(&self.0);
        Arc::new(move || *inner.lock().unwrap())
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl Reply {
    /// The parsed SOAP response of a 200 answer.
    pub fn response(&self) -> soap::Response {
        assert_eq!(self.status, 200, "expected a SOAP response: {}", self.text);
        assert_eq!(self.content_type, "text/xml; charset=utf-8");
        soap::parse_response(self.text.as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("unparsable response ({e}): {}", self.text))
    }

    /// `(IsSuccessful, ErrorMessage)` of a 200 answer.
    pub fn outcome(&self) -> (bool, String) {
        let outcome = self.response().outcome().clone();
        (outcome.ok, outcome.error)
    }

    /// The fault string of a SOAP fault answer.
    pub fn fault(&self) -> String {
        assert_eq!(self.status, 500, "expected a SOAP fault: {}", self.text);
        assert_eq!(self.content_type, "text/xml; charset=utf-8");
        match soap::parse_response(self.text.as_bytes(), &Limits::default()) {
            Err(soap::SoapError::Fault { message, .. }) => message,
            other => panic!("expected a fault, got {other:?}: {}", self.text),
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub path: String,
    pub settings: Settings,
    pub topology: Topology,
    pub client: reqwest::Client,
    pub clock: Option<TestClock>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<()>>,
    dir: PathBuf,
    amqp: tokio::sync::OnceCell<Connection>,
}

impl TestApp {
    /// Starts a receiver with the harness settings, changed by `configure`.
    pub async fn spawn(configure: impl FnOnce(&mut Settings)) -> TestApp {
        TestApp::spawn_with(None, configure).await
    }

    pub async fn spawn_with(
        clock: Option<TestClock>,
        configure: impl FnOnce(&mut Settings),
    ) -> TestApp {
        let keys = keys();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("mirror-receiver-test-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let certificate = dir.join("issuer.crt");
        std::fs::write(&certificate, keys.issuer.certificate_pem()).unwrap();
        let key = dir.join("application.pem");
        std::fs::write(&key, &keys.application_pem).unwrap();

        let mut settings = Settings::default();
        settings.http.listen = "127.0.0.1:0".into();
        settings.auth.client_id = Some(CLIENT_ID.into());
        settings.auth.environment = AuthEnvironment::Custom;
        settings.auth.certificate_file = Some(certificate);
        settings.auth.private_key_file = Some(key);
        settings.amqp.prefix = format!("rcvtest-{id}");
        settings.amqp.partitions = PARTITIONS;
        settings.amqp.connect_timeout_secs = 3;
        settings.amqp.publish_timeout_secs = 5;
        settings.amqp.schema_reply_timeout_secs = 5;
        configure(&mut settings);

        let options = match &clock {
            Some(clock) => BuildOptions::with_clock(clock.clock()),
            None => BuildOptions::default(),
        };
        let app = Application::build(settings.clone(), options).await.unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run(shutdown.clone()));
        TestApp {
            base,
            path: settings.http.path.clone(),
            topology: Topology::new(&settings.amqp),
            settings,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            clock,
            shutdown,
            server: Some(server),
            dir,
            amqp: tokio::sync::OnceCell::new(),
        }
    }

    /// Waits until `/readyz` says the broker is connected (the topology is declared then).
    pub async fn wait_ready(&self) {
        eventually("the receiver to be ready", || async {
            let status = self
                .client
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .ok()?
                .status();
            (status == 200).then_some(())
        })
        .await;
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// The time the receiver sees.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.as_ref().map_or_else(Utc::now, TestClock::now)
    }

    pub fn public_key(&self) -> &'static ApplicationPublicKey {
        &keys().application_public
    }

    pub fn issuer(&self) -> &'static TokenIssuer {
        &keys().issuer
    }

    /// A valid token for `tenant`, as of the receiver's clock.
    pub fn token(&self, tenant: &str) -> IssuedToken {
        keys().issuer.issue(tenant, CLIENT_ID, self.now())
    }

    /// POSTs `body` with `SOAPAction` set to `action` (already quoted, as WCF sends it).
    pub async fn post(&self, action: Option<&str>, body: impl Into<reqwest::Body>) -> Reply {
        let mut request = self
            .client
            .post(format!("{}{}", self.base, self.path))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(body);
        if let Some(action) = action {
            request = request.header("SOAPAction", action);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Reply {
            status,
            content_type,
            text: response.text().await.unwrap(),
        }
    }

    /// Sends `body` for `tenant` with a fresh valid token and the matching `SOAPAction`.
    pub async fn call(&self, tenant: &str, body: RequestBody<'_>) -> Reply {
        let token = self.token(tenant).token;
        self.call_with_token(&token, body).await
    }

    pub async fn call_with_token(&self, token: &str, body: RequestBody<'_>) -> Reply {
        let action = quoted_action(body.operation());
        let xml = render(token, body);
        self.post(Some(&action), xml).await
    }

    async fn amqp(&self) -> &Connection {
        self.amqp
            .get_or_init(|| async {
                let mut settings = self.settings.amqp.clone();
                settings.url = mirror_common::config::AmqpSettings::default().url;
                mirror_common::broker::connect(&settings).await.unwrap()
            })
            .await
    }

    pub async fn channel(&self) -> Channel {
        self.amqp().await.create_channel().await.unwrap()
    }

    /// Ready messages in each partition queue.
    pub async fn ready_counts(&self) -> Vec<u32> {
        let channel = self.channel().await;
        let mut counts = Vec::new();
        for n in 0..PARTITIONS {
            let queue = mirror_common::topology::inspect(&channel, self.topology.queue(n).as_str())
                .await
                .unwrap();
            counts.push(queue.message_count());
        }
        counts
    }

    /// Asserts that no partition holds a message.
    pub async fn assert_queues_empty(&self) {
        assert_eq!(self.ready_counts().await, vec![0; usize::from(PARTITIONS)]);
    }

    /// Takes the next message of `partition` (quorum queues with single active consumer refuse
    /// `basic.get`, so this consumes with a short-lived consumer that holds one message at a
    /// time and acknowledges only the one it takes).
    pub async fn take(&self, partition: u16) -> (Envelope, BasicProperties) {
        let channel = self.channel().await;
        channel
            .basic_qos(1, BasicQosOptions::default())
            .await
            .unwrap();
        let mut consumer = channel
            .basic_consume(
                self.topology.queue(partition).as_str().into(),
                "receiver-test".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let delivery = tokio::time::timeout(PATIENCE, consumer.next())
            .await
            .expect("a message in the partition")
            .expect("an open consumer")
            .unwrap();
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        let envelope = wire::decode::<Envelope>(&delivery.data).unwrap();
        let _ = channel.close(200, "OK".into()).await;
        (envelope, delivery.properties)
    }

    /// Asks the receiver to stop, as SIGTERM would.
    pub fn request_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Stops the receiver (it must stop cleanly); dropping the app then deletes this test's
    /// queues, exchanges and files.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("the receiver stops")
                .unwrap();
        }
        if let Some(connection) = self.amqp.get() {
            let _ = connection.close(200, "OK".into()).await;
        }
    }
}

/// Cleans up also when a test fails half-way: the broker objects are deleted from a thread with
/// its own runtime, since `Drop` cannot await.
impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let topology = self.topology.clone();
        let dir = self.dir.clone();
        let cleanup = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(delete_topology(&topology));
            }
            let _ = std::fs::remove_dir_all(dir);
        });
        let _ = cleanup.join();
    }
}

async fn delete_topology(topology: &Topology) {
    let settings = mirror_common::config::AmqpSettings::default();
    let Ok(connection) = mirror_common::broker::connect(&settings).await else {
        return;
    };
    let Ok(channel) = connection.create_channel().await else {
        return;
    };
    let queues = (0..topology.partitions)
        .map(|n| topology.queue(n))
        .chain([topology.dead_letter_queue()]);
    for queue in queues {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for exchange in [topology.exchange(), topology.dead_letter_exchange()] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
    let _ = connection.close(200, "OK".into()).await;
}

pub fn quoted_action(operation: Operation) -> String {
    format!("\"{}\"", operation.soap_action())
}

/// A request as SuperOffice would send it.
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

pub fn column(name: &str, ty: &str, nullable: bool) -> RawColumn {
    RawColumn {
        name: name.into(),
        ty: ty.into(),
        nullable,
        default: String::new(),
    }
}

/// A small `contact`-like table.
pub fn contact_table() -> RawTableSchema {
    RawTableSchema {
        name: "contact".into(),
        columns: vec![
            column("contact_id", "int", false),
            column("name", "nvarchar(220)", true),
            column("registered", "datetime", true),
        ],
    }
}

pub fn row(op: &str, values: &[Option<&'static str>]) -> RawRow<'static> {
    RawRow {
        operation: op.into(),
        values: values.iter().map(|v| v.map(Cow::Borrowed)).collect(),
    }
}

/// A RowData body with one batch of `rows` for `table`.
pub fn row_data(
    table: RawTableSchema,
    lsn: i64,
    rows: Vec<RawRow<'static>>,
) -> RequestBody<'static> {
    RequestBody::RowData {
        batches: vec![RawRowBatch { table, lsn, rows }],
    }
}

/// Two valid contact rows.
pub fn contact_rows() -> Vec<RawRow<'static>> {
    vec![
        row(
            "I",
            &[
                Some("[I:1]"),
                Some("Acme <&> Sons"),
                Some("[DT:05/18/2020 10:40:43.0000000]"),
            ],
        ),
        row(
            "U",
            &[
                Some("[I:2]"),
                None,
                Some("[DT:01/01/1760 00:00:00.0000000]"),
            ],
        ),
    ]
}

/// A SuperOffice fixture file.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../testdata/superoffice/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
