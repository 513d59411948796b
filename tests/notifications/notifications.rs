//! Notifications end to end: the simulator posts to the sidecar's intake, which verifies, stores
//! and answers signed; gRPC subscribers receive them typed, with acks, redelivery, dead letters and
//! decisions. Runs on the in-memory log and on real Redis (its own random key prefix per test).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use support::requests::redis_url;

use support::requests::deposit;

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use support::{app, sim::*, *};
use tonic::{Code, Streaming};
use tonic_types::StatusExt;
use trustly_sidecar::{
    pb::{self, notification::Payload, notification_service_client::NotificationServiceClient},
    trustly::{canonical, sign::Backend, wire},
};

/// How long a test waits for a notification that must arrive.
const ARRIVAL: Duration = Duration::from_secs(15);

/// A simulator and a sidecar whose default NotificationURL is its own intake.
async fn start(extra: &[(&str, &str)]) -> (SimHarness, app::Sidecar) {
    let h = SimHarness::start().await;
    let (vars, files) = app::vars_for(&h, extra);
    let sidecar = app::spawn_with_intake(vars, files).await;
    (h, sidecar)
}

pub(crate) async fn subscribe(
    sidecar: &app::Sidecar,
    group: &str,
    start: pb::StartPosition,
) -> Streaming<pb::StreamNotificationsResponse> {
    let mut client = NotificationServiceClient::new(sidecar.channel.clone());
    let request = pb::StreamNotificationsRequest {
        consumer_group: group.into(),
        start: start as i32,
        ..Default::default()
    };
    client
        .stream_notifications(request)
        .await
        .expect("subscribed")
        .into_inner()
}

/// The next notification on the stream (heartbeats skipped).
pub(crate) async fn next(
    stream: &mut Streaming<pb::StreamNotificationsResponse>,
) -> pb::Notification {
    tokio::time::timeout(ARRIVAL, async {
        loop {
            let item = stream
                .message()
                .await
                .expect("stream ok")
                .expect("stream open");
            if let Some(pb::stream_notifications_response::Item::Notification(n)) = item.item {
                return n;
            }
        }
    })
    .await
    .expect("a notification arrives")
}

pub(crate) async fn ack(
    sidecar: &app::Sidecar,
    group: &str,
    n: &pb::Notification,
    decision: pb::Decision,
) -> bool {
    NotificationServiceClient::new(sidecar.channel.clone())
        .acknowledge_notification(pb::AcknowledgeNotificationRequest {
            consumer_group: group.into(),
            event_id: n.event_id.clone(),
            decision: decision as i32,
            notification_id: n.notification_id.clone(),
            ..Default::default()
        })
        .await
        .expect("ack")
        .into_inner()
        .acknowledged
}

/// The value of one metric series (its name and labels as exposed), 0 when it is absent. The
/// registry is process-wide: counts include the other tests of this binary.
async fn series(sidecar: &app::Sidecar, series: &str) -> f64 {
    let text = reqwest::get(format!("http://{}/metrics", sidecar.ops_addr))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Every delivery the simulator recorded for `order_id` (the sidecar's answers, judged by it).
async fn deposit_flow(extra: &[(&str, &str)]) {
    let (h, mut sidecar) = start(extra).await;
    let mut stream = subscribe(&sidecar, "app", pb::StartPosition::Group).await;
    let order_id = sidecar
        .client
        .deposit(deposit("m-notify"))
        .await
        .expect("deposit")
        .into_inner()
        .order_id;
    h.act(&order_id, "complete", json!({})).await;

    let pending = next(&mut stream).await;
    let credit = next(&mut stream).await;
    assert_eq!(
        (pending.method.as_str(), credit.method.as_str()),
        ("pending", "credit")
    );
    assert_eq!(credit.order_id, order_id);
    assert_eq!(credit.message_id, "m-notify");
    assert_eq!(credit.delivery_count, 1);
    assert!(credit.receive_time.is_some());
    let Some(Payload::Credit(payload)) = credit.payload.clone() else {
        panic!("typed credit: {credit:?}")
    };
    assert_eq!(
        payload.amount,
        Some(pb::Money {
            amount: "100.00".into(),
            currency_code: "EUR".into()
        })
    );
    assert_eq!(payload.end_user_id, "user-1");
    assert!(payload.time.is_some());
    assert!(ack(&sidecar, "app", &pending, pb::Decision::Unspecified).await);
    assert!(ack(&sidecar, "app", &credit, pb::Decision::Unspecified).await);
    assert!(
        !ack(&sidecar, "app", &credit, pb::Decision::Unspecified).await,
        "already acknowledged"
    );

    // Trustly (the simulator) got a valid signed OK for each, on the first attempt.
    let recorded = h
        .eventually("both acknowledged", || async {
            let d = h.deliveries(&order_id).await;
            (d.len() == 2).then_some(d)
        })
        .await;
    for delivery in recorded {
        assert_eq!(
            (delivery["outcome"].as_str(), delivery["status"].as_str()),
            (Some("acknowledged"), Some("OK")),
            "{delivery}"
        );
    }
}

#[tokio::test]
async fn deposit_notifications_reach_a_subscriber_typed_and_trustly_gets_a_signed_ok() {
    deposit_flow(&[]).await;
}

#[tokio::test]
async fn the_same_flow_on_redis() {
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    deposit_flow(&[
        ("TRUSTLY_SIDECAR_REDIS_URL", &redis_url()),
        ("TRUSTLY_SIDECAR_REDIS_PREFIX", &prefix),
    ])
    .await;
}

#[tokio::test]
async fn select_account_and_payouts_arrive_typed() {
    let (h, mut sidecar) = start(&[]).await;
    let mut stream = subscribe(&sidecar, "app", pb::StartPosition::Group).await;
    let order = sidecar
        .client
        .select_account(pb::SelectAccountRequest {
            end_user_id: "user-7".into(),
            message_id: "m-select".into(),
            user: deposit("x").user,
            ..Default::default()
        })
        .await
        .expect("select account")
        .into_inner();
    h.act(&order.order_id, "complete", json!({"account": {"clearinghouse": "SWEDEN", "bank_number": "6112", "account_number": "69706212"}})).await;
    let account = next(&mut stream).await;
    let Some(Payload::Account(payload)) = account.payload else {
        panic!("typed account")
    };
    assert_eq!(
        (
            payload.clearing_house.as_str(),
            payload.descriptor.as_str(),
            payload.last_digits.as_str()
        ),
        ("SWEDEN", "*706212", "706212")
    );
    assert!(payload.verified);
    assert!(payload.account_id.chars().all(|c| c.is_ascii_digit()));

    let payout = |message_id: &str| pb::AccountPayoutRequest {
        account_id: payload.account_id.clone(),
        end_user_id: "user-7".into(),
        message_id: message_id.into(),
        amount: Some(pb::Money {
            amount: "10.00".into(),
            currency_code: "EUR".into(),
        }),
        shopper_statement: "Payout".into(),
        ..Default::default()
    };
    let confirmed = sidecar
        .client
        .account_payout(payout("m-payout-ok"))
        .await
        .expect("payout")
        .into_inner()
        .order_id;
    let failed = sidecar
        .client
        .account_payout(payout("m-payout-fail"))
        .await
        .expect("payout")
        .into_inner()
        .order_id;
    h.act(&confirmed, "complete", json!({})).await;
    let confirmation = next(&mut stream).await;
    assert!(
        matches!(confirmation.payload, Some(Payload::PayoutConfirmation(_))),
        "{confirmation:?}"
    );
    assert_eq!(confirmation.order_id, confirmed);
    h.act(&failed, "fail", json!({})).await;
    let credit = next(&mut stream).await;
    assert_eq!(
        (credit.method.as_str(), credit.order_id.as_str()),
        ("credit", failed.as_str())
    );
}

#[tokio::test]
async fn a_withdraw_debit_waits_for_the_subscribers_decision() {
    let (h, mut sidecar) = start(&[]).await;
    let mut stream = subscribe(&sidecar, "app", pb::StartPosition::Group).await;
    let order_id = sidecar
        .client
        .withdraw(pb::WithdrawRequest {
            end_user_id: "user-1".into(),
            message_id: "m-withdraw".into(),
            currency_code: "EUR".into(),
            user: deposit("x").user,
            shopper_statement: "Withdraw".into(),
            ..Default::default()
        })
        .await
        .expect("withdraw")
        .into_inner()
        .order_id;
    h.act(&order_id, "complete", json!({"amount": "25.00"}))
        .await;
    let debit = next(&mut stream).await;
    assert_eq!(debit.method, "debit");
    assert!(debit.decision_required);
    assert!(ack(&sidecar, "app", &debit, pb::Decision::Failed).await);
    // Trustly hears FAILED, aborts the withdrawal and sends cancel.
    let cancel = next(&mut stream).await;
    assert_eq!(cancel.method, "cancel");
    assert!(!cancel.decision_required);
    let statuses: Vec<Value> = h
        .deliveries(&order_id)
        .await
        .into_iter()
        .map(|d| d["status"].clone())
        .collect();
    assert_eq!(statuses.first(), Some(&json!("FAILED")));
    assert_eq!(h.order(&order_id).await["order"]["status"], "Cancelled");
}

// === intake at the HTTP level ===

fn signed_notification(
    method: &str,
    notification_id: &str,
    signer: &dyn trustly_sidecar::trustly::sign::Signer,
) -> Value {
    let uuid = uuid::Uuid::new_v4().to_string();
    let data = json!({
        "orderid": "1234567890", "messageid": "m-direct", "notificationid": notification_id,
        "enduserid": "user-1", "amount": "5.00", "currency": "EUR",
        "timestamp": "2026-11-21 10:00:00.123456+00", "attributes": {}
    });
    let signature = signer
        .sign(canonical::plaintext(method, &uuid, &data).as_bytes())
        .unwrap();
    wire::notification(method, &uuid, &signature, data)
}

async fn post(sidecar: &app::Sidecar, body: impl Into<reqwest::Body>) -> (u16, Bytes) {
    let url = format!("http://{}/trustly/notifications", sidecar.intake_addr);
    let response = reqwest::Client::new()
        .post(url)
        .body(body)
        .send()
        .await
        .expect("post");
    (
        response.status().as_u16(),
        response.bytes().await.expect("body"),
    )
}

#[tokio::test]
async fn bad_notifications_are_refused_and_never_stored() {
    let (_h, sidecar) = start(&[]).await;
    let trustly = signer(Backend::RustCrypto, TRUSTLY_PRIVATE);
    let merchant = signer(Backend::RustCrypto, MERCHANT_PRIVATE);
    let mut tampered = signed_notification("credit", "9000000001", trustly.as_ref());
    tampered["params"]["data"]["amount"] = json!("5000.00");
    let mut unsigned = signed_notification("credit", "9000000002", trustly.as_ref());
    unsigned["params"]["signature"] = json!("");
    let wrong_key = signed_notification("credit", "9000000003", merchant.as_ref());
    let mut no_id = signed_notification("credit", "", trustly.as_ref());
    no_id["params"]["data"]
        .as_object_mut()
        .unwrap()
        .remove("notificationid");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("tampered", tampered.to_string().into_bytes(), 403),
        ("unsigned", unsigned.to_string().into_bytes(), 403),
        ("wrong key", wrong_key.to_string().into_bytes(), 403),
        ("oversized", vec![b' '; 100 * 1024], 413),
        ("malformed", b"{not json".to_vec(), 400),
        (
            "wrong version",
            json!({"method": "credit", "params": {}, "version": "2.0"})
                .to_string()
                .into_bytes(),
            400,
        ),
    ];
    for (name, body, status) in cases {
        let (got, answer) = post(&sidecar, body).await;
        assert_eq!(got, status, "{name}");
        assert!(
            !String::from_utf8_lossy(&answer).contains("signature\":"),
            "{name}: nothing signed"
        );
    }
    // The first event a new group sees is the valid one posted after all the bad ones.
    let (status, _) = post(
        &sidecar,
        signed_notification("credit", "9000000009", trustly.as_ref()).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let mut stream = subscribe(&sidecar, "audit", pb::StartPosition::Group).await;
    assert_eq!(next(&mut stream).await.notification_id, "9000000009");
    // Refusals are counted (the metrics registry is process-wide: at least these tests' own).
    let metrics = reqwest::get(format!("http://{}/metrics", sidecar.ops_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (outcome, at_least) in [
        ("refused_signature", 3.0),
        ("refused_malformed", 2.0),
        ("refused_too_large", 1.0),
    ] {
        let total: f64 = metrics
            .lines()
            .filter(|line| {
                line.starts_with("trustly_sidecar_notifications_total{")
                    && line.contains(&format!("outcome=\"{outcome}\""))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(total >= at_least, "{outcome}: {total} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_duplicate_gets_the_identical_reply_and_no_second_event() {
    let (_h, sidecar) = start(&[]).await;
    let trustly = signer(Backend::RustCrypto, TRUSTLY_PRIVATE);
    let notification = signed_notification("credit", "9100000001", trustly.as_ref()).to_string();
    let (first_status, first) = post(&sidecar, notification.clone()).await;
    let (second_status, second) = post(&sidecar, notification).await;
    assert_eq!((first_status, second_status), (200, 200));
    assert_eq!(first, second, "byte-identical signed reply");
    let answer = wire::parse_notification_response(&first).expect("signed answer");
    assert!(answer.verify(verifier(Backend::RustCrypto, MERCHANT_PUBLIC).as_ref()));
    assert_eq!(answer.data, json!({"status": "OK"}));

    post(
        &sidecar,
        signed_notification("credit", "9100000002", trustly.as_ref()).to_string(),
    )
    .await;
    let mut stream = subscribe(&sidecar, "app", pb::StartPosition::Group).await;
    assert_eq!(next(&mut stream).await.notification_id, "9100000001");
    assert_eq!(
        next(&mut stream).await.notification_id,
        "9100000002",
        "no second 9100000001"
    );
}

#[tokio::test]
async fn unacknowledged_events_are_redelivered_then_dead_lettered_and_replayed() {
    let (_h, sidecar) = start(&[
        ("TRUSTLY_SIDECAR_ACK_DEADLINE", "200ms"),
        ("TRUSTLY_SIDECAR_MAX_DELIVERIES", "2"),
    ])
    .await;
    let trustly = signer(Backend::RustCrypto, TRUSTLY_PRIVATE);
    post(
        &sidecar,
        signed_notification("credit", "9200000001", trustly.as_ref()).to_string(),
    )
    .await;
    let mut first = subscribe(&sidecar, "app", pb::StartPosition::Group).await;
    let once = next(&mut first).await;
    assert_eq!(once.delivery_count, 1);
    drop(first); // never acknowledged
    let mut second = subscribe(&sidecar, "app", pb::StartPosition::Group).await;
    let twice = next(&mut second).await;
    assert_eq!(
        (twice.notification_id.as_str(), twice.delivery_count),
        ("9200000001", 2)
    );
    drop(second);

    let mut client = NotificationServiceClient::new(sidecar.channel.clone());
    let dead = tokio::time::timeout(ARRIVAL, async {
        loop {
            // A subscriber keeps claiming; the third delivery would exceed the maximum.
            let _keep_claiming = subscribe(&sidecar, "app", pb::StartPosition::Group).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let list = client
                .list_dead_letters(pb::ListDeadLettersRequest {
                    consumer_group: "app".into(),
                    page_size: 10,
                })
                .await
                .unwrap()
                .into_inner()
                .notifications;
            if !list.is_empty() {
                return list;
            }
        }
    })
    .await
    .expect("dead-lettered");
    assert_eq!(dead[0].notification_id, "9200000001");

    client
        .replay_dead_letter(pb::ReplayDeadLetterRequest {
            consumer_group: "app".into(),
            event_id: dead[0].event_id.clone(),
        })
        .await
        .expect("replayed");
    let mut third = subscribe(&sidecar, "app", pb::StartPosition::Group).await;
    let again = next(&mut third).await;
    assert_eq!(again.notification_id, "9200000001");
    assert!(ack(&sidecar, "app", &again, pb::Decision::Unspecified).await);
    let status = client
        .replay_dead_letter(pb::ReplayDeadLetterRequest {
            consumer_group: "app".into(),
            event_id: dead[0].event_id.clone(),
        })
        .await
        .expect_err("no longer dead");
    assert_eq!(status.code(), Code::NotFound);
    // Delivery series carry the consumer group.
    for counter in ["dead_letters", "stream_redeliveries", "stream_deliveries"] {
        let name = format!(r#"trustly_sidecar_{counter}_total{{group="app"}}"#);
        assert!(series(&sidecar, &name).await >= 1.0, "{name}");
    }
}

#[tokio::test]
async fn two_sidecars_share_one_redis() {
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let url = redis_url();
    let vars = [
        ("TRUSTLY_SIDECAR_REDIS_URL", url.as_str()),
        ("TRUSTLY_SIDECAR_REDIS_PREFIX", prefix.as_str()),
    ];
    let (h, a) = start(&vars).await;
    let (vars_b, files_b) = app::vars_for(&h, &vars);
    let b = app::spawn_with_intake(vars_b, files_b).await;
    let trustly = signer(Backend::RustCrypto, TRUSTLY_PRIVATE);

    // Two subscribers of one group on different replicas share; another group gets everything.
    // Which subscriber wins an event is a race (each replica's own subscriber is woken by its
    // append, the other polls), so events are posted, alternating replicas, until both
    // subscribers got one; a real sharing bug starves one side for all of them.
    let mut shared_a = subscribe(&a, "shared", pb::StartPosition::Group).await;
    let mut shared_b = subscribe(&b, "shared", pb::StartPosition::Group).await;
    let mut audit = subscribe(&b, "audit", pb::StartPosition::Group).await;
    const MAX_EVENTS: usize = 40;
    let mut seen = std::collections::BTreeMap::new();
    let (mut from_a, mut from_b, mut posted) = (0, 0, Vec::new());
    while posted.len() < 6 || (from_a == 0 || from_b == 0) && posted.len() < MAX_EVENTS {
        let i = posted.len();
        let replica = if i % 2 == 0 { &a } else { &b };
        let id = format!("93000000{i:02}");
        let (status, _) = post(
            replica,
            signed_notification("credit", &id, trustly.as_ref()).to_string(),
        )
        .await;
        assert_eq!(status, 200);
        posted.push(id);
        tokio::select! {
            n = next(&mut shared_a) => { from_a += 1; assert!(seen.insert(n.notification_id.clone(), "a").is_none(), "delivered twice"); ack(&a, "shared", &n, pb::Decision::Unspecified).await; }
            n = next(&mut shared_b) => { from_b += 1; assert!(seen.insert(n.notification_id.clone(), "b").is_none(), "delivered twice"); ack(&b, "shared", &n, pb::Decision::Unspecified).await; }
        }
    }
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        posted,
        "each event exactly once within the group"
    );
    assert!(
        from_a > 0 && from_b > 0,
        "both replicas' subscribers got a share of {} events: {seen:?}",
        posted.len()
    );
    let mut audit_ids = Vec::new();
    for _ in 0..posted.len() {
        audit_ids.push(next(&mut audit).await.notification_id);
    }
    audit_ids.sort();
    assert_eq!(audit_ids, posted, "every group gets every event");
    let _ = h;
}

#[tokio::test]
async fn idle_streams_get_heartbeats() {
    let (_h, sidecar) = start(&[("TRUSTLY_SIDECAR_HEARTBEAT_INTERVAL", "100ms")]).await;
    let mut stream = subscribe(&sidecar, "app", pb::StartPosition::Group).await;
    let item = tokio::time::timeout(ARRIVAL, stream.message())
        .await
        .expect("in time")
        .expect("ok")
        .expect("open");
    assert!(
        matches!(
            item.item,
            Some(pb::stream_notifications_response::Item::Heartbeat(
                pb::Heartbeat { time: Some(_) }
            ))
        ),
        "{item:?}"
    );
}

#[tokio::test]
async fn a_method_filter_and_a_start_time_select_events() {
    let (_h, sidecar) = start(&[]).await;
    let trustly = signer(Backend::RustCrypto, TRUSTLY_PRIVATE);
    post(
        &sidecar,
        signed_notification("pending", "9400000001", trustly.as_ref()).to_string(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = std::time::SystemTime::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    post(
        &sidecar,
        signed_notification("credit", "9400000002", trustly.as_ref()).to_string(),
    )
    .await;

    let mut client = NotificationServiceClient::new(sidecar.channel.clone());
    let credits_only = pb::StreamNotificationsRequest {
        consumer_group: "credits".into(),
        methods: vec!["credit".into()],
        ..Default::default()
    };
    let mut stream = client
        .stream_notifications(credits_only)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut stream).await.notification_id, "9400000002");

    let from_time = pb::StreamNotificationsRequest {
        consumer_group: "late".into(),
        start: pb::StartPosition::FromTime as i32,
        from_time: Some(prost_types::Timestamp::from(between)),
        ..Default::default()
    };
    let mut stream = client
        .stream_notifications(from_time)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next(&mut stream).await.notification_id, "9400000002");

    let bad = pb::StreamNotificationsRequest {
        consumer_group: "no spaces".into(),
        ..Default::default()
    };
    assert_eq!(
        client
            .stream_notifications(bad)
            .await
            .expect_err("bad group")
            .code(),
        Code::InvalidArgument
    );
}

fn kyc_deposit(message_id: &str) -> pb::DepositRequest {
    pb::DepositRequest {
        request_kyc: true,
        ..deposit(message_id)
    }
}

#[tokio::test]
async fn without_a_decision_in_time_the_answer_is_withheld_until_one_comes() {
    let (h, mut sidecar) = start(&[("TRUSTLY_SIDECAR_DECISION_DEADLINE", "200ms")]).await;
    let mut stream = subscribe(&sidecar, "app", pb::StartPosition::Group).await;
    let order_id = sidecar
        .client
        .deposit(kyc_deposit("m-kyc"))
        .await
        .expect("deposit")
        .into_inner()
        .order_id;
    h.act(&order_id, "complete", json!({})).await;
    let kyc = next(&mut stream).await;
    assert!(
        matches!(kyc.payload, Some(Payload::Kyc(_))) && kyc.decision_required,
        "{kyc:?}"
    );
    // Trustly hears nothing valid (503) and resends, until the subscriber decides.
    h.eventually("withheld answers", || async {
        let withheld = h
            .deliveries(&order_id)
            .await
            .iter()
            .filter(|d| d["http_status"] == 503)
            .count();
        (withheld >= 2).then_some(())
    })
    .await;
    assert!(ack(&sidecar, "app", &kyc, pb::Decision::Continue).await);
    assert_eq!(next(&mut stream).await.method, "pending");
    assert_eq!(next(&mut stream).await.method, "credit");
    let statuses: Vec<Value> = h
        .deliveries(&order_id)
        .await
        .into_iter()
        .filter(|d| d["method"] == "kyc" && d["outcome"] == "acknowledged")
        .map(|d| d["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("CONTINUE")]);
    let kyc = |outcome| {
        format!(r#"trustly_sidecar_notifications_total{{method="kyc",outcome="{outcome}"}}"#)
    };
    assert!(series(&sidecar, &kyc("withheld")).await >= 2.0);
    assert!(series(&sidecar, &kyc("decided")).await >= 1.0);
}

#[tokio::test]
async fn the_answer_fallback_continues_without_a_subscriber() {
    let (h, mut sidecar) = start(&[
        ("TRUSTLY_SIDECAR_DECISION_DEADLINE", "100ms"),
        ("TRUSTLY_SIDECAR_DECISION_FALLBACK", "answer"),
    ])
    .await;
    let order_id = sidecar
        .client
        .deposit(kyc_deposit("m-kyc-auto"))
        .await
        .expect("deposit")
        .into_inner()
        .order_id;
    h.act(&order_id, "complete", json!({})).await;
    let kyc = h
        .eventually("kyc answered", || async {
            h.deliveries(&order_id)
                .await
                .into_iter()
                .find(|d| d["method"] == "kyc" && d["outcome"] == "acknowledged")
        })
        .await;
    assert_eq!(kyc["status"], "CONTINUE");
    h.eventually("the deposit continues", || async {
        (h.order(&order_id).await["order"]["status"] == "Credited").then_some(())
    })
    .await;
    let fallback = r#"trustly_sidecar_notifications_total{method="kyc",outcome="fallback"}"#;
    assert!(series(&sidecar, fallback).await >= 1.0);
}

#[tokio::test]
async fn a_notification_signed_by_another_clients_serializer_is_stored_and_counted() {
    let (_h, sidecar) = start(&[]).await;
    let trustly = signer(Backend::RustCrypto, TRUSTLY_PRIVATE);
    let uuid = uuid::Uuid::new_v4().to_string();
    // PHP renders `true` as "1" and the number 5.00 as "5" (spec §3.4); written out by hand.
    let plaintext = format!(
        "credit{uuid}amount5currencyEURenduseriduser-1messageidm-phpnotificationid9000000777orderid1234567890refund1"
    );
    let signature = trustly.sign(plaintext.as_bytes()).unwrap();
    let body = format!(
        r#"{{"method":"credit","params":{{"signature":"{signature}","uuid":"{uuid}","data":{{"amount":5.00,"currency":"EUR","enduserid":"user-1","messageid":"m-php","notificationid":"9000000777","orderid":"1234567890","refund":true}}}},"version":"1.1"}}"#
    );
    let (status, answer) = post(&sidecar, body.clone()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let answer = wire::parse_notification_response(&answer).expect("a signed answer");
    assert_eq!(answer.data["status"], "OK");
    // The same message with the amount changed is refused.
    let tampered = body.replace("\"amount\":5.00", "\"amount\":6.00");
    assert_eq!(post(&sidecar, tampered).await.0, 403);
    let metrics = reqwest::get(format!("http://{}/metrics", sidecar.ops_addr))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.lines().any(|line| line.starts_with(
            r#"trustly_sidecar_signature_variants_total{source="notification",variant="booleans_php+numbers_shortest"}"#
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failed_payout_can_announce_itself_with_a_typed_payoutfailed() {
    let (h, mut sidecar) = start(&[]).await;
    let mut stream = subscribe(&sidecar, "app", pb::StartPosition::Group).await;
    let account_id = sidecar
        .client
        .register_account(support::requests::register_account())
        .await
        .expect("register")
        .into_inner()
        .account_id;
    let order_id = sidecar
        .client
        .account_payout(pb::AccountPayoutRequest {
            account_id,
            end_user_id: "user-9".into(),
            message_id: "m-payout-failed".into(),
            amount: Some(pb::Money {
                amount: "12.50".into(),
                currency_code: "EUR".into(),
            }),
            shopper_statement: "Payout".into(),
            ..Default::default()
        })
        .await
        .expect("payout")
        .into_inner()
        .order_id;
    h.act(&order_id, "fail", json!({"payoutfailed": true}))
        .await;
    let failed = next(&mut stream).await;
    assert_eq!(
        (
            failed.method.as_str(),
            failed.order_id.as_str(),
            failed.message_id.as_str()
        ),
        ("payoutfailed", order_id.as_str(), "m-payout-failed")
    );
    let Some(Payload::PayoutFailed(payload)) = failed.payload else {
        panic!("typed payoutfailed: {failed:?}")
    };
    assert_eq!(payload.end_user_id, "user-9");
    assert_eq!(
        payload.amount,
        Some(pb::Money {
            amount: "12.50".into(),
            currency_code: "EUR".into()
        })
    );
    assert_eq!(payload.error_code, "ERROR_PAYOUT_FAILED");
    assert!(!payload.error_message.is_empty());
    assert!(payload.time.is_some());
    // The money comes back with the credit that follows.
    assert_eq!(next(&mut stream).await.method, "credit");
}

async fn ack_with_limit(
    sidecar: &app::Sidecar,
    n: &pb::Notification,
    decision: pb::Decision,
    limit: &str,
) -> Result<bool, tonic::Status> {
    NotificationServiceClient::new(sidecar.channel.clone())
        .acknowledge_notification(pb::AcknowledgeNotificationRequest {
            consumer_group: "app".into(),
            event_id: n.event_id.clone(),
            decision: decision as i32,
            notification_id: n.notification_id.clone(),
            limit: limit.into(),
        })
        .await
        .map(|r| r.into_inner().acknowledged)
}

#[tokio::test]
async fn a_kyc_continue_can_carry_a_limit_that_is_signed_and_honoured() {
    let (h, mut sidecar) = start(&[]).await;
    let mut stream = subscribe(&sidecar, "app", pb::StartPosition::Group).await;
    let order_id = sidecar
        .client
        .deposit(kyc_deposit("m-kyc-limit"))
        .await
        .expect("deposit")
        .into_inner()
        .order_id;
    h.act(&order_id, "complete", json!({"amount": "100.00"}))
        .await;
    let kyc = next(&mut stream).await;
    assert!(kyc.decision_required);
    for (decision, limit) in [
        (pb::Decision::Continue, "1.001"),
        (pb::Decision::Continue, "-5.00"),
        (pb::Decision::Continue, "0"),
        (pb::Decision::Finish, "40.00"),
        (pb::Decision::Unspecified, "40.00"),
    ] {
        let status = ack_with_limit(&sidecar, &kyc, decision, limit)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{decision:?} {limit}");
        let fields: Vec<String> = status
            .get_details_bad_request()
            .expect("field violations")
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["limit"], "{decision:?} {limit}");
    }
    assert!(
        ack_with_limit(&sidecar, &kyc, pb::Decision::Continue, "40.00")
            .await
            .expect("ack")
    );
    // Trustly (the simulator) verified the answer with the limit inside the signed data, and
    // credited at most the limit.
    assert_eq!(next(&mut stream).await.method, "pending");
    let credit = next(&mut stream).await;
    let Some(Payload::Credit(credit)) = credit.payload else {
        panic!("typed credit")
    };
    assert_eq!(credit.amount.expect("amount").amount, "40.00");
    let answers: Vec<(Value, Value)> = h
        .deliveries(&order_id)
        .await
        .into_iter()
        .filter(|d| d["method"] == "kyc" && d["outcome"] == "acknowledged")
        .map(|d| (d["status"].clone(), d["limit"].clone()))
        .collect();
    assert_eq!(answers, [(json!("CONTINUE"), json!("40.00"))]);
}
