//! The HTTP listeners' bounds (intake, ops, simulator share `http_server::serve`): stalled
//! clients are closed within the header-read and body-read timeouts while genuine notifications
//! are answered; idle kept-alive connections are closed; at the connection cap a further client
//! waits until a slot frees.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use trustly_sidecar::{
    http_server::{self, HEADER_READ_TIMEOUT, Limits},
    notify::intake::BODY_READ_TIMEOUT,
    trustly::{canonical, sign::Backend, sign::Signer, wire},
};

use crate::support::{self, app, sim::SimHarness};

/// Stalled clients held against the intake at once: thousands, as a slowloris would open, below
/// the intake's cap (so genuine notifications still get a slot).
const STALLED_INTAKE_CLIENTS: usize = 2_000;

/// Stalled clients held against the ops endpoints and against the simulator, each.
const STALLED_OTHER_CLIENTS: usize = 20;

/// Descriptors left for everything else this test process runs in parallel (sidecars, Redis,
/// simulators of the other tests).
const FD_RESERVE: usize = 1_000;

/// Slack on top of a bound before a connection still open counts as not closed: the server
/// closes thousands at about the same moment on a shared, busy machine.
const MARGIN: Duration = Duration::from_secs(10);

/// How long a request that must be answered may take before the test gives up (a hang guard).
const ANSWER: Duration = Duration::from_secs(30);

/// Genuine notifications posted while the stalled clients are held.
const GENUINE: usize = 5;

/// The start of a notification POST, cut off in the middle of a header line.
const HALF_HEADER: &[u8] = b"POST /trustly/notifications HTTP/1.1\r\nHost: intake\r\nContent-Ty";

/// A notification POST whose headers are complete but whose body stops after a few bytes.
const HALF_BODY: &[u8] = b"POST /trustly/notifications HTTP/1.1\r\nHost: intake\r\n\
    Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"method\": \"cre";

/// A probe's GET, cut off in the middle of a header line.
const HALF_GET: &[u8] = b"GET /readyz HTTP/1.1\r\nHost: ops\r\nUser-Ag";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_are_closed_within_the_bounds_while_notifications_are_answered() {
    let h = SimHarness::start().await;
    let (vars, files) = app::vars_for(&h, &[]);
    let sidecar = app::spawn(vars, files).await;
    let sim = h.simulator.as_ref().expect("running").addr();
    let (intake, ops) = (sidecar.intake_addr, sidecar.ops_addr);
    let (n, other) = (stalled_intake_clients() / 2, STALLED_OTHER_CLIENTS);
    let (header, body) = (HEADER_READ_TIMEOUT, BODY_READ_TIMEOUT);
    let kinds = [
        ("intake, half a header", intake, n, HALF_HEADER, header),
        ("intake, half a body", intake, n, HALF_BODY, body),
        ("ops, half a header", ops, other, HALF_GET, header),
        ("simulator, half a header", sim, other, HALF_HEADER, header),
    ];
    let closed = Arc::new(AtomicUsize::new(0));
    let opened = Instant::now();
    let mut stalled = Vec::new();
    for (name, addr, count, prefix, bound) in kinds {
        stalled.push((
            name,
            bound,
            stall(addr, count, prefix, bound + MARGIN, &closed).await,
        ));
    }
    let held: usize = stalled.iter().map(|(_, _, watchers)| watchers.len()).sum();
    eprintln!(
        "holding {held} stalled connections (opened in {:?})",
        opened.elapsed()
    );

    answer_genuine_notifications(intake).await;
    let still_open = held - closed.load(Ordering::SeqCst);
    eprintln!(
        "{GENUINE} genuine notifications answered with a signed OK {:?} after the first stalled \
         client connected; {still_open} of {held} stalled connections still open then",
        opened.elapsed()
    );
    assert_eq!(
        still_open, held,
        "answered while every stalled client was held"
    );

    for (name, bound, watchers) in stalled {
        let mut closed_after = Vec::new();
        for watcher in watchers {
            let after = watcher.await.expect("watcher");
            closed_after.push(after.unwrap_or_else(|| panic!("{name}: open after {bound:?}")));
        }
        let first = closed_after.iter().min().expect("some");
        let last = closed_after.iter().max().expect("some");
        eprintln!(
            "{name}: {} connections closed by the server {first:.2?} to {last:.2?} after \
             opening (bound {bound:?})",
            closed_after.len()
        );
    }
}

/// Posts [`GENUINE`] signed notifications at once; each must be answered with a signed OK.
async fn answer_genuine_notifications(intake: SocketAddr) {
    let trustly = support::signer(Backend::RustCrypto, support::TRUSTLY_PRIVATE);
    let merchant = support::verifier(Backend::RustCrypto, support::MERCHANT_PUBLIC);
    let posts: Vec<_> = (0..GENUINE)
        .map(|i| {
            let body = signed_notification(&format!("93000000{i:02}"), trustly.as_ref());
            tokio::spawn(post(intake, body))
        })
        .collect();
    for post in posts {
        let (status, body) = post.await.expect("post task");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer = wire::parse_notification_response(&body).expect("a signed answer");
        assert!(
            answer.verify(merchant.as_ref()),
            "signed with the merchant key"
        );
        assert_eq!(answer.data, json!({"status": "OK"}));
    }
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_read_timeout() {
    let limits = Limits {
        header_read: Duration::from_millis(500),
        ..Limits::intake()
    };
    let addr = serve_ok(limits).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    for _ in 0..2 {
        // Two requests on one connection: it is kept alive between them.
        stream.write_all(GET).await.expect("write");
        let answer = tokio::time::timeout(ANSWER, read_response(&mut stream)).await;
        assert!(answer.expect("answered").ends_with(b"ok"));
    }
    let idle = Instant::now();
    let closed =
        tokio::time::timeout(limits.header_read + MARGIN, read_to_close(&mut stream)).await;
    assert!(closed.is_ok(), "an idle connection is closed");
    eprintln!(
        "idle kept-alive connection closed after {:?}",
        idle.elapsed()
    );
}

#[tokio::test]
async fn at_the_connection_cap_a_further_client_waits_for_a_free_slot() {
    let limits = Limits {
        max_connections: 4,
        ..Limits::ops()
    };
    let addr = serve_ok(limits).await;
    let mut holders = Vec::new();
    for _ in 0..limits.max_connections {
        let mut holder = TcpStream::connect(addr).await.expect("connect");
        holder.write_all(GET).await.expect("write");
        read_response(&mut holder).await; // served, and now holds its slot (kept alive)
        holders.push(holder);
    }
    let mut waiting = TcpStream::connect(addr)
        .await
        .expect("the kernel's backlog takes it");
    waiting.write_all(GET).await.expect("write");
    let early = tokio::time::timeout(Duration::from_millis(500), read_response(&mut waiting)).await;
    assert!(early.is_err(), "not served while every slot is held");
    drop(holders.pop());
    let answer = tokio::time::timeout(ANSWER, read_response(&mut waiting)).await;
    assert!(answer.expect("served once a slot frees").ends_with(b"ok"));
}

/// A kept-alive request for the test server below.
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/// `serve` with `limits` and a handler that answers `ok`, on a free port.
async fn serve_ok(limits: Limits) -> SocketAddr {
    async fn ok(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
    tokio::spawn(http_server::serve(listener, limits, ok, shutdown, tasks));
    addr
}

/// Reads one response to [`GET`] (its body is `ok`, the last bytes).
async fn read_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.ends_with(b"\r\n\r\nok") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => panic!("closed before the answer"),
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    response
}

/// Reads (and drops whatever arrives) until the peer closes.
async fn read_to_close(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while let Ok(1..) = stream.read(&mut buf).await {}
}

/// Opens `count` connections to `addr`, each sending `prefix` and then nothing; each watcher
/// returns how long after its opening the server closed it, or `None` if not within `bound`.
async fn stall(
    addr: SocketAddr,
    count: usize,
    prefix: &'static [u8],
    bound: Duration,
    closed: &Arc<AtomicUsize>,
) -> Vec<JoinHandle<Option<Duration>>> {
    let mut watchers = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let opened = Instant::now();
        stream.write_all(prefix).await.expect("write");
        let closed = Arc::clone(closed);
        watchers.push(tokio::spawn(async move {
            tokio::time::timeout(bound, read_to_close(&mut stream))
                .await
                .ok()?;
            closed.fetch_add(1, Ordering::SeqCst);
            Some(opened.elapsed())
        }));
    }
    watchers
}

/// [`STALLED_INTAKE_CLIENTS`], or fewer if this process may not open that many descriptors (each
/// stalled connection costs two here: the client's and the server's).
fn stalled_intake_clients() -> usize {
    let limit = std::process::Command::new("sh")
        .args(["-c", "ulimit -n"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|limit| limit.trim().parse::<usize>().ok())
        .unwrap_or(usize::MAX); // "unlimited"
    let room = limit.saturating_sub(FD_RESERVE) / 2;
    if room < STALLED_INTAKE_CLIENTS {
        eprintln!("ulimit -n is {limit}: holding {room} stalled intake clients");
    }
    room.min(STALLED_INTAKE_CLIENTS)
}

/// A `credit` notification signed with Trustly's (test) key.
fn signed_notification(notification_id: &str, trustly: &dyn Signer) -> String {
    let uuid = uuid::Uuid::new_v4().to_string();
    let data = json!({
        "orderid": "1234567890", "messageid": "m-limits", "notificationid": notification_id,
        "enduserid": "user-1", "amount": "5.00", "currency": "EUR",
        "timestamp": "2026-11-21 10:00:00.123456+00", "attributes": {}
    });
    let signature = trustly
        .sign(canonical::plaintext("credit", &uuid, &data).as_bytes())
        .expect("signs");
    wire::notification("credit", &uuid, &signature, data).to_string()
}

/// POSTs `body` to the intake; the status and the answer's body.
async fn post(intake: SocketAddr, body: String) -> (u16, Bytes) {
    let send = reqwest::Client::new()
        .post(format!("http://{intake}/trustly/notifications"))
        .body(body)
        .send();
    let response = tokio::time::timeout(ANSWER, send)
        .await
        .expect("answered in time")
        .expect("post");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body"))
}
