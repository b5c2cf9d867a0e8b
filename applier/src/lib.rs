//! The applier: workers that apply queued schema and change batches to per-tenant mirror
//! databases, in order and exactly once, and the operator CLI `mirrorctl`.

pub mod consumer;
pub mod ctl;
pub mod dead_letter;
pub mod dialect;
pub mod engine;
pub mod error;
pub mod health;
pub mod hooks;
pub mod metrics;
pub mod plan;
pub mod retry;
pub mod startup;
pub mod state;
