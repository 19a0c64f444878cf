//! Errors: what went wrong, where, and which NOTIFICATION (or RFC 7606 action) it calls for.

use std::fmt;

use crate::iana::{AttributeType, Family};
use crate::message::Notification;

/// A message that cannot be accepted: the session must be reset with [`notification`].
///
/// `offset` counts octets from the first octet of the message (the marker), so offset 16 is the
/// length field and offset 19 the first octet of the body.
///
/// [`notification`]: DecodeError::notification
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The field that is wrong, e.g. `"OPEN hold time"` or `"UPDATE path attribute ORIGIN"`.
    pub field: &'static str,
    /// Octet offset of the field (or of the first wrong octet) from the start of the message.
    pub offset: usize,
    /// What is wrong with it, in words.
    pub reason: String,
    /// The NOTIFICATION to send before closing the session (RFC 4271 §6).
    pub notification: Notification,
}

impl DecodeError {
    /// Builds an error.
    pub fn new(
        field: &'static str,
        offset: usize,
        reason: impl Into<String>,
        notification: Notification,
    ) -> Self {
        DecodeError {
            field,
            offset,
            reason: reason.into(),
            notification,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {}: {} (NOTIFICATION {})",
            self.field,
            self.offset,
            self.reason,
            self.notification.summary()
        )
    }
}

impl std::error::Error for DecodeError {}

/// A message that cannot be encoded as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message would exceed the maximum size for the context (RFC 4271 §4.1, RFC 8654).
    #[error("{message} would be {length} octets, more than the maximum {max}")]
    MessageTooLong {
        /// Which message.
        message: &'static str,
        /// Its encoded length.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// A length field cannot hold the value's length.
    #[error("{field} is {length} octets, more than its length field allows ({max})")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        length: usize,
        /// The largest encodable length.
        max: usize,
    },
    /// A 4-octet AS number in a 2-octet context: substitute AS_TRANS and use AS4_PATH /
    /// AS4_AGGREGATOR (RFC 6793 §4.2.2), e.g. with [`AsPath::split_for_two_octet`].
    ///
    /// [`AsPath::split_for_two_octet`]: crate::attr::AsPath::split_for_two_octet
    #[error("{field}: AS {asn} does not fit in 2 octets")]
    AsNumberTooLarge {
        /// Which field.
        field: &'static str,
        /// The AS number.
        asn: u32,
    },
    /// A value that cannot be represented on the wire.
    #[error("{field}: {reason}")]
    InvalidValue {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// The RFC 7606 error-handling approaches, weakest first, so that `max()` gives the one that wins
/// when several errors occur in one UPDATE (RFC 7606 §3: "the strongest action wins" - session
/// reset > AFI/SAFI disable > treat-as-withdraw > attribute discard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rfc7606Action {
    /// The malformed attribute was removed; the routes are processed normally (RFC 7606 §2).
    AttributeDiscard,
    /// The announced routes must be handled as withdrawn (RFC 7606 §2); they are still in the
    /// decoded [`Update`](crate::message::Update) so that they can be withdrawn.
    TreatAsWithdraw,
    /// The family named in [`UpdateIssue::family`] must be disabled for the session, or the
    /// session reset with [`UpdateIssue::notification`] (RFC 7606 §2, RFC 4760 §7).
    AfiSafiDisable,
    /// The session must be reset. Decoding reports this as a [`DecodeError`], never as an issue.
    SessionReset,
}

/// One RFC 7606 problem found in an UPDATE that does not reset the session by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateIssue {
    /// What the receiver must do.
    pub action: Rfc7606Action,
    /// The attribute at fault (for a missing attribute: the one that is missing; `None` when the
    /// attribute list itself is broken before a type code could be read).
    pub attribute: Option<AttributeType>,
    /// For [`Rfc7606Action::AfiSafiDisable`]: the family to disable.
    pub family: Option<Family>,
    /// Octet offset of the problem from the start of the message.
    pub offset: usize,
    /// What is wrong, in words (for the log).
    pub reason: String,
    /// The NOTIFICATION RFC 4271 would have sent; to send if the session layer chooses a session
    /// reset over AFI/SAFI disable, and useful in logs.
    pub notification: Notification,
}

impl fmt::Display for UpdateIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.action)?;
        if let Some(attribute) = self.attribute {
            write!(f, " ({attribute:?})")?;
        }
        if let Some(family) = self.family {
            write!(f, " [{family}]")?;
        }
        write!(f, " at byte {}: {}", self.offset, self.reason)
    }
}
