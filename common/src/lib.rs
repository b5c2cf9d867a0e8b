//! Nouns shared by the mirroring services: wire types, the SOAP and value codecs, authentication,
//! configuration, telemetry and the queue topology.

pub mod auth;
pub mod batch;
pub mod broker;
pub mod config;
pub mod partition;
pub mod schema;
pub mod shutdown;
pub mod soap;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod topology;
pub mod value;
pub mod wire;
