//! Whatever decodes cleanly must re-encode to the same bytes and decode to the same value.
#![no_main]

#[path = "common.rs"]
mod common;

use arbitrary::Arbitrary;
use bgp_proto::Message;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    ctx: common::FuzzContext,
    message_type: u8,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let ctx = input.ctx.context();
    // Build a well-framed message so that the body decoders are reached.
    let len = 19 + input.body.len();
    if len > 65535 {
        return;
    }
    let mut bytes = vec![0xff; 16];
    bytes.extend_from_slice(&(len as u16).to_be_bytes());
    bytes.push(input.message_type % 6);
    bytes.extend_from_slice(&input.body);
    let Ok(message) = Message::decode(&bytes, &ctx) else {
        return;
    };
    if let Message::Update(u) = &message {
        if !u.issues.is_empty() {
            // RFC 7606 removed something: the re-encoding must still decode.
            let again = message.to_bytes(&ctx).expect("a decoded UPDATE encodes");
            let decoded = Message::decode(&again, &ctx).expect("re-encoded UPDATE decodes");
            let Message::Update(d) = decoded else {
                panic!("type changed")
            };
            assert_eq!(
                d.attributes, u.attributes,
                "attributes change after RFC 7606 cleanup"
            );
            return;
        }
    }
    assert_eq!(message.encoded_len(&ctx), bytes.len(), "encoded_len");
    let encoded = message.to_bytes(&ctx).expect("a decoded message encodes");
    assert_eq!(
        encoded.as_ref(),
        bytes.as_slice(),
        "not byte exact: {message:?}"
    );
    let again = Message::decode(&encoded, &ctx).expect("re-encoded message decodes");
    assert_eq!(again, message);
});
