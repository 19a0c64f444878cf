//! Adj-RIB-Out per export group: computed once, sent to many.
//!
//! Peers whose [`ExportKey`] is equal are sent exactly the same routes, so they share one
//! [`ExportGroup`]. When the Loc-RIB selection for a prefix changes, the RIB computes the group's
//! new out-state once ([`ExportGroup::set`]); if it differs from what the group holds, the prefix
//! is appended to the group's change log. Each member peer keeps only a cursor into that log and
//! pulls at its own pace ([`ExportGroup::pull`]): a slow peer coalesces changes (it is sent the
//! latest state of a prefix once) and never delays the others. A member that joins, or asks for a
//! route refresh, first walks a snapshot of the group's prefixes, then the log.
//!
//! Without ADD-PATH a group sends each prefix's best path; with ADD-PATH send (RFC 7911) it sends
//! the whole multipath set, each path under its stable transmit path id.

use std::collections::VecDeque;

use hashbrown::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

pub use bgp_proto::Nlri;
use bgp_proto::builder::UpdateBuilder;
use bgp_proto::{Context, EncodeError, Family, Update};
use ipnet::IpNet;
use smallvec::SmallVec;

use super::attrs::RouteAttrs;
use super::peer::{ExportKey, PeerId};
use super::policy::filter::RouteFilter;
use crate::table::PrefixTable;

/// A group's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u32);

/// One path in a group's Adj-RIB-Out.
#[derive(Debug, Clone)]
pub struct OutPath {
    /// ADD-PATH transmit id (0 for groups without ADD-PATH).
    pub tx_path_id: u32,
    /// The peer the path came from (it is never sent back to that peer).
    pub source: PeerId,
    /// The exported attributes (interned).
    pub attrs: Arc<RouteAttrs>,
}

/// A prefix's state in a group's Adj-RIB-Out.
pub type OutPaths = SmallVec<[OutPath; 1]>;

fn same_out(a: &[OutPath], b: &[OutPath]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.tx_path_id == y.tx_path_id && x.source == y.source && Arc::ptr_eq(&x.attrs, &y.attrs)
        })
}

/// Routes to send together: withdrawals, or announcements sharing one attribute set.
/// [`OutboundUpdate::encode`] packs them into as few UPDATE messages as fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundUpdate {
    /// Withdrawn NLRI.
    pub withdrawn: Vec<Nlri>,
    /// The attributes of `announced` (`None` when nothing is announced).
    pub attrs: Option<Arc<RouteAttrs>>,
    /// Announced NLRI.
    pub announced: Vec<Nlri>,
}

impl OutboundUpdate {
    /// The UPDATE messages for this batch on a session with send context `ctx` (ADD-PATH, 4-octet
    /// AS and extended-message facts), one family at a time, packed by the codec's
    /// [`UpdateBuilder`].
    pub fn encode(&self, ctx: &Context) -> Result<Vec<Update>, EncodeError> {
        let mut out = Vec::new();
        for (family, v6) in [(Family::IPV4_UNICAST, false), (Family::IPV6_UNICAST, true)] {
            let of_family = |n: &&Nlri| n.prefix.addr().is_ipv6() == v6;
            let withdrawn: Vec<Nlri> = self.withdrawn.iter().filter(of_family).copied().collect();
            let announced: Vec<Nlri> = self.announced.iter().filter(of_family).copied().collect();
            if withdrawn.is_empty() && announced.is_empty() {
                continue;
            }
            let mut builder = UpdateBuilder::new(*ctx, family).withdraw(&withdrawn);
            let wire;
            if let (false, Some(attrs)) = (announced.is_empty(), &self.attrs) {
                let next_hop = attrs.wire_next_hop().ok_or(EncodeError::InvalidValue {
                    field: "NEXT_HOP",
                    reason: "an announced route has no next hop".into(),
                })?;
                wire = attrs.to_wire_for(ctx.four_octet_as);
                builder = builder.announce(&wire, next_hop, &announced);
            }
            out.extend(builder.build()?);
        }
        Ok(out)
    }
}

/// What one pull yields for a peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullOutput {
    /// UPDATEs to send, in order.
    pub updates: Vec<OutboundUpdate>,
    /// The initial table (or a route-refresh answer) is complete with this pull: send
    /// End-of-RIB (RFC 4724 §2) / the refresh end marker.
    pub end_of_rib: bool,
    /// More is waiting: pull again when the socket can take it.
    pub more: bool,
    /// The minimum advertisement interval holds the rest back until then.
    pub wake_at: Option<Instant>,
}

#[derive(Debug, Clone)]
struct LogEntry {
    seq: u64,
    prefix: IpNet,
    /// Path ids withdrawn by this change (ADD-PATH groups).
    withdrawn: SmallVec<[u32; 2]>,
    /// The prefix's out-state this change made (empty = withdrawn), so that a pull reads the
    /// log in order without a table lookup per prefix; `None` once a later change of the same
    /// prefix follows in the log (the state is then sent once, from that later entry).
    state: Option<OutPaths>,
}

/// A prefix in the group's Adj-RIB-Out, in 16 bytes (a million-route table pays this per
/// prefix): without ADD-PATH a prefix has at most one out path, with transmit id 0, stored inline;
/// any other set (ADD-PATH) is kept in [`ExportGroup::multi`] and marked by [`MULTI`]. No path
/// at all (`attrs` `None`, `source` not [`MULTI`]) is a withdrawal, kept as a tombstone until
/// every member has read it.
#[derive(Debug, Clone)]
struct OutEntry {
    /// The single path's exported attributes.
    attrs: Option<Arc<RouteAttrs>>,
    /// The single path's source, or [`MULTI`].
    source: PeerId,
    /// The low 32 bits of the sequence number of the prefix's latest log entry (the log keeps
    /// whole ones; see [`ExportGroup::set`] for why the low bits suffice).
    seq: u32,
}

/// [`OutEntry::source`] of a prefix whose paths are in [`ExportGroup::multi`]. Peer ids are
/// handed out from 0 and [`super::loc_rib::LOCAL_PEER`] is `u32::MAX`, so no path has it.
const MULTI: PeerId = PeerId(u32::MAX - 1);

impl OutEntry {
    fn empty(seq: u64) -> Self {
        OutEntry {
            attrs: None,
            source: PeerId(0),
            seq: seq as u32,
        }
    }

    fn is_empty(&self) -> bool {
        self.attrs.is_none() && self.source != MULTI
    }

    /// The paths (cloned: one `Arc` per path).
    fn paths(&self, prefix: &IpNet, multi: &HashMap<IpNet, OutPaths>) -> OutPaths {
        match &self.attrs {
            Some(attrs) => smallvec::smallvec![OutPath {
                tx_path_id: 0,
                source: self.source,
                attrs: Arc::clone(attrs),
            }],
            None if self.source == MULTI => multi.get(prefix).cloned().unwrap_or_default(),
            None => OutPaths::new(),
        }
    }

    /// Stores `paths`, inline when they are one path with transmit id 0.
    fn store(&mut self, prefix: IpNet, paths: OutPaths, multi: &mut HashMap<IpNet, OutPaths>) {
        if self.source == MULTI {
            multi.remove(&prefix);
        }
        match paths.as_slice() {
            [] => {
                self.attrs = None;
                self.source = PeerId(0);
            }
            [one] if one.tx_path_id == 0 && one.source != MULTI => {
                self.attrs = Some(Arc::clone(&one.attrs));
                self.source = one.source;
            }
            _ => {
                self.attrs = None;
                self.source = MULTI;
                multi.insert(prefix, paths);
            }
        }
    }
}

/// The whole sequence number whose low 32 bits are `low`, nearest below or at `now`.
fn widen_seq(low: u32, now: u64) -> u64 {
    now.wrapping_sub(u64::from((now as u32).wrapping_sub(low)))
}

#[derive(Debug)]
struct Member {
    peer: PeerId,
    /// Next log sequence number to read.
    cursor: u64,
    /// Initial table / route refresh: prefixes still to send, and where we are.
    dump: Vec<IpNet>,
    dump_pos: usize,
    /// End-of-RIB still owed after the dump.
    owes_end_of_rib: bool,
    /// Earliest time of the next send (minimum advertisement interval).
    next_send: Option<Instant>,
}

/// Key of the export-transform memo: the same input set, class and policy outcome give the same
/// exported set, so the transform runs once per distinct combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MemoKey {
    pub input: usize,
    pub class: u8,
    pub source_router_id: u32,
    pub community_mask: u64,
    pub rule: u32,
}

/// A pull scans at most this many log entries per prefix of its budget (superseded entries
/// send nothing and are skipped; compaction keeps them at most half the log).
const SCAN_FACTOR: usize = 8;
/// Superseded entries below this many never trigger a compaction on their own.
const COMPACT_MIN_SUPERSEDED: usize = 1024;

/// One export group (see the module docs).
pub struct ExportGroup {
    /// What the members share.
    pub key: ExportKey,
    /// The members' BGPFilter export rules.
    pub filter: Option<Arc<dyn RouteFilter>>,
    members: Vec<Member>,
    out: PrefixTable<OutEntry>,
    /// Out-states that are not one path with transmit id 0 (ADD-PATH groups).
    multi: HashMap<IpNet, OutPaths>,
    /// Prefixes with at least one path (`out` minus tombstones).
    live: usize,
    /// Changes in sequence order; an entry whose `seq` is not its prefix's latest is stale
    /// (a later one follows) and only its withdrawn path ids still count.
    log: VecDeque<LogEntry>,
    /// Log entries whose state moved to a later entry of the same prefix (see
    /// [`ExportGroup::supersede`]); the log is compacted once they are half of it.
    superseded: usize,
    next_seq: u64,
    /// Export transform memo: input set (held weakly, which also keeps its address from being
    /// reused) + exported set.
    pub(crate) memo: HashMap<MemoKey, (Weak<RouteAttrs>, Arc<RouteAttrs>)>,
    /// The last prefix-independent export outcome (see [`LastExport`]): the prefixes of one
    /// UPDATE arrive one after another with one attribute set, and skip the policy run.
    pub(crate) last: Option<LastExport>,
}

/// An export outcome that holds for every prefix of a family with the same input set and
/// source: the BGPFilter (which reads no prefix) or the propagation rules decided it. Only kept
/// while the RIB applies one UPDATE (sessions and policy cannot change meanwhile).
#[derive(Debug, Clone)]
pub(crate) struct LastExport {
    /// The input set (held, so its address cannot be reused while cached).
    pub input: Arc<RouteAttrs>,
    /// The peer the path came from (its type, role and router id decide propagation).
    pub source: PeerId,
    /// The prefix family.
    pub ipv6: bool,
    /// The exported set; `None` = not exported.
    pub exported: Option<Arc<RouteAttrs>>,
}

impl std::fmt::Debug for ExportGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportGroup")
            .field("key", &self.key)
            .field(
                "members",
                &self.members.iter().map(|m| m.peer).collect::<Vec<_>>(),
            )
            .field("prefixes", &self.out.len())
            .field("log", &self.log.len())
            .finish()
    }
}

impl ExportGroup {
    /// A group with no members yet.
    pub fn new(key: ExportKey, filter: Option<Arc<dyn RouteFilter>>) -> Self {
        Self {
            key,
            filter,
            members: Vec::new(),
            out: PrefixTable::default(),
            multi: HashMap::new(),
            live: 0,
            log: VecDeque::new(),
            superseded: 0,
            next_seq: 0,
            memo: HashMap::new(),
            last: None,
        }
    }

    /// The members.
    pub fn members(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.members.iter().map(|m| m.peer)
    }

    /// Starts loading the out-table bucket of `prefix` into the cache.
    pub fn prefetch(&self, prefix: &IpNet) {
        self.out.prefetch(prefix);
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Number of prefixes in the group's Adj-RIB-Out.
    pub fn len(&self) -> usize {
        self.live
    }

    /// The group's Adj-RIB-Out for `prefix`.
    pub fn get(&self, prefix: &IpNet) -> Option<OutPaths> {
        self.out
            .get(prefix)
            .filter(|e| !e.is_empty())
            .map(|e| e.paths(prefix, &self.multi))
    }

    /// The whole Adj-RIB-Out.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, OutPaths)> + '_ {
        self.out
            .iter()
            .filter(|(_, e)| !e.is_empty())
            .map(|(p, e)| (p, e.paths(&p, &self.multi)))
    }

    /// Prefixes `peer` is sent: those with a path from another source.
    pub fn advertised_to(&self, peer: PeerId) -> usize {
        self.out
            .iter()
            .filter(|(p, e)| match &e.attrs {
                Some(_) => e.source != peer,
                None => e.paths(p, &self.multi).iter().any(|x| x.source != peer),
            })
            .count()
    }

    fn live_prefixes(&self) -> Vec<IpNet> {
        self.out
            .iter()
            .filter(|(_, e)| !e.is_empty())
            .map(|(p, _)| p)
            .collect()
    }

    /// The only member, when there is exactly one: paths it sent are then not stored at all
    /// (they would never be sent to it), which halves the memory of a peer that both sends and
    /// receives a full table in a group of its own.
    pub fn sole_member(&self) -> Option<PeerId> {
        match self.members.as_slice() {
            [only] => Some(only.peer),
            _ => None,
        }
    }

    /// Adds a member; it is sent the whole table first, then End-of-RIB.
    pub fn join(&mut self, peer: PeerId) {
        self.leave(peer);
        self.members.push(Member {
            peer,
            cursor: self.next_seq,
            dump: self.live_prefixes(),
            dump_pos: 0,
            owes_end_of_rib: true,
            next_send: None,
        });
    }

    /// Removes a member.
    pub fn leave(&mut self, peer: PeerId) {
        self.members.retain(|m| m.peer != peer);
        self.trim();
    }

    /// Route refresh (RFC 2918): resend the whole table to `peer`.
    pub fn refresh(&mut self, peer: PeerId) {
        let dump = self.live_prefixes();
        if let Some(m) = self.members.iter_mut().find(|m| m.peer == peer) {
            m.dump = dump;
            m.dump_pos = 0;
            m.owes_end_of_rib = true;
        }
    }

    /// Sets the out-state of `prefix` (empty = withdrawn); logs it when it changed.
    /// Returns the replaced paths so their attribute sets can be released.
    ///
    /// An entry keeps the low 32 bits of its latest sequence number: it is only compared with
    /// log entries, and the log never spans 2^32 changes of one prefix (it is compacted to one
    /// entry per prefix when it outgrows the table), so the low bits identify the entry.
    pub fn set(&mut self, prefix: IpNet, paths: OutPaths) -> Option<OutPaths> {
        let seq = self.next_seq;
        let add_path = self.key.add_path_send;
        let new_live = !paths.is_empty();
        // One probe: an announcement finds or creates its entry; a withdrawal only looks.
        let entry = if new_live {
            match self.out.entry(prefix, || OutEntry::empty(seq)) {
                (entry, false) => entry,
                (entry, true) => {
                    let state = (!self.members.is_empty()).then(|| paths.clone());
                    entry.store(prefix, paths, &mut self.multi);
                    self.live += 1;
                    return self.logged(prefix, seq, true, SmallVec::new(), None, state, None);
                }
            }
        } else {
            self.out.get_mut(&prefix)?
        };
        let old = entry.paths(&prefix, &self.multi);
        if same_out(&old, &paths) {
            return None;
        }
        // ADD-PATH: the ids that disappeared are withdrawn one by one. Without ADD-PATH the
        // current state (announce or withdraw) says everything.
        let withdrawn: SmallVec<[u32; 2]> = if add_path {
            old.iter()
                .filter(|o| !paths.iter().any(|n| n.tx_path_id == o.tx_path_id))
                .map(|o| o.tx_path_id)
                .collect()
        } else {
            SmallVec::new()
        };
        let state = (!self.members.is_empty()).then(|| paths.clone());
        entry.store(prefix, paths, &mut self.multi);
        let previous = widen_seq(std::mem::replace(&mut entry.seq, seq as u32), seq);
        match (old.is_empty(), new_live) {
            (true, true) => self.live += 1,
            (false, false) => self.live -= 1,
            _ => {}
        }
        self.logged(
            prefix,
            seq,
            new_live,
            withdrawn,
            (!old.is_empty()).then_some(old),
            state,
            Some(previous),
        )
    }

    /// Logs a change of `prefix` to `state` (when anyone reads the log), marks the prefix's
    /// `previous` log entry superseded, and hands back `old`.
    #[allow(clippy::too_many_arguments)]
    fn logged(
        &mut self,
        prefix: IpNet,
        seq: u64,
        new_live: bool,
        withdrawn: SmallVec<[u32; 2]>,
        old: Option<OutPaths>,
        state: Option<OutPaths>,
        previous: Option<u64>,
    ) -> Option<OutPaths> {
        let logging = !self.members.is_empty();
        if logging {
            if let Some(previous) = previous {
                self.supersede(previous);
            }
            self.next_seq += 1;
            self.log.push_back(LogEntry {
                seq,
                prefix,
                withdrawn,
                state: Some(state.unwrap_or_default()),
            });
            // Superseded entries cost every reader a scan: compact once they are half the log
            // (amortised O(1) per change), and bound the log by the table in any case.
            if self.log.len() > 2 * self.out.len() + 1024
                || (self.superseded > COMPACT_MIN_SUPERSEDED
                    && 2 * self.superseded > self.log.len())
            {
                self.compact();
            }
        } else if !new_live {
            // Nobody needs to read the withdrawal: no tombstone.
            self.out.remove(&prefix);
        }
        old
    }

    /// Marks the log entry with sequence number `seq` (if still in the log) superseded: a later
    /// change of its prefix follows. Only a prefix changed again before every member read the
    /// earlier change costs this search.
    fn supersede(&mut self, seq: u64) {
        if self.log.front().is_none_or(|e| e.seq > seq) {
            return;
        }
        let i = self.log.partition_point(|e| e.seq < seq);
        if let Some(e) = self.log.get_mut(i)
            && e.seq == seq
            && e.state.take().is_some()
        {
            self.superseded += 1;
        }
    }

    /// Keeps the log bounded while a member is not reading (a stuck peer until its send hold
    /// timer fires, or churn during a long initial dump): drops every entry a later one for the
    /// same prefix supersedes, moving its withdrawn path ids to that later entry. Afterwards the
    /// log holds at most one entry per prefix in the Adj-RIB-Out.
    fn compact(&mut self) {
        let mut moved: HashMap<IpNet, SmallVec<[u32; 2]>> = HashMap::new();
        let (out, multi) = (&self.out, &self.multi);
        let latest = |e: &LogEntry| e.state.is_some();
        for e in self
            .log
            .iter()
            .filter(|e| !latest(e) && !e.withdrawn.is_empty())
        {
            moved
                .entry(e.prefix)
                .or_default()
                .extend(e.withdrawn.iter().copied());
        }
        self.log.retain(|e| latest(e));
        self.superseded = 0;
        for e in self.log.iter_mut() {
            if let Some(ids) = moved.remove(&e.prefix) {
                let current = out.get(&e.prefix).map(|o| o.paths(&e.prefix, multi));
                for id in ids {
                    let announced = current
                        .as_ref()
                        .is_some_and(|p| p.iter().any(|x| x.tx_path_id == id));
                    if !announced && !e.withdrawn.contains(&id) {
                        e.withdrawn.push(id);
                    }
                }
            }
        }
    }

    /// Drops log entries every member has read, and the tombstones they were the last word on.
    fn trim(&mut self) {
        let min = self
            .members
            .iter()
            .map(|m| m.cursor)
            .min()
            .unwrap_or(self.next_seq);
        while self.log.front().is_some_and(|e| e.seq < min) {
            let Some(e) = self.log.pop_front() else { break };
            if e.state.is_none() {
                self.superseded -= 1;
            }
            let withdrawal = e.state.as_ref().is_some_and(|s| s.is_empty());
            let tombstone = withdrawal
                && self
                    .out
                    .get(&e.prefix)
                    .is_some_and(|o| o.seq == e.seq as u32 && o.is_empty());
            if tombstone {
                self.out.remove(&e.prefix);
            }
        }
        // A burst (a full table) leaves a large buffer behind; give it back once drained.
        if self.log.len() < self.log.capacity() / 4 {
            self.log.shrink_to(self.log.len() * 2);
        }
    }

    /// Whether `peer` has anything to pull.
    pub fn has_pending(&self, peer: PeerId) -> bool {
        self.members.iter().any(|m| {
            m.peer == peer
                && (m.dump_pos < m.dump.len() || m.owes_end_of_rib || m.cursor < self.next_seq)
        })
    }

    /// Takes up to `max_prefixes` changes for `peer`, packed into UPDATEs (announcements grouped
    /// by attribute set). `mrai` is the minimum advertisement interval (RFC 4271 §9.2.1.1;
    /// 0 = send at once).
    pub fn pull(
        &mut self,
        peer: PeerId,
        now: Instant,
        max_prefixes: usize,
        mrai: Duration,
    ) -> PullOutput {
        let add_path = self.key.add_path_send;
        let Some(mi) = self.members.iter().position(|m| m.peer == peer) else {
            return PullOutput::default();
        };
        if let Some(at) = self.members[mi].next_send
            && now < at
        {
            return PullOutput {
                wake_at: Some(at),
                more: true,
                ..PullOutput::default()
            };
        }
        let mut packer = Packer::default();
        let mut taken = 0;
        let id_of = |p: &OutPath| add_path.then_some(p.tx_path_id);

        // 1. The initial table / refresh snapshot.
        while taken < max_prefixes && self.members[mi].dump_pos < self.members[mi].dump.len() {
            let prefix = self.members[mi].dump[self.members[mi].dump_pos];
            self.members[mi].dump_pos += 1;
            taken += 1;
            if let Some(entry) = self.out.get(&prefix) {
                for p in entry
                    .paths(&prefix, &self.multi)
                    .iter()
                    .filter(|p| p.source != peer)
                {
                    packer.announce(
                        Nlri {
                            prefix,
                            path_id: id_of(p),
                        },
                        &p.attrs,
                    );
                }
            }
        }
        let member = &mut self.members[mi];
        let mut end_of_rib = false;
        if member.dump_pos >= member.dump.len() && !member.dump.is_empty() {
            member.dump = Vec::new();
            member.dump_pos = 0;
        }
        if member.dump.is_empty() && member.owes_end_of_rib {
            member.owes_end_of_rib = false;
            end_of_rib = true;
        }

        // 2. The change log.
        if self.members[mi].dump.is_empty() {
            let mut cursor = self.members[mi].cursor;
            // Sequence numbers increase along the log but have gaps after a compaction.
            let start = self.log.partition_point(|e| e.seq < cursor);
            // Superseded entries send nothing, so they do not count against the prefix budget
            // (a burst of changes to the same prefixes must not make a pull come back empty
            // while the log still holds work); the scan itself is bounded separately.
            let scan_limit = max_prefixes.saturating_mul(SCAN_FACTOR);
            for (scanned, entry) in self.log.range(start..).enumerate() {
                if taken >= max_prefixes || scanned >= scan_limit {
                    break;
                }
                cursor = entry.seq + 1;
                let prefix = entry.prefix;
                for &id in &entry.withdrawn {
                    packer.withdraw(Nlri {
                        prefix,
                        path_id: add_path.then_some(id),
                    });
                }
                let Some(state) = &entry.state else {
                    // A later change of this prefix follows in the log: send the state once.
                    if !entry.withdrawn.is_empty() {
                        taken += 1;
                    }
                    continue;
                };
                taken += 1;
                if state.is_empty() {
                    if !add_path {
                        packer.withdraw(Nlri {
                            prefix,
                            path_id: None,
                        });
                    }
                    continue;
                }
                for p in state.iter() {
                    let nlri = Nlri {
                        prefix,
                        path_id: id_of(p),
                    };
                    if p.source == peer {
                        // Never back to where it came from: withdraw what it replaced.
                        packer.withdraw(nlri);
                    } else {
                        packer.announce(nlri, &p.attrs);
                    }
                }
            }
            self.members[mi].cursor = cursor;
        }
        let updates = packer.finish();
        if !updates.is_empty() && !mrai.is_zero() {
            self.members[mi].next_send = Some(now + mrai);
        }
        self.trim();
        let more = self.has_pending(peer);
        PullOutput {
            updates,
            end_of_rib,
            more,
            wake_at: if more {
                self.members[mi].next_send
            } else {
                None
            },
        }
    }

    /// Bytes held by the group's own tables (out table, change log, member queues).
    pub fn heap_bytes(&self) -> usize {
        self.out.heap_bytes()
            + self.multi.capacity() * std::mem::size_of::<(IpNet, OutPaths)>()
            + self.log.capacity() * std::mem::size_of::<LogEntry>()
            + self
                .members
                .iter()
                .map(|m| m.dump.capacity() * std::mem::size_of::<IpNet>())
                .sum::<usize>()
    }

    /// The prefixes in the Adj-RIB-Out (a policy change recomputes them all).
    pub(crate) fn prefixes(&self) -> Vec<IpNet> {
        self.live_prefixes()
    }
}

/// Groups announcements by attribute set and splits by the NLRI byte budget.
#[derive(Default)]
struct Packer {
    withdrawn: Vec<Nlri>,
    by_attrs: HashMap<usize, (Arc<RouteAttrs>, Vec<Nlri>)>,
    order: Vec<usize>,
}

impl Packer {
    fn withdraw(&mut self, nlri: Nlri) {
        self.withdrawn.push(nlri);
    }

    fn announce(&mut self, nlri: Nlri, attrs: &Arc<RouteAttrs>) {
        let key = Arc::as_ptr(attrs) as usize;
        let slot = self.by_attrs.entry(key).or_insert_with(|| {
            self.order.push(key);
            (Arc::clone(attrs), Vec::new())
        });
        slot.1.push(nlri);
    }

    fn finish(mut self) -> Vec<OutboundUpdate> {
        let mut updates = Vec::new();
        // Withdrawals first, so a replaced path never coexists with its successor at the peer.
        if !self.withdrawn.is_empty() {
            updates.push(OutboundUpdate {
                withdrawn: std::mem::take(&mut self.withdrawn),
                attrs: None,
                announced: Vec::new(),
            });
        }
        for key in self.order {
            let Some((attrs, nlri)) = self.by_attrs.remove(&key) else {
                continue;
            };
            updates.push(OutboundUpdate {
                withdrawn: Vec::new(),
                attrs: Some(attrs),
                announced: nlri,
            });
        }
        updates
    }
}

#[cfg(test)]
mod tests;
