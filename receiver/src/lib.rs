//! The SOAP endpoint SuperOffice's Mirroring Task calls: it authenticates every call, decodes and
//! validates it, publishes it to the tenant's partition queue with publisher confirms, and answers
//! only when the broker holds the message.

pub mod backlog;
pub mod body;
pub mod broker;
pub mod call;
pub mod error;
pub mod handler;
pub mod health;
pub mod metrics;
pub mod publisher;
pub mod serve;
pub mod startup;
pub mod state;

pub use startup::{Application, BuildOptions, StartupError};
pub use state::Clock;
