//! The one gRPC server builder: every service gets the same message-size limits, the same
//! per-connection concurrency limit, the same timeout, the same bearer-token check and the same
//! RPC metrics (`rpc_metrics`), and every service is reported by the health service (SERVING
//! exactly when ready, see `health`). With TLS configured it serves over `ops::tls` connections
//! (whose certificate reloads without a restart). Adding a
//! service here is the only way to serve it, so no service can miss a limit.
//!
//! Knows nothing of how the services are built (see `app`), of Trustly or of the store.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::watch,
};
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt;
use tonic::{
    service::interceptor::InterceptedService,
    transport::{
        Server,
        server::{Connected, Router, TcpConnectInfo},
    },
};
use tonic_health::pb::health_server::HealthServer;
use tower_layer::{Identity, Stack};

use super::{
    BearerToken, Payments, account::Accounts, health, notification::Notifications, orders::Orders,
    rpc_metrics::RpcMetricsLayer,
};
use crate::{
    ops::{
        health::State,
        tls::{self, Acceptor},
    },
    pb::{
        self, account_service_server::AccountServiceServer,
        notification_service_server::NotificationServiceServer,
        order_service_server::OrderServiceServer, payment_service_server::PaymentServiceServer,
    },
    trustly,
};

/// Largest gRPC request accepted. The biggest request (a Deposit with every attribute) is a few
/// KiB; 1 MiB is generous and bounds memory per call.
pub const MAX_GRPC_REQUEST_BYTES: usize = 1024 * 1024;
/// Largest gRPC response sent: ledgers and settlement reports follow the Trustly body limit.
pub const MAX_GRPC_RESPONSE_BYTES: usize =
    trustly::client::DEFAULT_MAX_RESPONSE_BYTES + 1024 * 1024;
/// Concurrent RPCs per HTTP/2 connection. Each RPC holds at most one RSA operation at a time and
/// waits on Trustly; 256 keeps one misbehaving client from monopolising the signer queue.
pub const MAX_CONCURRENT_RPCS_PER_CONNECTION: usize = 256;
/// Time an RPC may take beyond the Trustly timeout (signing and verifying, queueing for a core).
pub const RPC_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

/// The services the gateway serves under `trustly.v1`.
pub struct Services {
    pub payments: Payments,
    pub accounts: Accounts,
    pub notifications: Notifications,
    pub orders: Orders,
}

/// Applies the request and response size limits to one generated server type.
macro_rules! limited {
    ($server:expr) => {
        $server
            .max_decoding_message_size(MAX_GRPC_REQUEST_BYTES)
            .max_encoding_message_size(MAX_GRPC_RESPONSE_BYTES)
    };
}

/// Why the gRPC server could not be built or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("grpc reflection")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("grpc server")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown` resolves, then
/// drains in-flight calls.
pub async fn serve(
    router: GrpcRouter,
    listener: tokio::net::TcpListener,
    tls: Option<Acceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    match tls {
        None => {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?;
        }
        Some(acceptor) => {
            let incoming = tls::incoming(listener, acceptor).map(|c| c.map(TlsConnection));
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?;
        }
    }
    Ok(())
}

/// A TLS connection as tonic serves it; its peer address reaches the request like a plain
/// connection's does.
struct TlsConnection(TlsStream<TcpStream>);

impl Connected for TlsConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// The router [`server`] builds: every service behind the RPC metrics layer.
pub type GrpcRouter = Router<Stack<RpcMetricsLayer, Identity>>;

/// The server with every service, its limits, its auth and its metrics; the health service
/// reports `readiness` and answers without a token (probes carry none). Each RPC may run
/// `rpc_timeout`.
pub fn server(
    services: Services,
    token: &BearerToken,
    rpc_timeout: Duration,
    readiness: watch::Receiver<State>,
) -> Result<GrpcRouter, Error> {
    let health = HealthServer::new(health::HealthService::new(readiness));
    let reflection_v1 = limited!(reflection().build_v1()?);
    let reflection_v1alpha = limited!(reflection().build_v1alpha()?);
    let router = Server::builder()
        .trace_fn(rpc_span)
        .timeout(rpc_timeout)
        .concurrency_limit_per_connection(MAX_CONCURRENT_RPCS_PER_CONNECTION)
        .layer(RpcMetricsLayer)
        .add_service(limited!(health))
        .add_service(InterceptedService::new(reflection_v1, token.clone()))
        .add_service(InterceptedService::new(reflection_v1alpha, token.clone()))
        .add_service(InterceptedService::new(
            limited!(PaymentServiceServer::new(services.payments)),
            token.clone(),
        ))
        .add_service(InterceptedService::new(
            limited!(NotificationServiceServer::new(services.notifications)),
            token.clone(),
        ))
        .add_service(InterceptedService::new(
            limited!(AccountServiceServer::new(services.accounts)),
            token.clone(),
        ))
        .add_service(InterceptedService::new(
            limited!(OrderServiceServer::new(services.orders)),
            token.clone(),
        ));
    Ok(router)
}

/// The span of one gRPC call: every log line of the call carries the RPC and, once known, the
/// order's identifiers (recorded by the handlers). Never request fields beyond identifiers.
fn rpc_span(request: &http::Request<()>) -> tracing::Span {
    tracing::info_span!(
        "rpc",
        rpc = %request.uri().path(),
        orderid = tracing::field::Empty,
        messageid = tracing::field::Empty,
        notificationid = tracing::field::Empty,
        event_id = tracing::field::Empty,
    )
}

/// gRPC reflection over everything served: `trustly.v1`, the `google.rpc` error details its
/// errors carry, `grpc.health.v1` and reflection itself, each file with its imports. Served as
/// v1 and as v1alpha (which older stock tools, such as grpcurl 1.8 and grpcio-reflection, ask
/// for); both list the same services.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}
