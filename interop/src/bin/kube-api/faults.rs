//! Injected faults and request counters, set through the control socket.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Answer `code` to the next `count` requests that match.
#[derive(Debug, Clone)]
pub struct FailRule {
    /// HTTP status to answer.
    pub code: u16,
    /// How many more requests.
    pub count: u32,
    /// Only requests of this verb.
    pub verb: Option<String>,
    /// Only requests for this resource (plural).
    pub resource: Option<String>,
    /// Only list requests that carry a continue token (the middle of a paged list).
    pub continue_only: bool,
}

/// Fault state and counters.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<FailRule>>,
    max_page: AtomicUsize,
    watch_kill: Mutex<CancellationToken>,
    counts: Mutex<BTreeMap<String, u64>>,
    open_watches: Arc<AtomicUsize>,
}

/// Counts an open watch while alive.
pub struct OpenWatch(Arc<AtomicUsize>);

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Faults {
    /// Adds a rule.
    pub fn add(&self, rule: FailRule) {
        self.rules.lock().unwrap().push(rule);
    }

    /// Removes every rule and the page cap.
    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
        self.max_page.store(0, Ordering::SeqCst);
    }

    /// The code to answer instead of serving the request, if a rule matches (and is used up).
    pub fn injected(&self, verb: &str, resource: &str, has_continue: bool) -> Option<u16> {
        let mut rules = self.rules.lock().unwrap();
        let i = rules.iter().position(|r| {
            r.count > 0
                && r.verb.as_deref().is_none_or(|v| v == verb)
                && r.resource.as_deref().is_none_or(|x| x == resource)
                && (!r.continue_only || has_continue)
        })?;
        rules[i].count -= 1;
        let code = rules[i].code;
        if rules[i].count == 0 {
            rules.remove(i);
        }
        Some(code)
    }

    /// Caps list pages at `n` items (0: no cap).
    pub fn set_max_page(&self, n: usize) {
        self.max_page.store(n, Ordering::SeqCst);
    }

    /// The page cap.
    pub fn max_page(&self) -> usize {
        self.max_page.load(Ordering::SeqCst)
    }

    /// The token that ends every open watch when cancelled.
    pub fn watch_token(&self) -> CancellationToken {
        self.watch_kill.lock().unwrap().clone()
    }

    /// Ends every open watch (connections are cut mid-stream).
    pub fn drop_watches(&self) {
        let mut kill = self.watch_kill.lock().unwrap();
        kill.cancel();
        *kill = CancellationToken::new();
    }

    /// Counts one request.
    pub fn count(&self, verb: &str, resource: &str) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry(format!("{verb} {resource}"))
            .or_default() += 1;
    }

    /// Marks a watch open until the guard drops.
    pub fn watch_opened(&self) -> OpenWatch {
        self.open_watches.fetch_add(1, Ordering::SeqCst);
        OpenWatch(Arc::clone(&self.open_watches))
    }

    /// Counters as JSON: requests by "verb resource", open watches.
    pub fn stats(&self, rv: u64) -> Value {
        json!({
            "requests": *self.counts.lock().unwrap(),
            "openWatches": self.open_watches.load(Ordering::SeqCst),
            "resourceVersion": rv,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_and_run_out() {
        let f = Faults::default();
        f.add(FailRule {
            code: 500,
            count: 1,
            verb: Some("list".into()),
            resource: None,
            continue_only: true,
        });
        assert_eq!(f.injected("list", "nodes", false), None);
        assert_eq!(f.injected("watch", "nodes", true), None);
        assert_eq!(f.injected("list", "nodes", true), Some(500));
        assert_eq!(f.injected("list", "nodes", true), None);
    }
}
