//! `trustly_sidecar_rpc_seconds` for every call of every `trustly.v1` service, recorded in one
//! place: a tower layer around all the services (`server` adds it), so no handler records its own.
//!
//! Labels stay a fixed set: the service and method come from the request path, checked against
//! the `trustly.v1` descriptors (anything else is `unknown`); the code is the canonical name of
//! the response's `grpc-status`, read from the headers (a trailers-only answer: every error) or
//! else from the body's trailers, so a server stream is observed when it ends. A call dropped
//! before it has a status (the client went away, or the server's timeout cut it) counts as
//! CANCELLED, which is what its client sees. Health probes and reflection are not API traffic
//! and are not recorded.

use std::{
    future::Future,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
    time::Instant,
};

use hyper::body::{Body, Frame, SizeHint};
use prost::Message as _;
use tonic::Code;

use crate::{metrics, pb};

/// The service and method label of a path that is not a `trustly.v1` method.
const UNKNOWN: &str = "unknown";
/// The package whose methods get labels of their own.
const PACKAGE: &str = "trustly.v1";
/// Path prefixes of the services that are not recorded: probes and tooling, not the API.
const UNRECORDED: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Adds the RPC metrics to every service of the server.
#[derive(Clone, Copy, Debug, Default)]
pub struct RpcMetricsLayer;

impl<S> tower_layer::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics { inner }
    }
}

/// A service whose calls are observed.
#[derive(Clone, Debug)]
pub struct RpcMetrics<S> {
    inner: S,
}

type ResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, ResBody> tower_service::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<Observed<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let mut call = Call::start(request.uri().path());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(error) => {
                    // The server turns a service error into UNKNOWN.
                    finish(&mut call, Code::Unknown);
                    return Err(error);
                }
            };
            if let Some(status) = response.headers().get("grpc-status") {
                finish(&mut call, Code::from_bytes(status.as_bytes()));
            }
            Ok(response.map(|inner| Observed { inner, call }))
        })
    }
}

/// A response body that records its call's code from the trailers.
#[derive(Debug)]
pub struct Observed<B> {
    inner: B,
    /// `None` once recorded (or never to be).
    call: Option<Call>,
}

impl<B> Body for Observed<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(status) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                    finish(&mut this.call, Code::from_bytes(status.as_bytes()));
                }
            }
            // Ended or failed without a status: nothing says what the client saw.
            Poll::Ready(Some(Err(_)) | None) => finish(&mut this.call, Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// One call being observed; dropped unrecorded, it counts as CANCELLED.
#[derive(Debug)]
struct Call {
    service: &'static str,
    method: &'static str,
    started: Instant,
    recorded: bool,
}

impl Call {
    /// `None` for the services that are not recorded.
    fn start(path: &str) -> Option<Self> {
        if UNRECORDED.iter().any(|prefix| path.starts_with(prefix)) {
            return None;
        }
        let (service, method) = known_method(path).unwrap_or((UNKNOWN, UNKNOWN));
        Some(Self {
            service,
            method,
            started: Instant::now(),
            recorded: false,
        })
    }

    /// Records the call with `code`, the first time only.
    fn record(&mut self, code: Code) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        metrics::global().rpc(
            self.service,
            self.method,
            code_name(code),
            self.started.elapsed(),
        );
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.record(Code::Cancelled);
    }
}

/// Records the call, if there is one still unrecorded, with `code`.
fn finish(call: &mut Option<Call>, code: Code) {
    if let Some(mut call) = call.take() {
        call.record(code);
    }
}

/// The (service, method) labels of a `trustly.v1` method's path.
fn known_method(path: &str) -> Option<(&'static str, &'static str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    methods()
        .iter()
        .find(|(s, m)| s == service && m == method)
        .map(|(s, m)| (s.as_str(), m.as_str()))
}

/// Every method of every `trustly.v1` service, from the compiled descriptors, so a new RPC is
/// labelled without anyone listing it. Empty (every call `unknown`) if they cannot be decoded.
fn methods() -> &'static [(String, String)] {
    static METHODS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let Ok(set) = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET) else {
            return Vec::new();
        };
        let mut methods = Vec::new();
        for file in set.file.iter().filter(|f| f.package() == PACKAGE) {
            for service in &file.service {
                let name = format!("{PACKAGE}.{}", service.name());
                for method in &service.method {
                    methods.push((name.clone(), method.name().to_owned()));
                }
            }
        }
        methods
    })
}

/// The canonical name of a status code (`INVALID_ARGUMENT`), as gRPC's own tools print it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trustly_v1_method_has_labels_and_anything_else_is_unknown() {
        for (path, labels) in [
            (
                "/trustly.v1.PaymentService/Deposit",
                ("trustly.v1.PaymentService", "Deposit"),
            ),
            (
                "/trustly.v1.NotificationService/AcknowledgeNotification",
                ("trustly.v1.NotificationService", "AcknowledgeNotification"),
            ),
            (
                "/trustly.v1.AccountService/ListAccounts",
                ("trustly.v1.AccountService", "ListAccounts"),
            ),
        ] {
            assert_eq!(known_method(path), Some(labels), "{path}");
        }
        for path in [
            "/trustly.v1.PaymentService/Nope",
            "/trustly.v1.Other/Deposit",
            "/x",
            "",
        ] {
            assert_eq!(known_method(path), None, "{path}");
        }
        assert!(Call::start("/grpc.health.v1.Health/Check").is_none());
        let unknown = Call::start("/evil.Service/AAAA").expect("recorded");
        assert_eq!((unknown.service, unknown.method), (UNKNOWN, UNKNOWN));
        let mut unknown = Some(unknown);
        finish(&mut unknown, Code::Unimplemented);
    }

    #[test]
    fn codes_have_their_canonical_names() {
        assert_eq!(code_name(Code::from_bytes(b"0")), "OK");
        assert_eq!(code_name(Code::from_bytes(b"3")), "INVALID_ARGUMENT");
        assert_eq!(code_name(Code::from_bytes(b"14")), "UNAVAILABLE");
        assert_eq!(code_name(Code::from_bytes(b"99")), "UNKNOWN");
        assert_eq!(code_name(Code::from_bytes(b"x")), "UNKNOWN");
    }
}
