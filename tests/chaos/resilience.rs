//! Resilience: a seeded, bounded chaos run over the full stack, on loopback only.
//!
//! Two `trustly-sidecar` processes share one Redis (our own `redis-server`, append-only with
//! `fsync always`, so a restart loses nothing it acknowledged). The simulator stands in for Trustly
//! and posts notifications. Payment workers send AccountPayouts and Deposits with idempotency keys
//! (MessageIDs) to either sidecar and retry on any non-definitive error; subscribers of two consumer
//! groups read on both sidecars. Meanwhile, chaos: SIGKILL of a sidecar (restarted on the same
//! ports), Redis killed and restarted, simulator faults (dropped responses after committing,
//! timeouts, 503s, garbage, broken signatures), duplicate and reordered notifications.
//!
//! Then, with the chaos over, the invariants:
//! 1. no order was executed twice for an idempotency key, and every payment a client saw succeed
//!    is exactly the simulator's order for that key;
//! 2. every notification the simulator saw answered OK reached every consumer group;
//! 3. no OK was ever sent for a notification that is not in the Redis log;
//! 4. no sidecar process ever panicked, and both stop cleanly (exit 0) at the end.
//!
//! `RESILIENCE_SEED` picks the chaos (default fixed, printed); `RESILIENCE_SECONDS` its length.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use support::{app, redis::PrivateRedis, sim::*};
use tokio_util::sync::CancellationToken;
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;
use trustly_sidecar::{
    pb::{
        self, notification_service_client::NotificationServiceClient,
        payment_service_client::PaymentServiceClient,
    },
    sim::RetryPolicy,
};

const DEFAULT_SEED: u64 = 20_261_121;
const DEFAULT_CHAOS_SECONDS: u64 = 20;
const WORKERS: usize = 4;
const GROUPS: [&str; 2] = ["ledger", "audit"];
/// How long one payment is retried (the idempotency lease after a crash is the 3 s Trustly
/// timeout + 5 s; several crashes can stack).
const PAYMENT_DEADLINE: Duration = Duration::from_secs(45);
/// After the chaos: time for every notification to be answered and delivered.
const QUIESCENCE: Duration = Duration::from_secs(60);

fn env_u64(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The notificationids in the sidecars' durable log.
async fn logged_notification_ids(redis: &PrivateRedis, prefix: &str) -> BTreeSet<String> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("{prefix}:{{notifications}}:log"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    entries
        .ids
        .iter()
        .filter_map(|entry| entry.get::<String>("notificationid"))
        .collect()
}

// === the notification Service in front of both replicas ===

/// What a Kubernetes Service (or an ingress) does for Trustly's notifications: one public URL,
/// connections spread over the replicas that are up. Trustly posts to one NotificationURL; both
/// replicas sign the same default into their requests, so an idempotent retry on either replica
/// is the same request.
async fn notification_service(backends: Vec<String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/trustly/notifications",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        let mut next = 0usize;
        while let Ok((mut inbound, _)) = listener.accept().await {
            next += 1;
            let order: Vec<String> = (0..backends.len())
                .map(|i| backends[(next + i) % backends.len()].clone())
                .collect();
            tokio::spawn(async move {
                for backend in order {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                }
                // No replica up: the connection closes and Trustly resends later.
            });
        }
    });
    url
}

// === the two sidecar slots ===

/// A sidecar replica on fixed ports, so it can be killed and restarted where clients and the
/// simulator expect it.
struct Slot {
    vars: Vec<(String, String)>,
    grpc: String,
    process: Option<app::Process>,
    /// Logs of every incarnation.
    logs: String,
}

impl Slot {
    fn new(redis_url: &str, prefix: &str, intake: u16, notification_url: &str) -> Self {
        let free = support::requests::free_port;
        let (grpc, ops) = (free(), free());
        let vars = [
            ("TRUSTLY_SIDECAR_GRPC_LISTEN", format!("127.0.0.1:{grpc}")),
            (
                "TRUSTLY_SIDECAR_NOTIFICATION_LISTEN",
                format!("127.0.0.1:{intake}"),
            ),
            ("TRUSTLY_SIDECAR_OPS_LISTEN", format!("127.0.0.1:{ops}")),
            (
                "TRUSTLY_SIDECAR_NOTIFICATION_URL",
                notification_url.to_owned(),
            ),
            ("TRUSTLY_SIDECAR_REDIS_URL", redis_url.to_owned()),
            ("TRUSTLY_SIDECAR_REDIS_PREFIX", prefix.to_owned()),
            ("TRUSTLY_SIDECAR_REDIS_TIMEOUT", "1s".to_owned()),
            ("TRUSTLY_SIDECAR_TRUSTLY_TIMEOUT", "3s".to_owned()),
            ("TRUSTLY_SIDECAR_ACK_DEADLINE", "2s".to_owned()),
            ("TRUSTLY_SIDECAR_MAX_DELIVERIES", "1000".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Slot {
            vars,
            grpc: format!("http://127.0.0.1:{grpc}"),
            process: None,
            logs: String::new(),
        }
    }

    async fn start(&mut self, h: &SimHarness) {
        let extra: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.process = Some(app::spawn_process(h, &extra).await);
    }

    async fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            self.logs.push_str(&process.kill().await);
        }
    }

    /// A channel that reconnects by itself after the process comes back.
    fn channel(&self) -> Channel {
        Channel::from_shared(self.grpc.clone())
            .unwrap()
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(10))
            .connect_lazy()
    }
}

// === payment workers ===

#[derive(Debug)]
enum Outcome {
    /// The client saw the payment accepted with this order id.
    Paid(String),
    /// The sidecar said the order exists (recovered after a 637), order id if known.
    Exists,
    /// A definitive refusal, or the retry deadline passed.
    Failed(String),
}

fn retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::Aborted
            | Code::DeadlineExceeded
            | Code::Internal
            | Code::Unknown
            | Code::Cancelled
    )
}

fn order_exists(status: &tonic::Status) -> bool {
    status.code() == Code::FailedPrecondition
        && status
            .get_details_error_info()
            .is_some_and(|info| info.reason == "ORDER_EXISTS")
}

/// Sends one payment (same request, same key) until it is answered definitively.
async fn pay<F, Fut>(channels: &[Channel], rng: &Mutex<StdRng>, call: F) -> Outcome
where
    F: Fn(PaymentServiceClient<Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<String, tonic::Status>>,
{
    let deadline = Instant::now() + PAYMENT_DEADLINE;
    loop {
        let slot = rng.lock().gen_range(0..channels.len());
        match call(PaymentServiceClient::new(channels[slot].clone())).await {
            Ok(order_id) => return Outcome::Paid(order_id),
            Err(status) if order_exists(&status) => return Outcome::Exists,
            Err(status) if retryable(&status) && Instant::now() < deadline => {
                let pause = rng.lock().gen_range(50..300);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Err(status) => {
                return Outcome::Failed(format!("{:?}: {}", status.code(), status.message()));
            }
        }
    }
}

struct Chaos {
    h: SimHarness,
    rng: Mutex<StdRng>,
    outcomes: Mutex<BTreeMap<String, Outcome>>,
}

impl Chaos {
    async fn worker(
        &self,
        worker: usize,
        account_id: String,
        channels: Vec<Channel>,
        until: Instant,
    ) {
        let mut k = 0;
        while Instant::now() < until {
            k += 1;
            let deposit = self.rng.lock().gen_bool(0.3);
            let message_id = format!("chaos-{worker}-{k}");
            let outcome = if deposit {
                let request = support::requests::deposit(&message_id);
                pay(&channels, &self.rng, |mut client| {
                    let request = request.clone();
                    async move {
                        client
                            .deposit(request)
                            .await
                            .map(|r| r.into_inner().order_id)
                    }
                })
                .await
            } else {
                let request = pb::AccountPayoutRequest {
                    account_id: account_id.clone(),
                    end_user_id: "user-1".into(),
                    message_id: message_id.clone(),
                    amount: Some(pb::Money {
                        amount: "1.00".into(),
                        currency_code: "EUR".into(),
                    }),
                    shopper_statement: "Chaos payout".into(),
                    ..Default::default()
                };
                pay(&channels, &self.rng, |mut client| {
                    let request = request.clone();
                    async move {
                        client
                            .account_payout(request)
                            .await
                            .map(|r| r.into_inner().order_id)
                    }
                })
                .await
            };
            if let Outcome::Paid(order_id) = &outcome {
                // The end user (or the bank) acts: notifications follow.
                let (action, body) = {
                    let mut rng = self.rng.lock();
                    match (deposit, rng.gen_range(0..4)) {
                        (true, 0) => ("cancel", json!({})),
                        (true, _) => (
                            "complete",
                            json!({"send_account": rng.gen_bool(0.5), "reorder": rng.gen_bool(0.5)}),
                        ),
                        (false, 0) => ("fail", json!({})),
                        (false, _) => ("complete", json!({})),
                    }
                };
                let _ = self
                    .h
                    .admin_post(&format!("orders/{order_id}/{action}"), body)
                    .await;
            }
            self.outcomes.lock().insert(message_id, outcome);
        }
    }

    /// Reads a group on one slot, reconnecting whenever the stream breaks; acknowledges all.
    async fn subscriber(
        group: &'static str,
        channel: Channel,
        received: Arc<Mutex<BTreeMap<&'static str, BTreeSet<String>>>>,
        stop: CancellationToken,
    ) {
        while !stop.is_cancelled() {
            let mut client = NotificationServiceClient::new(channel.clone());
            let stream = client
                .stream_notifications(pb::StreamNotificationsRequest {
                    consumer_group: group.into(),
                    start: pb::StartPosition::Group as i32,
                    ..Default::default()
                })
                .await;
            if let Ok(stream) = stream {
                let mut stream = stream.into_inner();
                loop {
                    let message = tokio::select! {
                        () = stop.cancelled() => return,
                        message = stream.message() => message,
                    };
                    let Ok(Some(item)) = message else { break };
                    if let Some(pb::stream_notifications_response::Item::Notification(n)) =
                        item.item
                    {
                        received
                            .lock()
                            .entry(group)
                            .or_default()
                            .insert(n.notification_id.clone());
                        let _ = client
                            .acknowledge_notification(pb::AcknowledgeNotificationRequest {
                                consumer_group: group.into(),
                                event_id: n.event_id,
                                ..Default::default()
                            })
                            .await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    sidecar_kills: u32,
    redis_restarts: u32,
    faults: BTreeMap<String, u32>,
    resends: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_keeps_every_promise() {
    let seed = env_u64("RESILIENCE_SEED", DEFAULT_SEED);
    let chaos_for = Duration::from_secs(env_u64("RESILIENCE_SECONDS", DEFAULT_CHAOS_SECONDS));
    println!(
        "resilience: seed {seed}, chaos for {chaos_for:?} (RESILIENCE_SEED / RESILIENCE_SECONDS)"
    );
    let bound = chaos_for + PAYMENT_DEADLINE + QUIESCENCE + Duration::from_secs(60);
    tokio::time::timeout(bound, run(seed, chaos_for))
        .await
        .expect("the chaos run finished within its bound");
}

async fn run(seed: u64, chaos_for: Duration) {
    let mut redis = PrivateRedis::start_durable().await;
    let prefix = format!("chaos-{seed}");
    let h = SimHarness::start_with(|sim, _| {
        // Resend fast and never give up: a sidecar may be down for a while.
        sim.retry = RetryPolicy {
            initial_interval: Duration::from_millis(50),
            max_interval: Duration::from_millis(500),
            max_attempts: 10_000,
            attempt_timeout: Duration::from_secs(2),
        };
        sim.initial_balances = vec![("EUR".into(), rust_decimal::Decimal::new(100_000_000, 2))];
    })
    .await;
    let intakes = [
        support::requests::free_port(),
        support::requests::free_port(),
    ];
    let notification_url = notification_service(
        intakes
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect(),
    )
    .await;
    let mut slots =
        intakes.map(|intake| Slot::new(&redis.url(), &prefix, intake, &notification_url));
    for slot in &mut slots {
        slot.start(&h).await;
    }
    let channels: Vec<Channel> = slots.iter().map(Slot::channel).collect();
    let account_id = PaymentServiceClient::new(channels[0].clone())
        .register_account(support::requests::register_account())
        .await
        .unwrap()
        .into_inner()
        .account_id;

    let received: Arc<Mutex<BTreeMap<&'static str, BTreeSet<String>>>> = Arc::default();
    let stop_subscribers = CancellationToken::new();
    let mut subscribers = Vec::new();
    for group in GROUPS {
        for channel in &channels {
            subscribers.push(tokio::spawn(Chaos::subscriber(
                group,
                channel.clone(),
                Arc::clone(&received),
                stop_subscribers.clone(),
            )));
        }
    }

    let chaos = Arc::new(Chaos {
        h,
        rng: Mutex::new(StdRng::seed_from_u64(seed)),
        outcomes: Mutex::default(),
    });
    let until = Instant::now() + chaos_for;
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (chaos, account_id, channels) =
                (Arc::clone(&chaos), account_id.clone(), channels.clone());
            tokio::spawn(async move { chaos.worker(w, account_id, channels, until).await })
        })
        .collect();

    // The chaos itself.
    let mut tally = Tally::default();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(400..1200))).await;
        match rng.gen_range(0..100) {
            0..30 => {
                let slot = &mut slots[rng.gen_range(0..2)];
                slot.kill().await;
                tally.sidecar_kills += 1;
                tokio::time::sleep(Duration::from_millis(rng.gen_range(100..1000))).await;
                slot.start(&chaos.h).await;
            }
            30..42 => {
                redis
                    .restart(Duration::from_millis(rng.gen_range(50..600)))
                    .await;
                tally.redis_restarts += 1;
            }
            42..85 => {
                let count = rng.gen_range(1..4);
                let fault = match rng.gen_range(0..5) {
                    0 => json!({"kind": "drop_after_commit", "count": count}),
                    1 => json!({"kind": "latency", "latency_ms": 4000, "count": count}),
                    2 => json!({"kind": "status", "status": 503, "count": count}),
                    3 => json!({"kind": "garbage", "count": count}),
                    _ => json!({"kind": "bad_signature", "count": count}),
                };
                let (status, answer) = chaos.h.admin_post("faults", fault.clone()).await;
                assert_eq!(status, 201, "fault {fault}: {answer}");
                *tally
                    .faults
                    .entry(fault["kind"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
            _ => {
                // A duplicate of a notification already sent.
                let sent = chaos.h.admin_get("notifications").await;
                let ids: Vec<String> = sent
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n["notification_id"].as_str().map(str::to_owned))
                    .collect();
                if !ids.is_empty() {
                    let id = &ids[rng.gen_range(0..ids.len())];
                    let _ = chaos
                        .h
                        .admin_post(&format!("notifications/{id}/resend"), json!({}))
                        .await;
                    tally.resends += 1;
                }
            }
        }
    }
    // Chaos over: no more faults; every payment finishes (or runs out of retries).
    let _ = reqwest::Client::new()
        .delete(format!("{}/faults", chaos.h.admin_url))
        .send()
        .await;
    for worker in workers {
        worker.await.unwrap();
    }
    println!("chaos: {tally:?}");

    // Every notification answered (the simulator resends until it gets a valid signed OK) ...
    let started = Instant::now();
    let answered: BTreeMap<String, String> = loop {
        let sent = chaos.h.admin_get("notifications").await;
        let records = sent.as_array().cloned().unwrap_or_default();
        let open: Vec<&Value> = records
            .iter()
            .filter(|n| n["answered_status"].is_null())
            .collect();
        if open.is_empty() {
            break records
                .iter()
                .map(|n| {
                    (
                        n["notification_id"].as_str().unwrap().to_owned(),
                        n["answered_status"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
        }
        assert!(
            started.elapsed() < QUIESCENCE,
            "{} notifications still unanswered after the chaos: {open:?}",
            open.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let answered_ok: BTreeSet<String> = answered
        .iter()
        .filter(|(_, status)| *status == "OK")
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        answered_ok.len() >= 10,
        "the run produced notifications: {answered:?}"
    );

    // 2. ... and delivered to every consumer group.
    let started = Instant::now();
    loop {
        let missing: BTreeMap<&str, Vec<String>> = {
            let received = received.lock();
            GROUPS
                .iter()
                .filter_map(|group| {
                    let got = received.get(group);
                    let missing: Vec<String> = answered_ok
                        .iter()
                        .filter(|id| !got.is_some_and(|got| got.contains(*id)))
                        .cloned()
                        .collect();
                    (!missing.is_empty()).then_some((*group, missing))
                })
                .collect()
        };
        if missing.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < QUIESCENCE,
            "answered OK but never delivered: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_subscribers.cancel();
    for subscriber in subscribers {
        let _ = subscriber.await;
    }

    // 3. No OK without the event in the durable log.
    let logged = logged_notification_ids(&redis, &prefix).await;
    let unstored: Vec<&String> = answered_ok
        .iter()
        .filter(|id| !logged.contains(*id))
        .collect();
    assert!(
        unstored.is_empty(),
        "answered OK but not in the log: {unstored:?}"
    );

    // 1. Nothing executed twice for a key; every success is the one order of its key.
    let orders = chaos.h.admin_get("orders").await;
    let mut by_message: HashMap<String, Vec<String>> = HashMap::new();
    for order in orders.as_array().into_iter().flatten() {
        if let Some(message_id) = order["message_id"].as_str() {
            by_message
                .entry(message_id.to_owned())
                .or_default()
                .push(order["order_id"].as_str().unwrap_or_default().to_owned());
        }
    }
    let twice: Vec<_> = by_message.iter().filter(|(_, o)| o.len() > 1).collect();
    assert!(twice.is_empty(), "executed more than once: {twice:?}");
    let outcomes = std::mem::take(&mut *chaos.outcomes.lock());
    let (mut paid, mut exists, mut failed) = (0, 0, Vec::new());
    for (message_id, outcome) in &outcomes {
        match outcome {
            Outcome::Paid(order_id) => {
                paid += 1;
                assert_eq!(
                    by_message.get(message_id),
                    Some(&vec![order_id.clone()]),
                    "{message_id}: the client's order is the simulator's one order"
                );
            }
            Outcome::Exists => {
                exists += 1;
                assert_eq!(
                    by_message.get(message_id).map(Vec::len),
                    Some(1),
                    "{message_id}"
                );
            }
            Outcome::Failed(why) => failed.push((message_id, why)),
        }
    }
    println!(
        "payments: {} keys, {paid} paid, {exists} recovered as existing, {} failed {failed:?}; notifications: {} answered OK, {} in the log",
        outcomes.len(),
        failed.len(),
        answered_ok.len(),
        logged.len()
    );
    assert!(paid >= 10, "the run made payments");
    assert!(
        failed.is_empty(),
        "every payment ends paid or recovered once the chaos stops: {failed:?}"
    );

    // 4. No panic in any incarnation; both stop cleanly.
    for slot in &mut slots {
        if let Some(process) = slot.process.take() {
            let (status, logs) = process.terminate().await;
            slot.logs.push_str(&logs);
            assert!(status.success(), "clean exit on SIGTERM: {status:?}");
        }
        assert!(
            !slot.logs.contains("panicked"),
            "a sidecar panicked:\n{}",
            slot.logs
        );
    }
}
