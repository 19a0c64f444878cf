//! Full resynchronisation from a dump of links and routes, coalesced: changes that call for one
//! while a dump runs, or soon after one, make a single further dump, not one each. Every wait
//! for the kernel is bounded.

use std::time::Duration;

use super::*;

/// Quiet time after the first change that calls for a resynchronisation before it starts: the
/// several notifications of one command (`ip link set down`) are taken together.
pub(super) const RESYNC_SETTLE: Duration = Duration::from_millis(50);
/// The shortest time between the starts of two resynchronisations: a storm of address or link
/// changes costs at most one dump of the whole table per interval (plus the last one after it).
pub(super) const RESYNC_INTERVAL: Duration = Duration::from_secs(1);
/// How long the kernel may take to send the next message of a dump or answer a route lookup.
pub(super) const KERNEL_WAIT: Duration = Duration::from_secs(10);
/// After a failed dump, the wait before the next attempt.
pub(super) const RESYNC_RETRY: Duration = Duration::from_secs(1);
/// Attempts of the initial dump before the task gives up starting.
const START_ATTEMPTS: u32 = 3;

/// The next item of `stream`, or an error naming `what` when none comes within `wait`.
pub(super) async fn next_within<S: futures::Stream + Unpin>(
    stream: &mut S,
    wait: Duration,
    what: &str,
) -> Result<Option<S::Item>, String> {
    tokio::time::timeout(wait, stream.next())
        .await
        .map_err(|_| format!("the kernel sent nothing for {wait:?} during {what}"))
}

impl KernelTask {
    /// Calls for a full resynchronisation. It starts once [`RESYNC_SETTLE`] has passed and at
    /// least [`RESYNC_INTERVAL`] after the last one started; calls meanwhile add nothing.
    pub(super) fn request_resync(&mut self) {
        if self.need_resync {
            return;
        }
        let now = Instant::now();
        let earliest = self.last_resync.map_or(now, |last| last + RESYNC_INTERVAL);
        self.need_resync = true;
        self.resync_at = (now + RESYNC_SETTLE).max(earliest);
    }

    /// When the resynchronisation called for is due, if one is.
    pub(super) fn resync_due(&self) -> Option<Instant> {
        self.need_resync.then_some(self.resync_at)
    }

    /// Runs the resynchronisation called for when it is due. On failure the view of the kernel
    /// is incomplete ([`KernelTask::view_incomplete`]) until a later attempt succeeds, one
    /// [`RESYNC_RETRY`] later.
    pub(super) async fn resync_if_due(&mut self) {
        let now = Instant::now();
        if !self.need_resync || now < self.resync_at {
            return;
        }
        self.need_resync = false;
        self.last_resync = Some(now);
        match self.resync().await {
            Ok(()) => {
                self.view_incomplete = false;
                self.need_full = true;
                self.need_reresolve |= !self.recursive.is_empty();
            }
            Err(error) => {
                tracing::error!(%error, retry = ?RESYNC_RETRY, "netlink dump failed; nothing is written until a dump succeeds");
                self.record_error(format!("route dump: {error}"));
                self.view_incomplete = true;
                self.need_resync = true;
                self.resync_at = Instant::now() + RESYNC_RETRY;
            }
        }
    }

    /// The first dump, at start: [`START_ATTEMPTS`] attempts, each bounded by [`KERNEL_WAIT`]
    /// per message.
    pub(super) async fn initial_resync(&mut self) -> Result<(), String> {
        let mut attempt = 1;
        loop {
            self.last_resync = Some(Instant::now());
            match self.resync().await {
                Ok(()) => return Ok(()),
                Err(error) if attempt < START_ATTEMPTS => {
                    tracing::warn!(%error, attempt, "initial netlink dump failed; retrying");
                    tokio::time::sleep(RESYNC_RETRY).await;
                    attempt += 1;
                }
                Err(error) => return Err(format!("{error} ({attempt} attempts)")),
            }
        }
    }

    /// Starts a dump; its messages are read as a stream (a table of 500k routes is never held
    /// as parsed messages all at once).
    pub(super) fn dump(
        &self,
        request: NetlinkMessage<RouteNetlinkMessage>,
    ) -> Result<impl futures::Stream<Item = NetlinkMessage<RouteNetlinkMessage>> + use<>, String>
    {
        self.writer
            .handle()
            .request(request, SocketAddr::new(0, 0))
            .map_err(|e| e.to_string())
    }

    /// Reads links and routes from the kernel and rebuilds the view of tern's routes and the
    /// learned routes.
    pub(super) async fn resync(&mut self) -> Result<(), String> {
        self.status.resyncs += 1;
        let mut links = self.dump(dump_links_message())?;
        self.links.clear();
        while let Some(message) = next_within(&mut links, KERNEL_WAIT, "the link dump").await? {
            match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    if let Some(link) = parse_link(&link) {
                        self.links.insert(link.index, link);
                    }
                }
                NetlinkPayload::Error(error) if error.code.is_some() => {
                    return Err(error.to_string());
                }
                _ => {}
            }
        }
        let tunnel = self
            .links
            .values()
            .find(|link| link.name == self.config.tunnel_device)
            .map(|link| link.index);
        if tunnel != self.tunnel_ifindex {
            self.tunnel_missing_logged = false;
        }
        self.tunnel_ifindex = tunnel;
        let mut routes = self.dump(dump_routes_message())?;
        self.fib.clear_installed();
        let mut learned = HashMap::new();
        while let Some(message) = next_within(&mut routes, KERNEL_WAIT, "the route dump").await? {
            let route = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) => route,
                NetlinkPayload::Error(error) if error.code.is_some() => {
                    return Err(error.to_string());
                }
                _ => continue,
            };
            let Some(parsed) = parse_route(&route) else {
                continue;
            };
            if parsed.table != MAIN_TABLE {
                continue;
            }
            if parsed.protocol == self.config.protocol {
                if let Some(route) = parsed.to_kernel_route(self.tunnel_ifindex) {
                    self.fib.insert_installed(route);
                }
            } else if let Some(route) = self.learnable(&parsed) {
                learned.insert(
                    RouteKey {
                        prefix: parsed.prefix,
                        metric: parsed.metric,
                    },
                    route,
                );
            }
        }
        for (key, route) in &self.learned {
            if !learned.contains_key(key) {
                let _ = self
                    .learned_tx
                    .send(LearnedRouteEvent::Removed(route.clone()));
            }
        }
        for (key, route) in &learned {
            if self.learned.get(key) != Some(route) {
                let _ = self
                    .learned_tx
                    .send(LearnedRouteEvent::Added(route.clone()));
            }
        }
        self.learned = learned;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::next_within;

    #[tokio::test]
    async fn a_silent_kernel_is_an_error_naming_the_wait() {
        let mut silent = futures::stream::pending::<()>();
        let error = next_within(&mut silent, Duration::from_millis(20), "the route dump")
            .await
            .unwrap_err();
        assert_eq!(
            error,
            "the kernel sent nothing for 20ms during the route dump"
        );
        let mut one = futures::stream::iter([7]);
        let first = next_within(&mut one, Duration::from_millis(20), "a lookup").await;
        assert_eq!(first, Ok(Some(7)));
        assert_eq!(
            next_within(&mut one, Duration::from_millis(20), "a lookup").await,
            Ok(None)
        );
    }
}
