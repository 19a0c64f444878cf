//! NOTIFICATION (RFC 4271 §4.5) with the RFC 9003 shutdown communication.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use bytes::BufMut;

use crate::error::DecodeError;
use crate::iana::{
    CeaseSubcode, ErrorCode, HeaderErrorSubcode, OpenErrorSubcode, RouteRefreshErrorSubcode,
    UpdateErrorSubcode,
};
use crate::wire::Reader;

/// A NOTIFICATION message: error code, subcode and data, data kept as received.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// Error code.
    pub code: ErrorCode,
    /// Error subcode (its meaning depends on `code`; see the `*Subcode` enums in [`crate::iana`]).
    pub subcode: u8,
    /// Data, as received.
    pub data: Vec<u8>,
}

/// RFC 9003 §2: the shutdown communication is at most 255 octets of UTF-8.
pub const MAX_SHUTDOWN_COMMUNICATION_LEN: usize = 255;

impl Notification {
    /// A NOTIFICATION with any code and subcode.
    pub fn new(code: ErrorCode, subcode: u8, data: Vec<u8>) -> Self {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// Message Header Error (RFC 4271 §6.1).
    pub fn header(subcode: HeaderErrorSubcode, data: Vec<u8>) -> Self {
        Self::new(ErrorCode::MessageHeader, subcode.into(), data)
    }

    /// OPEN Message Error (RFC 4271 §6.2).
    pub fn open(subcode: OpenErrorSubcode, data: Vec<u8>) -> Self {
        Self::new(ErrorCode::OpenMessage, subcode.into(), data)
    }

    /// UPDATE Message Error (RFC 4271 §6.3).
    pub fn update(subcode: UpdateErrorSubcode, data: Vec<u8>) -> Self {
        Self::new(ErrorCode::UpdateMessage, subcode.into(), data)
    }

    /// ROUTE-REFRESH Message Error (RFC 7313 §5).
    pub fn route_refresh(subcode: RouteRefreshErrorSubcode, data: Vec<u8>) -> Self {
        Self::new(ErrorCode::RouteRefresh, subcode.into(), data)
    }

    /// Hold Timer Expired (RFC 4271 §6.5).
    pub fn hold_timer_expired() -> Self {
        Self::new(ErrorCode::HoldTimerExpired, 0, Vec::new())
    }

    /// Cease with a subcode and no data (RFC 4486).
    pub fn cease(subcode: CeaseSubcode) -> Self {
        Self::new(ErrorCode::Cease, subcode.into(), Vec::new())
    }

    /// Cease with an RFC 9003 shutdown communication (for Administrative Shutdown or Reset).
    /// Text longer than 255 octets is cut at the last character boundary that fits.
    pub fn cease_with_communication(subcode: CeaseSubcode, text: &str) -> Self {
        let mut end = text.len().min(MAX_SHUTDOWN_COMMUNICATION_LEN);
        while !text.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        let bytes = text.as_bytes().get(..end).unwrap_or_default();
        let mut data = Vec::with_capacity(bytes.len().saturating_add(1));
        data.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
        data.extend_from_slice(bytes);
        Self::new(ErrorCode::Cease, subcode.into(), data)
    }

    /// The RFC 9003 shutdown communication of a Cease/Administrative Shutdown or Reset, if the
    /// data holds a well-formed one (length octet, then that many octets of UTF-8). Per RFC 9003
    /// §3 a malformed communication is not an error; it is just not shown as text.
    pub fn shutdown_communication(&self) -> Option<&str> {
        let subcode = CeaseSubcode::from(self.subcode);
        if self.code != ErrorCode::Cease
            || !matches!(
                subcode,
                CeaseSubcode::AdministrativeShutdown | CeaseSubcode::AdministrativeReset
            )
        {
            return None;
        }
        let (&len, text) = self.data.split_first()?;
        let text = text.get(..usize::from(len))?;
        std::str::from_utf8(text).ok()
    }

    /// `code/subcode` with names, e.g. `3/1 (UPDATE Message Error / Malformed Attribute List)`.
    pub fn summary(&self) -> String {
        let code: u8 = self.code.into();
        let sub = match self.code {
            ErrorCode::MessageHeader => format!("{:?}", HeaderErrorSubcode::from(self.subcode)),
            ErrorCode::OpenMessage => format!("{:?}", OpenErrorSubcode::from(self.subcode)),
            ErrorCode::UpdateMessage => format!("{:?}", UpdateErrorSubcode::from(self.subcode)),
            ErrorCode::Cease => format!("{:?}", CeaseSubcode::from(self.subcode)),
            ErrorCode::RouteRefresh => {
                format!("{:?}", RouteRefreshErrorSubcode::from(self.subcode))
            }
            _ => String::from("-"),
        };
        format!("{code}/{} ({:?} / {sub})", self.subcode, self.code)
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let (Some(code), Some(subcode)) = (r.u8(), r.u8()) else {
            // Unreachable through Message::decode, which checks the minimum length first.
            return Err(DecodeError::new(
                "NOTIFICATION error code",
                offset,
                "message shorter than 21 octets",
                Notification::header(HeaderErrorSubcode::BadMessageLength, Vec::new()),
            ));
        };
        Ok(Notification {
            code: code.into(),
            subcode,
            data: r.take_rest().to_vec(),
        })
    }

    pub(crate) fn body_len(&self) -> usize {
        self.data.len().saturating_add(2)
    }

    pub(crate) fn encode_body(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.code.into());
        buf.put_u8(self.subcode);
        buf.put_slice(&self.data);
    }
}

impl std::fmt::Display for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary())?;
        if let Some(text) = self.shutdown_communication() {
            write!(f, " {text:?}")?;
        } else if !self.data.is_empty() {
            f.write_str(" data=")?;
            for byte in &self.data {
                write!(f, "{byte:02x}")?;
            }
        }
        Ok(())
    }
}
