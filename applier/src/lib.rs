//! Placeholder library root.
pub mod consumer;
pub mod dead_letter;
pub mod health;
pub mod metrics;
pub mod retry;
pub mod startup;
pub mod dialect;
pub mod engine;
pub mod error;
pub mod hooks;
pub mod plan;
pub mod state;
