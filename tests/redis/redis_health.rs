//! Health follows the store. A sidecar started before its Redis (standalone and Cluster) serves
//! at once but is not ready, and becomes ready when Redis answers; Redis stopped under a running
//! sidecar turns health watches (tonic, and Python's stock grpcio-health-checking) NOT_SERVING,
//! then SERVING when it returns; at shutdown a watch sees NOT_SERVING and ends, and subscriber
//! streams end with UNAVAILABLE, so the drain finishes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::{redis_cluster::Cluster, support};

use std::{future::Future, net::SocketAddr, time::Duration};

use serde_json::json;
use support::{app, redis::PrivateRedis, requests::deposit, sim::*};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::{Code, Streaming, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
    health_client::HealthClient,
};
use tonic_types::StatusExt;
use trustly_sidecar::{grpc::status::reason, pb};

/// Longest wait for a change of health (the probe interval plus the Redis timeout is ~1.5 s
/// here; a connection attempt comes at most every 5 s).
const WAIT: Duration = Duration::from_secs(30);
/// Every service health reports on.
const SERVICES: [&str; 5] = [
    "",
    "trustly.v1.PaymentService",
    "trustly.v1.NotificationService",
    "trustly.v1.AccountService",
    "trustly.v1.OrderService",
];

async fn get(ops: SocketAddr, path: &str) -> u16 {
    reqwest::get(format!("http://{ops}{path}"))
        .await
        .expect("ops port answers")
        .status()
        .as_u16()
}

async fn check(channel: &Channel, service: &str) -> ServingStatus {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status()
}

async fn watch(channel: &Channel, service: &str) -> Streaming<HealthCheckResponse> {
    HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health watch")
        .into_inner()
}

/// The next status a watch sends.
async fn next_status(stream: &mut Streaming<HealthCheckResponse>) -> ServingStatus {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a status within the bound")
        .expect("the watch is open")
        .expect("a message")
        .status()
}

/// A sidecar on the Redis at `url` (a Cluster's seeds when `cluster`), with a short Redis timeout
/// so an outage shows quickly.
async fn spawn_on(h: &SimHarness, url: &str, cluster: bool) -> app::Sidecar {
    let cluster = if cluster { "true" } else { "false" };
    let (vars, files) = app::vars_for(
        h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", url),
            ("TRUSTLY_SIDECAR_REDIS_CLUSTER", cluster),
            ("TRUSTLY_SIDECAR_REDIS_TIMEOUT", "500ms"),
        ],
    );
    app::spawn_with_intake(vars, files).await
}

/// A sidecar whose Redis at `url` starts only after it (`start_redis`): alive, not ready, store
/// calls refused; then ready, and a notification is accepted.
async fn started_before_redis<T>(url: &str, cluster: bool, start_redis: impl Future<Output = T>) {
    let h = SimHarness::start().await;
    let mut sidecar = spawn_on(&h, url, cluster).await;
    assert_eq!(get(sidecar.ops_addr, "/healthz").await, 200, "alive");
    assert_eq!(get(sidecar.ops_addr, "/readyz").await, 503, "not ready");
    for service in SERVICES {
        assert_eq!(
            check(&sidecar.channel, service).await,
            ServingStatus::NotServing,
            "{service:?}"
        );
    }
    let mut health = watch(&sidecar.channel, "").await;
    assert_eq!(next_status(&mut health).await, ServingStatus::NotServing);
    // Fails fast (no waiting for a timeout) and says so: nothing was sent to Trustly.
    let started = std::time::Instant::now();
    let refused = sidecar
        .client
        .deposit(deposit("m-before-redis"))
        .await
        .expect_err("no store yet");
    assert!(started.elapsed() < Duration::from_millis(500), "fails fast");
    assert_eq!(refused.code(), Code::Unavailable);
    assert_eq!(
        refused.get_details_error_info().unwrap().reason,
        reason::STORE_UNAVAILABLE
    );

    let _redis = start_redis.await;
    assert_eq!(next_status(&mut health).await, ServingStatus::Serving);
    assert_eq!(get(sidecar.ops_addr, "/readyz").await, 200, "ready");
    for service in SERVICES {
        assert_eq!(
            check(&sidecar.channel, service).await,
            ServingStatus::Serving
        );
    }
    let order_id = sidecar
        .client
        .deposit(deposit("m-after-redis"))
        .await
        .expect("deposit once Redis answers")
        .into_inner()
        .order_id;
    h.act(&order_id, "complete", json!({})).await;
    h.eventually("a notification answered OK", || async {
        let deliveries = h.deliveries(&order_id).await;
        deliveries
            .iter()
            .any(|d| d["outcome"] == "acknowledged")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_sidecar_started_before_its_redis_becomes_ready_when_redis_answers() {
    let mut redis = PrivateRedis::unstarted();
    let url = redis.url();
    started_before_redis(&url, false, async move {
        redis.resume().await;
        redis
    })
    .await;
}

#[tokio::test]
async fn a_sidecar_started_before_its_redis_cluster_becomes_ready_when_it_forms() {
    let mut cluster = Cluster::unstarted();
    let urls = cluster.urls();
    started_before_redis(&urls, true, async move {
        tokio::task::spawn_blocking(move || {
            cluster.start();
            cluster
        })
        .await
        .expect("cluster started")
    })
    .await;
}

/// Python's stock health client watching `""`, printing one line per status.
struct PythonWatch {
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    _child: tokio::process::Child,
}

impl PythonWatch {
    fn start(addr: SocketAddr) -> Self {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/polyglot/health_watch.py"
        );
        let mut child = tokio::process::Command::new("python3")
            .args([script, &addr.to_string(), ""])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().expect("piped");
        Self {
            lines: BufReader::new(stdout).lines(),
            _child: child,
        }
    }

    /// Reads until a line starting with `expected` (a flap in between is tolerated).
    async fn until(&mut self, expected: &str) -> String {
        tokio::time::timeout(WAIT, async {
            loop {
                let line = self.lines.next_line().await.expect("read");
                let line = line.unwrap_or_else(|| panic!("the watch ended before {expected:?}"));
                if line.starts_with(expected) {
                    return line;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("python never printed {expected:?}"))
    }
}

#[tokio::test]
async fn redis_stopped_under_a_running_sidecar_turns_health_not_serving_and_back() {
    let mut redis = PrivateRedis::start().await;
    let h = SimHarness::start().await;
    let mut sidecar = spawn_on(&h, &redis.url(), false).await;
    let mut tonic_watch = watch(&sidecar.channel, "trustly.v1.PaymentService").await;
    assert_eq!(next_status(&mut tonic_watch).await, ServingStatus::Serving);
    let mut python = PythonWatch::start(sidecar.addr);
    python.until("status SERVING").await;

    redis.stop();
    assert_eq!(
        next_status(&mut tonic_watch).await,
        ServingStatus::NotServing
    );
    python.until("status NOT_SERVING").await;
    assert_eq!(get(sidecar.ops_addr, "/readyz").await, 503);

    redis.resume().await;
    assert_eq!(next_status(&mut tonic_watch).await, ServingStatus::Serving);
    python.until("status SERVING").await;
    assert_eq!(get(sidecar.ops_addr, "/readyz").await, 200);

    // Shutdown: NOT_SERVING first, then the watch ends UNAVAILABLE (not OK: not a normal end).
    sidecar.begin_stop();
    python.until("status NOT_SERVING").await;
    let end = python.until("end ").await;
    assert!(
        end.starts_with("end UNAVAILABLE") && end.contains("shutting down"),
        "{end}"
    );
    drop(tonic_watch);
    tokio::time::timeout(WAIT, sidecar.stop())
        .await
        .expect("the drain finishes")
        .expect("clean stop");
}

#[tokio::test]
async fn at_shutdown_watches_see_not_serving_and_streams_end_unavailable() {
    let redis = PrivateRedis::start().await;
    let h = SimHarness::start().await;
    let mut sidecar = spawn_on(&h, &redis.url(), false).await;
    let mut health = watch(&sidecar.channel, "").await;
    assert_eq!(next_status(&mut health).await, ServingStatus::Serving);
    let mut subscriber =
        pb::notification_service_client::NotificationServiceClient::new(sidecar.channel.clone())
            .stream_notifications(pb::StreamNotificationsRequest {
                consumer_group: "app".into(),
                ..Default::default()
            })
            .await
            .expect("subscribed")
            .into_inner();

    sidecar.begin_stop();
    assert_eq!(next_status(&mut health).await, ServingStatus::NotServing);
    let shutting_down = |status: tonic::Status| {
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.message().contains("shutting down"), "{status:?}");
        assert_eq!(
            status.get_details_error_info().unwrap().reason,
            reason::SHUTTING_DOWN
        );
    };
    let ended = tokio::time::timeout(WAIT, health.message())
        .await
        .expect("the watch ends");
    shutting_down(ended.expect_err("UNAVAILABLE, not a normal end"));
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match subscriber.message().await {
                Ok(Some(_heartbeat)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the subscriber's stream ends");
    shutting_down(ended.expect_err("UNAVAILABLE, not the end of the log"));
    // With both streams ended, nothing holds the drain.
    tokio::time::timeout(WAIT, sidecar.stop())
        .await
        .expect("the drain finishes")
        .expect("clean stop");
}
