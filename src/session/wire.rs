//! The core's only contact with the wire codec: framing a received byte stream into messages and
//! encoding what the core sends. Everything else uses the decoded types.

use bytes::{Bytes, BytesMut};

use bgp_proto::Context;
use bgp_proto::error::DecodeError;
use bgp_proto::iana::MessageType;
use bgp_proto::message::{Header, Message, Notification, Open};

/// Takes the next complete message out of `buf`, checking its header (RFC 4271 §6.1).
///
/// `Ok(None)`: `buf` does not hold a whole message yet. `Err`: the stream is unusable; the error
/// carries the NOTIFICATION to send.
pub(crate) fn next_frame(
    buf: &mut BytesMut,
    context: &Context,
) -> Result<Option<(MessageType, BytesMut)>, DecodeError> {
    let Some(header) = Header::decode(buf, context)? else {
        return Ok(None);
    };
    let len = usize::from(header.length);
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some((header.message_type, buf.split_to(len))))
}

/// Decodes one whole message; the error carries the NOTIFICATION to send (RFC 4271 §6).
pub(crate) fn decode(frame: &[u8], context: &Context) -> Result<Message, DecodeError> {
    Message::decode(frame, context)
}

/// Encodes a message that cannot fail to encode in the default context (KEEPALIVE, our OPEN,
/// NOTIFICATION with data that fits).
fn encode(message: &Message) -> Bytes {
    match message.to_bytes(&Context::default()) {
        Ok(bytes) => bytes.freeze(),
        Err(_) => Bytes::new(),
    }
}

/// A KEEPALIVE.
pub(crate) fn encode_keepalive() -> Bytes {
    encode(&Message::Keepalive)
}

/// Our OPEN.
pub(crate) fn encode_open(open: &Open) -> Bytes {
    encode(&Message::Open(open.clone()))
}

/// A NOTIFICATION; data too long for a 4096-octet message is cut (RFC 4271 §4.1).
pub(crate) fn encode_notification(notification: &Notification) -> Bytes {
    let mut n = notification.clone();
    n.data.truncate(4096 - 21);
    encode(&Message::Notification(n))
}
