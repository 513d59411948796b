//! The sockets the sidecar serves (bound before `run`, so tests can bind port 0) and the ops
//! endpoints' server, which stops last.

use std::{net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::info;

use super::tls;
use crate::{
    config::Config,
    ops::{health::Readiness, http_server, tls::Acceptor},
};

/// The sockets the sidecar serves, bound before `run` (so tests can bind port 0).
pub struct Listeners {
    pub grpc: TcpListener,
    pub intake: TcpListener,
    /// `/healthz`, `/readyz`, `/metrics`; none in tests that do not need it.
    pub ops: Option<TcpListener>,
}

/// Binds the gRPC, intake and ops listeners of `config`, logging which one failed.
pub async fn bind(config: &Config) -> Option<Listeners> {
    let (Some(grpc), Some(intake), Some(ops)) = (
        bind_one("gRPC", config.grpc.listen).await,
        bind_one("notification intake", config.intake.listen).await,
        bind_one("ops endpoints", config.grpc.ops_listen).await,
    ) else {
        return None;
    };
    Some(Listeners {
        grpc,
        intake,
        ops: Some(ops),
    })
}

async fn bind_one(what: &str, addr: SocketAddr) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::error!(%addr, %error, "cannot listen for {what}");
            None
        }
    }
}

/// The ops endpoints; they stop last, so /readyz answers 503 (not "connection refused") while
/// the rest drains.
pub(super) struct OpsServer {
    pub(super) addr: Option<SocketAddr>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl OpsServer {
    pub(super) fn start(
        listener: Option<TcpListener>,
        tls: Option<Acceptor>,
        readiness: &Arc<Readiness>,
    ) -> Self {
        let (stop, tasks) = (CancellationToken::new(), TaskTracker::new());
        let addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        if let Some(listener) = listener {
            if let Some(addr) = addr {
                let tls = tls::security(tls.as_ref());
                info!(%addr, tls, "ops endpoints listening (/healthz, /readyz, /metrics)");
            }
            let readiness = Arc::clone(readiness);
            tasks.spawn(http_server::serve_with_tls(
                listener,
                tls,
                http_server::Limits::ops(),
                move |req| crate::ops::health::handle(Arc::clone(&readiness), req),
                stop.clone(),
                tasks.clone(),
            ));
        }
        Self { addr, stop, tasks }
    }

    pub(super) async fn stop(self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
