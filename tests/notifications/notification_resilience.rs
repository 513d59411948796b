//! What happens to notifications when things break: Redis stops mid-run (intake answers 503, the
//! simulator resends, nothing is lost once Redis is back), and a sidecar killed with SIGKILL during
//! a burst (after restart every notification reaches the subscriber; none was answered OK without
//! being stored).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use support::requests::free_port;

use std::{collections::BTreeSet, time::Duration};

use serde_json::json;
use support::{app, redis::PrivateRedis, sim::*};
use trustly_sidecar::pb::{
    self, notification_service_client::NotificationServiceClient,
    payment_service_client::PaymentServiceClient,
};

/// Resends long enough to outlast an outage or a restart in these tests (~30 s at most).
fn patient_retries(sim: &mut trustly_sidecar::sim::SimConfig) {
    sim.retry.max_attempts = 400;
}

async fn next(
    stream: &mut tonic::Streaming<pb::StreamNotificationsResponse>,
) -> Option<pb::Notification> {
    loop {
        match stream.message().await {
            Ok(Some(pb::StreamNotificationsResponse {
                item: Some(pb::stream_notifications_response::Item::Notification(n)),
            })) => return Some(n),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

#[tokio::test]
async fn redis_stopped_mid_run_loses_nothing() {
    let mut redis = PrivateRedis::start().await;
    let h = SimHarness::start_with(|sim, _| patient_retries(sim)).await;
    let url = redis.url();
    let (vars, files) = app::vars_for(
        &h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", &url),
            ("TRUSTLY_SIDECAR_REDIS_TIMEOUT", "300ms"),
        ],
    );
    let mut sidecar = app::spawn_with_intake(vars, files).await;
    let order_id = sidecar
        .client
        .deposit(deposit("m-outage"))
        .await
        .expect("deposit")
        .into_inner()
        .order_id;

    redis.stop();
    h.act(&order_id, "complete", json!({})).await;
    // Intake refuses to answer OK for what it cannot store: the simulator sees 503s and resends.
    h.eventually("503s while Redis is down", || async {
        let deliveries = h.deliveries(&order_id).await;
        (deliveries
            .iter()
            .filter(|d| d["http_status"] == 503)
            .count()
            >= 2)
            .then_some(())
    })
    .await;
    redis.resume().await;

    let mut client = NotificationServiceClient::new(sidecar.channel.clone());
    let mut received = BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while received.len() < 2 {
            let request = pb::StreamNotificationsRequest {
                consumer_group: "app".into(),
                ..Default::default()
            };
            let Ok(stream) = client.stream_notifications(request).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let mut stream = stream.into_inner();
            while let Some(n) = next(&mut stream).await {
                received.insert(n.method.clone());
                if received.len() == 2 {
                    break;
                }
            }
        }
    })
    .await
    .expect("pending and credit arrive after Redis returns");
    assert_eq!(
        received,
        BTreeSet::from(["credit".to_owned(), "pending".to_owned()])
    );
    // The subscriber can see an event before the simulator has read the OK sent for it (the OK
    // follows the store): wait for both answers, then check there were exactly two.
    let deliveries = h
        .eventually("both notifications answered OK", || async {
            let deliveries = h.deliveries(&order_id).await;
            (deliveries
                .iter()
                .filter(|d| d["outcome"] == "acknowledged")
                .count()
                >= 2)
                .then_some(deliveries)
        })
        .await;
    let acknowledged: Vec<_> = deliveries
        .iter()
        .filter(|d| d["outcome"] == "acknowledged")
        .collect();
    assert_eq!(
        acknowledged.len(),
        2,
        "each answered OK once stored: {deliveries:?}"
    );
    drop(redis);
}

#[tokio::test]
async fn a_sidecar_killed_during_a_burst_loses_no_notification() {
    const ORDERS: usize = 20;
    let h = SimHarness::start_with(|sim, _| patient_retries(sim)).await;
    let (grpc, intake) = (free_port(), free_port());
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    // Fixed ports: the restarted sidecar is where the simulator's NotificationURL points.
    let (grpc_listen, intake_listen, url) = (
        format!("127.0.0.1:{grpc}"),
        format!("127.0.0.1:{intake}"),
        format!("http://127.0.0.1:{intake}/trustly/notifications"),
    );
    let vars = [
        ("TRUSTLY_SIDECAR_REDIS_URL", redis_url.as_str()),
        ("TRUSTLY_SIDECAR_REDIS_PREFIX", prefix.as_str()),
        ("TRUSTLY_SIDECAR_GRPC_LISTEN", grpc_listen.as_str()),
        (
            "TRUSTLY_SIDECAR_NOTIFICATION_LISTEN",
            intake_listen.as_str(),
        ),
        ("TRUSTLY_SIDECAR_NOTIFICATION_URL", url.as_str()),
        ("RUST_LOG", "warn"),
    ];

    let first = app::spawn_process(&h, &vars).await;
    let mut payments = PaymentServiceClient::new(first.channel.clone());
    let mut orders = Vec::new();
    for i in 0..ORDERS {
        orders.push(
            payments
                .deposit(deposit(&format!("m-burst-{i}")))
                .await
                .expect("deposit")
                .into_inner()
                .order_id,
        );
    }
    // The burst: 2 notifications per order, delivered concurrently; kill mid-way.
    for order_id in &orders {
        h.act(order_id, "complete", json!({})).await;
    }
    h.eventually(
        "some notifications acknowledged before the kill",
        || async {
            let acked = h
                .admin_get("deliveries")
                .await
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["outcome"] == "acknowledged")
                .count();
            (acked >= 5).then_some(())
        },
    )
    .await;
    drop(payments);
    let _ = first.kill().await;
    let acknowledged_before_restart: BTreeSet<String> = h
        .admin_get("notifications")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["answered_status"] == "OK")
        .map(|n| n["notification_id"].as_str().unwrap().to_owned())
        .collect();

    let second = app::spawn_process(&h, &vars).await;
    let mut subscriber = NotificationServiceClient::new(second.channel.clone());
    let request = pb::StreamNotificationsRequest {
        consumer_group: "app".into(),
        ..Default::default()
    };
    let mut stream = subscriber
        .stream_notifications(request)
        .await
        .expect("subscribed")
        .into_inner();
    let mut received = BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while received.len() < ORDERS * 2 {
            let n = next(&mut stream).await.expect("stream open");
            received.insert(n.notification_id.clone());
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "only {} of {} notifications arrived",
            received.len(),
            ORDERS * 2
        )
    });

    let all: BTreeSet<String> = h
        .admin_get("notifications")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["notification_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all.len(), ORDERS * 2);
    assert_eq!(received, all, "every notification reached the subscriber");
    assert!(
        acknowledged_before_restart.is_subset(&received),
        "nothing was answered OK without being stored"
    );
    // The kill really happened mid-burst: some answers came before it, some deliveries failed
    // while no sidecar was listening, and the simulator resent those.
    assert!(
        !acknowledged_before_restart.is_empty() && acknowledged_before_restart.len() < ORDERS * 2,
        "{}",
        acknowledged_before_restart.len()
    );
    let refused = h
        .admin_get("deliveries")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["outcome"] == "transport_error")
        .count();
    assert!(refused > 0, "some deliveries hit the dead sidecar");
    h.eventually(
        "the simulator got a signed OK for every notification",
        || async {
            let answered = h
                .admin_get("notifications")
                .await
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["answered_status"] == "OK")
                .count();
            (answered == ORDERS * 2).then_some(())
        },
    )
    .await;
}

/// The shared deposit, for EUR 10.00.
fn deposit(message_id: &str) -> pb::DepositRequest {
    pb::DepositRequest {
        amount: "10.00".into(),
        ..support::requests::deposit(message_id)
    }
}
