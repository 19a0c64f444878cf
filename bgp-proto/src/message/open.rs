//! OPEN (RFC 4271 §4.2) with RFC 9072 extended optional parameters.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+
//! |    Version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     My Autonomous System      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Hold Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Optional Parameters (variable)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! RFC 9072 §2: when Opt Parm Len is 255 and the first parameter type is 255, a 2-octet
//! extended length follows and every parameter has a 2-octet length.

use std::net::Ipv4Addr;

use bytes::BufMut;

use crate::attr::AS_TRANS;
use crate::capability::{AddPathFamily, Capability, GracefulRestart};
use crate::error::{DecodeError, EncodeError};
use crate::iana::{Family, OpenErrorSubcode, ParameterType};
use crate::message::Notification;
use crate::wire::{Reader, sum};

/// The only BGP version this crate speaks.
pub const BGP_VERSION: u8 = 4;

/// An OPEN message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Open {
    /// Protocol version (4).
    pub version: u8,
    /// "My Autonomous System": the speaker's AS, or AS_TRANS (23456) when it needs 4 octets.
    pub my_as: u16,
    /// Proposed hold time in seconds.
    pub hold_time: u16,
    /// BGP identifier.
    pub bgp_id: Ipv4Addr,
    /// Whether the optional parameters use the RFC 9072 extended encoding. Encoding switches to
    /// it on its own when the parameters do not fit the classic one.
    pub extended_parameters: bool,
    /// Optional parameters in the order received.
    pub parameters: Vec<OptionalParameter>,
}

/// An OPEN optional parameter (RFC 4271 §4.2, RFC 5492 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OptionalParameter {
    /// A capabilities parameter (type 2), holding one or more capabilities.
    Capabilities(Vec<Capability>),
    /// Any other parameter type, kept as received ([`Open::validate`] refuses it, RFC 4271 §6.2).
    Other {
        /// Parameter type.
        param_type: u8,
        /// Parameter value.
        data: Vec<u8>,
    },
}

impl OptionalParameter {
    fn value_len(&self) -> usize {
        match self {
            OptionalParameter::Capabilities(caps) => sum(caps.iter().map(Capability::encoded_len)),
            OptionalParameter::Other { data, .. } => data.len(),
        }
    }
}

// Offsets of the fixed fields from the start of the message.
const VERSION_AT: usize = 19;
const MY_AS_AT: usize = 20;
const HOLD_TIME_AT: usize = 22;
const BGP_ID_AT: usize = 24;
const OPT_LEN_AT: usize = 28;

fn malformed(field: &'static str, offset: usize, reason: impl Into<String>) -> DecodeError {
    // RFC 4271 §6.2 has no subcode for a malformed optional parameter: 2/0 (Unspecific).
    DecodeError::new(
        field,
        offset,
        reason,
        Notification::open(OpenErrorSubcode::Unspecific, vec![]),
    )
}

impl Open {
    /// An OPEN for `asn` with all `capabilities` in one capabilities parameter. `my_as` is set to
    /// AS_TRANS when `asn` needs 4 octets (RFC 6793 §4.2.1); add [`Capability::FourOctetAs`]
    /// yourself.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Self {
        Open {
            version: BGP_VERSION,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            extended_parameters: false,
            parameters: if capabilities.is_empty() {
                Vec::new()
            } else {
                vec![OptionalParameter::Capabilities(capabilities)]
            },
        }
    }

    /// All capabilities, across all capabilities parameters, in order.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.parameters.iter().flat_map(|p| match p {
            OptionalParameter::Capabilities(caps) => caps.as_slice(),
            OptionalParameter::Other { .. } => &[],
        })
    }

    /// The AS from the 4-octet AS capability, if announced.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    /// The speaker's AS: the 4-octet AS capability's if present, else `my_as` (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// Families announced with the multiprotocol capability (RFC 4760 §8). Empty means the
    /// speaker only implies IPv4 unicast.
    pub fn multiprotocol_families(&self) -> impl Iterator<Item = Family> + '_ {
        self.capabilities().filter_map(|c| match c {
            Capability::Multiprotocol(f) => Some(*f),
            _ => None,
        })
    }

    /// Entries of all ADD-PATH capabilities.
    pub fn add_path_families(&self) -> impl Iterator<Item = &AddPathFamily> {
        self.capabilities().flat_map(|c| match c {
            Capability::AddPath(families) => families.as_slice(),
            _ => &[],
        })
    }

    /// The graceful restart capability, if announced.
    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr),
            _ => None,
        })
    }

    /// The stateless checks of RFC 4271 §6.2 on a received OPEN. What needs configuration (peer
    /// AS matching, our own identifier, capability negotiation, roles) is the session layer's.
    pub fn validate(&self) -> Result<(), DecodeError> {
        // RFC 4271 §6.2: the version is checked by decode (Unsupported Version Number).
        if self.version != BGP_VERSION {
            return Err(unsupported_version(self.version));
        }
        // RFC 4271 §6.2: "If one of the Optional Parameters in the OPEN message is not
        // recognized, then the Error Subcode MUST be set to Unsupported Optional Parameter."
        if let Some(OptionalParameter::Other { param_type, .. }) = self
            .parameters
            .iter()
            .find(|p| matches!(p, OptionalParameter::Other { .. }))
        {
            return Err(DecodeError::new(
                "OPEN optional parameter",
                OPT_LEN_AT.saturating_add(1),
                format!("unsupported optional parameter type {param_type}"),
                Notification::open(OpenErrorSubcode::UnsupportedOptionalParameter, vec![]),
            ));
        }
        // RFC 7607 §2: AS 0 in OPEN MUST be answered with Bad Peer AS.
        if self.my_as == 0 || self.four_octet_as() == Some(0) {
            return Err(DecodeError::new(
                "OPEN my autonomous system",
                MY_AS_AT,
                "peer AS 0 is reserved (RFC 7607)",
                Notification::open(OpenErrorSubcode::BadPeerAs, vec![]),
            ));
        }
        // RFC 4271 §6.2: "An implementation MUST reject Hold Time values of one or two seconds."
        if matches!(self.hold_time, 1 | 2) {
            return Err(DecodeError::new(
                "OPEN hold time",
                HOLD_TIME_AT,
                format!("hold time {} is not 0 and less than 3", self.hold_time),
                Notification::open(OpenErrorSubcode::UnacceptableHoldTime, vec![]),
            ));
        }
        // RFC 6286 §2.2: the BGP identifier is a non-zero 4-octet integer.
        if self.bgp_id.is_unspecified() {
            return Err(DecodeError::new(
                "OPEN BGP identifier",
                BGP_ID_AT,
                "BGP identifier 0 (RFC 6286)",
                Notification::open(OpenErrorSubcode::BadBgpIdentifier, vec![]),
            ));
        }
        Ok(())
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let truncated = |field, offset| malformed(field, offset, "message ends early");
        let version = r
            .u8()
            .ok_or_else(|| truncated("OPEN version", VERSION_AT))?;
        // RFC 4271 §6.2: an unsupported version is reported before anything else is parsed.
        if version != BGP_VERSION {
            return Err(unsupported_version(version));
        }
        let my_as = r
            .u16()
            .ok_or_else(|| truncated("OPEN my autonomous system", MY_AS_AT))?;
        let hold_time = r
            .u16()
            .ok_or_else(|| truncated("OPEN hold time", HOLD_TIME_AT))?;
        let bgp_id = r
            .ipv4()
            .ok_or_else(|| truncated("OPEN BGP identifier", BGP_ID_AT))?;
        let opt_len = r
            .u8()
            .ok_or_else(|| truncated("OPEN optional parameters length", OPT_LEN_AT))?;

        // RFC 9072 §2: Non-Ext OP Len 255 followed by Non-Ext OP Type 255 selects the extended
        // encoding.
        let extended = opt_len == 255 && r.peek_rest().first() == Some(&255);
        let params_len = if extended {
            let at = r.offset();
            let _marker = r.u8();
            usize::from(r.u16().ok_or_else(|| {
                malformed(
                    "OPEN extended optional parameters length",
                    at,
                    "message ends early",
                )
            })?)
        } else {
            usize::from(opt_len)
        };
        let at = r.offset();
        if params_len != r.remaining() {
            return Err(malformed(
                "OPEN optional parameters length",
                if extended {
                    at.saturating_sub(2)
                } else {
                    OPT_LEN_AT
                },
                format!(
                    "optional parameters length {params_len} but {} octets follow",
                    r.remaining()
                ),
            ));
        }

        let mut parameters = Vec::new();
        while !r.is_empty() {
            let at = r.offset();
            let param_type = r.u8();
            let len = if extended {
                r.u16()
            } else {
                r.u8().map(u16::from)
            };
            let (Some(param_type), Some(len)) = (param_type, len) else {
                return Err(malformed(
                    "OPEN optional parameter",
                    at,
                    "parameter header truncated",
                ));
            };
            let Some(mut value) = r.sub(usize::from(len)) else {
                return Err(malformed(
                    "OPEN optional parameter",
                    at,
                    format!("parameter length {len} overruns the optional parameters"),
                ));
            };
            let parameter = match ParameterType::from(param_type) {
                ParameterType::Capabilities => {
                    let caps = Capability::decode_all(&mut value)
                        .map_err(|e| malformed("OPEN capability", e.offset, e.reason))?;
                    OptionalParameter::Capabilities(caps)
                }
                _ => OptionalParameter::Other {
                    param_type,
                    data: value.take_rest().to_vec(),
                },
            };
            parameters.push(parameter);
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id,
            extended_parameters: extended,
            parameters,
        })
    }

    fn params_len(&self) -> usize {
        sum(self.parameters.iter().map(OptionalParameter::value_len))
    }

    /// Whether encoding uses RFC 9072 form: as received, or because the classic one cannot hold
    /// the parameters.
    fn uses_extended(&self) -> bool {
        self.extended_parameters
            || self.parameters.iter().any(|p| p.value_len() > 255)
            || sum(self
                .parameters
                .iter()
                .map(|p| p.value_len().saturating_add(2)))
                > 255
    }

    pub(crate) fn body_len(&self) -> usize {
        let per_param = if self.uses_extended() { 3 } else { 2 };
        let header = if self.uses_extended() { 3 } else { 0 };
        sum([
            10,
            header,
            self.params_len(),
            self.parameters.len().saturating_mul(per_param),
        ])
    }

    pub(crate) fn check(&self) -> Result<(), EncodeError> {
        for p in &self.parameters {
            if let OptionalParameter::Capabilities(caps) = p {
                caps.iter().try_for_each(Capability::check)?;
            }
            if p.value_len() > usize::from(u16::MAX) {
                return Err(EncodeError::FieldTooLong {
                    field: "OPEN optional parameter",
                    length: p.value_len(),
                    max: usize::from(u16::MAX),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn encode_body(&self, buf: &mut impl BufMut) {
        let extended = self.uses_extended();
        buf.put_u8(self.version);
        buf.put_u16(self.my_as);
        buf.put_u16(self.hold_time);
        buf.put_slice(&self.bgp_id.octets());
        let params_len = self
            .body_len()
            .saturating_sub(if extended { 13 } else { 10 });
        if extended {
            buf.put_u8(255);
            buf.put_u8(255);
            buf.put_u16(u16::try_from(params_len).unwrap_or(u16::MAX));
        } else {
            buf.put_u8(u8::try_from(params_len).unwrap_or(u8::MAX));
        }
        for p in &self.parameters {
            let (param_type, len) = match p {
                OptionalParameter::Capabilities(_) => (2, p.value_len()),
                OptionalParameter::Other { param_type, .. } => (*param_type, p.value_len()),
            };
            buf.put_u8(param_type);
            if extended {
                buf.put_u16(u16::try_from(len).unwrap_or(u16::MAX));
            } else {
                buf.put_u8(u8::try_from(len).unwrap_or(u8::MAX));
            }
            match p {
                OptionalParameter::Capabilities(caps) => caps.iter().for_each(|c| c.encode(buf)),
                OptionalParameter::Other { data, .. } => buf.put_slice(data),
            }
        }
    }
}

fn unsupported_version(version: u8) -> DecodeError {
    // RFC 4271 §6.2: the data is the largest supported version below the bid, or the smallest
    // supported version if none is below: 4 either way.
    DecodeError::new(
        "OPEN version",
        VERSION_AT,
        format!("version {version}, only 4 is supported"),
        Notification::open(
            OpenErrorSubcode::UnsupportedVersionNumber,
            vec![0, BGP_VERSION],
        ),
    )
}
