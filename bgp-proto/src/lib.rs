//! BGP-4 wire format for `tern`.
//!
//! This crate decodes and encodes BGP messages and knows nothing about sessions, sockets or the
//! daemon. Decoding never panics on any input: non-test code may not unwrap, index, or use
//! unchecked arithmetic (enforced by the lints below).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]
#![warn(missing_docs)]
