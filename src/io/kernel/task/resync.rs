//! Full resynchronisation from a dump of links and routes.

use super::*;

impl KernelTask {
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
        while let Some(message) = links.next().await {
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
        while let Some(message) = routes.next().await {
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
