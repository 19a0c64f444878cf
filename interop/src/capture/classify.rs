//! A minimal look into captured messages: enough to name a message after what it carries and
//! to compute the decode context its receiver negotiated. This is not a codec (that is
//! `bgp-proto`); it reads only type codes, capability codes and attribute headers.

use std::fmt::Write as _;

/// What one OPEN announced (only the capabilities that change decoding, plus all codes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenSummary {
    /// Capability codes in order of appearance.
    pub capabilities: Vec<u8>,
    /// 4-octet AS (capability 65).
    pub four_octet_as: bool,
    /// Extended message (capability 6).
    pub extended_message: bool,
    /// ADD-PATH entries (AFI, SAFI, send/receive: 1 receive, 2 send, 3 both).
    pub add_path: Vec<(u16, u8, u8)>,
}

/// Reads an OPEN's capabilities (optional parameter type 2; RFC 9072 extended parameters
/// are understood too). `None` when `message` is not a well-formed OPEN.
pub fn summarize_open(message: &[u8]) -> Option<OpenSummary> {
    if message.get(18) != Some(&1) {
        return None;
    }
    let body = message.get(19..)?;
    let mut params_len = usize::from(*body.get(9)?);
    let mut params = body.get(10..)?;
    let mut extended = false;
    // RFC 9072: non-extended length 255 and type 255 announce 2-byte lengths.
    if params_len == 255 && params.first() == Some(&255) {
        params_len = usize::from(u16::from_be_bytes([*params.get(1)?, *params.get(2)?]));
        params = params.get(3..)?;
        extended = true;
    }
    let mut params = params.get(..params_len)?;
    let mut summary = OpenSummary::default();
    while !params.is_empty() {
        let kind = *params.first()?;
        let (len, head) = if extended {
            (
                usize::from(u16::from_be_bytes([*params.get(1)?, *params.get(2)?])),
                3,
            )
        } else {
            (usize::from(*params.get(1)?), 2)
        };
        let value = params.get(head..head + len)?;
        params = params.get(head + len..)?;
        if kind != 2 {
            continue;
        }
        let mut caps = value;
        while caps.len() >= 2 {
            let code = caps[0];
            let len = usize::from(caps[1]);
            let cap = caps.get(2..2 + len)?;
            caps = caps.get(2 + len..)?;
            summary.capabilities.push(code);
            match code {
                65 => summary.four_octet_as = true,
                6 => summary.extended_message = true,
                69 => {
                    for entry in cap.chunks_exact(4) {
                        summary.add_path.push((
                            u16::from_be_bytes([entry[0], entry[1]]),
                            entry[2],
                            entry[3],
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    Some(summary)
}

/// The decode context the receiver of a message uses, as negotiated by both OPENs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeContext {
    /// Both sides announced 4-octet AS.
    pub four_octet_as: bool,
    /// Families (`ipv4-unicast`, `ipv6-unicast`) for which the sender sends path ids (it
    /// announced send and the receiver announced receive).
    pub add_path: Vec<&'static str>,
    /// Both sides announced extended messages.
    pub extended_message: bool,
}

impl DecodeContext {
    /// The context of messages from the speaker that sent `sender` to the one that sent
    /// `receiver` (RFC 6793 §3, RFC 7911 §4, RFC 8654 §3).
    pub fn negotiated(sender: &OpenSummary, receiver: &OpenSummary) -> DecodeContext {
        let mut add_path = Vec::new();
        for (afi, safi, name) in [(1u16, 1u8, "ipv4-unicast"), (2, 1, "ipv6-unicast")] {
            let sends = sender
                .add_path
                .iter()
                .any(|(a, s, mode)| (*a, *s) == (afi, safi) && mode & 2 != 0);
            let receives = receiver
                .add_path
                .iter()
                .any(|(a, s, mode)| (*a, *s) == (afi, safi) && mode & 1 != 0);
            if sends && receives {
                add_path.push(name);
            }
        }
        DecodeContext {
            four_octet_as: sender.four_octet_as && receiver.four_octet_as,
            add_path,
            extended_message: sender.extended_message && receiver.extended_message,
        }
    }

    /// The fixture file's context line: `four_octet_as=.. [add_path=a,b] extended_message=..`
    /// (`add_path` is left out when no family has path ids).
    pub fn fixture_line(&self) -> String {
        let mut line = format!("four_octet_as={}", self.four_octet_as);
        if !self.add_path.is_empty() {
            let _ = write!(line, " add_path={}", self.add_path.join(","));
        }
        let _ = write!(line, " extended_message={}", self.extended_message);
        line
    }

    fn has_add_path(&self, afi: u16) -> bool {
        let name = if afi == 2 {
            "ipv6-unicast"
        } else {
            "ipv4-unicast"
        };
        self.add_path.contains(&name)
    }
}

fn family_name(afi: u16, safi: u8) -> String {
    match (afi, safi) {
        (1, 1) => "ipv4".to_owned(),
        (2, 1) => "ipv6".to_owned(),
        _ => format!("afi{afi}-safi{safi}"),
    }
}

/// A file-name-friendly description of a message: `open`, `keepalive`,
/// `update-ipv4-med-communities`, `update-ipv6-two-octet-as-mp-reach-as4-path`, `update-ipv6-mp-reach-link-local`, `update-ipv6-mp-unreach`,
/// `update-end-of-rib-ipv6`, `notification-cease-admin-shutdown-text`,
/// `route-refresh-ipv4-borr`... `None` when the message is not a well-formed one of the five
/// types.
pub fn describe(message: &[u8], context: &DecodeContext) -> Option<String> {
    let body = message.get(19..)?;
    match *message.get(18)? {
        1 => Some("open".to_owned()),
        4 => Some("keepalive".to_owned()),
        2 => describe_update(body, context),
        3 => {
            let code = *body.first()?;
            let subcode = *body.get(1)?;
            let mut name = match (code, subcode) {
                (6, 2) => "notification-cease-admin-shutdown".to_owned(),
                (6, 3) => "notification-cease-peer-deconfigured".to_owned(),
                (6, 4) => "notification-cease-admin-reset".to_owned(),
                (6, 6) => "notification-cease-other-config-change".to_owned(),
                (6, 9) => "notification-cease-hard-reset".to_owned(),
                (6, s) => format!("notification-cease-{s}"),
                (4, _) => "notification-hold-timer-expired".to_owned(),
                (c, s) => format!("notification-{c}-{s}"),
            };
            if body.len() > 2 {
                name.push_str("-text");
            }
            Some(name)
        }
        5 => {
            let afi = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
            let subtype = *body.get(2)?;
            let safi = *body.get(3)?;
            let mut name = format!("route-refresh-{}", family_name(afi, safi));
            match subtype {
                1 => name.push_str("-borr"),
                2 => name.push_str("-eorr"),
                _ => {}
            }
            Some(name)
        }
        _ => None,
    }
}

fn describe_update(body: &[u8], context: &DecodeContext) -> Option<String> {
    let withdrawn_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let withdrawn = body.get(2..2 + withdrawn_len)?;
    let rest = body.get(2 + withdrawn_len..)?;
    let attrs_len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let mut attrs = rest.get(2..2 + attrs_len)?;
    let nlri = rest.get(2 + attrs_len..)?;
    if withdrawn.is_empty() && attrs_len == 0 && nlri.is_empty() {
        return Some("update-end-of-rib-ipv4".to_owned());
    }
    let mut codes = Vec::new();
    let mut family = None;
    let mut mp_reach = false;
    let mut mp_unreach_routes = false;
    let mut link_local = false;
    let mut mp_unreach_empty = false;
    while !attrs.is_empty() {
        let flags = *attrs.first()?;
        let code = *attrs.get(1)?;
        let (len, head) = if flags & 0x10 != 0 {
            (
                usize::from(u16::from_be_bytes([*attrs.get(2)?, *attrs.get(3)?])),
                4,
            )
        } else {
            (usize::from(*attrs.get(2)?), 3)
        };
        let value = attrs.get(head..head + len)?;
        attrs = attrs.get(head + len..)?;
        codes.push(code);
        match code {
            14 => {
                let afi = u16::from_be_bytes([*value.first()?, *value.get(1)?]);
                family = Some((afi, *value.get(2)?));
                mp_reach = true;
                link_local = *value.get(3)? == 32;
            }
            15 => {
                let afi = u16::from_be_bytes([*value.first()?, *value.get(1)?]);
                family = Some((afi, *value.get(2)?));
                mp_unreach_routes = value.len() > 3;
                mp_unreach_empty = value.len() == 3;
            }
            _ => {}
        }
    }
    if mp_unreach_empty && codes.len() == 1 && withdrawn.is_empty() && nlri.is_empty() {
        let (afi, safi) = family?;
        return Some(format!("update-end-of-rib-{}", family_name(afi, safi)));
    }
    let (afi, safi) = family.unwrap_or((1, 1));
    let mut name = format!("update-{}", family_name(afi, safi));
    if !context.four_octet_as {
        name.push_str("-two-octet-as");
    }
    if context.has_add_path(afi) {
        name.push_str("-addpath");
    }
    if !withdrawn.is_empty() {
        name.push_str("-withdraw");
    }
    if mp_unreach_routes {
        name.push_str("-mp-unreach");
    }
    if mp_reach {
        name.push_str("-mp-reach");
    }
    if link_local {
        name.push_str("-link-local");
    }
    for (code, word) in [
        (4u8, "med"),
        (5, "local-pref"),
        (8, "communities"),
        (16, "ext-communities"),
        (32, "large-communities"),
        (9, "originator-id"),
        (10, "cluster-list"),
        (6, "atomic-aggregate"),
        (7, "aggregator"),
        (17, "as4-path"),
        (18, "as4-aggregator"),
        (35, "otc"),
    ] {
        if codes.contains(&code) {
            let _ = write!(name, "-{word}");
        }
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend(u16::try_from(19 + body.len()).unwrap().to_be_bytes());
        m.push(kind);
        m.extend(body);
        m
    }

    fn plain() -> DecodeContext {
        DecodeContext {
            four_octet_as: true,
            add_path: Vec::new(),
            extended_message: false,
        }
    }

    #[test]
    fn open_capabilities_and_negotiated_context() {
        // version 4, AS 23456, hold 90, id 10.0.0.1, caps: 4-octet AS, ADD-PATH v4 send+recv,
        // extended message.
        let caps = [2u8, 14, 65, 4, 0, 0, 0xfd, 0xe9, 69, 4, 0, 1, 1, 3, 6, 0];
        let mut body = vec![4, 0x5b, 0xa0, 0, 90, 10, 0, 0, 1, caps.len() as u8];
        body.extend(caps);
        let a = summarize_open(&message(1, &body)).unwrap();
        assert!(a.four_octet_as && a.extended_message);
        assert_eq!(a.add_path, vec![(1, 1, 3)]);
        let b = OpenSummary {
            four_octet_as: true,
            add_path: vec![(1, 1, 1)],
            ..OpenSummary::default()
        };
        let context = DecodeContext::negotiated(&a, &b);
        assert_eq!(context.add_path, vec!["ipv4-unicast"]);
        assert_eq!(
            context.fixture_line(),
            "four_octet_as=true add_path=ipv4-unicast extended_message=false"
        );
        // b never sends path ids to a.
        assert!(DecodeContext::negotiated(&b, &a).add_path.is_empty());
    }

    #[test]
    fn names_end_of_rib_and_updates() {
        assert_eq!(
            describe(&message(2, &[0, 0, 0, 0]), &plain()).unwrap(),
            "update-end-of-rib-ipv4"
        );
        let eor6 = [0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1];
        assert_eq!(
            describe(&message(2, &eor6), &plain()).unwrap(),
            "update-end-of-rib-ipv6"
        );
        // ORIGIN, MED, COMMUNITIES + NLRI 10.0.0.0/8.
        let update = [
            0, 0, 0, 18, 0x40, 1, 1, 0, 0x80, 4, 4, 0, 0, 0, 5, 0xc0, 8, 4, 0, 1, 0, 2, 8, 10,
        ];
        assert_eq!(
            describe(&message(2, &update), &plain()).unwrap(),
            "update-ipv4-med-communities"
        );
        assert_eq!(
            describe(&message(3, &[6, 2, 3, b'b', b'y', b'e']), &plain()).unwrap(),
            "notification-cease-admin-shutdown-text"
        );
        assert_eq!(
            describe(&message(5, &[0, 2, 1, 1]), &plain()).unwrap(),
            "route-refresh-ipv6-borr"
        );
    }

    #[test]
    fn truncated_messages_are_not_described() {
        assert_eq!(describe(&message(2, &[0, 9]), &plain()), None);
        assert_eq!(summarize_open(&message(1, &[4, 0])), None);
    }
}
