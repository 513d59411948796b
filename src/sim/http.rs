//! The simulator's HTTP server: routing, body limits, fault injection around `/api/1`, the end
//! user's checkout (`/_/`), and the console and admin API (`/admin`).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use super::{Sim, admin, api, checkout};

/// Largest request body accepted. Trustly requests are a few KiB; 1 MiB leaves room for any
/// real request while bounding memory per connection.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A fault to inject into the next matching API exchange(s).
// No `deny_unknown_fields`: serde does not support it together with `flatten`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Only requests for this method (any when absent).
    pub method: Option<String>,
    /// How many exchanges to affect (default 1).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Wait before processing.
    Latency { latency_ms: u64 },
    /// Process and commit, then close the connection without answering.
    DropAfterCommit,
    /// Answer this HTTP status with a plain-text body, without processing.
    Status { status: u16 },
    /// Process and commit, then answer 200 with a body that is not JSON.
    Garbage,
    /// Process and commit, then answer with a corrupted signature.
    BadSignature,
}

impl FaultKind {
    fn name(&self) -> String {
        match self {
            FaultKind::Latency { latency_ms } => format!("latency {latency_ms}ms"),
            FaultKind::DropAfterCommit => "drop_after_commit".into(),
            FaultKind::Status { status } => format!("status {status}"),
            FaultKind::Garbage => "garbage".into(),
            FaultKind::BadSignature => "bad_signature".into(),
        }
    }
}

pub async fn serve(sim: Arc<Sim>, listener: TcpListener) {
    let (shutdown, tasks) = (sim.shutdown.clone(), sim.tasks.clone());
    let handler = move |req| route(Arc::clone(&sim), req);
    let limits = crate::http_server::Limits::simulator();
    crate::http_server::serve(listener, limits, handler, shutdown, tasks).await;
}

/// A scripted connection drop: returning it makes hyper close the connection unanswered.
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

async fn route(sim: Arc<Sim>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or unreadable",
            ));
        }
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::POST, ["api", "1"]) => {
            // Run to completion even if the client hangs up (a timed-out caller): Trustly does not
            // roll an order back because the merchant stopped listening.
            let task_sim = Arc::clone(&sim);
            sim.tasks
                .spawn(async move { api_exchange(&task_sim, &body).await })
                .await
                .unwrap_or(Err(Dropped))
        }
        (&Method::GET, ["_", "orderclient.php"]) => {
            let (status, page) = checkout::page(&sim, query.as_deref());
            Ok(page_response(status, page))
        }
        (&Method::GET, ["_", "checkout", order_id]) => {
            let (status, value) = checkout::view(&sim, order_id);
            Ok(json(status, &value))
        }
        (&Method::POST, ["_", "checkout", order_id, action]) => {
            let (status, value) = checkout::act(&sim, order_id, action, &body).await;
            Ok(json(status, &value))
        }
        (&Method::GET, ["admin"]) => Ok(page_response(StatusCode::OK, admin::CONSOLE_PAGE)),
        (_, ["admin", rest @ ..]) => {
            let (status, value) = admin::handle(&sim, &method, rest, &body).await;
            Ok(json(status, &value))
        }
        _ => Ok(text(StatusCode::NOT_FOUND, "not found")),
    }
}

/// One JSON-RPC exchange, with any fault that matches it.
async fn api_exchange(sim: &Arc<Sim>, body: &Bytes) -> Result<Response<Full<Bytes>>, Dropped> {
    let method = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("method").and_then(|m| m.as_str()).map(str::to_owned));
    let fault = take_fault(sim, method.as_deref());
    let fault_name = fault.as_ref().map(FaultKind::name);
    match &fault {
        Some(FaultKind::Latency { latency_ms }) => {
            tokio::time::sleep(Duration::from_millis(*latency_ms)).await
        }
        Some(FaultKind::Status { status }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Ok(text(status, "fault injected: service unavailable"));
        }
        _ => {}
    }
    let answer = match api::handle(sim, body, fault_name).await {
        api::Answer::Body(answer) => answer,
        api::Answer::Busy => {
            return Ok(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "this UUID is being processed",
            ));
        }
    };
    match fault {
        Some(FaultKind::DropAfterCommit) => Err(Dropped),
        Some(FaultKind::Garbage) => Ok(html(
            StatusCode::OK,
            "<html><body>502 Bad Gateway</body></html>",
        )),
        Some(FaultKind::BadSignature) => Ok(json_bytes(StatusCode::OK, corrupt_signature(&answer))),
        _ => Ok(json_bytes(StatusCode::OK, answer)),
    }
}

/// Consumes one use of the first fault matching `method`.
fn take_fault(sim: &Sim, method: Option<&str>) -> Option<FaultKind> {
    let mut faults = sim.faults.lock();
    let index = faults
        .iter()
        .position(|f| f.method.is_none() || f.method.as_deref() == method)?;
    let fault = &mut faults[index];
    fault.count = fault.count.saturating_sub(1);
    let kind = fault.kind.clone();
    if fault.count == 0 {
        faults.remove(index);
    }
    Some(kind)
}

/// Replaces the first character of the answer's signature, so it no longer verifies.
fn corrupt_signature(answer: &Bytes) -> Bytes {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(answer) else {
        return answer.clone();
    };
    let slot = if value.get("result").is_some() {
        value.pointer_mut("/result/signature")
    } else {
        value.pointer_mut("/error/error/signature")
    };
    if let Some(serde_json::Value::String(signature)) = slot {
        let replacement = if signature.starts_with('A') { "B" } else { "A" };
        signature.replace_range(..1.min(signature.len()), replacement);
    }
    api::encode(&value)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    response(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

fn html(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    response(
        status,
        "text/html; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

/// What the simulator's pages may load: their own inline CSS and JS and calls to this server,
/// nothing from elsewhere.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// A checkout or console page, with the policy that keeps it self-contained.
fn page_response(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = html(status, body);
    response.headers_mut().insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        hyper::header::HeaderValue::from_static(PAGE_POLICY),
    );
    response
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    json_bytes(status, api::encode(value))
}

fn json_bytes(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    response(status, "application/json; charset=utf-8", body)
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    crate::http_server::response(status, content_type, body)
}
