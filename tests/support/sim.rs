//! A simulator harness: an in-process `trustly-sim` on 127.0.0.1:0, a wire-core client signed as
//! the merchant, a merchant notification endpoint, and admin API helpers.

use std::{
    collections::VecDeque,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use super::test_server::TestServer;
use trustly_sidecar::{
    secret::Secret,
    sim::{RetryPolicy, SimConfig, Simulator},
    trustly::{
        Client, ClientConfig, Error, SignedRequest, canonical,
        sign::{Backend, CryptoPool, Signer, Verifier},
        wire,
    },
};

use super::*;

pub const USERNAME: &str = "merchant";
pub const PASSWORD: &str = "s3cret-pässword";

/// Notification retries fast enough for tests, still growing (10, 20, 40, 80, 80 ms ...).
pub fn test_retry_policy() -> RetryPolicy {
    RetryPolicy {
        initial_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(80),
        max_attempts: 20,
        attempt_timeout: Duration::from_secs(2),
    }
}

pub struct SimHarness {
    pub simulator: Option<Simulator>,
    pub client: Client,
    pub merchant: MerchantEndpoint,
    admin: reqwest::Client,
    pub admin_url: String,
}

impl SimHarness {
    pub async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut SimConfig, &mut ClientConfig)) -> Self {
        let mut sim_config = SimConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            merchant_public_key: public_key(MERCHANT_PUBLIC),
            private_key: Secret::new(private_key(TRUSTLY_PRIVATE)),
            username: USERNAME.into(),
            password: Secret::new(PASSWORD.into()),
            backend: Backend::RustCrypto,
            retry: test_retry_policy(),
            // No polling limit by default: tests poll state changes; a test that needs the
            // limit sets it.
            poll_window: Duration::ZERO,
            initial_balances: vec![
                ("EUR".into(), Decimal::new(100_000, 2)),
                ("SEK".into(), Decimal::new(100_000, 2)),
            ],
        };
        // The client config is adjusted before the simulator exists; its endpoint is set after.
        let placeholder = url::Url::parse("http://127.0.0.1:1/api/1").expect("url");
        let mut client_config =
            ClientConfig::new(placeholder, USERNAME, Secret::new(PASSWORD.into()));
        client_config.request_timeout = Duration::from_secs(10);
        adjust(&mut sim_config, &mut client_config);
        let simulator = Simulator::start(sim_config)
            .await
            .expect("simulator starts");
        client_config.endpoint = simulator.api_url();
        let client = Client::new(
            client_config,
            signer(Backend::RustCrypto, MERCHANT_PRIVATE),
            verifier(Backend::RustCrypto, TRUSTLY_PUBLIC),
            CryptoPool::new(2),
        )
        .expect("client");
        let merchant = MerchantEndpoint::start(
            verifier(Backend::RustCrypto, TRUSTLY_PUBLIC),
            signer(Backend::RustCrypto, MERCHANT_PRIVATE),
        )
        .await;
        Self {
            admin_url: simulator.admin_url(),
            simulator: Some(simulator),
            client,
            merchant,
            admin: reqwest::Client::new(),
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(simulator) = self.simulator.take() {
            simulator.shutdown().await;
        }
    }

    /// Signs and sends `data` for `method` with a fresh UUID, returning the request too.
    pub async fn call_raw(
        &self,
        method: &str,
        data: Value,
    ) -> (SignedRequest, Result<Value, Error>) {
        let Value::Object(map) = data else {
            panic!("data must be an object")
        };
        let request = self
            .client
            .sign_data(method, uuid::Uuid::new_v4(), map)
            .await
            .expect("signs");
        let outcome = self.client.send(&request).await;
        (request, outcome)
    }

    pub async fn call(&self, method: &str, data: Value) -> Result<Value, Error> {
        self.call_raw(method, data).await.1
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        let response = self
            .admin
            .get(format!("{}/{path}", self.admin_url))
            .send()
            .await
            .expect("admin get");
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        serde_json::from_slice(&response.bytes().await.expect("admin body")).expect("admin json")
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .admin
            .post(format!("{}/{path}", self.admin_url))
            .body(body.to_string())
            .send()
            .await
            .expect("admin post");
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_slice(&response.bytes().await.expect("admin body"))
                .expect("admin json"),
        )
    }

    pub async fn admin_put(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .admin
            .put(format!("{}/{path}", self.admin_url))
            .body(body.to_string())
            .send()
            .await
            .expect("admin put");
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_slice(&response.bytes().await.expect("admin body"))
                .expect("admin json"),
        )
    }

    /// Performs an admin action that must succeed.
    pub async fn act(&self, order_id: &str, action: &str, body: Value) -> Value {
        let (status, value) = self
            .admin_post(&format!("orders/{order_id}/{action}"), body)
            .await;
        assert_eq!(status, 200, "{action} {order_id}: {value}");
        value
    }

    pub async fn order(&self, order_id: &str) -> Value {
        self.admin_get(&format!("orders/{order_id}")).await
    }

    /// Every delivery attempt of the order's notifications, with its outcome.
    pub async fn deliveries(&self, order_id: &str) -> Vec<Value> {
        self.order(order_id).await["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn order_count(&self) -> usize {
        self.admin_get("orders")
            .await
            .as_array()
            .map_or(0, Vec::len)
    }

    pub async fn balance(&self, currency: &str) -> String {
        self.admin_get("balances").await[currency]
            .as_str()
            .unwrap_or("0.00")
            .to_owned()
    }

    /// Polls `check` until it yields a value (every 20 ms, for at most 10 s).
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        for _ in 0..500 {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// Waits until the merchant endpoint has acknowledged `count` notifications for `order_id`.
    pub async fn notifications_for(
        &self,
        order_id: &str,
        count: usize,
    ) -> Vec<ReceivedNotification> {
        self.eventually(&format!("{count} notifications for {order_id}"), || async {
            let received: Vec<_> = self
                .merchant
                .received()
                .into_iter()
                .filter(|n| n.order_id == order_id)
                .collect();
            (received.iter().filter(|n| n.answered_ok).count() >= count).then_some(received)
        })
        .await
    }

    /// Deposit Data with sensible defaults and this harness's notification URL.
    pub fn deposit_data(&self, message_id: &str) -> Value {
        json!({
            "NotificationURL": self.merchant.url(),
            "EndUserID": "user-1",
            "MessageID": message_id,
            "Attributes": {
                "Currency": "EUR", "Firstname": "Åsa", "Lastname": "Öberg", "Country": "SE",
                "Locale": "sv_SE", "Email": "asa@example.com", "ShopperStatement": "Shop",
                "SuccessURL": "https://merchant.example/ok", "FailURL": "https://merchant.example/fail",
                "Amount": "100.00"
            }
        })
    }
}

/// How the merchant endpoint answers the next notification.
#[derive(Clone, Debug)]
pub enum MerchantAnswer {
    /// A signed answer with this status ("OK", "FAILED", "CONTINUE", "FINISH").
    Status(&'static str),
    /// HTTP 500 with no body (a failing merchant).
    ServerError,
    /// A signed OK made with the wrong key.
    WrongKey,
    /// A signed OK echoing another uuid.
    WrongUuid,
}

/// A notification as the merchant endpoint received it.
#[derive(Clone, Debug)]
pub struct ReceivedNotification {
    pub method: String,
    pub uuid: String,
    pub notification_id: String,
    pub order_id: String,
    pub data: Value,
    pub signature_valid: bool,
    /// Whether this delivery was answered with a valid signed status.
    pub answered_ok: bool,
}

struct EndpointState {
    trustly: Arc<dyn Verifier>,
    merchant: Arc<dyn Signer>,
    wrong_key: Arc<dyn Signer>,
    script: Mutex<VecDeque<MerchantAnswer>>,
    received: Mutex<Vec<ReceivedNotification>>,
}

/// The merchant's NotificationURL: verifies every notification with the simulator's key and
/// answers as scripted (a signed OK by default).
pub struct MerchantEndpoint {
    url: String,
    state: Arc<EndpointState>,
    /// Kept for its lifetime: the server stops when the stand-in is dropped.
    _server: TestServer,
}

impl MerchantEndpoint {
    pub async fn start(trustly: Arc<dyn Verifier>, merchant: Arc<dyn Signer>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/trustly/notifications",
            listener.local_addr().expect("addr")
        );
        let state = Arc::new(EndpointState {
            trustly,
            merchant,
            wrong_key: signer(Backend::RustCrypto, "python-client-test-private-1.pem"),
            script: Mutex::new(VecDeque::new()),
            received: Mutex::new(Vec::new()),
        });
        let server_state = Arc::clone(&state);
        let server = TestServer::spawn(listener, move |req| answer(Arc::clone(&server_state), req));
        Self {
            url,
            state,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Scripts the answers to the next notifications, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = MerchantAnswer>) {
        self.state.script.lock().expect("lock").extend(answers);
    }

    pub fn received(&self) -> Vec<ReceivedNotification> {
        self.state.received.lock().expect("lock").clone()
    }
}

async fn answer(
    state: Arc<EndpointState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Ok(notification) = wire::parse_notification(&body) else {
        return Ok(respond(400, Bytes::from_static(b"not a notification")));
    };
    let signature_valid = notification.verify(state.trustly.as_ref());
    let script = state.script.lock().expect("lock").pop_front();
    let (method, uuid) = (notification.method.clone(), notification.uuid.clone());
    let mut record = ReceivedNotification {
        method: method.clone(),
        uuid: uuid.clone(),
        notification_id: notification.data["notificationid"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        order_id: notification.data["orderid"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        data: notification.data.clone(),
        signature_valid,
        answered_ok: false,
    };
    let signed = |signer: &dyn Signer, uuid: &str, status: &str| {
        let data = json!({ "status": status });
        let signature = signer
            .sign(canonical::plaintext(&method, uuid, &data).as_bytes())
            .expect("signs");
        Bytes::from(
            serde_json::to_vec(&wire::notification_response(
                &method, uuid, &signature, data,
            ))
            .expect("encode"),
        )
    };
    let response = if !signature_valid {
        respond(400, Bytes::from_static(b"bad signature"))
    } else {
        match script.unwrap_or(MerchantAnswer::Status("OK")) {
            MerchantAnswer::Status(status) => {
                record.answered_ok = true;
                respond(200, signed(state.merchant.as_ref(), &uuid, status))
            }
            MerchantAnswer::ServerError => respond(500, Bytes::new()),
            MerchantAnswer::WrongKey => respond(200, signed(state.wrong_key.as_ref(), &uuid, "OK")),
            MerchantAnswer::WrongUuid => respond(
                200,
                signed(
                    state.merchant.as_ref(),
                    "00000000-0000-4000-8000-000000000000",
                    "OK",
                ),
            ),
        }
    };
    state.received.lock().expect("lock").push(record);
    Ok(response)
}

fn respond(status: u16, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .expect("response")
}

/// The `Map` of a JSON object literal.
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}
