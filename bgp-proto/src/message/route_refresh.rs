//! ROUTE-REFRESH (RFC 2918 §3) with the RFC 7313 message subtypes.
//!
//! ```text
//!  0       7      15      23      31
//! +-------+-------+-------+-------+
//! |      AFI      | Subtype| SAFI |
//! +-------+-------+-------+-------+
//! ```
//!
//! RFC 2918 called the subtype octet "Reserved"; RFC 7313 §3 turned it into the message subtype
//! (0 normal request, 1 BoRR, 2 EoRR). Octets after the 4 (ORF entries, RFC 5291) are kept raw.

use bytes::BufMut;

use crate::error::DecodeError;
use crate::iana::{Family, RouteRefreshErrorSubcode, RouteRefreshSubtype};
use crate::message::Notification;
use crate::wire::Reader;

/// A ROUTE-REFRESH message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    /// The family to refresh.
    pub family: Family,
    /// Normal request, BoRR or EoRR. RFC 7313 §5: a receiver MUST ignore unknown subtypes (the
    /// session layer does; they decode as `Other`).
    pub subtype: RouteRefreshSubtype,
    /// Octets after the AFI/subtype/SAFI (Outbound Route Filtering, RFC 5291), kept raw.
    pub orf: Vec<u8>,
}

impl RouteRefresh {
    /// A normal route refresh request for a family (RFC 2918).
    pub fn new(family: Family) -> Self {
        RouteRefresh {
            family,
            subtype: RouteRefreshSubtype::Normal,
            orf: Vec::new(),
        }
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>, message: &[u8]) -> Result<Self, DecodeError> {
        let (Some(afi), Some(subtype), Some(safi)) = (r.u16(), r.u8(), r.u8()) else {
            return Err(invalid_length(message));
        };
        let subtype = RouteRefreshSubtype::from(subtype);
        let orf = r.take_rest().to_vec();
        // RFC 7313 §5: a BoRR or EoRR whose length (without header) is not 4 MUST be answered
        // with ROUTE-REFRESH Message Error / Invalid Message Length, data the whole message.
        if !orf.is_empty()
            && matches!(
                subtype,
                RouteRefreshSubtype::BeginningOfRefresh | RouteRefreshSubtype::EndOfRefresh
            )
        {
            return Err(invalid_length(message));
        }
        Ok(RouteRefresh {
            family: Family::new(afi.into(), safi.into()),
            subtype,
            orf,
        })
    }

    pub(crate) fn body_len(&self) -> usize {
        self.orf.len().saturating_add(4)
    }

    pub(crate) fn encode_body(&self, buf: &mut impl BufMut) {
        buf.put_u16(self.family.afi.into());
        buf.put_u8(self.subtype.into());
        buf.put_u8(self.family.safi.into());
        buf.put_slice(&self.orf);
    }
}

fn invalid_length(message: &[u8]) -> DecodeError {
    DecodeError::new(
        "ROUTE-REFRESH length",
        16,
        format!("message length {} is not 23", message.len()),
        Notification::route_refresh(
            RouteRefreshErrorSubcode::InvalidMessageLength,
            message.to_vec(),
        ),
    )
}
