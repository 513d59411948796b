//! The HTTP/1 accept loop shared by the notification intake, the ops endpoints and the
//! simulator: one task per connection, all owned by a `TaskTracker`, graceful shutdown on a
//! `CancellationToken`, and bounded: a header-read (and keep-alive idle) timeout and a
//! connection cap per listener. Optionally over TLS (`tls::Acceptor`): the handshake runs in the
//! connection's task, within its own timeout.

use std::{future::Future, io, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::debug;

use super::tls::Acceptor;

/// How long a client may take to send a request's headers, counted from the moment hyper starts
/// waiting for them: at accept, and again after each response on a kept-alive connection. So it
/// is also the keep-alive idle timeout (hyper 1.x runs one timer for both). Trustly, Prometheus
/// and the kubelet send their headers in one write as soon as they connect; 10 s covers a
/// congested link many times over and closes silent, half-sent and idle connections.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Intake connections served at once. Trustly posts from a few servers with tens of
/// notifications in flight at most; 4096 leaves room for bursts and for thousands of stalled
/// clients (each costs one file descriptor and tens of KiB until [`HEADER_READ_TIMEOUT`] closes
/// it) while keeping descriptors well under a container's limit.
pub const INTAKE_MAX_CONNECTIONS: usize = 4096;

/// Ops connections served at once: Prometheus scrapes and kubelet probes use a handful.
pub const OPS_MAX_CONNECTIONS: usize = 256;

/// Simulator connections served at once: its clients are sidecars and test suites, whose
/// busiest users (the benchmarks) keep 64 requests in flight.
pub const SIMULATOR_MAX_CONNECTIONS: usize = 1024;

/// Pause after an accept error that is not one connection's failure (out of file descriptors,
/// mostly): retrying at once would spin a core until a descriptor frees; 100 ms resumes soon
/// after one does.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read: Duration,
    /// Connections served at once (at least 1). At the cap the loop stops accepting until one
    /// closes: further clients wait in the kernel's backlog and are served as soon as a slot
    /// frees (within `header_read` if stalled clients hold them), rather than being refused and
    /// left to their retry schedules; descriptors stay bounded either way.
    pub max_connections: usize,
}

impl Limits {
    /// Notification intake.
    pub const fn intake() -> Self {
        Self::with_cap(INTAKE_MAX_CONNECTIONS)
    }

    /// `/healthz`, `/readyz`, `/metrics`.
    pub const fn ops() -> Self {
        Self::with_cap(OPS_MAX_CONNECTIONS)
    }

    /// The simulator's API and admin endpoints.
    pub const fn simulator() -> Self {
        Self::with_cap(SIMULATOR_MAX_CONNECTIONS)
    }

    const fn with_cap(max_connections: usize) -> Self {
        Self {
            header_read: HEADER_READ_TIMEOUT,
            max_connections,
        }
    }
}

/// Serves `handler` on `listener` within `limits` until `shutdown`; connections in flight finish
/// gracefully.
pub async fn serve<H, F, E>(
    listener: TcpListener,
    limits: Limits,
    handler: H,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    serve_with_tls(listener, None, limits, handler, shutdown, tasks).await;
}

/// [`serve`], over TLS when `tls` is given (a connection counts against the cap from accept,
/// through its handshake).
pub async fn serve_with_tls<H, F, E>(
    listener: TcpListener,
    tls: Option<Acceptor>,
    limits: Limits,
    handler: H,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_closed) => return,
            },
            () = shutdown.cancelled() => return,
        };
        let Some((stream, peer)) = accept(&listener, &shutdown).await else {
            return;
        };
        let (handler, shutdown, tls) = (handler.clone(), shutdown.clone(), tls.clone());
        tasks.spawn(async move {
            match tls {
                None => connection(stream, peer, limits, handler, shutdown).await,
                Some(tls) => {
                    let handshake = tokio::select! {
                        tls = tls.handshake(stream, peer) => tls,
                        () = shutdown.cancelled() => None,
                    };
                    if let Some(stream) = handshake {
                        connection(stream, peer, limits, handler, shutdown).await;
                    }
                }
            }
            drop(slot);
        });
    }
}

/// The next connection, or `None` at shutdown.
async fn accept(
    listener: &TcpListener,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return None,
        };
        match accepted {
            Ok(accepted) => return Some(accepted),
            Err(error) if one_connection_failed(&error) => debug!(%error, "accept failed"),
            Err(error) => {
                debug!(%error, "accept failed; backing off");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => {}
                    () = shutdown.cancelled() => return None,
                }
            }
        }
    }
}

/// Errors that concern only the connection being accepted; the next accept may succeed at once.
pub(super) fn one_connection_failed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// Serves one connection until it ends, or until `shutdown` (then gracefully).
async fn connection<S, H, F, E>(
    stream: S,
    peer: SocketAddr,
    limits: Limits,
    handler: H,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Send + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let connection = builder.serve_connection(TokioIo::new(stream), service_fn(handler));
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => if let Err(error) = result { debug!(%peer, %error, "connection ended") },
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// A response with a content type and body.
pub fn response(
    status: hyper::StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}
