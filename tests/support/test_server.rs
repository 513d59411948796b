//! A minimal HTTP/1 server for the tests' stand-ins (a fake Trustly, a merchant's
//! NotificationURL): accepts on a listener, serves every connection with `handler`, and stops when
//! dropped.

use std::future::Future;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinHandle};

/// A running stand-in server; aborted when dropped.
pub struct TestServer(JoinHandle<()>);

impl TestServer {
    /// A handler's error resets the connection (a fake Trustly uses that to drop an exchange).
    pub fn spawn<H, F, E>(listener: TcpListener, handler: H) -> Self
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<Response<Full<Bytes>>, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        Self(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(handler))
                        .await;
                });
            }
        }))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.0.abort();
    }
}
