//! Health and readiness, and the ops HTTP port: `/healthz` (liveness: the process serves), `/readyz` (readiness: keys
//! loaded, the store answers, not shutting down) and `/metrics` (Prometheus; the consumer-group
//! backlog is read from the store at each scrape).

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming};

use super::{http_server, metrics};
use crate::{monitor, store::Store};

/// Whether the sidecar should get traffic.
pub struct Readiness {
    serving: AtomicBool,
    log: Store,
}

impl Readiness {
    pub fn new(log: Store) -> Self {
        Self {
            serving: AtomicBool::new(false),
            log,
        }
    }

    /// Serving once everything is up; false again as soon as shutdown begins.
    pub fn set_serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::SeqCst);
    }

    pub async fn is_ready(&self) -> bool {
        metrics::global()
            .set_ready(self.serving.load(Ordering::SeqCst) && self.log.ping().await.is_ok())
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
        "/readyz" if readiness.is_ready().await => text(StatusCode::OK, "ready\n".into()),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        "/metrics" => {
            readiness.is_ready().await;
            monitor::record_backlogs(&readiness.log.log).await;
            http_server::response(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                Bytes::from(metrics::global().encode()),
            )
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    })
}
