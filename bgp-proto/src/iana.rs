//! IANA registries used on the wire, one enum per registry.
//!
//! Every registry enum has an `Other(..)` variant so that values this crate does not name survive
//! a decode/encode round trip. Convert with `From`: `Afi::from(2) == Afi::Ipv6`, and
//! `u16::from(Afi::Other(7)) == 7`. `Other` never holds a named value when built through `From`;
//! build registry values through `From` to keep equality meaningful.

macro_rules! registry {
    (
        $(#[$meta:meta])*
        $name:ident($repr:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this crate does not name (kept so that it round-trips).
            Other($repr),
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                match value {
                    $( $value => Self::$variant, )*
                    other => Self::Other(other),
                }
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )*
                    $name::Other(other) => other,
                }
            }
        }
    };
}

registry! {
    /// BGP message types ("BGP Message Types" registry; RFC 4271 §4.1, RFC 2918).
    MessageType(u8) {
        /// OPEN (RFC 4271 §4.2).
        Open = 1,
        /// UPDATE (RFC 4271 §4.3).
        Update = 2,
        /// NOTIFICATION (RFC 4271 §4.5).
        Notification = 3,
        /// KEEPALIVE (RFC 4271 §4.4).
        Keepalive = 4,
        /// ROUTE-REFRESH (RFC 2918, RFC 7313).
        RouteRefresh = 5,
    }
}

registry! {
    /// Address Family Identifiers ("Address Family Numbers" registry).
    Afi(u16) {
        /// IPv4.
        Ipv4 = 1,
        /// IPv6.
        Ipv6 = 2,
    }
}

registry! {
    /// Subsequent Address Family Identifiers ("SAFI Values" registry; RFC 4760).
    Safi(u8) {
        /// Unicast forwarding.
        Unicast = 1,
        /// Multicast forwarding.
        Multicast = 2,
    }
}

registry! {
    /// BGP OPEN optional parameter types (RFC 4271 §4.2, RFC 5492, RFC 9072).
    ParameterType(u8) {
        /// Authentication (deprecated, RFC 4271 appendix A).
        Authentication = 1,
        /// Capabilities (RFC 5492).
        Capabilities = 2,
        /// Reserved for the RFC 9072 extended-length marker.
        ExtendedLength = 255,
    }
}

registry! {
    /// Capability codes ("Capability Codes" registry; RFC 5492).
    CapabilityCode(u8) {
        /// Multiprotocol extensions (RFC 4760).
        Multiprotocol = 1,
        /// Route refresh (RFC 2918).
        RouteRefresh = 2,
        /// Extended next hop encoding (RFC 8950).
        ExtendedNextHop = 5,
        /// Extended message (RFC 8654).
        ExtendedMessage = 6,
        /// BGP role (RFC 9234).
        Role = 9,
        /// Graceful restart (RFC 4724).
        GracefulRestart = 64,
        /// Support for 4-octet AS numbers (RFC 6793).
        FourOctetAs = 65,
        /// ADD-PATH (RFC 7911).
        AddPath = 69,
        /// Enhanced route refresh (RFC 7313).
        EnhancedRouteRefresh = 70,
        /// Long-lived graceful restart (RFC 9494).
        LongLivedGracefulRestart = 71,
        /// FQDN (draft-walton-bgp-hostname-capability).
        Fqdn = 73,
    }
}

registry! {
    /// Path attribute type codes ("BGP Path Attributes" registry).
    AttributeType(u8) {
        /// ORIGIN (RFC 4271 §5.1.1).
        Origin = 1,
        /// AS_PATH (RFC 4271 §5.1.2).
        AsPath = 2,
        /// NEXT_HOP (RFC 4271 §5.1.3).
        NextHop = 3,
        /// MULTI_EXIT_DISC (RFC 4271 §5.1.4).
        MultiExitDisc = 4,
        /// LOCAL_PREF (RFC 4271 §5.1.5).
        LocalPref = 5,
        /// ATOMIC_AGGREGATE (RFC 4271 §5.1.6).
        AtomicAggregate = 6,
        /// AGGREGATOR (RFC 4271 §5.1.7).
        Aggregator = 7,
        /// COMMUNITIES (RFC 1997).
        Communities = 8,
        /// ORIGINATOR_ID (RFC 4456).
        OriginatorId = 9,
        /// CLUSTER_LIST (RFC 4456).
        ClusterList = 10,
        /// MP_REACH_NLRI (RFC 4760).
        MpReachNlri = 14,
        /// MP_UNREACH_NLRI (RFC 4760).
        MpUnreachNlri = 15,
        /// EXTENDED_COMMUNITIES (RFC 4360).
        ExtendedCommunities = 16,
        /// AS4_PATH (RFC 6793).
        As4Path = 17,
        /// AS4_AGGREGATOR (RFC 6793).
        As4Aggregator = 18,
        /// LARGE_COMMUNITY (RFC 8092).
        LargeCommunity = 32,
        /// Only to Customer (RFC 9234).
        OnlyToCustomer = 35,
    }
}

registry! {
    /// NOTIFICATION error codes ("BGP Error (Notification) Codes" registry).
    ErrorCode(u8) {
        /// Message Header Error (RFC 4271 §6.1).
        MessageHeader = 1,
        /// OPEN Message Error (RFC 4271 §6.2).
        OpenMessage = 2,
        /// UPDATE Message Error (RFC 4271 §6.3).
        UpdateMessage = 3,
        /// Hold Timer Expired (RFC 4271 §6.5).
        HoldTimerExpired = 4,
        /// Finite State Machine Error (RFC 4271 §6.6, RFC 6608).
        FiniteStateMachine = 5,
        /// Cease (RFC 4271 §6.7, RFC 4486).
        Cease = 6,
        /// ROUTE-REFRESH Message Error (RFC 7313).
        RouteRefresh = 7,
        /// Send Hold Timer Expired (RFC 9687).
        SendHoldTimerExpired = 8,
    }
}

registry! {
    /// Message Header Error subcodes (RFC 4271 §4.5).
    HeaderErrorSubcode(u8) {
        /// Connection Not Synchronized (bad marker).
        ConnectionNotSynchronized = 1,
        /// Bad Message Length.
        BadMessageLength = 2,
        /// Bad Message Type.
        BadMessageType = 3,
    }
}

registry! {
    /// OPEN Message Error subcodes (RFC 4271 §4.5, RFC 5492, RFC 9234).
    OpenErrorSubcode(u8) {
        /// Unspecific (RFC 4271 §6.2: used for malformed optional parameters/capabilities).
        Unspecific = 0,
        /// Unsupported Version Number.
        UnsupportedVersionNumber = 1,
        /// Bad Peer AS.
        BadPeerAs = 2,
        /// Bad BGP Identifier.
        BadBgpIdentifier = 3,
        /// Unsupported Optional Parameter.
        UnsupportedOptionalParameter = 4,
        /// Unacceptable Hold Time.
        UnacceptableHoldTime = 6,
        /// Unsupported Capability (RFC 5492).
        UnsupportedCapability = 7,
        /// Role Mismatch (RFC 9234).
        RoleMismatch = 11,
    }
}

registry! {
    /// UPDATE Message Error subcodes (RFC 4271 §4.5).
    UpdateErrorSubcode(u8) {
        /// Malformed Attribute List.
        MalformedAttributeList = 1,
        /// Unrecognized Well-known Attribute.
        UnrecognizedWellKnownAttribute = 2,
        /// Missing Well-known Attribute.
        MissingWellKnownAttribute = 3,
        /// Attribute Flags Error.
        AttributeFlagsError = 4,
        /// Attribute Length Error.
        AttributeLengthError = 5,
        /// Invalid ORIGIN Attribute.
        InvalidOriginAttribute = 6,
        /// Invalid NEXT_HOP Attribute.
        InvalidNextHopAttribute = 8,
        /// Optional Attribute Error.
        OptionalAttributeError = 9,
        /// Invalid Network Field.
        InvalidNetworkField = 10,
        /// Malformed AS_PATH.
        MalformedAsPath = 11,
    }
}

registry! {
    /// Cease subcodes (RFC 4486, RFC 8538).
    CeaseSubcode(u8) {
        /// Maximum Number of Prefixes Reached.
        MaximumPrefixesReached = 1,
        /// Administrative Shutdown (may carry an RFC 9003 shutdown communication).
        AdministrativeShutdown = 2,
        /// Peer De-configured.
        PeerDeconfigured = 3,
        /// Administrative Reset (may carry an RFC 9003 shutdown communication).
        AdministrativeReset = 4,
        /// Connection Rejected.
        ConnectionRejected = 5,
        /// Other Configuration Change.
        OtherConfigurationChange = 6,
        /// Connection Collision Resolution.
        ConnectionCollisionResolution = 7,
        /// Out of Resources.
        OutOfResources = 8,
        /// Hard Reset (RFC 8538).
        HardReset = 9,
        /// BFD Down (RFC 9384).
        BfdDown = 10,
    }
}

registry! {
    /// ROUTE-REFRESH Message Error subcodes (RFC 7313 §5).
    RouteRefreshErrorSubcode(u8) {
        /// Invalid Message Length.
        InvalidMessageLength = 1,
    }
}

registry! {
    /// ROUTE-REFRESH message subtypes (RFC 7313 §3).
    RouteRefreshSubtype(u8) {
        /// A normal route refresh request (RFC 2918).
        Normal = 0,
        /// Beginning of Route Refresh (BoRR).
        BeginningOfRefresh = 1,
        /// End of Route Refresh (EoRR).
        EndOfRefresh = 2,
    }
}

registry! {
    /// BGP roles (RFC 9234 §4.1).
    BgpRole(u8) {
        /// Provider.
        Provider = 0,
        /// Route server.
        RouteServer = 1,
        /// Route server client.
        RouteServerClient = 2,
        /// Customer.
        Customer = 3,
        /// Lateral peer.
        Peer = 4,
    }
}

registry! {
    /// ADD-PATH send/receive values (RFC 7911 §4).
    AddPathMode(u8) {
        /// The sender of the capability can receive multiple paths.
        Receive = 1,
        /// The sender of the capability can send multiple paths.
        Send = 2,
        /// Both.
        Both = 3,
    }
}

impl AddPathMode {
    /// The capability's sender receives path identifiers.
    pub fn receives(self) -> bool {
        matches!(self, Self::Receive | Self::Both)
    }

    /// The capability's sender sends path identifiers.
    pub fn sends(self) -> bool {
        matches!(self, Self::Send | Self::Both)
    }
}

/// An address family: AFI plus SAFI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    /// Address Family Identifier.
    pub afi: Afi,
    /// Subsequent Address Family Identifier.
    pub safi: Safi,
}

impl Family {
    /// IPv4 unicast.
    pub const IPV4_UNICAST: Family = Family {
        afi: Afi::Ipv4,
        safi: Safi::Unicast,
    };
    /// IPv6 unicast.
    pub const IPV6_UNICAST: Family = Family {
        afi: Afi::Ipv6,
        safi: Safi::Unicast,
    };
    /// IPv4 multicast.
    pub const IPV4_MULTICAST: Family = Family {
        afi: Afi::Ipv4,
        safi: Safi::Multicast,
    };
    /// IPv6 multicast.
    pub const IPV6_MULTICAST: Family = Family {
        afi: Afi::Ipv6,
        safi: Safi::Multicast,
    };

    /// A family from its AFI and SAFI.
    pub const fn new(afi: Afi, safi: Safi) -> Self {
        Family { afi, safi }
    }

    /// Whether this crate decodes the NLRI of this family into prefixes (IPv4/IPv6 unicast and
    /// multicast). MP_REACH/MP_UNREACH of other families are kept as raw attributes.
    pub fn is_prefix_family(self) -> bool {
        matches!(self.afi, Afi::Ipv4 | Afi::Ipv6)
            && matches!(self.safi, Safi::Unicast | Safi::Multicast)
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let afi = match self.afi {
            Afi::Ipv4 => "ipv4".to_string(),
            Afi::Ipv6 => "ipv6".to_string(),
            Afi::Other(v) => format!("afi{v}"),
        };
        let safi = match self.safi {
            Safi::Unicast => "unicast".to_string(),
            Safi::Multicast => "multicast".to_string(),
            Safi::Other(v) => format!("safi{v}"),
        };
        write!(f, "{afi}-{safi}")
    }
}

impl std::str::FromStr for Family {
    type Err = String;

    /// Parses `ipv4-unicast`, `ipv6-unicast`, `ipv4-multicast`, `ipv6-multicast`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ipv4-unicast" => Ok(Family::IPV4_UNICAST),
            "ipv6-unicast" => Ok(Family::IPV6_UNICAST),
            "ipv4-multicast" => Ok(Family::IPV4_MULTICAST),
            "ipv6-multicast" => Ok(Family::IPV6_MULTICAST),
            other => Err(format!(
                "unknown address family {other:?} (expected e.g. ipv4-unicast)"
            )),
        }
    }
}
