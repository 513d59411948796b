//! Health and readiness, and the ops HTTP port: `/healthz` (liveness: the process serves), `/readyz` (readiness: keys
//! loaded, the store answers, not shutting down) and `/metrics` (Prometheus; the consumer-group
//! backlog is read from the store at each scrape).
//!
//! [`Readiness`] owns the truth: a monitor pings the store every [`READINESS_PROBE_INTERVAL`] and
//! publishes the [`State`] on a watch channel, which `/readyz` and the gRPC health service read.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{http_server, metrics};
use crate::{monitor, store::Store};

/// How often the monitor pings the store. A lost store is reported within this interval plus the
/// Redis timeout (default 2 s): about 3 s, well inside one kubelet probe period (10 s by
/// default), and a PING a second per replica costs Redis nothing.
pub const READINESS_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// What readiness is made of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Keys loaded, client built, services added: set once at start.
    pub started: bool,
    /// The store answered the last ping.
    pub store_answers: bool,
    /// Shutdown began; never cleared.
    pub draining: bool,
}

impl State {
    /// Whether the sidecar should get traffic.
    pub fn ready(&self) -> bool {
        self.started && self.store_answers && !self.draining
    }
}

/// Whether the sidecar should get traffic, watched by every probe.
pub struct Readiness {
    state: watch::Sender<State>,
    log: Store,
}

impl Readiness {
    /// Not ready until [`Readiness::set_started`] and the store's first answer.
    pub fn new(log: Store) -> Self {
        Self {
            state: watch::Sender::new(State::default()),
            log,
        }
    }

    /// Every change of the state, starting with the current one.
    pub fn watch(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }

    /// Everything is up: ready whenever the store answers.
    pub fn set_started(&self) {
        self.update(|state| state.started = true, None);
    }

    /// Not ready from the first moment of shutdown, whatever the store does.
    pub fn drain(&self) {
        self.update(|state| state.draining = true, None);
    }

    /// Pings the store now and records the answer: whether the sidecar is ready.
    pub async fn probe(&self) -> bool {
        let current = *self.state.borrow();
        if current.draining {
            return false;
        }
        match self.log.ping().await {
            Ok(()) => self.update(|state| state.store_answers = true, None),
            Err(error) => self.update(|state| state.store_answers = false, Some(&error)),
        }
        self.state.borrow().ready()
    }

    /// Probes every [`READINESS_PROBE_INTERVAL`] until `stop`.
    pub async fn monitor(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = self.probe() => {}
                () = stop.cancelled() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(READINESS_PROBE_INTERVAL) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Applies `change`; watchers hear of it only when something changed, and a change of
    /// readiness is logged once (a normal start by the "listening" lines, the drain by whoever
    /// drains).
    fn update(&self, change: impl FnOnce(&mut State), error: Option<&crate::store::Error>) {
        self.state.send_if_modified(|state| {
            let before = *state;
            change(state);
            match (before.ready(), state.ready()) {
                (false, true) if before.started => {
                    info!("ready: the store answers; gRPC health SERVING, /readyz 200");
                }
                (true, false) if !state.draining => warn!(
                    error = error.map(tracing::field::display),
                    "not ready: the store does not answer; gRPC health NOT_SERVING, /readyz 503"
                ),
                _ => {}
            }
            before != *state
        });
        metrics::global().set_ready(self.state.borrow().ready());
    }
}

pub async fn handle(
    readiness: Arc<Readiness>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let text = |status, body: String| {
        http_server::response(status, "text/plain; charset=utf-8", Bytes::from(body))
    };
    if req.method() != Method::GET {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into()));
    }
    Ok(match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        // Pinged live, not read from the monitor: /readyz is never staler than its own request.
        "/readyz" if readiness.probe().await => text(StatusCode::OK, "ready\n".into()),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        "/metrics" => {
            // The `ready` gauge as of this scrape, not of the last probe.
            readiness.probe().await;
            monitor::record_backlogs(&readiness.log).await;
            http_server::response(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                Bytes::from(metrics::global().encode()),
            )
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    })
}
