//! Nothing pays twice, under stress: a sidecar killed between reserving a key and answering, one
//! killed after answering but before its outcome was written, and a seeded randomized soak of
//! payouts with drops, timeouts, 5xx, garbage, bad signatures and concurrent retries. Invariant: per key the simulator executed at most one payout, and every
//! client that got a success got that payout's orderid.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use support::requests::redis_url;

use std::{
    collections::{BTreeMap, HashMap},
    process::{Child, Command, Stdio},
    time::Duration,
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;
use support::{app, sim::*};
use tonic::transport::Channel;
use trustly_sidecar::pb::{self, payment_service_client::PaymentServiceClient};

fn register(account_number: &str) -> pb::RegisterAccountRequest {
    pb::RegisterAccountRequest {
        end_user_id: "user-1".into(),
        account: Some(pb::BankAccount {
            clearing_house: "SWEDEN".into(),
            bank_number: "6112".into(),
            account_number: account_number.into(),
            first_name: "Åsa".into(),
            last_name: "Öberg".into(),
        }),
        ..Default::default()
    }
}

fn payout(account_id: &str, message_id: &str) -> pb::AccountPayoutRequest {
    pb::AccountPayoutRequest {
        account_id: account_id.into(),
        end_user_id: "user-1".into(),
        message_id: message_id.into(),
        amount: Some(pb::Money {
            amount: "1.00".into(),
            currency_code: "EUR".into(),
        }),
        shopper_statement: "Payout".into(),
        ..Default::default()
    }
}

/// Payout orders at the simulator per MessageID.
async fn payouts_by_message(h: &SimHarness) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for order in h.admin_get("orders").await.as_array().unwrap() {
        if order["kind"] == "AccountPayout" {
            map.entry(order["message_id"].as_str().unwrap().to_owned())
                .or_default()
                .push(order["order_id"].as_str().unwrap().to_owned());
        }
    }
    map
}

struct SidecarProcess(Child);

impl Drop for SidecarProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn connect(port: u16) -> Channel {
    for _ in 0..200 {
        if let Ok(channel) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("sidecar did not start serving");
}

/// Sidecar processes on one gRPC port, one Redis and one prefix: each `start` is a restart.
struct Restartable {
    grpc: u16,
    vars: HashMap<String, String>,
    _files: Vec<tempfile::NamedTempFile>,
}

impl Restartable {
    fn new(h: &SimHarness, redis_url: &str, prefix: &str) -> Self {
        let free = support::requests::free_port;
        let (grpc, intake) = (free(), free());
        let (mut vars, files) = app::vars_for(
            h,
            &[
                ("TRUSTLY_SIDECAR_REDIS_URL", redis_url),
                ("TRUSTLY_SIDECAR_REDIS_PREFIX", prefix),
                ("TRUSTLY_SIDECAR_TRUSTLY_TIMEOUT", "2s"),
            ],
        );
        vars.insert(
            "TRUSTLY_SIDECAR_GRPC_LISTEN".into(),
            format!("127.0.0.1:{grpc}"),
        );
        vars.insert(
            "TRUSTLY_SIDECAR_NOTIFICATION_LISTEN".into(),
            format!("127.0.0.1:{intake}"),
        );
        // Never the default ops port: another process may hold it, and then the sidecar cannot
        // start.
        vars.insert("TRUSTLY_SIDECAR_OPS_LISTEN".into(), "127.0.0.1:0".into());
        Self {
            grpc,
            vars,
            _files: files,
        }
    }

    /// A new sidecar process and a client of it (once it serves).
    async fn start(&self) -> (SidecarProcess, PaymentServiceClient<Channel>) {
        let process = SidecarProcess(
            Command::new(env!("CARGO_BIN_EXE_trustly-sidecar"))
                .env_clear()
                .envs(&self.vars)
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let client = PaymentServiceClient::new(connect(self.grpc).await);
        (process, client)
    }
}

/// The simulator's AccountPayout requests: how many distinct JSON-RPC UUIDs it received.
async fn payout_uuids(h: &SimHarness) -> std::collections::BTreeSet<String> {
    h.admin_get("requests")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "AccountPayout")
        .map(|r| r["uuid"].as_str().unwrap().to_owned())
        .collect()
}

/// After a restart, retries `message_id` (the key) until answered: while the dead attempt's
/// lease runs the key is in progress, then the stored request replays.
async fn retried(
    h: &SimHarness,
    client: &PaymentServiceClient<Channel>,
    account_id: &str,
    message_id: &str,
) -> pb::AccountPayoutResponse {
    h.eventually("the retry is answered", || {
        let mut client = client.clone();
        let request = payout(account_id, message_id);
        async move {
            client
                .account_payout(request)
                .await
                .ok()
                .map(tonic::Response::into_inner)
        }
    })
    .await
}

/// Registers an account on `client` (the payouts' destination).
async fn an_account(client: &mut PaymentServiceClient<Channel>) -> String {
    client
        .register_account(register("69706212"))
        .await
        .unwrap()
        .into_inner()
        .account_id
}

/// A payout of `message_id` started in the background, the simulator answering it after
/// `latency_ms`.
async fn slow_payout(
    h: &SimHarness,
    client: &PaymentServiceClient<Channel>,
    account_id: &str,
    message_id: &str,
    latency_ms: u64,
) -> tokio::task::JoinHandle<Result<tonic::Response<pb::AccountPayoutResponse>, tonic::Status>> {
    let fault = json!({"kind": "latency", "latency_ms": latency_ms, "method": "AccountPayout"});
    assert_eq!(h.admin_post("faults", fault).await.0, 201);
    let (mut client, request) = (client.clone(), payout(account_id, message_id));
    tokio::spawn(async move { client.account_payout(request).await })
}

/// The simulator executed one payout of `message_id`, under `order_id`, from one request (the
/// retry replayed the stored one).
async fn paid_once(h: &SimHarness, message_id: &str, order_id: &str) {
    let payouts = payouts_by_message(h).await;
    assert_eq!(payouts.get(message_id).map(Vec::len), Some(1), "one order");
    assert_eq!(order_id, payouts[message_id][0]);
    assert_eq!(
        payout_uuids(h).await.len(),
        1,
        "the retry replayed the stored request"
    );
}

#[tokio::test]
async fn a_sidecar_killed_between_reserve_and_answer_pays_once_after_restart() {
    let h = SimHarness::start().await;
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let sidecars = Restartable::new(&h, &redis_url(), &prefix);
    let (first, mut client) = sidecars.start().await;
    let account_id = an_account(&mut client).await;
    // The simulator takes 1.5 s: the sidecar has reserved the key and sent the request when killed.
    let in_flight = slow_payout(&h, &client, &account_id, "pay-killed", 1500).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(first); // SIGKILL
    assert!(
        in_flight.await.unwrap().is_err(),
        "the caller saw the sidecar die"
    );

    let (_second, client) = sidecars.start().await;
    let answer = retried(&h, &client, &account_id, "pay-killed").await;
    paid_once(&h, "pay-killed", &answer.order_id).await;
}

/// The outcome of a call is written after its answer (`store::write_behind`). A sidecar killed in
/// between, its outcome unwritten (Redis takes no writes from just before the answer), pays once:
/// the restarted sidecar waits out the dead attempt's lease and replays the stored request, and the
/// caller's retry gets the order the first answer named.
#[tokio::test]
async fn a_sidecar_killed_after_answering_before_its_outcome_is_written_pays_once() {
    let h = SimHarness::start().await;
    // Private: pausing its writes must not stall other tests.
    let redis = support::redis::PrivateRedis::start().await;
    let sidecars = Restartable::new(&h, &redis.url(), "test-outcome-after-answer");
    let admin = ::redis::Client::open(redis.url()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();

    let (first, mut client) = sidecars.start().await;
    let account_id = an_account(&mut client).await;
    // The simulator answers after 1 s; the key is reserved long before.
    let in_flight = slow_payout(&h, &client, &account_id, "pay-answered", 1000).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _: () = ::redis::cmd("CLIENT")
        .arg(&["PAUSE", "20000", "WRITE"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let answered = in_flight
        .await
        .unwrap()
        .expect("answered while Redis takes no writes: the outcome follows the answer")
        .into_inner();
    drop(first); // SIGKILL, its outcome write held by the pause
    let _: () = ::redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(&mut admin)
        .await
        .unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("test-outcome-after-answer:idempotency:*")
        .query_async(&mut admin)
        .await
        .unwrap();
    let mut unfinished = 0;
    for key in keys {
        let record: String = ::redis::cmd("GET")
            .arg(&key)
            .query_async(&mut admin)
            .await
            .unwrap();
        let record: serde_json::Value = serde_json::from_str(&record).unwrap();
        if record["outcome"].is_null() {
            assert!(
                record["request"]
                    .as_str()
                    .is_some_and(|r| r.contains("pay-answered")),
                "an unfinished record keeps its signed request: {record}"
            );
            unfinished += 1;
        }
    }
    assert_eq!(unfinished, 1, "the killed sidecar never wrote the outcome");

    let (_second, client) = sidecars.start().await;
    let answer = retried(&h, &client, &account_id, "pay-answered").await;
    paid_once(&h, "pay-answered", &answered.order_id).await;
    assert_eq!(answer.order_id, answered.order_id, "the order first named");
}

/// Payouts in the soak (`SOAK_PAYOUTS` overrides; the default keeps CI in seconds).
fn soak_size() -> usize {
    std::env::var("SOAK_PAYOUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_soak_of_payouts_with_random_faults_never_pays_twice() {
    let seed: u64 = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_121);
    let payouts = soak_size();
    let h = SimHarness::start().await;
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let url = redis_url();
    let (vars, files) = app::vars_for(
        &h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", &url),
            ("TRUSTLY_SIDECAR_REDIS_PREFIX", &prefix),
            ("TRUSTLY_SIDECAR_TRUSTLY_TIMEOUT", "1s"),
        ],
    );
    let sidecar = app::spawn(vars, files).await;
    assert_eq!(
        h.admin_put("balances/EUR", json!({"balance": "1000000.00"}))
            .await
            .0,
        200
    );
    let account_id = sidecar
        .client
        .clone()
        .register_account(register("69706212"))
        .await
        .unwrap()
        .into_inner()
        .account_id;

    let mut rng = StdRng::seed_from_u64(seed);
    let faults = [
        json!({"kind": "drop_after_commit", "method": "AccountPayout"}),
        json!({"kind": "status", "status": 503, "method": "AccountPayout"}),
        json!({"kind": "garbage", "method": "AccountPayout"}),
        json!({"kind": "bad_signature", "method": "AccountPayout"}),
        json!({"kind": "latency", "latency_ms": 1200, "method": "AccountPayout"}),
    ];
    let mut injected = 0;
    for _ in 0..payouts / 4 {
        assert_eq!(
            h.admin_post("faults", faults[rng.gen_range(0..faults.len())].clone())
                .await
                .0,
            201
        );
        injected += 1;
    }
    // Bounded concurrency; a quarter of the keys get two concurrent callers.
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for i in 0..payouts {
        let callers = if rng.gen_bool(0.25) { 2 } else { 1 };
        for _ in 0..callers {
            let (mut client, account_id, semaphore) = (
                sidecar.client.clone(),
                account_id.clone(),
                semaphore.clone(),
            );
            let key = format!("soak-{seed}-{i}");
            tasks.push(tokio::spawn(async move {
                let _permit = semaphore.acquire_owned().await.unwrap();
                // A client's retry budget: keep the key and retry for up to 30 s.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                while tokio::time::Instant::now() < deadline {
                    match client.account_payout(payout(&account_id, &key)).await {
                        Ok(answer) => return (key, Some(answer.into_inner().order_id)),
                        // In progress, unknown outcome, timeout, bad answer: retry with the key.
                        Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
                    }
                }
                (key, None)
            }));
        }
    }
    let mut answers: HashMap<String, Vec<String>> = HashMap::new();
    let mut gave_up = 0;
    for task in tasks {
        match task.await.unwrap() {
            (key, Some(order_id)) => answers.entry(key).or_default().push(order_id),
            (_, None) => gave_up += 1,
        }
    }

    let executed = payouts_by_message(&h).await;
    let twice: Vec<_> = executed
        .iter()
        .filter(|(_, orders)| orders.len() > 1)
        .collect();
    assert!(twice.is_empty(), "paid twice: {twice:?}");
    for (key, order_ids) in &answers {
        let paid = executed
            .get(key)
            .unwrap_or_else(|| panic!("{key}: success without a payout"));
        assert!(
            order_ids.iter().all(|id| *id == paid[0]),
            "{key}: clients got {order_ids:?}, Trustly paid {paid:?}"
        );
    }
    let fault_hits = h
        .admin_get("requests")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["fault"].is_null())
        .count();
    println!(
        "soak: seed {seed}, {payouts} keys, {} answered, {gave_up} callers gave up, {injected} faults injected, {fault_hits} hit",
        answers.len()
    );
    assert_eq!(gave_up, 0, "every caller eventually got an answer");
    assert_eq!(answers.len(), payouts);
    assert!(fault_hits > 0);
}
