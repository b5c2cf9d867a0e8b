//! Hostile input at scale: the real `mirror-receiver` binary, on the real RabbitMQ, is fired at by
//! many valid calls and, at the same time, by a corpus of hostile requests (entity bombs, absurd
//! nesting, attribute and text floods, oversize, truncated and slow bodies, forged tokens).
//!
//! Every valid call succeeds, every hostile one is refused (a SOAP fault, `IsSuccessful=false`, or
//! a connection closed while the client was still sending more than it may), the queues hold
//! exactly the valid calls, the process's peak memory stays under a bound derived from its
//! configuration, and it still serves afterwards.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use mirror_common::auth::{ApplicationKey, TokenIssuer};
use mirror_common::shutdown::CancellationToken;
use mirror_common::soap::{self, Limits, Operation, RequestBody};
use serde_json::json;
use support::process::ReceiverProcess;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

const BODY_LIMIT: usize = 2 * 1024 * 1024;
const MAX_CALLS: usize = 8;
const BODY_TIMEOUT_SECS: u64 = 3;
const TENANTS: usize = 8;
const CALLS_PER_TENANT: usize = 25;
/// Requests in flight at once, per kind of traffic.
const VALID_CONCURRENCY: usize = 16;
const HOSTILE_CONCURRENCY: usize = 24;
/// What one call may hold while it is processed: the body, the parsed and decoded rows, and the
/// encoded message, each at most about the body's size.
const MEMORY_PER_CALL: u64 = 4 * BODY_LIMIT as u64;
/// Connections, buffers and allocator slack on top of the calls in progress.
const MEMORY_SLACK: u64 = 64 * 1024 * 1024;
/// A few megabytes: far over anything real, under the body limit.
const FLOOD: usize = 1536 * 1024;
/// How long a raw-socket client waits for an answer.
const ANSWER_PATIENCE: Duration = Duration::from_secs(60);

/// What became of one request.
#[derive(Debug)]
enum Verdict {
    /// HTTP 200 with `IsSuccessful=true`.
    Accepted,
    /// HTTP 200 with `IsSuccessful=false` and this message.
    Failure(String),
    /// A SOAP fault with this message.
    Fault(String),
    /// The receiver closed the connection before a complete answer arrived.
    Cut(String),
    /// Anything else: not an answer the service defines.
    Unexpected(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Accepted => write!(f, "accepted"),
            Verdict::Failure(message) => write!(f, "IsSuccessful=false: {message}"),
            Verdict::Fault(message) => write!(f, "SOAP fault: {message}"),
            Verdict::Cut(reason) => write!(f, "connection closed: {reason}"),
            Verdict::Unexpected(what) => write!(f, "unexpected answer: {what}"),
        }
    }
}

impl Verdict {
    fn of_answer(status: u16, body: &[u8]) -> Verdict {
        match (status, soap::parse_response(body, &Limits::default())) {
            (200, Ok(response)) if response.outcome().ok => Verdict::Accepted,
            (200, Ok(response)) => Verdict::Failure(response.outcome().error.clone()),
            (500, Err(soap::SoapError::Fault { message, .. })) => Verdict::Fault(message),
            (status, other) => Verdict::Unexpected(format!(
                "HTTP {status}, {other:?}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            )),
        }
    }
}

/// How a hostile request reaches the receiver.
enum Delivery {
    /// An ordinary POST through the HTTP client.
    Post(String),
    /// Raw TCP: announces `length` bytes, sends `body` (fewer bytes: a truncated body), then
    /// closes the sending side.
    Raw { length: usize, body: Vec<u8> },
    /// Raw TCP, chunked without a length: `total` bytes of filler.
    Chunked { total: usize },
    /// Raw TCP, slow-loris: announces `body`'s length and sends it a few bytes at a time, four
    /// times a second, until answered.
    Trickle { body: Vec<u8> },
}

/// How a hostile request must be refused.
#[derive(Debug)]
struct Expectation {
    name: String,
    /// Text the refusal's message must contain.
    reason: &'static str,
    /// Whether a connection closed mid-request also counts as the refusal: only for clients that
    /// send more, longer or less than they announced.
    may_cut: bool,
}

impl Expectation {
    fn met_by(&self, verdict: &Verdict) -> bool {
        match verdict {
            Verdict::Failure(message) | Verdict::Fault(message) => message.contains(self.reason),
            Verdict::Cut(_) => self.may_cut,
            Verdict::Accepted | Verdict::Unexpected(_) => false,
        }
    }
}

struct Hostile {
    expect: Expectation,
    delivery: Delivery,
}

fn hostile(name: impl Into<String>, delivery: Delivery, reason: &'static str) -> Hostile {
    Hostile {
        expect: Expectation {
            name: name.into(),
            reason,
            may_cut: false,
        },
        delivery,
    }
}

/// A hostile request whose connection the receiver may also just close.
fn cut_off(name: impl Into<String>, delivery: Delivery, reason: &'static str) -> Hostile {
    let mut hostile = hostile(name, delivery, reason);
    hostile.expect.may_cut = true;
    hostile
}

fn valid_rows() -> RequestBody<'static> {
    row_data(contact_table(), 1, contact_rows())
}

/// Tokens that must not get anything published, with the reason each is refused for.
fn forged_tokens(issuer: &TokenIssuer, valid: &str) -> Vec<(&'static str, String, &'static str)> {
    let tenant = "Cust666";
    let untrusted = TokenIssuer::from_key(
        ApplicationKey::generate(1024).unwrap(),
        "mirror-test-issuer",
    )
    .unwrap();
    let hs256_header = jsonwebtoken::Header {
        kid: Some(issuer.certificate().thumbprint_hex()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
    };
    // The classic confusion attack: HMAC keyed with the verifier's public certificate.
    let hs256 = jsonwebtoken::encode(
        &hs256_header,
        &claims(tenant, |_| {}),
        &jsonwebtoken::EncodingKey::from_secret(issuer.certificate_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims(tenant, |_| {}).to_string())
    );
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(claims(tenant, |_| {}).to_string());
    let tampered = parts.join(".");
    vec![
        (
            "expired",
            issuer.sign_claims(&claims(tenant, |c| {
                c["nbf"] = json!((Utc::now() - TimeDelta::minutes(20)).timestamp());
                c["exp"] = json!((Utc::now() - TimeDelta::minutes(10)).timestamp());
            })),
            "token expired at",
        ),
        (
            "not yet valid",
            issuer.sign_claims(&claims(tenant, |c| {
                c["nbf"] = json!((Utc::now() + TimeDelta::minutes(10)).timestamp());
                c["exp"] = json!((Utc::now() + TimeDelta::minutes(20)).timestamp());
            })),
            "token is not valid before",
        ),
        (
            "wrong audience",
            issuer.sign_claims(&claims(tenant, |c| c["aud"] = json!("spn:someoneelse"))),
            "is not this application",
        ),
        ("alg=none", none, "token algorithm \"none\" is not allowed"),
        (
            "HS256 keyed with the public certificate",
            hs256,
            "token algorithm \"HS256\" is not allowed",
        ),
        (
            "signed by an untrusted key under the trusted key id",
            untrusted.sign_token(&issuer.header(), &claims(tenant, |_| {})),
            "token signature does not verify",
        ),
        (
            "payload swapped under a valid signature",
            tampered,
            "token signature does not verify",
        ),
        ("garbage", "not-a-token".into(), "malformed token"),
        ("empty", String::new(), "SignedToken header is missing"),
    ]
}

/// The corpus, built around `valid`, a correct RowData request signed with `token`.
fn corpus(receiver: &ReceiverProcess, token: &str, valid: &str) -> Vec<Hostile> {
    const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";
    for part in [
        "<s:Envelope ",
        "<s:Header>",
        "<s:Body>",
        "Acme",
        "[I:1]",
        token,
    ] {
        assert!(valid.contains(part), "{part} in {valid}");
    }
    let post = |xml: String| Delivery::Post(xml);
    let mut corpus = Vec::new();

    // Entity tricks: refused before any entity is defined.
    let laughs: String = (1..10)
        .map(|i| {
            let previous = if i == 1 {
                "lol".to_owned()
            } else {
                format!("lol{}", i - 1)
            };
            format!(
                "<!ENTITY lol{i} \"{}\">",
                format!("&{previous};").repeat(10)
            )
        })
        .collect();
    let doctypes = [
        (
            "billion laughs",
            format!("<!DOCTYPE s:Envelope [<!ENTITY lol \"lol\">{laughs}]>"),
            "&lol9;",
        ),
        (
            "external entity",
            "<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>".to_owned(),
            "&xxe;",
        ),
        (
            "parameter entity",
            "<!DOCTYPE s:Envelope [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/p.dtd\"> %p;]>"
                .to_owned(),
            "Acme",
        ),
        (
            "external DTD",
            "<!DOCTYPE s:Envelope SYSTEM \"http://127.0.0.1:9/evil.dtd\">".to_owned(),
            "Acme",
        ),
    ];
    for (name, doctype, reference) in doctypes {
        let xml = format!(
            "{DECLARATION}{doctype}{}",
            valid.replacen("Acme", reference, 1)
        );
        corpus.push(hostile(name, post(xml), "DOCTYPE declarations are refused"));
    }
    corpus.push(hostile(
        "undefined entity",
        post(valid.replacen("Acme", "&xxe;", 1)),
        "unknown entity reference &xxe;",
    ));

    // Nesting: 100,000 levels, closed and unclosed.
    let depth = 100_000;
    let nested = format!("<s:Header>{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    corpus.push(hostile(
        "100k-deep nesting",
        post(valid.replacen("<s:Header>", &nested, 1)),
        "nested deeper than the limit of 32 levels",
    ));
    let unclosed = format!("<s:Header>{}", "<a>".repeat(depth));
    corpus.push(hostile(
        "100k-deep unclosed nesting",
        post(valid.replacen("<s:Header>", &unclosed, 1)),
        "nested deeper than the limit of 32 levels",
    ));

    // Attribute and text floods under the body limit.
    let big = "A".repeat(FLOOD);
    corpus.push(hostile(
        "multi-MB attribute value, no token",
        post(
            valid
                .replacen("<s:Envelope ", &format!("<s:Envelope junk=\"{big}\" "), 1)
                .replacen(token, "", 1),
        ),
        "SignedToken header is missing",
    ));
    corpus.push(hostile(
        "multi-MB unterminated attribute value",
        post(format!("{DECLARATION}<s:Envelope junk=\"{big}")),
        "malformed XML",
    ));
    let attributes: String = (0..FLOOD / 10).map(|i| format!(" a{i}=\"\"")).collect();
    corpus.push(hostile(
        "attribute flood",
        post(valid.replacen("<s:Envelope ", &format!("<s:Envelope{attributes} "), 1)),
        "more than 64 attributes",
    ));
    let declarations: String = (0..60)
        .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
        .collect();
    let scopes = format!(
        "<s:Header><a{declarations}><b{declarations}>{}</b></a>",
        "<c/>".repeat(FLOOD / 8)
    );
    corpus.push(hostile(
        "namespace flood",
        post(valid.replacen("<s:Header>", &scopes, 1)),
        "namespace declarations are in scope",
    ));
    corpus.push(hostile(
        "multi-MB text in an nvarchar(220) column",
        post(valid.replacen("Acme", &big, 1)),
        "is longer than nvarchar(220) allows",
    ));
    corpus.push(hostile(
        "multi-MB CDATA in an int column",
        post(valid.replacen("[I:1]", &format!("<![CDATA[{big}]]>"), 1)),
        "is not a valid int value",
    ));
    corpus.push(hostile(
        "multi-MB text between elements",
        post(valid.replacen("<s:Body>", &format!("<s:Body>{big}"), 1)),
        "unexpected text",
    ));

    // Bodies over the limit, announced and not.
    let oversize = valid
        .replacen("Acme", &"A".repeat(2 * BODY_LIMIT), 1)
        .into_bytes();
    for i in 0..4 {
        corpus.push(cut_off(
            format!("oversize body with Content-Length #{i}"),
            Delivery::Raw {
                length: oversize.len(),
                body: oversize.clone(),
            },
            "larger than the limit of 2097152 bytes",
        ));
    }
    for i in 0..8 {
        corpus.push(cut_off(
            format!("48 MiB chunked body #{i}"),
            Delivery::Chunked {
                total: 48 * 1024 * 1024,
            },
            "larger than the limit of 2097152 bytes",
        ));
    }

    // Truncated bodies: the connection ends early, or the XML does.
    let half = valid.len() / 2;
    corpus.push(cut_off(
        "body shorter than its Content-Length",
        Delivery::Raw {
            length: valid.len(),
            body: valid.as_bytes()[..half].to_vec(),
        },
        "cannot read the request body",
    ));
    corpus.push(hostile(
        "XML cut in the middle",
        post(valid[..half].to_owned()),
        "malformed XML",
    ));

    // Slow-loris: more slow senders than call slots; the body timeout frees each slot.
    for i in 0..(MAX_CALLS + 4) {
        corpus.push(cut_off(
            format!("slow-loris body #{i}"),
            Delivery::Trickle {
                body: valid.as_bytes().to_vec(),
            },
            "did not arrive within 3 s",
        ));
    }

    // Forged tokens on otherwise valid calls.
    for (name, forged, reason) in forged_tokens(receiver.issuer(), token) {
        corpus.push(hostile(
            format!("token: {name}"),
            post(render(&forged, valid_rows())),
            reason,
        ));
    }
    corpus
}

/// How a raw-socket client sends its body.
#[derive(Clone, Copy)]
enum Pace {
    AtOnce,
    /// This many bytes of filler, in chunks.
    Chunked(usize),
    Slowly,
}

/// Sends one hostile request and reads what came of it.
async fn deliver(receiver: &ReceiverProcess, delivery: Delivery) -> Verdict {
    let action = quoted_action(Operation::RowData);
    let (framing, body, pace) = match delivery {
        Delivery::Post(xml) => return post(receiver, &action, xml).await,
        Delivery::Raw { length, body } => (format!("Content-Length: {length}"), body, Pace::AtOnce),
        Delivery::Chunked { total } => (
            "Transfer-Encoding: chunked".to_owned(),
            Vec::new(),
            Pace::Chunked(total),
        ),
        Delivery::Trickle { body } => (
            format!("Content-Length: {}", body.len()),
            body,
            Pace::Slowly,
        ),
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/xml; charset=utf-8\r\nSOAPAction: {action}\r\n{framing}\r\nConnection: close\r\n\r\n",
        receiver.path,
        receiver.address(),
    );
    let stream = TcpStream::connect(receiver.address()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let answered = CancellationToken::new();
    let stop = answered.clone();
    // Write errors are expected: the receiver may close the connection before taking everything.
    let sender = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        match pace {
            Pace::AtOnce => writer.write_all(&body).await?,
            Pace::Chunked(total) => send_chunked(&mut writer, total).await?,
            Pace::Slowly => send_slowly(&mut writer, &body, &stop).await?,
        }
        writer.shutdown().await
    });
    let verdict = read_answer(&mut reader).await;
    answered.cancel();
    sender.abort();
    verdict
}

/// `total` bytes of filler as 64 KiB chunks, without ever holding more than one chunk.
async fn send_chunked(writer: &mut OwnedWriteHalf, total: usize) -> std::io::Result<()> {
    const CHUNK: usize = 64 * 1024;
    let filler = vec![b'A'; CHUNK];
    let mut left = total;
    while left > 0 {
        let n = left.min(CHUNK);
        writer.write_all(format!("{n:x}\r\n").as_bytes()).await?;
        writer.write_all(&filler[..n]).await?;
        writer.write_all(b"\r\n").await?;
        left -= n;
    }
    writer.write_all(b"0\r\n\r\n").await
}

/// A few bytes four times a second, until the receiver answers.
async fn send_slowly(
    writer: &mut OwnedWriteHalf,
    body: &[u8],
    answered: &CancellationToken,
) -> std::io::Result<()> {
    for piece in body.chunks(4) {
        writer.write_all(piece).await?;
        tokio::select! {
            () = answered.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    Ok(())
}

/// Reads one HTTP/1.1 answer with a Content-Length (the receiver always sends one).
async fn read_answer(reader: &mut tokio::net::tcp::OwnedReadHalf) -> Verdict {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let reading = async {
        loop {
            if let Some(verdict) = complete_answer(&buffer) {
                return verdict;
            }
            match reader.read(&mut chunk).await {
                Ok(0) => {
                    return Verdict::Cut(format!("closed after {} bytes", buffer.len()));
                }
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                Err(error) => return Verdict::Cut(error.to_string()),
            }
        }
    };
    tokio::time::timeout(ANSWER_PATIENCE, reading)
        .await
        .unwrap_or_else(|_| Verdict::Unexpected("no answer".into()))
}

fn complete_answer(buffer: &[u8]) -> Option<Verdict> {
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    let body = buffer.get(end..end + length)?;
    Some(Verdict::of_answer(status, body))
}

async fn post(receiver: &ReceiverProcess, action: &str, xml: String) -> Verdict {
    let sent = receiver
        .client
        .post(receiver.url())
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", action)
        .body(xml)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => return Verdict::Cut(error.to_string()),
    };
    let status = response.status().as_u16();
    match response.bytes().await {
        Ok(body) => Verdict::of_answer(status, &body),
        Err(error) => Verdict::Cut(error.to_string()),
    }
}

/// Samples the process's resident memory until `stop`, returning the largest sample in KiB.
fn sample_memory(
    receiver: &ReceiverProcess,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<u64> {
    let status = format!("/proc/{}/status", receiver.pid());
    let largest = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            if let Some(rss) = std::fs::read_to_string(&status).ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            }) {
                largest.fetch_max(rss, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        largest.load(Ordering::Relaxed)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_traffic_is_refused_while_valid_calls_succeed() {
    let mut receiver = ReceiverProcess::spawn(&[
        ("HTTP__BODY_LIMIT_BYTES", BODY_LIMIT.to_string()),
        ("HTTP__MAX_CONCURRENT_CALLS", MAX_CALLS.to_string()),
        ("HTTP__BODY_TIMEOUT_SECS", BODY_TIMEOUT_SECS.to_string()),
    ])
    .await;
    receiver.wait_ready().await;
    let action = quoted_action(Operation::RowData);
    // One valid call first, so the baseline includes the broker channel and a call's buffers.
    let token = receiver.token("Cust0").token;
    let warm_up = post(&receiver, &action, render(&token, valid_rows())).await;
    assert!(matches!(warm_up, Verdict::Accepted), "{warm_up:?}");
    let baseline = receiver.memory();

    let token = receiver.token("Cust1").token;
    let valid = render(&token, valid_rows());
    let corpus = corpus(&receiver, &token, &valid);
    let hostile_count = corpus.len();

    let stop_sampling = CancellationToken::new();
    let sampler = sample_memory(&receiver, stop_sampling.clone());
    let valid_calls = futures::stream::iter(0..TENANTS * CALLS_PER_TENANT)
        .map(|i| {
            let receiver = &receiver;
            let action = &action;
            async move {
                let tenant = format!("Cust{}", 100 + i % TENANTS);
                let token = receiver.token(&tenant).token;
                post(receiver, action, render(&token, valid_rows())).await
            }
        })
        .buffer_unordered(VALID_CONCURRENCY)
        .collect::<Vec<_>>();
    let hostile_calls = futures::stream::iter(corpus)
        .map(|hostile| {
            let receiver = &receiver;
            async move {
                let verdict = deliver(receiver, hostile.delivery).await;
                (hostile.expect, verdict)
            }
        })
        .buffer_unordered(HOSTILE_CONCURRENCY)
        .collect::<Vec<_>>();
    let (valid_verdicts, hostile_verdicts) = tokio::join!(valid_calls, hostile_calls);
    stop_sampling.cancel();
    let largest_sample = sampler.await.unwrap();

    let failed: Vec<&Verdict> = valid_verdicts
        .iter()
        .filter(|v| !matches!(v, Verdict::Accepted))
        .collect();
    assert!(
        failed.is_empty(),
        "valid calls failed: {}",
        failed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let not_refused: Vec<String> = hostile_verdicts
        .iter()
        .filter(|(expect, verdict)| !expect.met_by(verdict))
        .map(|(expect, verdict)| {
            format!(
                "{} (expected {:?}): {verdict:?}",
                expect.name, expect.reason
            )
        })
        .collect();
    assert!(
        not_refused.is_empty(),
        "hostile requests not refused as expected:\n{}",
        not_refused.join("\n")
    );
    assert_eq!(hostile_verdicts.len(), hostile_count);
    let cut: Vec<String> = hostile_verdicts
        .iter()
        .filter(|(_, verdict)| matches!(verdict, Verdict::Cut(_)))
        .map(|(expect, verdict)| format!("{}: {verdict}", expect.name))
        .collect();

    // Exactly the valid calls were published: the warm-up and the load.
    let published = 1 + TENANTS * CALLS_PER_TENANT;
    let counts = eventually("every valid call in the queues", || async {
        let counts = receiver.ready_counts().await;
        let total: u32 = counts.iter().sum();
        (total as usize >= published).then_some(counts)
    })
    .await;
    assert_eq!(counts.iter().sum::<u32>() as usize, published, "{counts:?}");

    // The kernel updates VmHWM lazily, so a sample may exceed it; the larger of the two counts.
    let peak_kib = receiver.memory().peak_kib.max(largest_sample);
    let bound_kib = baseline.rss_kib + (MAX_CALLS as u64 * MEMORY_PER_CALL + MEMORY_SLACK) / 1024;
    eprintln!(
        "hostile: {} valid calls, {hostile_count} hostile ({} cut off mid-request); \
         receiver RSS baseline {} KiB, peak {peak_kib} KiB, bound {bound_kib} KiB",
        TENANTS * CALLS_PER_TENANT,
        cut.len(),
        baseline.rss_kib,
    );
    for line in &cut {
        eprintln!("  {line}");
    }
    assert!(
        peak_kib <= bound_kib,
        "peak RSS {peak_kib} KiB over the bound {bound_kib} KiB"
    );

    assert!(receiver.is_running(), "the receiver process exited");
    assert_eq!(receiver.get("/healthz").await.0, 200);
    let token = receiver.token("Cust2").token;
    let after = post(&receiver, &action, render(&token, valid_rows())).await;
    assert!(matches!(after, Verdict::Accepted), "{after:?}");
}
