//! Private byte reader on top of `nom`'s primitive parsers, tracking absolute offsets so that
//! errors can name where they happened. The offset is only computed when asked for.

use std::net::{Ipv4Addr, Ipv6Addr};

use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16, be_u24, be_u32};

/// A cursor over a slice whose first octet sits at some known offset in the message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    /// Offset (in the message) one past the last octet of the slice.
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first octet is at `start` in the message.
    pub(crate) fn new(buf: &'a [u8], start: usize) -> Self {
        Reader {
            rest: buf,
            end: start.saturating_add(buf.len()),
        }
    }

    /// Offset of the next unread octet in the message.
    pub(crate) fn offset(&self) -> usize {
        self.end.saturating_sub(self.rest.len())
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The unread octets, without consuming them.
    pub(crate) fn peek_rest(&self) -> &'a [u8] {
        self.rest
    }

    fn step<T>(&mut self, result: nom::IResult<&'a [u8], T, ()>) -> Option<T> {
        let (rest, value) = result.ok()?;
        self.rest = rest;
        Some(value)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let r = be_u8::<&[u8], ()>(self.rest);
        self.step(r)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        let r = be_u16::<&[u8], ()>(self.rest);
        self.step(r)
    }

    pub(crate) fn u24(&mut self) -> Option<u32> {
        let r = be_u24::<&[u8], ()>(self.rest);
        self.step(r)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let r = be_u32::<&[u8], ()>(self.rest);
        self.step(r)
    }

    /// Takes `n` octets as a sub-reader that keeps absolute offsets.
    pub(crate) fn sub(&mut self, n: usize) -> Option<Reader<'a>> {
        let start = self.offset();
        let bytes = self.take(n)?;
        Some(Reader::new(bytes, start))
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let r = take::<usize, &[u8], ()>(n).parse(self.rest);
        self.step(r)
    }

    /// Takes everything that is left.
    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    pub(crate) fn ipv4(&mut self) -> Option<Ipv4Addr> {
        self.u32().map(Ipv4Addr::from)
    }

    pub(crate) fn ipv6(&mut self) -> Option<Ipv6Addr> {
        let bytes: [u8; 16] = self.take(16)?.try_into().ok()?;
        Some(Ipv6Addr::from(bytes))
    }
}

/// Adds lengths without overflow (encoders check the total against the message limit).
pub(crate) fn sum(parts: impl IntoIterator<Item = usize>) -> usize {
    parts.into_iter().fold(0usize, usize::saturating_add)
}
