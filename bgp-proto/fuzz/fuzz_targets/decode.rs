//! Decode arbitrary bytes with an arbitrary context: must never panic; every accessor a caller
//! uses on the result must not panic either.
#![no_main]

#[path = "common.rs"]
mod common;

use arbitrary::Arbitrary;
use bgp_proto::{Header, Message};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    ctx: common::FuzzContext,
    /// When set, a valid marker is put in front so that bodies get exercised.
    with_marker: bool,
    bytes: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let ctx = input.ctx.context();
    let mut bytes = Vec::with_capacity(input.bytes.len() + 16);
    if input.with_marker {
        bytes.extend_from_slice(&[0xff; 16]);
        // Make the length field match so that the body is decoded.
        let len = (input.bytes.len() + 16).min(65535) as u16;
        let mut body = input.bytes.clone();
        if body.len() >= 2 {
            body[..2].copy_from_slice(&len.to_be_bytes());
        }
        bytes.extend_from_slice(&body);
    } else {
        bytes.extend_from_slice(&input.bytes);
    }
    let _ = Header::decode(&bytes, &ctx);
    match Message::decode(&bytes, &ctx) {
        Ok(Message::Open(open)) => {
            let _ = open.validate();
            let _ = open.asn();
            let _ = open.graceful_restart();
            let _ = bgp_proto::Negotiated::from_opens(&open, &open);
        }
        Ok(Message::Update(update)) => {
            let _ = update.action();
            let _ = update.announced().count();
            let _ = update.withdrawn_routes().count();
            let _ = update.is_end_of_rib();
            let _ = bgp_proto::attr::reconstruct_as4(&update.attributes);
            for a in &update.attributes {
                let _ = a.for_propagation();
            }
            for issue in &update.issues {
                let _ = issue.to_string();
            }
        }
        Ok(Message::Notification(n)) => {
            let _ = n.shutdown_communication();
            let _ = n.to_string();
        }
        Ok(_) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
