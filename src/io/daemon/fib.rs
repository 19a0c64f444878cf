//! The FIB hand-over: Loc-RIB changes mapped through the plan's pool rules into changes of the
//! kernel task's desired set, and the kernel status.

use std::time::Instant;

use tracing::info;

use crate::daemon as glue;
use crate::fib::KernelRoute;
use crate::io::control::FibRequest;
use crate::io::kernel::{DesiredChange, KernelStatus, RouteRange};
use crate::status::{self, Timestamp};

use super::FIB_PUSH_INTERVAL;
use super::supervisor::Supervisor;

impl Supervisor {
    /// Pool rules or policy changed: the whole desired set is recomputed from the RIB and
    /// handed over (the kernel task's diff writes only what differs).
    pub(super) fn recompute_fib(&mut self) {
        if !self.program_kernel {
            return;
        }
        self.desired_pending.clear();
        self.desired_whole = true;
    }

    /// Every desired kernel route, computed from the RIB's best routes and the plan's pool rules.
    pub(super) fn desired_routes(&self) -> Vec<KernelRoute> {
        self.rib
            .loc_rib()
            .filter_map(|(prefix, _)| {
                let route = self.rib.fib_route(&prefix)?;
                glue::kernel_route(prefix, &route, &self.plan, &self.subnets)
            })
            .collect()
    }

    pub(super) fn update_fib(&mut self) {
        let changes = self.rib.take_fib_changes();
        if !self.program_kernel {
            // Nothing is written: the Loc-RIB changes have no kernel consequence.
            drop(changes);
            if std::mem::take(&mut self.converge_pending) {
                self.publish_recovery();
            }
            return;
        }
        if !self.desired_whole {
            // Every change is handed over; the kernel task drops those that leave a prefix's
            // desired route as it was.
            self.desired_pending
                .extend(changes.into_iter().map(|change| {
                    match change.route.as_ref().and_then(|r| {
                        glue::kernel_route(change.prefix, r, &self.plan, &self.subnets)
                    }) {
                        Some(route) => DesiredChange::Set(route),
                        None => DesiredChange::Remove(change.prefix),
                    }
                }));
        }
        if self.desired_whole || !self.desired_pending.is_empty() {
            let now = Instant::now();
            let due = self
                .last_fib_push
                .map_or(now, |last| last + FIB_PUSH_INTERVAL);
            if due <= now || self.converge_pending {
                self.fib_flush_at = None;
                self.last_fib_push = Some(now);
                if std::mem::take(&mut self.desired_whole) {
                    self.desired_pending.clear();
                    self.kernel.set_desired(self.desired_routes());
                } else {
                    // Only the changes: proportional to the changes, not the table.
                    self.kernel
                        .apply_changes(std::mem::take(&mut self.desired_pending));
                }
                self.status_dirty = true;
            } else {
                self.fib_flush_at = Some(due);
            }
        }
        if self.converge_pending {
            self.converge_pending = false;
            info!("graceful restart recovery over: stale kernel routes are swept");
            self.kernel.converged();
            self.publish_recovery();
        }
    }

    /// The kernel summary published each tick (without the routes: those are copied only when
    /// asked for, see [`Supervisor::answer_fib`]).
    pub(super) fn publish_fib(&self) {
        self.hub.set_fib(self.fib_status());
    }

    /// `show fib`: the summary now, with the routes the kernel task holds and the prefixes where
    /// they differ from the desired ones, asked of the kernel task (not computed here: the
    /// supervisor does not wait for the answer).
    pub(super) fn answer_fib(&self, request: FibRequest) {
        let mut fib = self.fib_status();
        let query = self.kernel.query();
        let range = RouteRange {
            within: request.query.within,
            after: request.query.after,
            limit: request.query.limit,
        };
        tokio::spawn(async move {
            if let Some(routes) = query.routes(range).await {
                fib.routes = routes.installed;
                fib.differences = routes
                    .differences
                    .into_iter()
                    .map(|d| status::FibDifference {
                        prefix: d.prefix,
                        desired: d.desired,
                        installed: d.installed,
                        failed: d.failed,
                    })
                    .collect();
            }
            let _ = request.reply.send(fib);
        });
    }

    /// The kernel summary: the kernel task's counters, no routes.
    pub(super) fn fib_status(&self) -> status::FibStatus {
        kernel_summary(&self.kernel.status())
    }
}

/// The kernel task's status without routes. All measured by the kernel task: when it last
/// matched the desired set, the error events it counted and the last one at its time.
pub(super) fn kernel_summary(k: &KernelStatus) -> status::FibStatus {
    status::FibStatus {
        routes: Vec::new(),
        differences: Vec::new(),
        resyncs: k.resyncs,
        last_sync: k.last_sync.map(Timestamp::from_system_time),
        last_error: k.last_error.as_ref().map(|(at, message)| status::FibError {
            at: Timestamp::from_system_time(*at),
            message: message.clone(),
        }),
        errors_total: k.errors_total,
        desired: k.desired as u64,
        installed: Some(status::FibCounts {
            blackhole: k.installed.blackhole as u64,
            unicast: k.installed.plain as u64,
            tunnel: k.installed.tunnel as u64,
            ecmp: k.installed.multipath as u64,
        }),
        failing: k.failed.len() as u64,
        tunnel_device: Some(k.tunnel_device.clone()),
    }
}
