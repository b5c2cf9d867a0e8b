//! End-to-end harness: the real receiver and real applier workers running in this process against
//! the local RabbitMQ and PostgreSQL, driven over real HTTP with properly signed SOAP calls.
//!
//! Every [`Pipeline`] has its own queue prefix, and every [`Tenant`] its own context id, so suites
//! run in parallel with each other and with other crates' tests. Queues, exchanges, key files and
//! the tenants' mirror schemas are removed when the pipeline stops or is dropped, also when a
//! test fails half-way.
//!
//! ```text
//! Tenant ──SOAP/HTTP──▶ receiver ──▶ <prefix>.pNN ──▶ applier worker(s) ──▶ "Mirror_<tenant>"
//!                                                          └──▶ <prefix>.dlq (poison)
//! ```
//!
//! This crate is test code: a failed expectation is a test failure, so the harness panics with
//! a message saying what it expected instead of returning errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod broker;
pub mod checkpoint;
pub mod cleanup;
pub mod keys;
pub mod mirror;
pub mod pipeline;
pub mod process;
pub mod services;
pub mod soap_client;
pub mod values;

pub use broker::{DeadLetter, Queues};
pub use mirror::Mirror;
pub use mirror_common::testing::{PATIENCE, eventually, eventually_within};
pub use pipeline::{CLIENT_ID, Pipeline, PipelineOptions, Worker};
pub use soap_client::{Reply, SoapClient, Tenant};

/// Where PostgreSQL is (trust authentication, as on the test machines).
pub const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Where RabbitMQ is.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A short unique id for names of queues, tenants and files.
pub fn unique_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}
