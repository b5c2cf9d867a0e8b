//! Token verification, application-token signing and key formats.
