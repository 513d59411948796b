//! Redis down for longer than the ack deadline, under two replicas: nothing lost, nothing paid
//! twice.
//!
//! Two `trustly-sidecar` processes share a private durable `redis-server` (append-only, `fsync
//! always`) with a 2 s ack deadline. Before the outage: signed notifications are posted (as Trustly
//! would, to either replica) and answered OK, a subscriber of the `ledger` group on each replica
//! acknowledges them except a few it leaves unacknowledged, one payment is made. Then Redis is
//! stopped for 3 ack deadlines: health turns NOT_SERVING on both replicas, intake answers 503
//! (nothing answered OK), payments with idempotency keys fail UNAVAILABLE / STORE_UNAVAILABLE and
//! reach no bank. Redis restarts on the same port with its data, and, without restarting a replica:
//! both are SERVING again; the refused notifications, resent like Trustly resends, are accepted
//! (and a resend of one already answered OK gets the same reply, no second event); the
//! unacknowledged events are redelivered to the group after their ack deadline, and every event
//! acknowledged is never delivered again (no pending event is left); the failed payments, retried
//! with the same keys, are each executed exactly once, and the paid one answers its order again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::json;
use support::{app, redis::PrivateRedis, sim::SimHarness, *};
use tokio_util::sync::CancellationToken;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt;
use trustly_sidecar::{
    grpc::status::reason,
    pb::{
        self, notification_service_client::NotificationServiceClient,
        payment_service_client::PaymentServiceClient,
    },
    trustly::{canonical, sign::Backend, wire},
};

/// Short, so the outage can outlast it several times in a quick test.
const ACK_DEADLINE: Duration = Duration::from_secs(2);
/// Longer than the ack deadline: every event left unacknowledged is overdue when Redis returns.
const OUTAGE: Duration = Duration::from_secs(6);
/// Short, so an outage shows at once (health: 1 s probe + this).
const REDIS_TIMEOUT: &str = "500ms";
/// Longest wait for anything that must happen (a reconnect comes at most every 5 s).
const WAIT: Duration = Duration::from_secs(20);
/// The whole test; it takes about 15 s.
const BOUND: Duration = Duration::from_secs(120);
const GROUP: &str = "ledger";
/// Notifications answered before the outage; those at `LEFT_UNACKED` are not acknowledged.
const BEFORE: usize = 6;
const LEFT_UNACKED: [usize; 2] = [1, 4];
/// Notifications posted during the outage (refused) and resent after it.
const DURING: usize = 4;

fn notification_id(phase: &str, i: usize) -> String {
    let phase = if phase == "before" { 1 } else { 2 };
    format!("77{phase}000000{i}")
}

// === Trustly's side of the notifications ===

/// Trustly posting signed notifications to the replicas' intakes (as a Service spreads them).
struct Trustly {
    signer: Arc<dyn trustly_sidecar::trustly::sign::Signer>,
    http: reqwest::Client,
    intakes: Vec<String>,
}

impl Trustly {
    fn new(replicas: &[app::Process]) -> Self {
        Trustly {
            signer: signer(Backend::RustCrypto, TRUSTLY_PRIVATE),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
            intakes: replicas
                .iter()
                .map(|r| format!("http://{}/trustly/notifications", r.intake_addr))
                .collect(),
        }
    }

    /// A signed `credit` notification, the body Trustly sends (and resends) for `notification_id`.
    fn notification(&self, notification_id: &str) -> String {
        let uuid = uuid::Uuid::new_v4().to_string();
        let data = json!({
            "orderid": "1234567890", "messageid": "m-outage", "notificationid": notification_id,
            "enduserid": "user-1", "amount": "5.00", "currency": "EUR",
            "timestamp": "2026-11-21 10:00:00.123456+00", "attributes": {}
        });
        let signature = self
            .signer
            .sign(canonical::plaintext("credit", &uuid, &data).as_bytes())
            .unwrap();
        wire::notification("credit", &uuid, &signature, data).to_string()
    }

    /// Posts `body` to replica `replica`: the HTTP status and the answer.
    async fn post(&self, replica: usize, body: &str) -> (u16, Bytes) {
        let response = self
            .http
            .post(&self.intakes[replica % self.intakes.len()])
            .body(body.to_owned())
            .send()
            .await
            .expect("intake answers");
        (
            response.status().as_u16(),
            response.bytes().await.expect("body"),
        )
    }

    /// Resends `body` (to either replica) until it is answered 200; returns the answer.
    async fn resend_until_ok(&self, body: &str) -> Bytes {
        let started = Instant::now();
        for attempt in 0.. {
            let (status, answer) = self.post(attempt, body).await;
            if status == 200 {
                return answer;
            }
            assert!(started.elapsed() < WAIT, "still refused: {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        unreachable!()
    }
}

/// A signed OK from the merchant, as intake must answer what it stored.
fn assert_signed_ok(answer: &[u8], what: &str) {
    let answer = wire::parse_notification_response(answer).expect("a signed answer");
    assert!(
        answer.verify(verifier(Backend::RustCrypto, MERCHANT_PUBLIC).as_ref()),
        "{what}: signed by the merchant"
    );
    assert_eq!(answer.data, json!({"status": "OK"}), "{what}");
}

// === the consumer group ===

/// One delivery to a subscriber of the group.
#[derive(Clone, Debug)]
struct Delivery {
    notification_id: String,
    event_id: String,
    delivery_count: u64,
    at: Instant,
    /// The acknowledgement was answered `acknowledged: true`.
    acked: bool,
}

type Deliveries = Arc<Mutex<Vec<Delivery>>>;

/// Reads the group on one replica, reconnecting whenever the stream breaks; acknowledges every
/// event except the first delivery of those in `leave_unacked`.
async fn subscriber(
    channel: Channel,
    leave_unacked: Arc<BTreeSet<String>>,
    deliveries: Deliveries,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let mut client = NotificationServiceClient::new(channel.clone());
        let request = pb::StreamNotificationsRequest {
            consumer_group: GROUP.into(),
            start: pb::StartPosition::Group as i32,
            ..Default::default()
        };
        if let Ok(stream) = client.stream_notifications(request).await {
            let mut stream = stream.into_inner();
            loop {
                let message = tokio::select! {
                    () = stop.cancelled() => return,
                    message = stream.message() => message,
                };
                let Ok(Some(item)) = message else { break };
                let Some(pb::stream_notifications_response::Item::Notification(n)) = item.item
                else {
                    continue;
                };
                let at = Instant::now();
                let leave = n.delivery_count == 1 && leave_unacked.contains(&n.notification_id);
                let acked = !leave
                    && client
                        .acknowledge_notification(pb::AcknowledgeNotificationRequest {
                            consumer_group: GROUP.into(),
                            event_id: n.event_id.clone(),
                            ..Default::default()
                        })
                        .await
                        .is_ok_and(|r| r.into_inner().acknowledged);
                deliveries.lock().push(Delivery {
                    notification_id: n.notification_id,
                    event_id: n.event_id,
                    delivery_count: n.delivery_count,
                    at,
                    acked,
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The deliveries of each notification, in order.
fn by_notification(deliveries: &Deliveries) -> BTreeMap<String, Vec<Delivery>> {
    let mut by_id: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
    for delivery in deliveries.lock().iter() {
        by_id
            .entry(delivery.notification_id.clone())
            .or_default()
            .push(delivery.clone());
    }
    by_id
}

/// Waits until `done` holds for the deliveries so far.
async fn until_delivered(
    deliveries: &Deliveries,
    what: &str,
    done: impl Fn(&BTreeMap<String, Vec<Delivery>>) -> bool,
) {
    let started = Instant::now();
    while !done(&by_notification(deliveries)) {
        assert!(
            started.elapsed() < WAIT,
            "{what}; deliveries: {:#?}",
            by_notification(deliveries)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// === health and payments ===

async fn health(channel: &Channel) -> ServingStatus {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health answers")
        .into_inner()
        .status()
}

/// Waits until every replica reports `status`; returns how long that took.
async fn until_health(replicas: &[app::Process], status: ServingStatus) -> Duration {
    let started = Instant::now();
    for replica in replicas {
        while health(&replica.channel).await != status {
            assert!(started.elapsed() < WAIT, "health never turned {status:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    started.elapsed()
}

/// A payment with an idempotency key (its MessageID).
#[derive(Clone, Debug)]
enum Payment {
    Deposit(String),
    Payout(String),
}

impl Payment {
    fn key(&self) -> &str {
        match self {
            Payment::Deposit(key) | Payment::Payout(key) => key,
        }
    }

    /// Sends it (always the same request for the key); the order id.
    async fn send(&self, channel: &Channel, account_id: &str) -> Result<String, tonic::Status> {
        let mut client = PaymentServiceClient::new(channel.clone());
        match self {
            Payment::Deposit(key) => client
                .deposit(requests::deposit(key))
                .await
                .map(|r| r.into_inner().order_id),
            Payment::Payout(key) => client
                .account_payout(requests::valid::account_payout("", key, account_id, "1.00"))
                .await
                .map(|r| r.into_inner().order_id),
        }
    }
}

/// The simulator's orders by MessageID.
async fn orders_by_key(h: &SimHarness) -> BTreeMap<String, Vec<String>> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for order in h.admin_get("orders").await.as_array().into_iter().flatten() {
        if let Some(key) = order["message_id"].as_str() {
            by_key
                .entry(key.to_owned())
                .or_default()
                .push(order["order_id"].as_str().unwrap_or_default().to_owned());
        }
    }
    by_key
}

// === Redis ===

/// How many times each notificationid is in the durable log, and how many events the group
/// still has pending.
async fn log_and_pending(redis: &PrivateRedis, prefix: &str) -> (BTreeMap<String, usize>, usize) {
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stream = format!("{prefix}:{{notifications}}:log");
    let entries: ::redis::streams::StreamRangeReply = ::redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut logged: BTreeMap<String, usize> = BTreeMap::new();
    for id in entries
        .ids
        .iter()
        .filter_map(|e| e.get::<String>("notificationid"))
    {
        *logged.entry(id).or_default() += 1;
    }
    let pending: ::redis::streams::StreamPendingReply = ::redis::cmd("XPENDING")
        .arg(&stream)
        .arg(GROUP)
        .query_async(&mut conn)
        .await
        .unwrap();
    (logged, pending.count())
}

// === the test ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_longer_than_the_ack_deadline_loses_nothing_and_pays_nothing_twice() {
    tokio::time::timeout(BOUND, run())
        .await
        .expect("the outage test finished within its bound");
}

/// What the test set up and observed before the outage.
struct World {
    h: SimHarness,
    redis: PrivateRedis,
    prefix: String,
    replicas: Vec<app::Process>,
    trustly: Trustly,
    account_id: String,
    deliveries: Deliveries,
    stop_subscribers: CancellationToken,
    subscribers: Vec<tokio::task::JoinHandle<()>>,
    /// Answered OK before the outage: notificationid → body and answer.
    answered: BTreeMap<String, (String, Bytes)>,
    /// Paid before the outage: the payment and its order.
    paid_before: (Payment, String),
}

async fn run() {
    let mut world = before_outage().await;
    let (refused, failed) = during_outage(&mut world).await;
    after_outage(world, refused, failed).await;
}

/// Two replicas on a durable Redis, notifications answered OK, a group reading them (some left
/// unacknowledged), one payment made.
async fn before_outage() -> World {
    let redis = PrivateRedis::start_durable().await;
    let prefix = format!("outage-{}", uuid::Uuid::new_v4());
    let h = SimHarness::start().await;
    let (url, deadline) = (redis.url(), format!("{}s", ACK_DEADLINE.as_secs()));
    let vars = [
        ("TRUSTLY_SIDECAR_REDIS_URL", url.as_str()),
        ("TRUSTLY_SIDECAR_REDIS_PREFIX", prefix.as_str()),
        ("TRUSTLY_SIDECAR_REDIS_TIMEOUT", REDIS_TIMEOUT),
        ("TRUSTLY_SIDECAR_ACK_DEADLINE", deadline.as_str()),
    ];
    let replicas = vec![
        app::spawn_process(&h, &vars).await,
        app::spawn_process(&h, &vars).await,
    ];
    until_health(&replicas, ServingStatus::Serving).await;
    let account_id = PaymentServiceClient::new(replicas[0].channel.clone())
        .register_account(requests::register_account())
        .await
        .expect("account registered")
        .into_inner()
        .account_id;
    let before = Payment::Deposit("outage-paid-before".into());
    let order_id = before
        .send(&replicas[1].channel, &account_id)
        .await
        .expect("paid before the outage");

    let leave_unacked: Arc<BTreeSet<String>> = Arc::new(
        LEFT_UNACKED
            .iter()
            .map(|i| notification_id("before", *i))
            .collect(),
    );
    let deliveries = Deliveries::default();
    let stop_subscribers = CancellationToken::new();
    let subscribers = replicas
        .iter()
        .map(|replica| {
            tokio::spawn(subscriber(
                replica.channel.clone(),
                Arc::clone(&leave_unacked),
                Arc::clone(&deliveries),
                stop_subscribers.clone(),
            ))
        })
        .collect();

    let trustly = Trustly::new(&replicas);
    let mut answered = BTreeMap::new();
    for i in 0..BEFORE {
        let id = notification_id("before", i);
        let body = trustly.notification(&id);
        let (status, answer) = trustly.post(i, &body).await;
        assert_eq!(status, 200, "{id} accepted before the outage");
        assert_signed_ok(&answer, &id);
        answered.insert(id, (body, answer));
    }
    until_delivered(
        &deliveries,
        "every notification delivered, all but the left ones acknowledged",
        |got| {
            answered.keys().all(|id| {
                got.get(id).is_some_and(|d| {
                    leave_unacked.contains(id) || d.iter().any(|delivery| delivery.acked)
                })
            })
        },
    )
    .await;
    println!(
        "before: {BEFORE} notifications answered OK and delivered, {} left unacknowledged; \
         {order_id} paid for {}",
        leave_unacked.len(),
        before.key()
    );
    World {
        h,
        redis,
        prefix,
        replicas,
        trustly,
        account_id,
        deliveries,
        stop_subscribers,
        subscribers,
        answered,
        paid_before: (before, order_id),
    }
}

/// Redis stopped for [`OUTAGE`]: health NOT_SERVING, intake 503, payments refused before any
/// bank call. Returns the refused notifications and payments; Redis is back on return.
async fn during_outage(world: &mut World) -> (Vec<(String, String)>, Vec<Payment>) {
    world.redis.stop();
    let down = Instant::now();
    let to_not_serving = until_health(&world.replicas, ServingStatus::NotServing).await;

    let mut refused = Vec::new();
    for i in 0..DURING {
        let id = notification_id("during", i);
        let body = world.trustly.notification(&id);
        let (status, answer) = world.trustly.post(i, &body).await;
        assert_eq!(
            status,
            503,
            "{id} is refused while Redis is down (Trustly resends): {}",
            String::from_utf8_lossy(&answer)
        );
        refused.push((id, body));
    }

    let failed = vec![
        Payment::Deposit("outage-deposit-during".into()),
        Payment::Payout("outage-payout-during".into()),
        // Even a finished key cannot be answered without its stored outcome.
        world.paid_before.0.clone(),
    ];
    for (i, payment) in failed.iter().enumerate() {
        let channel = &world.replicas[i % world.replicas.len()].channel;
        let status = payment
            .send(channel, &world.account_id)
            .await
            .expect_err("no payment while Redis is down");
        assert_eq!(status.code(), Code::Unavailable, "{payment:?}: {status:?}");
        assert_eq!(
            status.get_details_error_info().map(|info| info.reason),
            Some(reason::STORE_UNAVAILABLE.to_owned()),
            "{payment:?}"
        );
    }
    let orders = orders_by_key(&world.h).await;
    for payment in &failed[..2] {
        assert!(
            !orders.contains_key(payment.key()),
            "{payment:?} reached the bank while Redis was down"
        );
    }
    tokio::time::sleep_until((down + OUTAGE).into()).await;
    world.redis.resume().await;
    println!(
        "outage: Redis down {:?} (ack deadline {ACK_DEADLINE:?}); both replicas NOT_SERVING after \
         {to_not_serving:?}; {} notifications answered 503; {} payments UNAVAILABLE \
         STORE_UNAVAILABLE, none reached the simulator",
        down.elapsed(),
        refused.len(),
        failed.len()
    );
    (refused, failed)
}

/// Redis back: SERVING without a restart, resends accepted, unacknowledged events redelivered,
/// every acknowledgement final, every key paid exactly once.
async fn after_outage(world: World, refused: Vec<(String, String)>, failed: Vec<Payment>) {
    let back = Instant::now();
    let to_serving = until_health(&world.replicas, ServingStatus::Serving).await;

    // Trustly resends what was refused, and once more one it already had an OK for (a lost
    // answer): the same signed reply, no second event.
    for (id, body) in &refused {
        assert_signed_ok(&world.trustly.resend_until_ok(body).await, id);
    }
    let (id, (body, first_answer)) = world.answered.first_key_value().unwrap();
    let (status, again) = world.trustly.post(1, body).await;
    assert_eq!(
        (status, &again),
        (200, first_answer),
        "{id}: a resend after the outage gets the reply given before it"
    );

    let expected: BTreeSet<String> = world
        .answered
        .keys()
        .cloned()
        .chain(refused.iter().map(|(id, _)| id.clone()))
        .collect();
    until_delivered(
        &world.deliveries,
        "every notification answered OK delivered to the group and acknowledged",
        |got| {
            expected
                .iter()
                .all(|id| got.get(id).is_some_and(|d| d.iter().any(|d| d.acked)))
        },
    )
    .await;
    // Longer than an ack deadline: anything still pending would be redelivered meanwhile.
    tokio::time::sleep(ACK_DEADLINE + Duration::from_secs(1)).await;
    world.stop_subscribers.cancel();
    for subscriber in world.subscribers {
        subscriber.await.unwrap();
    }
    check_deliveries(&world.deliveries, &expected, back);
    let (logged, pending) = log_and_pending(&world.redis, &world.prefix).await;
    let logged_twice: Vec<_> = logged.iter().filter(|(_, n)| **n > 1).collect();
    assert!(logged_twice.is_empty(), "logged twice: {logged_twice:?}");
    let unlogged: Vec<_> = expected
        .iter()
        .filter(|id| !logged.contains_key(*id))
        .collect();
    assert!(unlogged.is_empty(), "answered OK, not logged: {unlogged:?}");
    assert_eq!(pending, 0, "every event acknowledged, none pending");

    let paid = check_payments(&world.h, &world.replicas, &world.account_id, &failed).await;
    let (before, order_id) = &world.paid_before;
    assert_eq!(
        paid.get(before.key()),
        Some(order_id),
        "the key paid before the outage answers its order again"
    );
    println!(
        "after: both replicas SERVING {to_serving:?} after Redis returned (no restart); \
         {} refused notifications resent and answered OK, a duplicate answered identically; \
         {} events logged once each, 0 pending; payments retried with the same keys: {paid:?}",
        refused.len(),
        logged.len()
    );

    for replica in world.replicas {
        let (status, logs) = replica.terminate().await;
        assert!(status.success(), "clean exit on SIGTERM: {status:?}");
        assert!(!logs.contains("panicked"), "a replica panicked:\n{logs}");
    }
}

/// Every expected notification reached the group; those left unacknowledged came again after
/// their ack deadline (after Redis returned); nothing acknowledged was delivered again.
fn check_deliveries(deliveries: &Deliveries, expected: &BTreeSet<String>, back: Instant) {
    let got = by_notification(deliveries);
    let (mut summary, mut redelivered) = (BTreeMap::new(), Vec::new());
    for id in expected {
        let list = got
            .get(id)
            .unwrap_or_else(|| panic!("{id} never delivered"));
        let events: BTreeSet<&str> = list.iter().map(|d| d.event_id.as_str()).collect();
        assert_eq!(events.len(), 1, "{id}: one event, {list:#?}");
        let first_ack = list.iter().position(|d| d.acked).expect("acknowledged");
        assert_eq!(
            first_ack,
            list.len() - 1,
            "{id}: delivered again after it was acknowledged: {list:#?}"
        );
        let left = LEFT_UNACKED
            .iter()
            .any(|i| *id == notification_id("before", *i));
        if left {
            let (first, again) = (&list[0], &list[1]);
            assert!(
                again.delivery_count >= 2 && again.at - first.at >= ACK_DEADLINE,
                "{id}: redelivered after the ack deadline: {list:#?}"
            );
            assert!(
                again.at >= back,
                "{id}: redelivered after Redis returned: {list:#?}"
            );
            redelivered.push(format!(
                "{id} {:.1?} after its first delivery, {:.1?} after Redis returned",
                again.at - first.at,
                again.at - back
            ));
        }
        summary.insert(
            id.clone(),
            list.iter().map(|d| d.delivery_count).collect::<Vec<_>>(),
        );
    }
    println!("deliveries to {GROUP:?} (delivery counts per notification): {summary:?}");
    println!("redelivered: {redelivered:?}");
}

/// Retries the refused payments with their keys until paid; each key is then exactly one order
/// at the simulator, the client's. Returns key → order id.
async fn check_payments(
    h: &SimHarness,
    replicas: &[app::Process],
    account_id: &str,
    payments: &[Payment],
) -> BTreeMap<String, String> {
    let mut paid = BTreeMap::new();
    for (i, payment) in payments.iter().enumerate() {
        let started = Instant::now();
        let order_id = loop {
            let channel = &replicas[(i + 1) % replicas.len()].channel;
            match payment.send(channel, account_id).await {
                Ok(order_id) => break order_id,
                Err(status) => {
                    assert!(
                        status.code() == Code::Unavailable && started.elapsed() < WAIT,
                        "{payment:?}: {status:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        paid.insert(payment.key().to_owned(), order_id);
    }
    let orders = orders_by_key(h).await;
    for (key, order_id) in &paid {
        assert_eq!(
            orders.get(key),
            Some(&vec![order_id.clone()]),
            "{key}: executed once, the client's order"
        );
    }
    let twice: Vec<_> = orders.iter().filter(|(_, o)| o.len() > 1).collect();
    assert!(twice.is_empty(), "executed more than once: {twice:?}");
    paid
}
