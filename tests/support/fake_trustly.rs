//! A scripted fake Trustly endpoint on 127.0.0.1:0 for client tests.
//!
//! It **verifies** every request's signature with the merchant public key, records what it
//! received, and answers with the next scripted [`Reply`], **signed** with the "Trustly" key.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming};
use serde_json::Value;
use tokio::net::TcpListener;

use super::test_server::TestServer;
use trustly_sidecar::trustly::{
    canonical,
    sign::{Signer, Verifier},
    wire,
};

/// What the fake answers to the next request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A signed success with this data.
    Ok(Value),
    /// A signed JSON-RPC error.
    Error { code: i64, name: &'static str },
    /// This status and raw body, unsigned.
    Raw { status: u16, body: Bytes },
    /// A signed error body, but under this HTTP status.
    ErrorWithStatus {
        status: u16,
        code: i64,
        name: &'static str,
    },
    /// A success whose signature was made over different data.
    BadSignature(Value),
    /// A correctly signed success for another request's UUID.
    WrongUuid(Value),
    /// A correctly signed success naming another method.
    WrongMethod(Value),
    /// Wait, then give the inner reply.
    Delay(Duration, Box<Reply>),
    /// Close the connection without answering.
    Reset,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub uuid: String,
    pub data: Value,
    pub body: Bytes,
    pub content_length: Option<usize>,
    pub content_type: Option<String>,
    pub signature_valid: bool,
}

struct State {
    merchant: Arc<dyn Verifier>,
    trustly: Arc<dyn Signer>,
    replies: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

/// The running fake; stops when dropped.
pub struct FakeTrustly {
    addr: SocketAddr,
    state: Arc<State>,
    /// Kept for its lifetime: the server stops when the stand-in is dropped.
    _server: TestServer,
}

impl FakeTrustly {
    pub async fn start(merchant: Arc<dyn Verifier>, trustly: Arc<dyn Signer>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            merchant,
            trustly,
            replies: Mutex::new(VecDeque::new()),
            received: Mutex::new(Vec::new()),
        });
        let server_state = Arc::clone(&state);
        let server = TestServer::spawn(listener, move |req| handle(Arc::clone(&server_state), req));
        Self {
            addr,
            state,
            _server: server,
        }
    }

    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/api/1", self.addr)).expect("url")
    }

    pub fn push(&self, reply: Reply) {
        self.state.replies.lock().expect("lock").push_back(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }
}

#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scripted reset")
    }
}

impl std::error::Error for ResetConnection {}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ResetConnection> {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &http::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_length = header(http::header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    let content_type = header(http::header::CONTENT_TYPE);
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|_| ResetConnection)?
        .to_bytes();
    let request = wire::parse_request(&body).expect("client sent a well-formed request");
    let signature_valid = request.verify(state.merchant.as_ref());
    state.received.lock().expect("lock").push(Received {
        method: request.method.clone(),
        uuid: request.uuid.clone(),
        data: request.data.clone(),
        body: body.clone(),
        content_length,
        content_type,
        signature_valid,
    });
    let reply = state
        .replies
        .lock()
        .expect("lock")
        .pop_front()
        .expect("a reply was scripted for this request");
    respond(&state, &request.method, &request.uuid, reply).await
}

async fn respond(
    state: &State,
    method: &str,
    uuid: &str,
    mut reply: Reply,
) -> Result<Response<Full<Bytes>>, ResetConnection> {
    while let Reply::Delay(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    let sign = |method: &str, uuid: &str, data: &Value| {
        state
            .trustly
            .sign(canonical::plaintext(method, uuid, data).as_bytes())
            .expect("fake trustly signs")
    };
    let (status, body) = match reply {
        Reply::Ok(data) => (
            200,
            wire::success_response(method, uuid, &sign(method, uuid, &data), data),
        ),
        Reply::Error { code, name } => (200, signed_error(&sign, method, uuid, code, name)),
        Reply::ErrorWithStatus { status, code, name } => {
            (status, signed_error(&sign, method, uuid, code, name))
        }
        Reply::BadSignature(data) => {
            let signature = sign(method, uuid, &serde_json::json!({"forged": "data"}));
            (200, wire::success_response(method, uuid, &signature, data))
        }
        Reply::WrongUuid(data) => {
            let other = "00000000-0000-4000-8000-000000000000";
            (
                200,
                wire::success_response(method, other, &sign(method, other, &data), data),
            )
        }
        Reply::WrongMethod(data) => (
            200,
            wire::success_response("Refund", uuid, &sign("Refund", uuid, &data), data),
        ),
        Reply::Raw { status, body } => return Ok(response(status, body)),
        Reply::Reset => return Err(ResetConnection),
        Reply::Delay(..) => unreachable!("delays are unwrapped above"),
    };
    Ok(response(
        status,
        Bytes::from(serde_json::to_vec(&body).expect("encode")),
    ))
}

fn signed_error(
    sign: &dyn Fn(&str, &str, &Value) -> String,
    method: &str,
    uuid: &str,
    code: i64,
    name: &str,
) -> Value {
    let data = wire::error_data(code, name);
    wire::error_response(method, uuid, &sign(method, uuid, &data), data)
}

fn response(status: u16, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(
            http::header::CONTENT_TYPE,
            "application/json; charset=UTF-8",
        )
        .body(Full::new(body))
        .expect("valid response")
}
