//! Redis Cluster: a real three-node cluster (started here, each test on its own ports); the
//! notification log, idempotency records and the account cache all work through it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::json;
use support::{app, sim::*};
use trustly_sidecar::pb::{
    self, account_service_client::AccountServiceClient,
    notification_service_client::NotificationServiceClient,
    order_service_client::OrderServiceClient,
};

pub struct Cluster {
    nodes: Vec<Child>,
    pub ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

/// A port whose cluster bus port (+10000) is free too.
fn cluster_port() -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl Cluster {
    /// Three free ports, nothing started yet (a sidecar may be told the URLs first).
    pub fn unstarted() -> Self {
        Cluster {
            nodes: Vec::new(),
            ports: (0..3).map(|_| cluster_port()).collect(),
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The seed URLs, comma-separated (`TRUSTLY_SIDECAR_REDIS_URL`).
    pub fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts the three nodes and forms the cluster; returns once every node reports it ok.
    /// Blocking: call it off the runtime when a sidecar runs on it.
    pub fn start(&mut self) {
        let dir = self._dir.path().to_owned();
        for port in &self.ports {
            let node = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                ])
                .args([
                    "--cluster-config-file",
                    &format!("nodes-{port}.conf"),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server");
            self.nodes.push(node);
        }
        self.form();
    }

    fn form(&self) {
        let ports = &self.ports;
        for port in ports {
            wait_for(
                || std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok(),
                "node up",
            );
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli");
        assert!(created.success(), "cluster create");
        for port in ports {
            wait_for(
                || {
                    let info = Command::new("redis-cli")
                        .args(["-p", &port.to_string(), "cluster", "info"])
                        .output()
                        .unwrap();
                    String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok")
                },
                "cluster ok",
            );
        }
    }
}

fn start_cluster() -> Cluster {
    let mut cluster = Cluster::unstarted();
    cluster.start();
    cluster
}

fn wait_for(mut check: impl FnMut() -> bool, what: &str) {
    for _ in 0..200 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out: {what}");
}

#[tokio::test]
async fn notifications_idempotency_and_accounts_work_on_a_cluster() {
    let cluster = start_cluster();
    let urls = cluster.urls();
    let h = SimHarness::start().await;
    let (vars, files) = app::vars_for(
        &h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", &urls),
            ("TRUSTLY_SIDECAR_REDIS_CLUSTER", "true"),
        ],
    );
    let mut sidecar = app::spawn_with_intake(vars, files).await;

    // Notifications: stored through the cluster and streamed to a subscriber.
    let mut stream = NotificationServiceClient::new(sidecar.channel.clone())
        .stream_notifications(pb::StreamNotificationsRequest {
            consumer_group: "app".into(),
            ..Default::default()
        })
        .await
        .expect("subscribe")
        .into_inner();
    let order = sidecar
        .client
        .select_account(pb::SelectAccountRequest {
            end_user_id: "user-c".into(),
            message_id: "m-cluster".into(),
            user: Some(pb::CheckoutUser {
                first_name: "Åsa".into(),
                last_name: "Öberg".into(),
                country: "SE".into(),
                locale: "sv_SE".into(),
                success_url: "https://m.example/ok".into(),
                fail_url: "https://m.example/fail".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("select account")
        .into_inner();
    h.act(&order.order_id, "complete", json!({})).await;
    let notification = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Some(pb::StreamNotificationsResponse {
                item: Some(pb::stream_notifications_response::Item::Notification(n)),
            }) = stream.message().await.unwrap()
            {
                return n;
            }
        }
    })
    .await
    .expect("the account notification arrives");
    assert_eq!(notification.method, "account");

    // The account cache (one hash-tagged slot) was filled by it.
    let accounts = h
        .eventually("cached", || {
            let mut client = AccountServiceClient::new(sidecar.channel.clone());
            async move {
                let list = client
                    .list_accounts(pb::ListAccountsRequest {
                        end_user_id: "user-c".into(),
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .accounts;
                (!list.is_empty()).then_some(list)
            }
        })
        .await;

    // Idempotency records: a retry is answered from the record.
    let payout = pb::AccountPayoutRequest {
        account_id: accounts[0].account_id.clone(),
        end_user_id: "user-c".into(),
        message_id: "pay-cluster".into(),
        amount: Some(pb::Money {
            amount: "10.00".into(),
            currency_code: "EUR".into(),
        }),
        shopper_statement: "Payout".into(),
        ..Default::default()
    };
    let first = sidecar
        .client
        .account_payout(payout.clone())
        .await
        .expect("payout")
        .into_inner();
    let again = sidecar.client.account_payout(payout).await.expect("retry");
    assert_eq!(
        again
            .metadata()
            .get("trustly-idempotent-replay")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(again.into_inner().order_id, first.order_id);

    // Order state: its keys span slots (facts, MessageID index, time index).
    let order = OrderServiceClient::new(sidecar.channel.clone())
        .get_order(pb::GetOrderRequest {
            message_id: "pay-cluster".into(),
            ..Default::default()
        })
        .await
        .expect("the payout's order state")
        .into_inner()
        .order
        .expect("an order");
    assert_eq!(
        (
            order.order_id.as_str(),
            order.kind(),
            order.requested_amount.as_str()
        ),
        (
            first.order_id.as_str(),
            pb::OrderKind::AccountPayout,
            "10.00"
        )
    );
    drop(cluster);
}

/// The `redis://` URL of a node that does not own the notification family's slot, first: the
/// replicas then listen on a node other than the one their appends run on, so wake-ups must
/// cross the cluster bus.
fn urls_listening_away_from_the_log(cluster: &Cluster) -> String {
    let owns_log = |port: &u16| {
        let probe = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "get", "{notifications}probe"])
            .output()
            .unwrap();
        !String::from_utf8_lossy(&probe.stdout).contains("MOVED")
    };
    let mut ports = cluster.ports.clone();
    ports.sort_by_key(owns_log);
    assert!(!owns_log(&ports[0]) && owns_log(&ports[2]), "one owner");
    ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn appends_and_decisions_wake_the_other_replica_through_the_cluster() {
    use support::replicas::{self, post, signed, subscribe, woken};
    let cluster = start_cluster();
    let urls = urls_listening_away_from_the_log(&cluster);
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let h = SimHarness::start().await;
    let (a, b) = replicas::pair(
        &h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", &urls),
            ("TRUSTLY_SIDECAR_REDIS_CLUSTER", "true"),
            ("TRUSTLY_SIDECAR_REDIS_PREFIX", &prefix),
        ],
    )
    .await;
    let mut on_b = subscribe(&b, "app").await;
    // Its first read is over: from now on only a wake-up makes it read again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = post(a.intake_addr, signed("credit", "9600000001")).await;
    assert_eq!(status, 200);
    assert_eq!(woken(&mut on_b).await.notification_id, "9600000001");
    replicas::decision_on_b_answers_intake_on_a(&a, &b, "9600000002").await;
    drop(cluster);
}
