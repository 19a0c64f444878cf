//! Every row of `fixtures/malformed-messages.tsv` with its exact expected outcome.
//!
//! The table assumes an established session with 4-octet AS, peer AS 65001 (eBGP), IPv4 and IPv6
//! unicast. OPEN rows are decoded and then checked with `Open::validate` (the stateless checks of
//! RFC 4271 §6.2). Where this table departs from the TSV's wording, docs/rfc-compliance.md says
//! why.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use bgp_proto::attr::{Community, SegmentType};
use bgp_proto::iana::{AttributeType, UpdateErrorSubcode};
use bgp_proto::{
    AttributeValue, Capability, Context, DecodeError, Family, Message, Nlri, Rfc7606Action, Update,
};
use common::{fixtures_dir, hex, to_hex};

/// What the receiver must do with a row.
enum Expect {
    /// Close with this NOTIFICATION (code, subcode, data).
    Notify(u8, u8, &'static str),
    /// Accept; the closure checks what was decoded.
    Accept(fn(&Message)),
    /// Accept the UPDATE but act on RFC 7606: the strongest action, the attributes at fault and
    /// the NOTIFICATION (code/subcode) of the first issue, and a check of the rest.
    Rfc7606(
        Rfc7606Action,
        &'static [AttributeType],
        (u8, u8),
        fn(&Update),
    ),
}

fn p(s: &str) -> Nlri {
    Nlri::new(s.parse().unwrap())
}

fn has_route_10_1_1(u: &Update) {
    assert_eq!(
        u.nlri,
        vec![p("10.1.1.0/24")],
        "the NLRI must still be available"
    );
}

fn expectation(name: &str) -> Option<Expect> {
    use AttributeType as A;
    use Expect::*;
    use Rfc7606Action::*;
    Some(match name {
        "hdr-bad-marker" => Notify(1, 1, ""),
        "hdr-len-18" => Notify(1, 2, "0012"),
        "hdr-keepalive-len-20" => Notify(1, 2, "0014"),
        "hdr-type-9" => Notify(1, 3, "09"),
        "open-version-3" => Notify(2, 1, "0004"),
        "open-hold-1" => Notify(2, 6, ""),
        "open-hold-0" => Accept(|m| {
            let Message::Open(o) = m else {
                panic!("not an OPEN: {m:?}")
            };
            assert_eq!(o.hold_time, 0);
            assert_eq!(o.asn(), 65001);
        }),
        "open-bgpid-0" => Notify(2, 3, ""),
        "open-peer-as-0" => Notify(2, 2, ""),
        // RFC 4271 §6.2 has no subcode for optional parameters overrunning the message: 2/0.
        "open-truncated-after-optlen" => Notify(2, 0, ""),
        "open-ext-optparam-truncated" => Notify(2, 0, ""),
        "open-unknown-capability" => Accept(|m| {
            let Message::Open(o) = m else {
                panic!("not an OPEN: {m:?}")
            };
            let caps: Vec<_> = o.capabilities().cloned().collect();
            assert_eq!(
                caps,
                vec![
                    Capability::Unknown {
                        code: 0xee,
                        data: vec![0xab, 0xcd]
                    },
                    Capability::FourOctetAs(65001)
                ]
            );
            assert_eq!(o.asn(), 65001);
        }),
        "open-cap-len-overrun" => Notify(2, 0, ""),
        "upd-wd+attr-len-exceeds-msg" => Notify(3, 1, ""),
        "upd-attr-overrun-total" => {
            Rfc7606(TreatAsWithdraw, &[A::Communities], (3, 5), has_route_10_1_1)
        }
        "upd-attr-trailing-2-octets" => {
            Rfc7606(TreatAsWithdraw, &[A::Origin], (3, 1), has_route_10_1_1)
        }
        "upd-nlri-prefixlen-33" => Notify(3, 10, ""),
        "upd-nlri-overrun" => Notify(3, 10, ""),
        "upd-withdrawn-overrun" => Notify(3, 10, ""),
        "upd-origin-3" => Rfc7606(TreatAsWithdraw, &[A::Origin], (3, 6), has_route_10_1_1),
        "upd-origin-flags-optional" => {
            Rfc7606(TreatAsWithdraw, &[A::Origin], (3, 4), has_route_10_1_1)
        }
        "upd-aspath-seglen-0" => Rfc7606(TreatAsWithdraw, &[A::AsPath], (3, 11), has_route_10_1_1),
        "upd-aspath-as0" => Rfc7606(TreatAsWithdraw, &[A::AsPath], (3, 11), has_route_10_1_1),
        "upd-missing-nexthop" => Rfc7606(TreatAsWithdraw, &[A::NextHop], (3, 3), |u| {
            has_route_10_1_1(u);
            assert_eq!(
                u.issues[0].notification.data,
                vec![3],
                "data is the missing type code"
            );
        }),
        "upd-nexthop-len-5" => Rfc7606(TreatAsWithdraw, &[A::NextHop], (3, 5), has_route_10_1_1),
        "upd-med-len-3" => Rfc7606(
            TreatAsWithdraw,
            &[A::MultiExitDisc],
            (3, 5),
            has_route_10_1_1,
        ),
        "upd-atomic-agg-len-1" => Rfc7606(AttributeDiscard, &[A::AtomicAggregate], (3, 5), |u| {
            has_route_10_1_1(u);
            assert!(u.attribute(A::AtomicAggregate).is_none(), "discarded");
            assert!(u.attribute(A::NextHop).is_some());
        }),
        "upd-aggregator-len-5" => Rfc7606(AttributeDiscard, &[A::Aggregator], (3, 5), |u| {
            has_route_10_1_1(u);
            assert!(u.attribute(A::Aggregator).is_none(), "discarded");
        }),
        "upd-community-len-5" => {
            Rfc7606(TreatAsWithdraw, &[A::Communities], (3, 5), has_route_10_1_1)
        }
        "upd-dup-community" => Rfc7606(AttributeDiscard, &[A::Communities], (3, 1), |u| {
            has_route_10_1_1(u);
            let c = u.attribute(A::Communities).map(|a| &a.value);
            assert_eq!(
                c,
                Some(&AttributeValue::Communities(vec![Community(0xffff_0001)])),
                "the first COMMUNITIES is kept"
            );
        }),
        "upd-dup-mp-reach" => Notify(3, 1, ""),
        "upd-mp-reach-nh-len-9" => Rfc7606(AfiSafiDisable, &[A::MpReachNlri], (3, 9), |u| {
            assert_eq!(
                u.disabled_families().collect::<Vec<_>>(),
                vec![Family::IPV6_UNICAST]
            );
            assert_eq!(
                to_hex(&u.issues[0].notification.data),
                "900e00170002010920010db80000000000004020010db800000001",
                "the NOTIFICATION for a session reset carries the attribute"
            );
        }),
        "upd-otc-len-3" => Rfc7606(
            TreatAsWithdraw,
            &[A::OnlyToCustomer],
            (3, 5),
            has_route_10_1_1,
        ),
        "upd-unknown-wellknown" => Notify(3, 2, "40f00101"),
        "upd-unknown-optional-transitive" => Accept(|m| {
            let Message::Update(u) = m else {
                panic!("not an UPDATE: {m:?}")
            };
            assert!(u.issues.is_empty(), "{:?}", u.issues);
            assert_eq!(u.nlri, vec![p("10.1.1.0/24")]);
            let unknown = u.attribute(A::Other(0xfe)).expect("kept");
            assert_eq!(
                unknown.value,
                AttributeValue::Unknown {
                    type_code: 0xfe,
                    data: hex("deadbeef")
                }
            );
            assert_eq!(unknown.flags.0, 0xc0, "kept as received");
            let passed_on = unknown.for_propagation().expect("transitive: passed on");
            assert_eq!(
                passed_on.flags.0, 0xe0,
                "Partial bit set when passed on (RFC 4271 §5)"
            );
        }),
        "upd-only-unknown-attr-no-nlri" => Accept(|m| {
            let Message::Update(u) = m else {
                panic!("not an UPDATE: {m:?}")
            };
            assert!(u.issues.is_empty());
            assert_eq!(u.announced().count(), 0);
            assert_eq!(u.withdrawn_routes().count(), 0);
            assert_eq!(
                u.is_end_of_rib(),
                None,
                "an attribute makes it no End-of-RIB"
            );
        }),
        // RFC 7606 §5.2: treat-as-withdraw without NLRI is a session reset, with the
        // NOTIFICATION of the underlying error (Malformed AS_PATH, no data: RFC 4271 §6.3).
        "upd-bad-attr-no-nlri" => Notify(3, 11, ""),
        "upd-eor-ipv4" => Accept(|m| {
            let Message::Update(u) = m else {
                panic!("not an UPDATE: {m:?}")
            };
            assert_eq!(u.is_end_of_rib(), Some(Family::IPV4_UNICAST));
        }),
        _ => return None,
    })
}

/// The rows of the TSV: name → (hex, description).
fn rows() -> BTreeMap<String, (String, String)> {
    let path = fixtures_dir().join("malformed-messages.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut cols = line.split('\t');
        let (Some(name), Some(hex), Some(desc)) = (cols.next(), cols.next(), cols.next()) else {
            panic!("TSV row without three columns: {line:?}");
        };
        let previous = rows.insert(name.to_string(), (hex.to_string(), desc.to_string()));
        assert!(previous.is_none(), "duplicate TSV row {name}");
    }
    rows
}

/// The session of the TSV: 4-octet AS, no ADD-PATH, no extended messages.
fn context() -> Context {
    Context::default()
}

/// Decode, then the stateless OPEN checks, as the session layer does.
fn receive(bytes: &[u8]) -> Result<Message, DecodeError> {
    let m = Message::decode(bytes, &context())?;
    if let Message::Open(o) = &m {
        o.validate()?;
    }
    Ok(m)
}

fn check(name: &str, bytes: &[u8], expect: &Expect) -> Result<(), String> {
    let outcome = receive(bytes);
    match (expect, outcome) {
        (Expect::Notify(code, subcode, data), Err(e)) => {
            let got = (
                u8::from(e.notification.code),
                e.notification.subcode,
                to_hex(&e.notification.data),
            );
            if got != (*code, *subcode, data.to_string()) {
                return Err(format!(
                    "expected NOTIFICATION {code}/{subcode} data={data:?}, got {got:?} ({e})"
                ));
            }
            Ok(())
        }
        (Expect::Notify(code, subcode, _), Ok(m)) => Err(format!(
            "expected NOTIFICATION {code}/{subcode}, but it decoded: {m:?}"
        )),
        (Expect::Accept(f), Ok(m)) => {
            if let Message::Update(u) = &m
                && !u.issues.is_empty()
            {
                return Err(format!(
                    "expected a clean accept, got issues {:?}",
                    u.issues
                ));
            }
            run(name, || f(&m))
        }
        (Expect::Rfc7606(action, attrs, (code, subcode), f), Ok(Message::Update(u))) => {
            if u.action() != Some(*action) {
                return Err(format!(
                    "expected {action:?}, got {:?} (issues {:?})",
                    u.action(),
                    u.issues
                ));
            }
            let got: Vec<_> = u.issues.iter().filter_map(|i| i.attribute).collect();
            if got != *attrs {
                return Err(format!("expected issues for {attrs:?}, got {got:?}"));
            }
            let n = &u.issues[0].notification;
            if (u8::from(n.code), n.subcode) != (*code, *subcode) {
                return Err(format!(
                    "expected NOTIFICATION {code}/{subcode} in the issue, got {}",
                    n.summary()
                ));
            }
            run(name, || f(&u))
        }
        (_, Ok(m)) => Err(format!("unexpected message kind: {m:?}")),
        (_, Err(e)) => Err(format!("expected acceptance, got error: {e}")),
    }
}

fn run(name: &str, f: impl FnOnce() + std::panic::UnwindSafe) -> Result<(), String> {
    std::panic::catch_unwind(f).map_err(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("{name}: check failed: {msg}")
    })
}

#[test]
fn every_tsv_row_has_the_exact_outcome() {
    let mut failures = Vec::new();
    for (name, (hex_str, desc)) in rows() {
        let Some(expect) = expectation(&name) else {
            continue;
        };
        if let Err(e) = check(&name, &hex(&hex_str), &expect) {
            failures.push(format!("{name} (TSV: {desc}): {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_tsv_row_has_an_expectation() {
    let rows = rows();
    let missing: Vec<_> = rows.keys().filter(|n| expectation(n).is_none()).collect();
    assert!(
        missing.is_empty(),
        "TSV rows without an expectation in tests/malformed.rs: {missing:?}"
    );
    assert!(rows.len() >= 38, "the TSV lost rows: {}", rows.len());
}

#[test]
fn treat_as_withdraw_keeps_the_routes_and_the_good_attributes() {
    // upd-origin-3: ORIGIN is dropped, the rest (AS_PATH, NEXT_HOP) is decoded.
    let rows = rows();
    let (h, _) = &rows["upd-origin-3"];
    let Ok(Message::Update(u)) = receive(&hex(h)) else {
        panic!()
    };
    assert_eq!(
        u.announced().map(|(f, n)| (f, *n)).collect::<Vec<_>>(),
        vec![(Family::IPV4_UNICAST, p("10.1.1.0/24"))]
    );
    assert!(u.attribute(AttributeType::Origin).is_none());
    assert_eq!(u.as_path().unwrap().segments[0].kind, SegmentType::Sequence);
    assert_eq!(
        u.attribute(AttributeType::NextHop).unwrap().value,
        AttributeValue::NextHop(Ipv4Addr::new(10, 0, 0, 2))
    );
    assert_eq!(
        u.issues[0].notification.subcode,
        u8::from(UpdateErrorSubcode::InvalidOriginAttribute)
    );
}
