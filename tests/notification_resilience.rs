//! What happens to notifications when things break: Redis stops mid-run (intake answers 503, the
//! simulator resends, nothing is lost once Redis is back), and a sidecar killed with SIGKILL during
//! a burst (after restart every notification reaches the subscriber; none was answered OK without
//! being stored).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

mod support;

use support::requests::free_port;

use std::{
    collections::BTreeSet,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::json;
use support::{app, sim::*};
use tonic::transport::Channel;
use trustly_sidecar::pb::{
    self, notification_service_client::NotificationServiceClient,
    payment_service_client::PaymentServiceClient,
};

/// Resends long enough to outlast an outage or a restart in these tests (~30 s at most).
fn patient_retries(sim: &mut trustly_sidecar::sim::SimConfig) {
    sim.retry.max_attempts = 400;
}

/// A private redis-server, so stopping it cannot disturb other tests.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        let redis = Self {
            port,
            child: Some(child),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private redis did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
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
    let mut redis = PrivateRedis::start(free_port());
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
        let deliveries = h.order(&order_id).await["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (deliveries
            .iter()
            .filter(|d| d["http_status"] == 503)
            .count()
            >= 2)
            .then_some(())
    })
    .await;
    let redis = PrivateRedis::start(redis.port);

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
    let deliveries = h.order(&order_id).await["deliveries"]
        .as_array()
        .cloned()
        .unwrap();
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

/// The sidecar binary as a separate process, so it can be killed with SIGKILL.
struct SidecarProcess {
    child: Child,
    grpc: u16,
}

impl SidecarProcess {
    fn start(vars: &std::collections::HashMap<String, String>) -> Self {
        let grpc: u16 = vars["TRUSTLY_SIDECAR_GRPC_LISTEN"]
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_trustly-sidecar"))
            .env_clear()
            .envs(vars)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .expect("sidecar starts");
        Self { child, grpc }
    }

    async fn channel(&self) -> Channel {
        for _ in 0..200 {
            if let Ok(channel) = Channel::from_shared(format!("http://127.0.0.1:{}", self.grpc))
                .unwrap()
                .connect()
                .await
            {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("sidecar process did not start serving");
    }

    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for SidecarProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_sidecar_killed_during_a_burst_loses_no_notification() {
    const ORDERS: usize = 20;
    let h = SimHarness::start_with(|sim, _| patient_retries(sim)).await;
    let (grpc, intake) = (free_port(), free_port());
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let (mut vars, _files) = app::vars_for(
        &h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", &redis_url),
            ("TRUSTLY_SIDECAR_REDIS_PREFIX", &prefix),
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
    vars.insert(
        "TRUSTLY_SIDECAR_NOTIFICATION_URL".into(),
        format!("http://127.0.0.1:{intake}/trustly/notifications"),
    );

    let first = SidecarProcess::start(&vars);
    let mut payments = PaymentServiceClient::new(first.channel().await);
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
    first.kill_9();
    let acknowledged_before_restart: BTreeSet<String> = h
        .admin_get("notifications")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["answered_status"] == "OK")
        .map(|n| n["notification_id"].as_str().unwrap().to_owned())
        .collect();

    let second = SidecarProcess::start(&vars);
    let mut subscriber = NotificationServiceClient::new(second.channel().await);
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
