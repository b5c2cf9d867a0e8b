//! What the consumer needs from the apply engine, as a trait object.
//!
//! The consumer only sequences work (apply, retry, quarantine, acknowledge); the engine owns the
//! database. Behind a trait the consumer can also run over a wrapper that fails or stalls on
//! command: that is how its retry path is exercised, and how a worker is caught between a commit
//! and its acknowledgement.

use async_trait::async_trait;
use mirror_common::wire::Envelope;

use crate::engine::{Applied, Engine, Quarantine};
use crate::error::ApplyError;

/// A tenant-mirror target: applies messages, quarantines tables, answers pings.
#[async_trait]
pub trait Mirror: Send + Sync + 'static {
    /// Applies one message in one transaction; `Ok` means committed (or recognised as done).
    async fn apply(&self, envelope: &Envelope) -> Result<Applied, ApplyError>;

    /// Records a permanent failure of `envelope`: the table it concerns is quarantined.
    async fn quarantine(
        &self,
        envelope: &Envelope,
        failure: &ApplyError,
    ) -> Result<Quarantine, ApplyError>;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), ApplyError>;
}

#[async_trait]
impl Mirror for Engine {
    async fn apply(&self, envelope: &Envelope) -> Result<Applied, ApplyError> {
        Engine::apply(self, envelope).await
    }

    async fn quarantine(
        &self,
        envelope: &Envelope,
        failure: &ApplyError,
    ) -> Result<Quarantine, ApplyError> {
        Engine::quarantine(self, envelope, failure).await
    }

    async fn ping(&self) -> Result<(), ApplyError> {
        Engine::ping(self).await
    }
}
