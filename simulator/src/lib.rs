//! `mirror-sim`: a stand-in for SuperOffice's Mirroring Task.
//!
//! It owns a synthetic tenant database ([`source`]), drives real mirroring cycles over HTTP against
//! the receiver ([`driver`]), and compares the mirror with the source row by row ([`verify`]).
//! The binary is a thin layer over this library so end-to-end tests drive the same code.

pub mod bench;
pub mod cli;
pub mod demo;
pub mod driver;
pub mod keys;
pub mod scenario;
pub mod source;
pub mod verify;
