//! The stream framer: random splits, size limits, header errors.
#![cfg(feature = "codec")]

mod common;

use bgp_proto::framing::BgpCodec;
use bgp_proto::{Context, Message, Negotiated, Notification, Open};
use bytes::BytesMut;
use common::hex;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

fn sample_stream() -> (Vec<Message>, Vec<u8>) {
    let dir = common::fixtures_dir().join("messages");
    let mut messages = Vec::new();
    let mut bytes = Vec::new();
    for name in [
        "open-all-capabilities",
        "keepalive",
        "update-ipv4-basic",
        "update-ipv6-mp-reach-link-local",
        "route-refresh-ipv6-borr",
        "notification-cease-shutdown-communication",
    ] {
        let v = common::parse_vector(
            &std::fs::read_to_string(dir.join(format!("{name}.hex"))).unwrap(),
        )
        .unwrap();
        messages.push(Message::decode(&v.bytes, &Context::default()).unwrap());
        bytes.extend_from_slice(&v.bytes);
    }
    (messages, bytes)
}

fn feed(
    codec: &mut BgpCodec,
    bytes: &[u8],
    cuts: &[usize],
) -> Result<Vec<Message>, Option<Notification>> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(bytes.len());
    points.sort();
    for end in points {
        buf.extend_from_slice(&bytes[start..end]);
        start = end;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return Err(e.notification().cloned()),
            }
        }
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    Ok(out)
}

proptest! {
    #[test]
    fn any_split_yields_the_same_messages(cuts in proptest::collection::vec(any::<usize>(), 0..40)) {
        let (messages, bytes) = sample_stream();
        let got = feed(&mut BgpCodec::new(), &bytes, &cuts).unwrap();
        prop_assert_eq!(got, messages);
    }
}

#[test]
fn byte_by_byte() {
    let (messages, bytes) = sample_stream();
    let cuts: Vec<usize> = (0..bytes.len()).collect();
    assert_eq!(feed(&mut BgpCodec::new(), &bytes, &cuts).unwrap(), messages);
}

fn notification_for(stream: &str, codec: &mut BgpCodec) -> Notification {
    feed(codec, &hex(stream), &[])
        .expect_err("must fail")
        .expect("a NOTIFICATION")
}

#[test]
fn header_errors_map_to_notifications() {
    let n = notification_for(
        "feffffffffffffffffffffffffffffff001304",
        &mut BgpCodec::new(),
    );
    assert_eq!(
        (u8::from(n.code), n.subcode, n.data.clone()),
        (1, 1, vec![])
    );
    let n = notification_for(
        "ffffffffffffffffffffffffffffffff001204",
        &mut BgpCodec::new(),
    );
    assert_eq!(
        (u8::from(n.code), n.subcode, n.data.clone()),
        (1, 2, vec![0x00, 0x12])
    );
    let n = notification_for(
        "ffffffffffffffffffffffffffffffff001309",
        &mut BgpCodec::new(),
    );
    assert_eq!(
        (u8::from(n.code), n.subcode, n.data.clone()),
        (1, 3, vec![0x09])
    );
}

#[test]
fn the_limit_is_4096_until_extended_messages_are_negotiated() {
    // A header announcing a 4097-octet UPDATE is refused before the body arrives.
    let header = hex("ffffffffffffffffffffffffffffffff 1001 02");
    let mut codec = BgpCodec::new();
    let n = notification_for("ffffffffffffffffffffffffffffffff100102", &mut codec);
    assert_eq!(
        (u8::from(n.code), n.subcode, n.data),
        (1, 2, vec![0x10, 0x01])
    );

    let ext = Open::new(
        65001,
        90,
        "10.0.0.1".parse().unwrap(),
        vec![
            bgp_proto::Capability::ExtendedMessage,
            bgp_proto::Capability::FourOctetAs(65001),
        ],
    );
    let mut codec = BgpCodec::new();
    codec.set_negotiated(&Negotiated::from_opens(&ext, &ext));
    assert_eq!(codec.receive_context().max_len(), 65535);
    let mut buf = BytesMut::from(header.as_slice());
    assert!(
        codec.decode(&mut buf).unwrap().is_none(),
        "waits for the body"
    );

    let v = common::parse_vector(
        &std::fs::read_to_string(
            common::fixtures_dir().join("messages/update-extended-message-1100-prefixes.hex"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(v.bytes.len() > 4096);
    let got = feed(&mut codec, &v.bytes, &[1000, 3000]).unwrap();
    assert_eq!(got.len(), 1);
    let mut out = BytesMut::new();
    codec.encode(&got[0], &mut out).unwrap();
    assert_eq!(out.as_ref(), v.bytes.as_slice());
    // Without extended messages the same message is refused both ways.
    let mut small = BgpCodec::new();
    assert!(small.encode(&got[0], &mut BytesMut::new()).is_err());
    let n = feed(&mut small, &v.bytes, &[])
        .expect_err("too long")
        .expect("NOTIFICATION");
    assert_eq!((u8::from(n.code), n.subcode), (1, 2));
}
