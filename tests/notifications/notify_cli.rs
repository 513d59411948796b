#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

//! `trustly-notify` end to end: the built binary against a fake notification intake that verifies
//! like the sidecar (with the "Trustly" fixture key) and answers signed with the merchant key.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Output,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::test_server::TestServer;
use trustly_sidecar::trustly::{
    canonical, keys,
    sign::{Backend, Signer, Verifier},
    wire,
};

/// `tests/fixtures/keys/<name>` (TEST-ONLY, publicly known keys).
fn key_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

fn signer(name: &str) -> Arc<dyn Signer> {
    let key = keys::load_private_key(&key_path(name)).expect("fixture private key loads");
    Backend::RustCrypto.signer(key).expect("signer")
}

fn verifier(name: &str) -> Arc<dyn Verifier> {
    let key = keys::load_public_key(&key_path(name)).expect("fixture public key loads");
    Backend::RustCrypto.verifier(key).expect("verifier")
}

/// How the fake intake answers a notification whose signature verifies.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// `{"status":"OK"}` signed with the merchant key, as the sidecar does.
    SignedOk,
    /// The same, but signed with another key than the merchant's.
    WrongKey,
    /// Correctly signed, but for another uuid.
    WrongUuid,
    /// HTTP 503 without a body, as the sidecar does when its log is down.
    Unavailable,
}

/// One notification as the fake received it.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    uuid: String,
    data: Value,
    signature_valid: bool,
    content_type: Option<String>,
}

struct State {
    trustly: Arc<dyn Verifier>,
    merchant: Arc<dyn Signer>,
    other: Arc<dyn Signer>,
    answer: Answer,
    received: Mutex<Vec<Received>>,
}

/// The running fake intake; stops when dropped.
struct FakeIntake {
    addr: SocketAddr,
    state: Arc<State>,
    /// Kept for its lifetime: the server stops when the stand-in is dropped.
    _server: TestServer,
}

impl FakeIntake {
    async fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            trustly: verifier("python-client-test-public-1.pem"),
            merchant: signer("merchant-test-private.pem"),
            other: signer("python-client-test-private-1.pem"),
            answer,
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

    fn url(&self) -> String {
        format!("http://{}/trustly/notifications", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// The one notification received.
    fn only(&self) -> Received {
        let received = self.received();
        assert_eq!(received.len(), 1, "exactly one notification: {received:?}");
        received.into_iter().next().expect("one")
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req.into_body().collect().await.expect("body").to_bytes();
    let Ok(notification) = wire::parse_notification(&body) else {
        return Ok(response(
            400,
            "text/plain",
            Bytes::from_static(b"malformed"),
        ));
    };
    let signature_valid = notification.verify(state.trustly.as_ref());
    state.received.lock().expect("lock").push(Received {
        method: notification.method.clone(),
        uuid: notification.uuid.clone(),
        data: notification.data.clone(),
        signature_valid,
        content_type,
    });
    if !signature_valid {
        return Ok(response(
            403,
            "text/plain",
            Bytes::from_static(b"signature does not verify"),
        ));
    }
    let data = json!({"status": "OK"});
    let (method, mut uuid) = (notification.method.as_str(), notification.uuid.as_str());
    let signer = match state.answer {
        Answer::SignedOk => &state.merchant,
        Answer::WrongKey => &state.other,
        Answer::WrongUuid => {
            uuid = "00000000-0000-4000-8000-000000000000";
            &state.merchant
        }
        Answer::Unavailable => {
            return Ok(response(503, "text/plain", Bytes::new()));
        }
    };
    let signature = signer
        .sign(canonical::plaintext(method, uuid, &data).as_bytes())
        .expect("sign");
    let answer = wire::notification_response(method, uuid, &signature, data);
    Ok(response(
        200,
        "application/json; charset=utf-8",
        Bytes::from(serde_json::to_vec(&answer).expect("encode")),
    ))
}

fn response(status: u16, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(body))
        .expect("valid response")
}

/// Runs the built binary with `args` and `env`, with no inherited `TRUSTLY_NOTIFY_*` variables.
async fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_trustly-notify"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("TRUSTLY_NOTIFY_")) {
        command.env_remove(name);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run trustly-notify");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    let code = status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal\nstdout:\n{stdout}\nstderr:\n{stderr}"));
    (code, stdout, stderr)
}

async fn run(args: &[&str]) -> (i32, String, String) {
    run_with_env(args, &[]).await
}

fn is_digits(value: &Value, len: usize) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test]
async fn credit_is_signed_posted_and_the_signed_answer_checked() {
    let fake = FakeIntake::start(Answer::SignedOk).await;
    let url = fake.url();
    let (code, stdout, stderr) = run(&[
        "--url",
        &url,
        "--method",
        "credit",
        "--order-id",
        "1234567890",
        "--message-id",
        "msg-1",
        "--end-user-id",
        "user-1",
    ])
    .await;
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("HTTP 200 OK"), "{stdout}");
    assert!(
        stdout.contains("answer: status=OK signature=valid"),
        "{stdout}"
    );
    assert!(stderr.contains("PUBLICLY KNOWN"), "{stderr}");

    let got = fake.only();
    assert!(got.signature_valid, "signed with the fixture Trustly key");
    assert_eq!(got.method, "credit");
    assert!(uuid::Uuid::parse_str(&got.uuid).is_ok(), "{}", got.uuid);
    assert!(
        got.content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("application/json")),
        "{:?}",
        got.content_type
    );
    let data = &got.data;
    assert_eq!(data["orderid"], json!("1234567890"));
    assert_eq!(data["messageid"], json!("msg-1"));
    assert_eq!(data["enduserid"], json!("user-1"));
    // Strings, as Trustly sends them.
    assert_eq!(data["amount"], json!("100.00"));
    assert_eq!(data["currency"], json!("EUR"));
    assert!(is_digits(&data["notificationid"], 10), "{data}");
    assert_eq!(data["attributes"], json!({}));
    // "2015-03-12 15:14:18.616710+00"
    let timestamp = data["timestamp"].as_str().expect("timestamp string");
    assert_eq!(timestamp.len(), 29, "{timestamp}");
    assert_eq!(&timestamp[10..11], " ");
    assert_eq!(&timestamp[19..20], ".");
    assert!(timestamp.ends_with("+00"), "{timestamp}");
    assert_eq!(
        data.as_object().expect("object").len(),
        8,
        "no other fields: {data}"
    );
}

#[tokio::test]
async fn each_method_gets_its_own_fields() {
    let fake = FakeIntake::start(Answer::SignedOk).await;
    let url = fake.url();
    for method in ["cancel", "account", "kyc", "debit", "payoutfailed"] {
        let (code, stdout, stderr) = run(&[
            "--url",
            &url,
            "--method",
            method,
            "--amount",
            "25.50",
            "--currency",
            "SEK",
        ])
        .await;
        assert_eq!(code, 0, "{method}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        assert!(stdout.contains("status=OK"), "{stdout}");
    }
    let received = fake.received();
    assert_eq!(received.len(), 5);
    let keys_of = |i: usize| {
        let mut keys: Vec<&str> = received[i]
            .data
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    };
    assert!(received.iter().all(|r| r.signature_valid));

    assert_eq!(received[0].method, "cancel");
    assert_eq!(
        keys_of(0),
        [
            "attributes",
            "enduserid",
            "messageid",
            "notificationid",
            "orderid",
            "timestamp"
        ]
    );

    assert_eq!(received[1].method, "account");
    assert_eq!(
        keys_of(1),
        [
            "accountid",
            "attributes",
            "messageid",
            "notificationid",
            "orderid",
            "verified"
        ]
    );
    assert_eq!(received[1].data["verified"], json!("1"));
    for attribute in ["clearinghouse", "bank", "descriptor", "lastdigits"] {
        assert!(
            received[1].data["attributes"][attribute].is_string(),
            "{attribute}"
        );
    }

    assert_eq!(received[2].method, "kyc");
    assert_eq!(
        keys_of(2),
        [
            "attributes",
            "kycentityid",
            "messageid",
            "notificationid",
            "orderid"
        ]
    );
    assert!(received[2].data["attributes"]["firstname"].is_string());

    for i in [3, 4] {
        assert_eq!(received[i].data["amount"], json!("25.50"));
        assert_eq!(received[i].data["currency"], json!("SEK"));
    }
    assert_eq!(received[4].method, "payoutfailed");
}

#[tokio::test]
async fn data_json_uuid_and_notification_id_are_sent_as_given_and_env_is_read() {
    let fake = FakeIntake::start(Answer::SignedOk).await;
    let url = fake.url();
    let uuid = "f1b77aac-516d-4b89-a125-c005f4c020f0";
    // The URL comes from the environment; numbers keep their lexeme.
    let (code, stdout, stderr) = run_with_env(
        &[
            "--method",
            "pending",
            "--uuid",
            uuid,
            "--data-json",
            r#"{"notificationid":"42","orderid":"7","amount":20.00,"attributes":{"x":"y"}}"#,
        ],
        &[("TRUSTLY_NOTIFY_URL", &url)],
    )
    .await;
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let got = fake.only();
    assert!(got.signature_valid);
    assert_eq!(got.method, "pending");
    assert_eq!(got.uuid, uuid);
    assert_eq!(
        canonical::serialize(&got.data),
        "amount20.00attributesxynotificationid42orderid7"
    );

    let (code, stdout, stderr) = run(&[
        "--url",
        &url,
        "--notification-id",
        "5555555555",
        "--uuid",
        uuid,
    ])
    .await;
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let received = fake.received();
    assert_eq!(received[1].data["notificationid"], json!("5555555555"));
    assert_eq!(received[1].uuid, uuid);
}

#[tokio::test]
async fn an_answer_signed_with_another_key_fails() {
    let fake = FakeIntake::start(Answer::WrongKey).await;
    let (code, stdout, stderr) = run(&["--url", &fake.url()]).await;
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("signature=INVALID"), "{stdout}");
    assert!(stderr.contains("does not verify"), "{stderr}");
    assert!(
        fake.only().signature_valid,
        "the notification itself was fine"
    );
}

#[tokio::test]
async fn an_answer_for_another_uuid_fails() {
    let fake = FakeIntake::start(Answer::WrongUuid).await;
    let (code, stdout, stderr) = run(&["--url", &fake.url()]).await;
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("signature=valid"), "{stdout}");
    assert!(stderr.contains("echoes uuid"), "{stderr}");
}

#[tokio::test]
async fn a_non_2xx_answer_fails() {
    let fake = FakeIntake::start(Answer::Unavailable).await;
    let (code, stdout, stderr) = run(&["--url", &fake.url()]).await;
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("HTTP 503"), "{stdout}");
}

#[tokio::test]
async fn a_signing_key_the_intake_does_not_trust_is_refused() {
    let fake = FakeIntake::start(Answer::SignedOk).await;
    let merchant_key = key_path("merchant-test-private.pem");
    let (code, stdout, stderr) = run(&[
        "--url",
        &fake.url(),
        "--signing-key-path",
        merchant_key.to_str().expect("utf-8 path"),
    ])
    .await;
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("HTTP 403"), "{stdout}");
    assert!(!stderr.contains("PUBLICLY KNOWN"), "no fixture-key warning");
    assert!(!fake.only().signature_valid);
}

#[tokio::test]
async fn bad_flags_and_keys_exit_64_naming_the_problem() {
    let fake = FakeIntake::start(Answer::SignedOk).await;
    let url = fake.url();
    let (code, _, stderr) = run(&["--url", &url, "--signing-key-path", "/nonexistent.pem"]).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("/nonexistent.pem"), "{stderr}");

    let (code, _, stderr) = run(&["--url", &url, "--verify-key-path", "/nonexistent-v.pem"]).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("/nonexistent-v.pem"), "{stderr}");

    for (args, expected) in [
        (&["--amount", "1e5"][..], "--amount"),
        (&["--currency", "XXY"][..], "--currency"),
        (&["--data-json", "[1]"][..], "--data-json"),
        (&["--data-json", "{"][..], "--data-json"),
        (&["--timeout", "0"][..], "--timeout"),
        (&["--no-such-flag"][..], "--no-such-flag"),
    ] {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        let (code, _, stderr) = run(&all).await;
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let (code, _, stderr) = run(&["--url", "ftp://example.com/x"]).await;
    assert_eq!(code, 64, "{stderr}");

    assert!(fake.received().is_empty(), "nothing is sent on bad flags");
}
