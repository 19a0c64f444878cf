//! Decoded NOTIFICATION meanings: error code and subcode names (RFC 4271 §4.5, RFC 4486, RFC 5492,
//! RFC 6608, RFC 7313, RFC 8538, RFC 9234, RFC 9384) and the shutdown communication of RFC 9003.
//!
//! The codec crate (`bgp-proto`) had no such table when this was written, so it lives here, next
//! to the status model that shows it to operators.

use serde::{Deserialize, Serialize};

/// A NOTIFICATION as shown to an operator: the raw code, subcode and data plus their meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationStatus {
    /// Error code (RFC 4271 §4.5).
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// The data field, as lowercase hex (empty when there was none).
    pub data_hex: String,
    /// The meaning of code and subcode, e.g. `Cease: Administrative Shutdown`.
    pub meaning: String,
    /// The shutdown communication of RFC 9003 (Cease subcodes 2 and 4), control characters
    /// escaped so that it cannot break a line-based output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_message: Option<String>,
}

impl NotificationStatus {
    /// Decodes a NOTIFICATION's code, subcode and data into its operator-facing form. Never fails:
    /// unknown codes are named as such and a malformed shutdown communication is described.
    pub fn new(code: u8, subcode: u8, data: &[u8]) -> Self {
        let shutdown_message = if code == CEASE && (subcode == 2 || subcode == 4) {
            decode_shutdown_communication(data)
        } else {
            None
        };
        NotificationStatus {
            code,
            subcode,
            data_hex: data.iter().map(|b| format!("{b:02x}")).collect(),
            meaning: meaning(code, subcode),
            shutdown_message,
        }
    }

    /// One line: the meaning, the shutdown communication in quotes when present, and the numeric
    /// code/subcode, e.g. `Cease: Administrative Shutdown "maintenance" (6/2)`.
    pub fn describe(&self) -> String {
        match &self.shutdown_message {
            Some(text) => format!(
                "{} \"{}\" ({}/{})",
                self.meaning, text, self.code, self.subcode
            ),
            None => format!("{} ({}/{})", self.meaning, self.code, self.subcode),
        }
    }
}

/// The Cease error code (RFC 4271 §4.5).
pub const CEASE: u8 = 6;

/// The name of an error code (RFC 4271 §4.5, RFC 7313 §5), or `None` when unassigned.
pub fn code_name(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "Message Header Error",
        2 => "OPEN Message Error",
        3 => "UPDATE Message Error",
        4 => "Hold Timer Expired",
        5 => "Finite State Machine Error",
        6 => "Cease",
        7 => "ROUTE-REFRESH Message Error",
        _ => return None,
    })
}

/// The name of a subcode within a code, or `None` when unassigned. Subcode 0 is
/// "Unspecific" for every code (RFC 4271 §4.5).
pub fn subcode_name(code: u8, subcode: u8) -> Option<&'static str> {
    if subcode == 0 {
        return Some("Unspecific");
    }
    Some(match (code, subcode) {
        // RFC 4271 §6.1
        (1, 1) => "Connection Not Synchronized",
        (1, 2) => "Bad Message Length",
        (1, 3) => "Bad Message Type",
        // RFC 4271 §6.2, RFC 5492 §5, RFC 9234 §4.2
        (2, 1) => "Unsupported Version Number",
        (2, 2) => "Bad Peer AS",
        (2, 3) => "Bad BGP Identifier",
        (2, 4) => "Unsupported Optional Parameter",
        (2, 5) => "Authentication Failure (deprecated)",
        (2, 6) => "Unacceptable Hold Time",
        (2, 7) => "Unsupported Capability",
        (2, 11) => "Role Mismatch",
        // RFC 4271 §6.3
        (3, 1) => "Malformed Attribute List",
        (3, 2) => "Unrecognized Well-known Attribute",
        (3, 3) => "Missing Well-known Attribute",
        (3, 4) => "Attribute Flags Error",
        (3, 5) => "Attribute Length Error",
        (3, 6) => "Invalid ORIGIN Attribute",
        (3, 7) => "AS Routing Loop (deprecated)",
        (3, 8) => "Invalid NEXT_HOP Attribute",
        (3, 9) => "Optional Attribute Error",
        (3, 10) => "Invalid Network Field",
        (3, 11) => "Malformed AS_PATH",
        // RFC 6608 §4
        (5, 1) => "Receive Unexpected Message in OpenSent State",
        (5, 2) => "Receive Unexpected Message in OpenConfirm State",
        (5, 3) => "Receive Unexpected Message in Established State",
        // RFC 4486 §4, RFC 8538 §3, RFC 9384 §3
        (6, 1) => "Maximum Number of Prefixes Reached",
        (6, 2) => "Administrative Shutdown",
        (6, 3) => "Peer De-configured",
        (6, 4) => "Administrative Reset",
        (6, 5) => "Connection Rejected",
        (6, 6) => "Other Configuration Change",
        (6, 7) => "Connection Collision Resolution",
        (6, 8) => "Out of Resources",
        (6, 9) => "Hard Reset",
        (6, 10) => "BFD Down",
        // RFC 7313 §5
        (7, 1) => "Invalid Message Length",
        _ => return None,
    })
}

/// `<code name>: <subcode name>`, or just the code name for codes without subcodes (Hold Timer
/// Expired), with unassigned values named by number.
pub fn meaning(code: u8, subcode: u8) -> String {
    let Some(code_text) = code_name(code) else {
        return format!("Unknown error code {code} (subcode {subcode})");
    };
    match (code, subcode) {
        (4, 0) => code_text.to_owned(),
        _ => match subcode_name(code, subcode) {
            Some(sub) => format!("{code_text}: {sub}"),
            None => format!("{code_text}: unknown subcode {subcode}"),
        },
    }
}

/// Decodes the shutdown communication of RFC 9003 §2: a length octet followed by that many octets
/// of UTF-8. Returns `None` when absent (no data or length 0), a description when malformed.
fn decode_shutdown_communication(data: &[u8]) -> Option<String> {
    let (&len, rest) = data.split_first()?;
    let len = usize::from(len);
    if len == 0 {
        return None;
    }
    // RFC 9003 §2: a length that exceeds the data is a malformed communication; it is reported,
    // never used to read out of bounds.
    let Some(text) = rest.get(..len) else {
        return Some(format!(
            "<malformed shutdown communication: length {len} but {} octets>",
            rest.len()
        ));
    };
    match std::str::from_utf8(text) {
        Ok(text) => Some(escape_controls(text)),
        Err(_) => Some("<malformed shutdown communication: not UTF-8>".to_owned()),
    }
}

/// Escapes control characters (newlines included) so that peer-supplied text stays on one line.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meanings_of_common_codes() {
        assert_eq!(meaning(4, 0), "Hold Timer Expired");
        assert_eq!(meaning(2, 2), "OPEN Message Error: Bad Peer AS");
        assert_eq!(meaning(6, 7), "Cease: Connection Collision Resolution");
        assert_eq!(meaning(6, 0), "Cease: Unspecific");
        assert_eq!(
            meaning(7, 1),
            "ROUTE-REFRESH Message Error: Invalid Message Length"
        );
        assert_eq!(meaning(3, 99), "UPDATE Message Error: unknown subcode 99");
        assert_eq!(meaning(42, 1), "Unknown error code 42 (subcode 1)");
    }

    #[test]
    fn shutdown_communication_is_decoded_and_escaped() {
        let mut data = vec![12];
        data.extend_from_slice(b"maint\nwindow");
        let n = NotificationStatus::new(6, 2, &data);
        assert_eq!(n.shutdown_message.as_deref(), Some("maint\\nwindow"));
        assert_eq!(
            n.describe(),
            "Cease: Administrative Shutdown \"maint\\nwindow\" (6/2)"
        );
        assert_eq!(n.data_hex, "0c6d61696e740a77696e646f77");
    }

    #[test]
    fn malformed_shutdown_communication_is_described_not_trusted() {
        let n = NotificationStatus::new(6, 4, &[40, b'a']);
        assert!(
            n.shutdown_message
                .unwrap()
                .contains("length 40 but 1 octets")
        );
        let n = NotificationStatus::new(6, 2, &[2, 0xff, 0xfe]);
        assert!(n.shutdown_message.unwrap().contains("not UTF-8"));
        assert_eq!(NotificationStatus::new(6, 2, &[0]).shutdown_message, None);
        assert_eq!(NotificationStatus::new(6, 2, &[]).shutdown_message, None);
        // Only Cease 2 and 4 carry a communication.
        assert_eq!(
            NotificationStatus::new(6, 3, &[1, b'x']).shutdown_message,
            None
        );
    }
}
