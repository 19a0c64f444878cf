//! Framing BGP messages on a byte stream: a `tokio-util` [`Decoder`]/[`Encoder`] (feature
//! `codec`).
//!
//! The decoder waits for a whole header, checks it (RFC 4271 §6.1: marker → 1/1, length → 1/2 with
//! the length as data, type → 1/3 with the type as data), waits for the whole message, then
//! decodes it with the receive [`Context`]. The size limit is 4096 octets until
//! [`BgpCodec::set_negotiated`] installs a context with extended messages (65535, RFC 8654).
//! After an error the session must be closed; the decoder does not resynchronise.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::context::{Context, Negotiated};
use crate::error::{DecodeError, EncodeError};
use crate::message::{HEADER_LEN, Header, Message, Notification};

/// What can go wrong on a framed stream.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    /// Reading or writing the stream failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something that must be answered with a NOTIFICATION.
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// A message could not be encoded.
    #[error("{0}")]
    Encode(#[from] EncodeError),
}

impl FramingError {
    /// The NOTIFICATION to send before closing, for errors caused by the peer.
    pub fn notification(&self) -> Option<&Notification> {
        match self {
            FramingError::Decode(e) => Some(&e.notification),
            _ => None,
        }
    }
}

/// A framer for one BGP session.
#[derive(Debug, Clone, Default)]
pub struct BgpCodec {
    receive: Context,
    send: Context,
}

impl BgpCodec {
    /// A codec for the OPEN exchange: default contexts (4096-octet limit).
    pub fn new() -> Self {
        BgpCodec::default()
    }

    /// A codec with given receive and send contexts.
    pub fn with_contexts(receive: Context, send: Context) -> Self {
        BgpCodec { receive, send }
    }

    /// Installs the contexts negotiated from both OPENs (raises the limit to 65535 octets when
    /// extended messages were negotiated).
    pub fn set_negotiated(&mut self, negotiated: &Negotiated) {
        self.receive = negotiated.receive;
        self.send = negotiated.send;
    }

    /// The context received messages are decoded with.
    pub fn receive_context(&self) -> &Context {
        &self.receive
    }

    /// The context sent messages are encoded with.
    pub fn send_context(&self) -> &Context {
        &self.send
    }
}

impl Decoder for BgpCodec {
    type Item = Message;
    type Error = FramingError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, FramingError> {
        let Some(header) = Header::decode(src, &self.receive)? else {
            src.reserve(HEADER_LEN.saturating_sub(src.len()));
            return Ok(None);
        };
        let len = usize::from(header.length);
        if src.len() < len {
            src.reserve(len.saturating_sub(src.len()));
            return Ok(None);
        }
        let frame = src.split_to(len);
        Ok(Some(Message::decode(&frame, &self.receive)?))
    }
}

impl Encoder<&Message> for BgpCodec {
    type Error = FramingError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), FramingError> {
        dst.reserve(item.encoded_len(&self.send));
        item.encode(&self.send, dst)?;
        Ok(())
    }
}

impl Encoder<Message> for BgpCodec {
    type Error = FramingError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), FramingError> {
        <Self as Encoder<&Message>>::encode(self, &item, dst)
    }
}
