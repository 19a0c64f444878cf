//! BGP messages: the header (RFC 4271 §4.1) and one module per message type.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                                                               +
//! |                           Marker                              |
//! +                                                               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

mod keepalive;
mod notification;
mod open;
mod route_refresh;
mod update;

use bytes::{BufMut, BytesMut};

pub use keepalive::KEEPALIVE_LEN;
pub use notification::{MAX_SHUTDOWN_COMMUNICATION_LEN, Notification};
pub use open::{BGP_VERSION, Open, OptionalParameter};
pub use route_refresh::RouteRefresh;
pub use update::Update;

use crate::context::{Context, MAX_EXTENDED_MESSAGE_LEN};
use crate::error::{DecodeError, EncodeError};
use crate::iana::{HeaderErrorSubcode, MessageType};
use crate::wire::{Reader, sum};

/// The 16-octet all-ones marker (RFC 4271 §4.1).
pub const MARKER: [u8; 16] = [0xff; 16];
/// Length of the message header.
pub const HEADER_LEN: usize = 19;

/// A BGP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// OPEN.
    Open(Open),
    /// UPDATE.
    Update(Update),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh(RouteRefresh),
}

/// A checked message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Total message length including the header.
    pub length: u16,
    /// Message type (always one of the five known types once checked).
    pub message_type: MessageType,
}

fn bad_length(length: u16, reason: String) -> DecodeError {
    // RFC 4271 §6.1: Bad Message Length, the data is the erroneous Length field.
    DecodeError::new(
        "message header length",
        16,
        reason,
        Notification::header(
            HeaderErrorSubcode::BadMessageLength,
            length.to_be_bytes().to_vec(),
        ),
    )
}

impl Header {
    /// Checks the first 19 octets of `buf` as a message header (RFC 4271 §6.1): the marker, the
    /// length against the type's minimum and the context's maximum, and the type. Returns
    /// `Ok(None)` when fewer than 19 octets are available.
    pub fn decode(buf: &[u8], ctx: &Context) -> Result<Option<Header>, DecodeError> {
        let Some(head) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let mut r = Reader::new(head, 0);
        let marker = r.take(16).unwrap_or_default();
        // RFC 4271 §6.1: a marker that is not all ones is Connection Not Synchronized.
        if marker != MARKER {
            return Err(DecodeError::new(
                "message header marker",
                0,
                "marker is not all ones",
                Notification::header(HeaderErrorSubcode::ConnectionNotSynchronized, vec![]),
            ));
        }
        let length = r.u16().unwrap_or_default();
        let raw_type = r.u8().unwrap_or_default();
        let message_type = MessageType::from(raw_type);
        let len = usize::from(length);
        if len < HEADER_LEN || len > ctx.max_len() {
            return Err(bad_length(
                length,
                format!("length {length} outside {HEADER_LEN}..={}", ctx.max_len()),
            ));
        }
        // RFC 4271 §6.1: the type must be known.
        let min = match message_type {
            MessageType::Open => 29,
            MessageType::Update => 23,
            MessageType::Notification => 21,
            MessageType::Keepalive => KEEPALIVE_LEN,
            MessageType::RouteRefresh => 23,
            MessageType::Other(t) => {
                return Err(DecodeError::new(
                    "message header type",
                    18,
                    format!("unknown message type {t}"),
                    Notification::header(HeaderErrorSubcode::BadMessageType, vec![t]),
                ));
            }
        };
        // RFC 4271 §6.1: a length too small or too large for the type is Bad Message Length
        // (KEEPALIVE is exactly 19; OPEN and KEEPALIVE stay below 4096, RFC 8654 §4).
        let max = ctx.max_message_len(message_type);
        let max = if message_type == MessageType::Keepalive {
            KEEPALIVE_LEN
        } else {
            max
        };
        if len < min || len > max {
            return Err(bad_length(
                length,
                format!("length {length} outside {min}..={max} for {message_type:?}"),
            ));
        }
        Ok(Some(Header {
            length,
            message_type,
        }))
    }
}

impl Message {
    /// Decodes one complete message (header included) received with context `ctx`.
    ///
    /// UPDATE problems that RFC 7606 handles without a session reset are reported inside the
    /// returned [`Update`] ([`Update::issues`]); everything else that is wrong is an error
    /// carrying the NOTIFICATION to send.
    pub fn decode(buf: &[u8], ctx: &Context) -> Result<Message, DecodeError> {
        let header = match Header::decode(buf, ctx)? {
            Some(header) => header,
            None => {
                return Err(DecodeError::new(
                    "message header",
                    0,
                    format!("only {} octets, a header needs {HEADER_LEN}", buf.len()),
                    Notification::header(HeaderErrorSubcode::BadMessageLength, vec![]),
                ));
            }
        };
        let len = usize::from(header.length);
        let Some(message) = buf.get(..len) else {
            return Err(bad_length(
                header.length,
                format!(
                    "length field says {len} octets but only {} are present",
                    buf.len()
                ),
            ));
        };
        if buf.len() > len {
            return Err(bad_length(
                header.length,
                format!(
                    "length field says {len} octets but {} were given",
                    buf.len()
                ),
            ));
        }
        let mut body = Reader::new(message.get(HEADER_LEN..).unwrap_or_default(), HEADER_LEN);
        Ok(match header.message_type {
            MessageType::Open => Message::Open(Open::decode_body(&mut body)?),
            MessageType::Update => Message::Update(Update::decode_body(&mut body, ctx)?),
            MessageType::Notification => {
                Message::Notification(Notification::decode_body(&mut body)?)
            }
            MessageType::Keepalive => Message::Keepalive,
            MessageType::RouteRefresh => {
                Message::RouteRefresh(RouteRefresh::decode_body(&mut body, message)?)
            }
            // Header::decode refuses unknown types.
            MessageType::Other(_) => return Err(bad_length(header.length, String::new())),
        })
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// The exact number of octets [`encode`](Self::encode) writes, header included.
    pub fn encoded_len(&self, ctx: &Context) -> usize {
        let body = match self {
            Message::Open(m) => m.body_len(),
            Message::Update(m) => m.body_len(ctx),
            Message::Notification(m) => m.body_len(),
            Message::Keepalive => 0,
            Message::RouteRefresh(m) => m.body_len(),
        };
        sum([HEADER_LEN, body])
    }

    /// Encodes the message for a peer with context `ctx`. Nothing is written on error.
    pub fn encode(&self, ctx: &Context, buf: &mut impl BufMut) -> Result<(), EncodeError> {
        match self {
            Message::Open(m) => m.check()?,
            Message::Update(m) => m.check(ctx)?,
            _ => {}
        }
        let length = self.encoded_len(ctx);
        let max = ctx.max_message_len(self.message_type());
        if length > max {
            return Err(EncodeError::MessageTooLong {
                message: message_name(self.message_type()),
                length,
                max,
            });
        }
        buf.put_slice(&MARKER);
        buf.put_u16(u16::try_from(length).unwrap_or(u16::MAX));
        buf.put_u8(self.message_type().into());
        match self {
            Message::Open(m) => m.encode_body(buf),
            Message::Update(m) => m.encode_body(ctx, buf),
            Message::Notification(m) => m.encode_body(buf),
            Message::Keepalive => {}
            Message::RouteRefresh(m) => m.encode_body(buf),
        }
        Ok(())
    }

    /// Encodes into a new buffer of exactly the right size.
    pub fn to_bytes(&self, ctx: &Context) -> Result<BytesMut, EncodeError> {
        let mut buf = BytesMut::with_capacity(self.encoded_len(ctx).min(MAX_EXTENDED_MESSAGE_LEN));
        self.encode(ctx, &mut buf)?;
        Ok(buf)
    }
}

fn message_name(t: MessageType) -> &'static str {
    match t {
        MessageType::Open => "OPEN",
        MessageType::Update => "UPDATE",
        MessageType::Notification => "NOTIFICATION",
        MessageType::Keepalive => "KEEPALIVE",
        MessageType::RouteRefresh => "ROUTE-REFRESH",
        MessageType::Other(_) => "message",
    }
}
