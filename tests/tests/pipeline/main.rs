//! The pipeline suite: SOAP calls over real HTTP into the real receiver, through RabbitMQ, applied
//! by real applier workers to PostgreSQL, checked in the mirror with plain SQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod metrics;
mod poison;
mod replay;
mod resync;
mod rows;
mod schema;
mod types;
