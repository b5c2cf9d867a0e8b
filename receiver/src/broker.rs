//! The receiver's one broker connection and the supervisor loop that keeps it up.
//!
//! The service must start and answer while RabbitMQ is down, and recover by itself when it comes
//! back. So the connection is owned by a supervisor task: it connects (bounded by the connect
//! timeout), declares the topology (idempotent), opens the publishing channel in confirm mode, and
//! publishes the result as the current [`Link`]. Callers take the current link or learn that there
//! is none (and answer `IsSuccessful=false`). When the connection or channel fails — noticed by
//! lapin's events, a periodic status check, or a caller that saw an error — the link is dropped
//! and the loop reconnects with capped exponential backoff. lapin's own auto-recovery stays off:
//! an explicit loop makes a lost connection visible and re-declares the topology every time.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, Event};
use mirror_common::broker::BrokerError;
use mirror_common::config::AmqpSettings;
use mirror_common::shutdown::CancellationToken;
use mirror_common::topology::{self, Topology};
use tokio::sync::watch;

use crate::metrics::Metrics;

/// First delay after a failed connect; doubles up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest delay between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often the supervisor checks that the connection and channel are still open, in case a
/// failure produced no event.
const STATUS_CHECK: Duration = Duration::from_secs(1);
/// Bound on closing the connection at shutdown or after a failure.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// One live connection with its publishing channel (confirm mode) and a channel for queue
/// inspection (a failed passive declare closes its channel; it must not take publishing down).
#[derive(Debug)]
pub struct Link {
    pub connection: Connection,
    pub publish: Channel,
    pub inspect: Channel,
    broken: CancellationToken,
}

impl Link {
    /// Marks this link as failed: the supervisor drops it and reconnects.
    pub fn report_broken(&self) {
        self.broken.cancel();
    }

    fn is_healthy(&self) -> bool {
        !self.broken.is_cancelled()
            && self.connection.status().connected()
            && self.publish.status().connected()
            && self.inspect.status().connected()
    }
}

#[derive(Debug, Clone)]
pub struct Broker {
    settings: AmqpSettings,
    topology: Topology,
    metrics: Metrics,
    current: watch::Sender<Option<Arc<Link>>>,
}

impl Broker {
    pub fn new(settings: AmqpSettings, topology: Topology, metrics: Metrics) -> Broker {
        let (current, _) = watch::channel(None);
        Broker {
            settings,
            topology,
            metrics,
            current,
        }
    }

    pub fn settings(&self) -> &AmqpSettings {
        &self.settings
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The current link, if the broker is connected and the link was not reported broken.
    pub fn link(&self) -> Option<Arc<Link>> {
        self.current
            .borrow()
            .as_ref()
            .filter(|link| !link.broken.is_cancelled())
            .cloned()
    }

    pub fn is_connected(&self) -> bool {
        self.link().is_some_and(|link| link.is_healthy())
    }

    /// Resolves once a link is available (tests and start-up logs use it).
    pub async fn connected(&self) {
        let mut rx = self.current.subscribe();
        // An error means the sender is gone, which cannot happen while `self` holds it.
        let _ = rx.wait_for(|link| link.is_some()).await;
    }

    /// Keeps the connection up until `shutdown`, then closes it.
    pub async fn supervise(self, shutdown: CancellationToken) {
        let mut backoff = INITIAL_BACKOFF;
        loop {
            let attempt = tokio::select! {
                () = shutdown.cancelled() => break,
                attempt = self.open() => attempt,
            };
            match attempt {
                Ok(link) => {
                    backoff = INITIAL_BACKOFF;
                    let link = Arc::new(link);
                    tracing::info!(
                        partitions = self.topology.partitions,
                        prefix = %self.topology.prefix,
                        "Connected to the message broker."
                    );
                    self.current.send_replace(Some(Arc::clone(&link)));
                    self.metrics.broker_connected(true);
                    watch_link(&link, &shutdown).await;
                    self.current.send_replace(None);
                    self.metrics.broker_connected(false);
                    close(&link.connection).await;
                    if shutdown.is_cancelled() {
                        break;
                    }
                    tracing::warn!("Lost the message broker connection; reconnecting.");
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "Cannot reach the message broker."
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {},
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        tracing::info!("Message broker supervisor stopped.");
    }

    /// Connects, declares the topology and opens the channels, all within the connect timeout.
    async fn open(&self) -> Result<Link, BrokerError> {
        let connection = mirror_common::broker::connect(&self.settings).await?;
        let setup = async {
            let publish = connection.create_channel().await?;
            topology::declare(&publish, &self.topology).await?;
            publish
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            let inspect = connection.create_channel().await?;
            Ok::<_, lapin::Error>((publish, inspect))
        };
        match tokio::time::timeout(self.settings.connect_timeout(), setup).await {
            Ok(Ok((publish, inspect))) => Ok(Link {
                connection,
                publish,
                inspect,
                broken: CancellationToken::new(),
            }),
            Ok(Err(error)) => {
                close(&connection).await;
                Err(BrokerError::Connect(error))
            }
            Err(_elapsed) => {
                close(&connection).await;
                Err(BrokerError::ConnectTimeout(
                    self.settings.connect_timeout_secs,
                ))
            }
        }
    }
}

/// Returns when `link` fails or `shutdown` is requested.
async fn watch_link(link: &Link, shutdown: &CancellationToken) {
    let mut events = link.connection.events_listener();
    let mut ticks = tokio::time::interval(STATUS_CHECK);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = link.broken.cancelled() => return,
            event = events.next() => match event {
                Some(Event::Error(error)) => {
                    tracing::warn!(%error, "Message broker connection failed.");
                    return;
                }
                Some(Event::ConnectionBlocked(reason)) => {
                    tracing::warn!(%reason, "Message broker blocked publishing.");
                }
                Some(Event::ConnectionUnblocked) => {
                    tracing::info!("Message broker unblocked publishing.");
                }
                Some(_) => {}
                None => return,
            },
            _ = ticks.tick() => {
                if !link.is_healthy() {
                    return;
                }
            }
        }
    }
}

async fn close(connection: &Connection) {
    if connection.status().connected() {
        let closing = connection.close(200, "OK".into());
        if tokio::time::timeout(CLOSE_TIMEOUT, closing).await.is_err() {
            tracing::warn!("Closing the message broker connection timed out.");
        }
    }
}
