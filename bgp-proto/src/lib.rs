//! BGP-4 wire format for `tern`.
//!
//! This crate decodes and encodes BGP messages and knows nothing about sessions, sockets or the
//! daemon. Decoding never panics on any input: non-test code may not unwrap, index, or use
//! unchecked arithmetic (enforced by the lints below).
//!
//! # Layers
//!
//! - [`Message::decode`] takes one complete message and the session's receive [`Context`]
//!   (4-octet AS, ADD-PATH per family, extended messages; see [`Negotiated::from_opens`]).
//!   [`Header::decode`] checks a header alone (for framing; the `codec` feature provides a
//!   `tokio-util` framer in `framing`).
//! - Errors that reset the session are [`DecodeError`]s carrying the [`Notification`] to send
//!   and the field and byte offset at fault. UPDATE problems that RFC 7606 handles without a
//!   reset come back inside the [`Update`] as [`UpdateIssue`]s; [`Update::action`] is the
//!   strongest [`Rfc7606Action`].
//! - [`Message::encode`] writes exactly [`Message::encoded_len`] octets. A decoded well-formed
//!   message re-encodes byte for byte: attribute and capability order, optional parameter
//!   layout, AS_PATH segments, attribute flags and unknown attributes/capabilities are kept.
//! - [`Open::validate`] performs the stateless OPEN checks of RFC 4271 §6.2.
//!
//! # Supported RFCs
//!
//! RFC 4271 (BGP-4), 2918 + 7313 (route refresh, enhanced), 4760 (multiprotocol), 5492
//! (capabilities), 9072 (extended optional parameters), 6793 (4-octet AS), 4724 + 8538 (graceful
//! restart), 9494 (long-lived GR), 7911 (ADD-PATH), 8654 (extended messages), 8950 (IPv6 next hop
//! for IPv4), 9234 (roles, OTC), 1997 / 4360 / 8092 (communities), 4456 (route reflection
//! attributes), 7606 (revised UPDATE error handling), 7607 (AS 0), 6286 (BGP identifier), 9003
//! (shutdown communication). Departures are listed in `docs/rfc-compliance.md`.
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

pub mod attr;
pub mod builder;
pub mod capability;
pub mod context;
pub mod error;
#[cfg(feature = "codec")]
pub mod framing;
pub mod iana;
pub mod message;
pub mod nlri;
mod wire;

pub use attr::{AttrFlags, AttributeValue, Origin, PathAttribute};
pub use builder::UpdateBuilder;
pub use capability::Capability;
pub use context::{AddPathFamilies, Context, Negotiated};
pub use error::{DecodeError, EncodeError, Rfc7606Action, UpdateIssue};
pub use iana::{Afi, Family, Safi};
pub use message::{Header, Message, Notification, Open, OptionalParameter, RouteRefresh, Update};
pub use nlri::Nlri;
