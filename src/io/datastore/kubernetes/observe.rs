//! What the API server answered, per request path: a tower layer on the kube client records,
//! for each path (`/apis/crd.projectcalico.org/v1/bgppeers`, `/api/v1/nodes`, ...), the last
//! request answered with a success status. kube-runtime's watcher says nothing when a watch it
//! restarted after a failure is open again; this does, so a source's failure is shown as
//! current only while no later request of its path succeeded.
//!
//! Order comes from one counter shared with the failures ([`Observed::next`]), not from the
//! clock.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

/// The last success per request path, ordered by a shared counter.
#[derive(Debug, Default)]
pub struct Observed {
    counter: AtomicU64,
    ok: Mutex<HashMap<String, u64>>,
}

impl Observed {
    /// The next number of the shared order (a failure takes one when it happens).
    pub fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Records a success of `path` now.
    fn succeeded(&self, path: &str) {
        let at = self.next();
        if let Ok(mut ok) = self.ok.lock() {
            ok.insert(path.to_owned(), at);
        }
    }

    /// The order number of the last success of `path`, if any.
    pub fn last_success(&self, path: &str) -> Option<u64> {
        self.ok.lock().ok()?.get(path).copied()
    }
}

/// The layer: wraps the client's service with [`Observe`].
#[derive(Debug, Clone)]
pub struct ObserveLayer(pub Arc<Observed>);

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            observed: Arc::clone(&self.0),
        }
    }
}

/// A service that records successful answers by path.
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    observed: Arc<Observed>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    R: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let observed = Arc::clone(&self.observed);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            if let Ok(response) = &result
                && response.status().is_success()
            {
                observed.succeeded(&path);
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_orders_after_an_earlier_failure() {
        let o = Observed::default();
        let failure = o.next();
        assert_eq!(o.last_success("/api/v1/nodes"), None);
        o.succeeded("/api/v1/nodes");
        assert!(o.last_success("/api/v1/nodes").unwrap() > failure);
        assert!(o.next() > o.last_success("/api/v1/nodes").unwrap());
    }
}
