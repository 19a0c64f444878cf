//! Pipelined route writes: many route requests per datagram, several datagrams in flight, only
//! the last request of a datagram asks for an acknowledgement. The kernel answers requests in
//! order, so that acknowledgement means the whole datagram was processed; a request that fails
//! is answered with an error carrying the original request, which names the route it was for.

use std::collections::{HashMap, VecDeque};

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use rtnetlink::packet_core::{NLM_F_ACK, NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::proto::{ConnectionHandle, ReplyExpectation};
use rtnetlink::sys::SocketAddr;

use super::codec::{del_route_message, new_route_message, parse_route};
use crate::fib::{FibChange, RouteKey};

/// Requests per datagram, and a byte budget that keeps a datagram well under the default
/// socket send buffer.
const MAX_BATCH_MESSAGES: usize = 1024;
/// The fewest requests per datagram (with a small receive buffer).
const MIN_BATCH_MESSAGES: usize = 16;
/// Receive buffer bytes to budget per request: a failed request's error echoes it (~1 KiB of
/// socket memory), and a whole datagram is processed before tern reads the answers.
const RECEIVE_BYTES_PER_REQUEST: usize = 2048;
/// How long the acknowledgement of one datagram may take before the writer gives up on it and
/// the task resynchronises from a dump (a lost acknowledgement after a receive overrun).
const ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_BATCH_BYTES: usize = 128 * 1024;
/// Datagrams handed to the connection before the first acknowledgement is awaited.
const BATCHES_IN_FLIGHT: usize = 8;

/// Outcome of one failed change: its index in the submitted list and the kernel's errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WriteFailure {
    pub index: usize,
    pub errno: i32,
}

/// What became of a list of changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct WriteOutcome {
    /// The changes the kernel refused, by index.
    pub failures: Vec<WriteFailure>,
    /// Some answers were lost (receive overrun or timeout): the kernel's state is unknown and
    /// must be read back.
    pub incomplete: bool,
}

/// Writes route changes over one netlink connection.
pub(super) struct RouteWriter {
    handle: ConnectionHandle<RouteNetlinkMessage>,
    /// Errors for requests sent without an acknowledgement flag arrive here.
    unsolicited: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    protocol: u8,
    batch_messages: usize,
}

impl RouteWriter {
    pub fn new(
        handle: ConnectionHandle<RouteNetlinkMessage>,
        unsolicited: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
        protocol: u8,
        receive_buffer_bytes: usize,
    ) -> Self {
        let batch_messages = (receive_buffer_bytes / RECEIVE_BYTES_PER_REQUEST)
            .clamp(MIN_BATCH_MESSAGES, MAX_BATCH_MESSAGES);
        Self {
            handle,
            unsolicited,
            protocol,
            batch_messages,
        }
    }

    /// The connection handle, for dumps and lookups.
    pub fn handle(&self) -> &ConnectionHandle<RouteNetlinkMessage> {
        &self.handle
    }

    /// Applies `changes` in order and returns the failed ones. `tunnel_ifindex` is the tunnel
    /// device's index (changes with tunnel hops must only be passed when it is known).
    pub async fn apply(
        &mut self,
        changes: &[FibChange],
        tunnel_ifindex: u32,
    ) -> Result<WriteOutcome, WriterClosed> {
        let mut outcome = WriteOutcome::default();
        let mut in_flight = VecDeque::new();
        let mut next = 0;
        // Which change a failed request was for: (is delete, key) → indices, built on first error.
        let mut index: Option<HashMap<(bool, RouteKey), Vec<usize>>> = None;
        while next < changes.len() || !in_flight.is_empty() {
            while next < changes.len() && in_flight.len() < BATCHES_IN_FLIGHT {
                let mut batch = Vec::new();
                let mut bytes = 0;
                while next < changes.len()
                    && batch.len() < self.batch_messages
                    && bytes < MAX_BATCH_BYTES
                {
                    let message = match &changes[next] {
                        FibChange::Add(route) | FibChange::Replace(route) => {
                            new_route_message(route, self.protocol, tunnel_ifindex)
                        }
                        FibChange::Delete(route) => del_route_message(route, self.protocol),
                    };
                    bytes += message.buffer_len();
                    batch.push((message, ReplyExpectation::NotExpected));
                    next += 1;
                }
                if let Some((last, expectation)) = batch.last_mut() {
                    last.header.flags |= NLM_F_ACK;
                    *expectation = ReplyExpectation::Expected;
                }
                let responses = self
                    .handle
                    .request_batch_with_expectation(batch, SocketAddr::new(0, 0))
                    .map_err(|_| WriterClosed)?;
                in_flight.push_back(responses);
            }
            let Some(mut responses) = in_flight.pop_front() else {
                break;
            };
            loop {
                match tokio::time::timeout(ACK_TIMEOUT, responses.next()).await {
                    Ok(Some(message)) => {
                        self.record_error(message, changes, &mut index, &mut outcome)
                    }
                    Ok(None) => break,
                    Err(_) => {
                        tracing::warn!(
                            "no netlink acknowledgement within {ACK_TIMEOUT:?}; the kernel state will be read back"
                        );
                        outcome.incomplete = true;
                        break;
                    }
                }
            }
            // Errors of unacknowledged requests were read from the socket before this
            // acknowledgement, and the connection forwards them first.
            while let Ok((message, _)) = self.unsolicited.try_recv() {
                self.record_error(message, changes, &mut index, &mut outcome);
            }
            if outcome.incomplete {
                // Unsent changes are left to the resynchronisation.
                break;
            }
        }
        outcome.failures.sort_by_key(|failure| failure.index);
        outcome.failures.dedup();
        Ok(outcome)
    }

    fn record_error(
        &self,
        message: NetlinkMessage<RouteNetlinkMessage>,
        changes: &[FibChange],
        index: &mut Option<HashMap<(bool, RouteKey), Vec<usize>>>,
        outcome: &mut WriteOutcome,
    ) {
        let error = match message.payload {
            NetlinkPayload::Error(error) => error,
            NetlinkPayload::Overrun(_) => {
                tracing::warn!(
                    "netlink writer socket overrun (ENOBUFS): answers were lost; the kernel state will be read back"
                );
                outcome.incomplete = true;
                return;
            }
            _ => return,
        };
        let errno = error.raw_code().abs();
        if errno == 0 {
            return;
        }
        let Ok(original) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&error.header) else {
            tracing::warn!(errno, "netlink error for a request that cannot be decoded");
            return;
        };
        let (is_delete, route) = match &original.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) => (false, route),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(route)) => (true, route),
            _ => return,
        };
        let Some(parsed) = parse_route(route) else {
            return;
        };
        let key = RouteKey {
            prefix: parsed.prefix,
            metric: parsed.metric,
        };
        let index = index.get_or_insert_with(|| {
            let mut map: HashMap<(bool, RouteKey), Vec<usize>> = HashMap::new();
            for (i, change) in changes.iter().enumerate() {
                map.entry((matches!(change, FibChange::Delete(_)), change.route().key()))
                    .or_default()
                    .push(i);
            }
            map
        });
        if let Some(indices) = index.get(&(is_delete, key)) {
            outcome
                .failures
                .extend(indices.iter().map(|&index| WriteFailure { index, errno }));
        }
    }
}

/// The netlink connection task is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the netlink connection closed")]
pub struct WriterClosed;
