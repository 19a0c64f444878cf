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
const MAX_BATCH_BYTES: usize = 128 * 1024;
/// Datagrams handed to the connection before the first acknowledgement is awaited.
const BATCHES_IN_FLIGHT: usize = 8;

/// Outcome of one failed change: its index in the submitted list and the kernel's errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WriteFailure {
    pub index: usize,
    pub errno: i32,
}

/// Writes route changes over one netlink connection.
pub(super) struct RouteWriter {
    handle: ConnectionHandle<RouteNetlinkMessage>,
    /// Errors for requests sent without an acknowledgement flag arrive here.
    unsolicited: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    protocol: u8,
}

impl RouteWriter {
    pub fn new(
        handle: ConnectionHandle<RouteNetlinkMessage>,
        unsolicited: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
        protocol: u8,
    ) -> Self {
        Self {
            handle,
            unsolicited,
            protocol,
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
    ) -> Result<Vec<WriteFailure>, WriterClosed> {
        let mut failures = Vec::new();
        let mut in_flight = VecDeque::new();
        let mut next = 0;
        // Which change a failed request was for: (is delete, key) → indices, built on first error.
        let mut index: Option<HashMap<(bool, RouteKey), Vec<usize>>> = None;
        while next < changes.len() || !in_flight.is_empty() {
            while next < changes.len() && in_flight.len() < BATCHES_IN_FLIGHT {
                let mut batch = Vec::new();
                let mut bytes = 0;
                while next < changes.len()
                    && batch.len() < MAX_BATCH_MESSAGES
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
            while let Some(message) = responses.next().await {
                self.record_error(message, changes, &mut index, &mut failures);
            }
            // Errors of unacknowledged requests were read from the socket before this
            // acknowledgement, and the connection forwards them first.
            while let Ok((message, _)) = self.unsolicited.try_recv() {
                self.record_error(message, changes, &mut index, &mut failures);
            }
        }
        failures.sort_by_key(|failure| failure.index);
        Ok(failures)
    }

    fn record_error(
        &self,
        message: NetlinkMessage<RouteNetlinkMessage>,
        changes: &[FibChange],
        index: &mut Option<HashMap<(bool, RouteKey), Vec<usize>>>,
        failures: &mut Vec<WriteFailure>,
    ) {
        let NetlinkPayload::Error(error) = message.payload else {
            return;
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
            failures.extend(indices.iter().map(|&index| WriteFailure { index, errno }));
        }
    }
}

/// The netlink connection task is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the netlink connection closed")]
pub struct WriterClosed;
