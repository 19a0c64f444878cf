//! UPDATE handling per negotiated family (RFC 7606 AFI/SAFI disable, RFC 4760) and the retry pace after refused connections.

use super::*;

// ----- RFC 7606 AFI/SAFI disable (§7.11-7.12, RFC 4760 §7) -----

/// An UPDATE message around an attribute list and an NLRI field (hex, spaces ignored).
fn update_msg(attrs: &str, nlri: &str) -> Vec<u8> {
    let attrs = hex(&attrs.replace(' ', ""));
    let nlri = hex(&nlri.replace(' ', ""));
    let len = 19 + 4 + attrs.len() + nlri.len();
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(&attrs);
    m.extend_from_slice(&nlri);
    m
}

const ORIGIN_PATH: &str = "400101 00 400206 0201 0000fde9";
/// IPv4 10.1.1.0/24 via 10.0.0.2 (no ADD-PATH).
fn v4_update() -> Vec<u8> {
    update_msg(&format!("{ORIGIN_PATH} 400304 0a000002"), "180a0101")
}
/// IPv6 2001:db8:1::/48 via 2001:db8::2 in MP_REACH_NLRI.
fn v6_update() -> Vec<u8> {
    update_msg(
        &format!(
            "900e001c 0002 01 10 20010db8000000000000000000000002 00 30 20010db80001 {ORIGIN_PATH}"
        ),
        "",
    )
}
/// MP_REACH_NLRI for IPv6 with next hop length 9 (fixture upd-mp-reach-nh-len-9).
fn v6_malformed() -> Vec<u8> {
    update_msg(
        &format!("900e0017 0002 01 09 20010db8000000000000 4020010db800000001 {ORIGIN_PATH}"),
        "",
    )
}
/// MP_REACH_NLRI for IPv4 unicast with next hop length 9: the NLRI cannot be located.
fn v4_mp_malformed() -> Vec<u8> {
    update_msg(
        &format!("900e0012 0001 01 09 0a0000020000000000 00 180a0101 {ORIGIN_PATH}"),
        "",
    )
}

/// Established with a peer that offers `peer_families` (no ADD-PATH) while we offer `ours`.
fn established_with(ours: &[Family], peer_families: &[Family]) -> T {
    let mut c = config();
    c.families = ours.to_vec();
    c.add_path = AddPathMode::Off;
    let mut t = T::new(c);
    t.input(Input::Start);
    t.input(Input::Connected {
        conn: C1,
        direction: Direction::Inbound,
    });
    let mut caps: Vec<Capability> = peer_families
        .iter()
        .map(|f| Capability::Multiprotocol(*f))
        .collect();
    caps.push(Capability::FourOctetAs(PEER_AS));
    t.recv_msg(C1, Message::Open(Open::new(PEER_AS, 90, PEER_ID, caps)));
    t.recv_msg(C1, Message::Keepalive);
    assert_eq!(t.s.state(), State::Established);
    t
}

fn updates(actions: &[Action]) -> Vec<&bgp_proto::message::Update> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Update(u) => Some(&**u),
            _ => None,
        })
        .collect()
}

fn disabled(actions: &[Action]) -> Vec<Family> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::FamilyDisabled(f) => Some(*f),
            _ => None,
        })
        .collect()
}

/// A malformed MP_REACH_NLRI of a negotiated family disables it: the RIB is told to delete the
/// peer's routes of it, its later routes are ignored, the session stays up and the other family
/// keeps working.
#[test]
fn malformed_mp_reach_disables_a_negotiated_family() {
    let both = [Family::IPV4_UNICAST, Family::IPV6_UNICAST];
    let mut t = established_with(&both, &both);
    assert_eq!(updates(&t.recv(C1, &v6_update())).len(), 1);
    let a = t.recv(C1, &v6_malformed());
    assert_eq!(disabled(&a), vec![Family::IPV6_UNICAST]);
    assert!(
        summary(&a).iter().all(|s| !s.starts_with("notif")),
        "{:?}",
        summary(&a)
    );
    assert_eq!(t.s.state(), State::Established);
    // Later IPv6 routes are ignored; IPv4 still flows.
    assert!(updates(&t.recv(C1, &v6_update())).is_empty());
    assert_eq!(updates(&t.recv(C1, &v4_update())).len(), 1);
    // A second malformed one does not disable it again.
    assert!(disabled(&t.recv(C1, &v6_malformed())).is_empty());
    // IPv4 unicast through MP_REACH_NLRI: disabled too, NLRI-field routes then ignored.
    let a = t.recv(C1, &v4_mp_malformed());
    assert_eq!(disabled(&a), vec![Family::IPV4_UNICAST]);
    assert!(updates(&t.recv(C1, &v4_update())).is_empty());
    assert_eq!(t.s.state(), State::Established);
}

/// A malformed MP_REACH_NLRI of a family the session did not negotiate has nothing to delete
/// and nothing to disable; routes of that family are ignored anyway and the session stays up.
#[test]
fn malformed_mp_reach_of_a_family_not_negotiated() {
    let mut t = established_with(&[Family::IPV4_UNICAST], &[Family::IPV4_UNICAST]);
    let a = t.recv(C1, &v6_malformed());
    assert!(disabled(&a).is_empty());
    assert!(summary(&a).iter().all(|s| !s.starts_with("notif")));
    // A well-formed IPv6 route of the un-negotiated family is not passed on either.
    assert!(updates(&t.recv(C1, &v6_update())).is_empty());
    assert_eq!(updates(&t.recv(C1, &v4_update())).len(), 1);
    assert_eq!(t.s.state(), State::Established);
}

/// A peer that is not listening yet (its daemon starting, as every node of a mesh does at
/// once) refuses the attempt: the next one comes after 100 ms, doubling up to ConnectRetry,
/// not after the whole ConnectRetry time.
#[test]
fn refused_attempts_are_retried_soon_then_back_off_to_connect_retry() {
    let mut t = T::new(config());
    t.input(Input::Start);
    t.advance(2);
    assert_eq!(summary(&t.timer(Timer::ConnectRetry)), ["connect"]);
    let mut waits = Vec::new();
    for _ in 0..8 {
        let a = t.input(Input::ConnectRefused);
        assert_eq!(t.s.state(), State::Active);
        let at = armed(&a, Timer::ConnectRetry).expect("retry armed");
        waits.push((at - t.now).as_millis());
        t.now = at;
        assert_eq!(summary(&t.timer(Timer::ConnectRetry)), ["connect"]);
    }
    assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    // Any other failure keeps the ConnectRetry pace (no new timer: the one armed stays).
    let a = t.input(Input::ConnectFailed);
    assert_eq!(armed(&a, Timer::ConnectRetry), None);
}
