//! KEEPALIVE (RFC 4271 §4.4): a header with no body, exactly 19 octets. Decoding and encoding
//! live in [`super::Message`]; a KEEPALIVE of any other length is a Message Header Error 1/2
//! (RFC 4271 §6.1).

/// The length of every KEEPALIVE message.
pub const KEEPALIVE_LEN: usize = 19;
