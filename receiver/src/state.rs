//! What every call needs, built once at start-up and shared by the handlers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mirror_common::auth::{ApplicationKey, TokenVerifier};
use mirror_common::soap::Limits;
use tokio::sync::Semaphore;

use crate::backlog::BacklogCheck;
use crate::broker::Broker;
use crate::metrics::Metrics;
use crate::publisher::Publisher;

/// The time source for token checks and answer signing. Injectable so tests can replay
/// SuperOffice's captured 2021 requests inside their tokens' validity.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub body_limit: usize,
    /// The longest a client may take to send one request body.
    pub body_timeout: Duration,
    pub limits: Limits,
    pub verifier: TokenVerifier,
    pub key: ApplicationKey,
    pub broker: Broker,
    pub publisher: Publisher,
    pub backlog: BacklogCheck,
    pub metrics: Metrics,
    /// Calls in progress; acquired before a body is read.
    pub calls: Semaphore,
    pub clock: Clock,
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.0.clock)()
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("body_limit", &self.0.body_limit)
            .field("limits", &self.0.limits)
            .field("broker", &self.0.broker)
            .finish_non_exhaustive()
    }
}
