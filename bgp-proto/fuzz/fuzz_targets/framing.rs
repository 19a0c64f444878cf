//! The framer on a byte stream cut at random places must yield exactly what it yields when the
//! stream arrives in one piece, and never panic.
#![no_main]

#[path = "common.rs"]
mod common;

use arbitrary::Arbitrary;
use bgp_proto::Message;
use bgp_proto::framing::BgpCodec;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

#[derive(Debug, Arbitrary)]
struct Input {
    ctx: common::FuzzContext,
    /// Messages (bodies), framed with a correct header unless `raw` is set.
    messages: Vec<(u8, Vec<u8>)>,
    raw: Vec<u8>,
    cuts: Vec<u16>,
}

fn run(ctx: bgp_proto::Context, stream: &[u8], cuts: &[usize]) -> (Vec<Message>, Option<String>) {
    let mut codec = BgpCodec::with_contexts(ctx, ctx);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
        buf.extend_from_slice(&stream[start..end]);
        start = end;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }
    (out, None)
}

fuzz_target!(|input: Input| {
    let ctx = input.ctx.context();
    let mut stream = Vec::new();
    for (t, body) in &input.messages {
        let len = 19 + body.len();
        if len > 65535 {
            continue;
        }
        stream.extend_from_slice(&[0xff; 16]);
        stream.extend_from_slice(&(len as u16).to_be_bytes());
        stream.push(t % 6);
        stream.extend_from_slice(body);
    }
    stream.extend_from_slice(&input.raw);
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|c| *c as usize % (stream.len() + 1))
        .collect();
    cuts.sort();
    let whole = run(ctx, &stream, &[]);
    let split = run(ctx, &stream, &cuts);
    assert_eq!(whole, split);
});
