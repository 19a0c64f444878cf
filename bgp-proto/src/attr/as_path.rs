//! AS_PATH and AS4_PATH (RFC 4271 §4.3, RFC 5065 §3, RFC 6793 §4).
//!
//! ```text
//! +-----------------+-----------------+----------------------------+
//! | segment type (1)| segment len (1) | AS numbers (2 or 4 octets) |
//! +-----------------+-----------------+----------------------------+
//! ```
//!
//! Segments are kept exactly as received (their types, their order and their split), so that
//! paths re-encode byte for byte.

use bytes::BufMut;

use crate::wire::{Reader, sum};

/// AS_TRANS, the 2-octet stand-in for a 4-octet AS number (RFC 6793 §2).
pub const AS_TRANS: u16 = 23456;

/// An AS path: a list of segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AsPath {
    /// Segments in order.
    pub segments: Vec<AsSegment>,
}

/// One AS path segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsSegment {
    /// Segment type.
    pub kind: SegmentType,
    /// AS numbers (at most 255 per segment on the wire).
    pub asns: Vec<u32>,
}

/// AS path segment types (RFC 4271 §4.3, RFC 5065 §3). Other values make the path malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentType {
    /// AS_SET (1).
    Set,
    /// AS_SEQUENCE (2).
    Sequence,
    /// AS_CONFED_SEQUENCE (3).
    ConfedSequence,
    /// AS_CONFED_SET (4).
    ConfedSet,
}

impl SegmentType {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Set),
            2 => Some(Self::Sequence),
            3 => Some(Self::ConfedSequence),
            4 => Some(Self::ConfedSet),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Set => 1,
            Self::Sequence => 2,
            Self::ConfedSequence => 3,
            Self::ConfedSet => 4,
        }
    }
}

/// Maximum AS numbers per segment (one-octet count).
pub const MAX_SEGMENT_LEN: usize = 255;

impl AsPath {
    /// An empty path (as originated towards iBGP peers).
    pub fn new() -> Self {
        AsPath::default()
    }

    /// A path of one AS_SEQUENCE (empty input gives an empty path).
    pub fn sequence(asns: impl IntoIterator<Item = u32>) -> Self {
        let mut path = AsPath::new();
        for asn in asns.into_iter().collect::<Vec<_>>().into_iter().rev() {
            path.prepend(asn);
        }
        path
    }

    /// Prepends an AS as BGP does when advertising to an external peer (RFC 4271 §5.1.2):
    /// into the leading AS_SEQUENCE, or a new one if the path starts otherwise or that segment
    /// is full.
    pub fn prepend(&mut self, asn: u32) {
        match self.segments.first_mut() {
            Some(seg) if seg.kind == SegmentType::Sequence && seg.asns.len() < MAX_SEGMENT_LEN => {
                seg.asns.insert(0, asn);
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![asn],
                },
            ),
        }
    }

    /// Path length for best-path selection (RFC 4271 §9.1.2.2): every AS of a sequence counts
    /// one, a set counts one, confederation segments count zero (RFC 5065 §5.3).
    pub fn path_len(&self) -> usize {
        sum(self.segments.iter().map(|s| match s.kind {
            SegmentType::Sequence => s.asns.len(),
            SegmentType::Set => 1,
            SegmentType::ConfedSequence | SegmentType::ConfedSet => 0,
        }))
    }

    /// The first AS of the path (the neighbour AS for eBGP), if the path starts with a sequence.
    pub fn first_asn(&self) -> Option<u32> {
        let seg = self.segments.first()?;
        (seg.kind == SegmentType::Sequence)
            .then(|| seg.asns.first().copied())
            .flatten()
    }

    /// The originating AS: the last AS of the path if it ends with a sequence.
    pub fn origin_asn(&self) -> Option<u32> {
        let seg = self.segments.last()?;
        (seg.kind == SegmentType::Sequence)
            .then(|| seg.asns.last().copied())
            .flatten()
    }

    /// Whether `asn` appears anywhere in the path (for loop detection, RFC 4271 §9.1.2).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// All AS numbers in order, across segments.
    pub fn asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.segments.iter().flat_map(|s| s.asns.iter().copied())
    }

    /// RFC 6793 §4.2.3: the path seen by a NEW speaker from an AS_PATH (2-octet, with AS_TRANS)
    /// and an AS4_PATH received from an OLD one. If AS_PATH is shorter than AS4_PATH, AS4_PATH is
    /// ignored; otherwise the leading ASes of AS_PATH that AS4_PATH does not cover are kept
    /// (confederation segments of AS_PATH count zero and are kept) and AS4_PATH is appended.
    pub fn merge_as4(&self, as4: &AsPath) -> AsPath {
        let total = self.path_len();
        let tail = as4.path_len();
        if total < tail {
            return self.clone();
        }
        let mut keep = total.saturating_sub(tail);
        let mut segments = Vec::new();
        for seg in &self.segments {
            if keep == 0 {
                break;
            }
            match seg.kind {
                SegmentType::Sequence => {
                    let n = seg.asns.len().min(keep);
                    segments.push(AsSegment {
                        kind: seg.kind,
                        asns: seg.asns.get(..n).unwrap_or_default().to_vec(),
                    });
                    keep = keep.saturating_sub(n);
                }
                SegmentType::Set => {
                    segments.push(seg.clone());
                    keep = keep.saturating_sub(1);
                }
                SegmentType::ConfedSequence | SegmentType::ConfedSet => segments.push(seg.clone()),
            }
        }
        let mut rest = as4.segments.iter().cloned();
        // Join the seam of two sequences into one segment where it fits, as the path was
        // before the OLD speaker split it.
        if let (Some(last), Some(first)) = (segments.last_mut(), as4.segments.first())
            && last.kind == SegmentType::Sequence
            && first.kind == SegmentType::Sequence
            && last.asns.len().saturating_add(first.asns.len()) <= MAX_SEGMENT_LEN
        {
            last.asns.extend_from_slice(&first.asns);
            rest.next();
        }
        segments.extend(rest);
        AsPath { segments }
    }

    /// RFC 6793 §4.2.2: what a NEW speaker sends an OLD one: the AS_PATH with every AS above
    /// 65535 replaced by AS_TRANS, and, if there was any, the AS4_PATH holding the real path
    /// (without confederation segments, RFC 6793 §3).
    pub fn split_for_two_octet(&self) -> (AsPath, Option<AsPath>) {
        let needs_as4 = self.asns().any(|a| a > u32::from(u16::MAX));
        let as_path = AsPath {
            segments: self
                .segments
                .iter()
                .map(|s| AsSegment {
                    kind: s.kind,
                    asns: s
                        .asns
                        .iter()
                        .map(|&a| {
                            if a > u32::from(u16::MAX) {
                                u32::from(AS_TRANS)
                            } else {
                                a
                            }
                        })
                        .collect(),
                })
                .collect(),
        };
        let as4 = needs_as4.then(|| AsPath {
            segments: self
                .segments
                .iter()
                .filter(|s| matches!(s.kind, SegmentType::Sequence | SegmentType::Set))
                .cloned()
                .collect(),
        });
        (as_path, as4)
    }

    /// Decodes a path whose AS numbers are `width` (2 or 4) octets. Errors say what is wrong
    /// (RFC 7606 §7.2 malformed AS_PATH).
    pub(crate) fn decode(r: &mut Reader<'_>, width: usize) -> Result<AsPath, (usize, String)> {
        let mut segments = Vec::with_capacity(1);
        while !r.is_empty() {
            let at = r.offset();
            let (Some(kind), Some(count)) = (r.u8(), r.u8()) else {
                return Err((at, "segment header truncated".into()));
            };
            let Some(kind) = SegmentType::from_u8(kind) else {
                return Err((at, format!("unknown segment type {kind}")));
            };
            // RFC 7606 §7.2: a segment with zero length is malformed.
            if count == 0 {
                return Err((at, "segment of length 0".into()));
            }
            let mut asns = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                let asn = if width == 2 {
                    r.u16().map(u32::from)
                } else {
                    r.u32()
                };
                let Some(asn) = asn else {
                    return Err((
                        at,
                        format!("segment of {count} ASes overruns the attribute"),
                    ));
                };
                asns.push(asn);
            }
            segments.push(AsSegment { kind, asns });
        }
        Ok(AsPath { segments })
    }

    pub(crate) fn encoded_len(&self, width: usize) -> usize {
        sum(self
            .segments
            .iter()
            .map(|s| s.asns.len().saturating_mul(width).saturating_add(2)))
    }

    pub(crate) fn check(
        &self,
        field: &'static str,
        width: usize,
    ) -> Result<(), crate::EncodeError> {
        for s in &self.segments {
            if s.asns.len() > MAX_SEGMENT_LEN || s.asns.is_empty() {
                return Err(crate::EncodeError::InvalidValue {
                    field,
                    reason: format!("segment of {} ASes (must be 1..=255)", s.asns.len()),
                });
            }
            if width == 2
                && let Some(&asn) = s.asns.iter().find(|&&a| a > u32::from(u16::MAX))
            {
                return Err(crate::EncodeError::AsNumberTooLarge { field, asn });
            }
        }
        Ok(())
    }

    pub(crate) fn encode(&self, width: usize, buf: &mut impl BufMut) {
        for s in &self.segments {
            buf.put_u8(s.kind.code());
            buf.put_u8(u8::try_from(s.asns.len()).unwrap_or(u8::MAX));
            for &asn in &s.asns {
                if width == 2 {
                    buf.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS));
                } else {
                    buf.put_u32(asn);
                }
            }
        }
    }
}

impl std::fmt::Display for AsPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for s in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let list = s
                .asns
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            match s.kind {
                SegmentType::Sequence => f.write_str(&list)?,
                SegmentType::Set => write!(f, "{{{list}}}")?,
                SegmentType::ConfedSequence => write!(f, "({list})")?,
                SegmentType::ConfedSet => write!(f, "[{list}]")?,
            }
        }
        Ok(())
    }
}
