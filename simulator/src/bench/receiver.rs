//! The receiver against its physical limit: the broker taking the same messages.
//!
//! The same N ~1 MB RowData calls (real SOAP from the simulator's source, signed tokens) are
//! (a) published raw with lapin — the MessagePack envelopes the receiver would publish, persistent,
//! mandatory, one confirm awaited per message on one confirm-mode channel, as the receiver does —
//! to the partition queue of a topology declared like ours; and (b) POSTed to a real
//! `mirror-receiver` process (HTTP, token check, parse, decode, publish, confirm, answer). Both at
//! each concurrency level, alternating, with the queue purged in between. Throughput is counted in
//! SOAP bytes for both, so the ratio is the ratio of calls per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::try_join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueuePurgeOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation};
use mirror_common::batch::decode_batches;
use mirror_common::soap::{
    Limits, RawRowBatch, Request, RequestBody, parse_request, parse_response, render_request,
};
use mirror_common::topology::{self, Topology, header};
use mirror_common::wire::{self, Envelope, Message};

use mirror_receiver::metrics::CONFIRM_SECONDS;

use super::BenchError;
use super::rss::{Memory, cpu_seconds};
use super::services::{BENCH_CLIENT_ID, Deployment};
use crate::driver::batch::{Batches, WireRow};
use crate::source::Source;

/// What to measure.
#[derive(Debug, Clone)]
pub struct ReceiverPlan {
    /// Calls per concurrency level.
    pub calls: usize,
    pub concurrency: Vec<usize>,
    /// Size of each RowData call (SOAP body).
    pub call_bytes: usize,
}

/// Per-call timings of one run.
#[derive(Debug, Clone)]
pub struct Run {
    pub secs: f64,
    pub bytes: u64,
    /// Every call's latency (publish → confirm, or POST → answer), sorted.
    pub latencies: Vec<Duration>,
    /// CPU time the receiver process used per call during the run.
    pub cpu_ms_per_call: Option<f64>,
}

impl Run {
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs.max(f64::EPSILON)
    }

    pub fn mean_ms(&self) -> f64 {
        let total: Duration = self.latencies.iter().sum();
        total.as_secs_f64() * 1000.0 / self.latencies.len().max(1) as f64
    }

    /// The `q` quantile (0–1) of the latencies, in milliseconds (nearest rank).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let rank =
            ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[rank - 1].as_secs_f64() * 1000.0
    }
}

/// Both runs at one concurrency.
#[derive(Debug, Clone)]
pub struct Level {
    pub concurrency: usize,
    pub raw: Run,
    pub ours: Run,
    /// The receiver's own mean publish → confirm time, from its metrics.
    pub confirm_ms: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct ReceiverResult {
    pub calls: usize,
    pub mean_call_bytes: u64,
    /// Mean size of the message the receiver queues for one call (its MessagePack envelope).
    pub mean_message_bytes: u64,
    /// Mean CPU time of parsing + decoding one call in this process (what the receiver adds
    /// before publishing).
    pub decode_ms: f64,
    /// Mean time of merely reading one call with quick-xml (every event, nothing resolved,
    /// checked or kept): less than any receiver that reads its input must spend on it.
    pub read_ms: f64,
    pub levels: Vec<Level>,
    pub receiver_memory: Option<Memory>,
}

/// One prepared call: its rows, and the envelope the receiver would publish for it.
struct Prepared {
    batch: RawRowBatch<'static>,
    payload: Vec<u8>,
}

pub async fn measure(
    deployment: &Deployment,
    plan: &ReceiverPlan,
    seed: u64,
) -> Result<ReceiverResult, BenchError> {
    let tenant = format!("{}T1", deployment.prefix.replace('-', ""));
    let batches = rows_for(&tenant, seed, plan.calls, plan.call_bytes)?;
    let (prepared, cost) = prepare(deployment, &tenant, batches)?;
    let mut receiver = deployment.start_receiver().await?;
    let result = async {
        let url = deployment.url(&receiver)?;
        let settings = deployment.settings()?;
        let topology = Topology::new(&settings.amqp);
        let connection = mirror_common::broker::connect(&settings.amqp)
            .await
            .map_err(|e| BenchError::Broker(e.to_string()))?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let queue = topology.queue(topology.partition_of(&tenant));
        let routing_key = topology.routing_key(topology.partition_of(&tenant));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|source| BenchError::Http { source })?;
        let mut levels = Vec::new();
        for &concurrency in &plan.concurrency {
            let bodies = render(deployment, &tenant, &prepared);
            let bytes = bodies.iter().map(|b| b.len() as u64).sum();
            let raw = publish_raw(
                &channel,
                &topology.exchange(),
                &routing_key,
                &tenant,
                &prepared,
                concurrency,
            )
            .await?;
            let raw = Run { bytes, ..raw };
            purge(&channel, &queue).await?;
            let confirms_before = confirm_seconds(&http, receiver.port).await;
            let cpu_before = receiver.pid().and_then(cpu_seconds);
            let mut ours = post(&http, &url, bodies, concurrency).await?;
            ours.cpu_ms_per_call = receiver
                .pid()
                .and_then(cpu_seconds)
                .zip(cpu_before)
                .map(|(after, before)| (after - before) * 1000.0 / plan.calls.max(1) as f64);
            let confirm_ms = confirm_seconds(&http, receiver.port)
                .await
                .and_then(|after| {
                    let (sum, count) = confirms_before?;
                    let calls = after.1 - count;
                    (calls > 0.0).then(|| (after.0 - sum) * 1000.0 / calls)
                });
            purge(&channel, &queue).await?;
            levels.push(Level {
                concurrency,
                raw,
                ours,
                confirm_ms,
            });
        }
        let _ = connection.close(200, "".into()).await;
        let mean_call_bytes = levels.first().map_or(0, |l| l.ours.bytes) / plan.calls.max(1) as u64;
        let message_bytes: usize = prepared.iter().map(|p| p.payload.len()).sum();
        Ok(ReceiverResult {
            calls: plan.calls,
            mean_call_bytes,
            mean_message_bytes: (message_bytes / prepared.len().max(1)) as u64,
            decode_ms: cost.decode_ms,
            read_ms: cost.read_ms,
            levels,
            receiver_memory: receiver.memory(),
        })
    }
    .await;
    receiver.stop().await;
    result
}

/// `calls` batches whose RowData calls are about `call_bytes` of SOAP each, from the source's
/// tables in turn (the largest first), only full ones.
fn rows_for(
    tenant: &str,
    seed: u64,
    calls: usize,
    call_bytes: usize,
) -> Result<Vec<RawRowBatch<'static>>, BenchError> {
    // SOAP is at least twice the data it carries, and rows carry ~300 bytes of data on average:
    // enough rows for every call, and some to spare.
    let rows = (calls as u64 * (call_bytes as u64 / 600 + 1) * 2).max(10_000);
    let source = Source::new(tenant, seed, rows)?;
    let mut tables: Vec<_> = source.mirrored_tables().collect();
    tables.sort_by_key(|t| std::cmp::Reverse(t.live_rows()));
    let mut out = Vec::with_capacity(calls);
    for table in tables {
        let schema = table.schema();
        let rows = || {
            table.everything().filter_map(|change| {
                table
                    .row(change.key)
                    .map(|values| WireRow::from_values(change.op, values))
            })
        };
        let batch = |rows: Vec<WireRow>| RawRowBatch {
            table: schema.clone(),
            lsn: 0,
            rows: rows.into_iter().map(WireRow::into_raw).collect(),
        };
        // How much data makes a call of the asked size, from a probe call of this table.
        let Some(probe) = Batches::new(rows(), call_bytes / 4).next() else {
            continue;
        };
        let data = probe.bytes;
        let soap = render_request("", &row_data("", batch(probe.rows))).len();
        let data_limit = (data as f64 * call_bytes as f64 / soap.max(1) as f64) as usize;
        for full in Batches::new(rows(), data_limit) {
            if out.len() == calls {
                return Ok(out);
            }
            if full.last {
                break;
            }
            out.push(batch(full.rows));
        }
    }
    if out.is_empty() {
        return Err(BenchError::Failed("the source has no rows to send".into()));
    }
    // A small source: send its calls again.
    let mut i = 0;
    while out.len() < calls {
        out.push(out[i].clone());
        i += 1;
    }
    Ok(out)
}

/// Mean times per call, in this process, of what a receiver must do before publishing.
struct ReadCost {
    decode_ms: f64,
    read_ms: f64,
}

/// The envelopes the receiver would publish, and what reading and decoding a call costs.
fn prepare(
    deployment: &Deployment,
    tenant: &str,
    batches: Vec<RawRowBatch<'static>>,
) -> Result<(Vec<Prepared>, ReadCost), BenchError> {
    let limits = Limits::default();
    let credentials = deployment.keys.credentials(BENCH_CLIENT_ID);
    let mut decode = Duration::ZERO;
    let mut read = Duration::ZERO;
    let mut prepared = Vec::with_capacity(batches.len());
    for batch in batches {
        let token = credentials
            .issuer
            .issue(tenant, BENCH_CLIENT_ID, Utc::now())
            .token;
        let body = render_request(&token, &row_data(&token, batch.clone()));
        let started = Instant::now();
        let events = xml_events(body.as_bytes())?;
        read += started.elapsed();
        std::hint::black_box(events);
        let started = Instant::now();
        let request = parse_request(body.as_bytes(), &limits)?;
        let RequestBody::RowData { batches } = request.body else {
            return Err(BenchError::Failed("a rendered call is not RowData".into()));
        };
        let decoded = decode_batches(&batches)
            .map_err(|e| BenchError::Failed(format!("a generated call does not decode: {e}")))?;
        decode += started.elapsed();
        let envelope = Envelope {
            id: uuid::Uuid::now_v7(),
            tenant: tenant.to_owned(),
            received_at_ms: Utc::now().timestamp_millis(),
            trace_id: mirror_common::telemetry::new_trace_id(),
            message: Message::RowData { batches: decoded },
        };
        prepared.push(Prepared {
            batch,
            payload: wire::encode(&envelope)?,
        });
    }
    let mean_ms = |total: Duration| total.as_secs_f64() * 1000.0 / prepared.len().max(1) as f64;
    let cost = ReadCost {
        decode_ms: mean_ms(decode),
        read_ms: mean_ms(read),
    };
    Ok((prepared, cost))
}

/// Walks every event of `body` with quick-xml's plain reader: the least a receiver that reads its
/// input can do.
fn xml_events(body: &[u8]) -> Result<usize, BenchError> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut events = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => return Ok(events),
            Ok(_) => events += 1,
            Err(e) => {
                return Err(BenchError::Failed(format!(
                    "a rendered call is not XML: {e}"
                )));
            }
        }
    }
}

fn row_data(token: &str, batch: RawRowBatch<'static>) -> Request<'static> {
    Request {
        token: token.to_owned(),
        client_state: String::new(),
        body: RequestBody::RowData {
            batches: vec![batch],
        },
    }
}

/// Every call rendered with a fresh token (tokens live five minutes: render right before use).
fn render(deployment: &Deployment, tenant: &str, prepared: &[Prepared]) -> Vec<String> {
    let credentials = deployment.keys.credentials(BENCH_CLIENT_ID);
    prepared
        .iter()
        .map(|p| {
            let token = credentials
                .issuer
                .issue(tenant, BENCH_CLIENT_ID, Utc::now())
                .token;
            render_request(&token, &row_data(&token, p.batch.clone()))
        })
        .collect()
}

/// Runs `work(i)` for every call index on `concurrency` tasks taking the next index in turn;
/// returns the wall time and the sorted latencies.
async fn drive<F, Fut>(
    calls: usize,
    concurrency: usize,
    work: F,
) -> Result<(f64, Vec<Duration>), BenchError>
where
    F: Fn(usize) -> Fut + Clone,
    Fut: Future<Output = Result<(), BenchError>>,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..concurrency.max(1)).map(|_| {
        let next = next.clone();
        let work = work.clone();
        async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return Ok::<_, BenchError>(latencies);
                }
                let call = Instant::now();
                work(i).await?;
                latencies.push(call.elapsed());
            }
        }
    });
    let per_worker = try_join_all(workers).await?;
    let secs = started.elapsed().as_secs_f64();
    let mut latencies: Vec<Duration> = per_worker.into_iter().flatten().collect();
    latencies.sort();
    Ok((secs, latencies))
}

async fn publish_raw(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    tenant: &str,
    prepared: &[Prepared],
    concurrency: usize,
) -> Result<Run, BenchError> {
    let (secs, latencies) = drive(prepared.len(), concurrency, |i| async move {
        let confirm = channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &prepared[i].payload,
                properties(tenant),
            )
            .await?
            .await?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            other => Err(BenchError::Failed(format!(
                "the broker did not take a raw publish: {other:?}"
            ))),
        }
    })
    .await?;
    // Counted in SOAP bytes by the caller, like the receiver's calls for the same messages.
    Ok(Run {
        secs,
        bytes: 0,
        latencies,
        cpu_ms_per_call: None,
    })
}

/// The properties the receiver gives a RowData message.
fn properties(tenant: &str) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        header::TENANT.into(),
        AMQPValue::LongString(LongString::from(tenant)),
    );
    headers.insert(
        header::TRACE_ID.into(),
        AMQPValue::LongString(LongString::from(
            mirror_common::telemetry::new_trace_id().as_str(),
        )),
    );
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(topology::CONTENT_TYPE.into())
        .with_message_id(uuid::Uuid::now_v7().to_string().as_str().into())
        .with_type("RowData".into())
        .with_headers(headers)
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    bodies: Vec<String>,
    concurrency: usize,
) -> Result<Run, BenchError> {
    let bytes: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    let action = format!(
        "\"{}\"",
        mirror_common::soap::Operation::RowData.soap_action()
    );
    let (secs, latencies) = drive(bodies.len(), concurrency, |i| {
        let body = bodies[i].clone();
        let action = action.clone();
        async move {
            let answer = http
                .post(url)
                .header("Content-Type", "text/xml; charset=utf-8")
                .header("SOAPAction", action)
                .body(body)
                .send()
                .await
                .map_err(|source| BenchError::Http { source })?;
            let status = answer.status();
            let text = answer
                .bytes()
                .await
                .map_err(|source| BenchError::Http { source })?;
            let response = parse_response(&text, &Limits::default())?;
            let outcome = response.outcome();
            if !status.is_success() || !outcome.ok {
                return Err(BenchError::Failed(format!(
                    "the receiver refused a call: HTTP {status}: {}",
                    outcome.error
                )));
            }
            Ok(())
        }
    })
    .await?;
    Ok(Run {
        secs,
        bytes,
        latencies,
        cpu_ms_per_call: None,
    })
}

/// The receiver's confirm-time histogram: (sum of seconds, count), over every label.
async fn confirm_seconds(http: &reqwest::Client, port: u16) -> Option<(f64, f64)> {
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let total = |suffix: &str| -> f64 {
        let name = format!("{CONFIRM_SECONDS}{suffix}");
        text.lines()
            .filter(|l| {
                l.strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with([' ', '{']))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Some((total("_sum"), total("_count")))
}

async fn purge(channel: &Channel, queue: &str) -> Result<(), BenchError> {
    channel
        .queue_purge(queue.into(), QueuePurgeOptions::default())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let run = Run {
            secs: 2.0,
            bytes: 4_000_000,
            latencies: (1..=100).map(Duration::from_millis).collect(),
            cpu_ms_per_call: None,
        };
        assert_eq!(run.quantile_ms(0.5), 50.0);
        assert_eq!(run.quantile_ms(0.99), 99.0);
        assert_eq!(run.quantile_ms(1.0), 100.0);
        assert_eq!(run.mb_per_sec(), 2.0);
    }

    #[test]
    fn calls_of_about_the_asked_size() {
        let batches = rows_for("BenchRows", 1, 3, 200_000).unwrap();
        assert_eq!(batches.len(), 3);
        for batch in batches {
            let bytes = render_request("", &row_data("", batch)).len();
            assert!((180_000..=220_000).contains(&bytes), "{bytes}");
        }
    }
}
