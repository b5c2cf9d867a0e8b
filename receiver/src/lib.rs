//! Placeholder library root.
