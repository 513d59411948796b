//! Wake-ups across replicas: an append or a decision on one replica wakes the waiters of another
//! at once, through the pub/sub channel, and again after that subscription was broken. The
//! replicas poll for each other only once a minute here, so nothing below can pass by polling.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::time::Duration;

use support::{
    redis::PrivateRedis,
    replicas::{self, WOKEN_WITHIN, post, signed, subscribe, woken},
    requests::redis_url,
    sim::SimHarness,
};

fn prefix() -> String {
    format!("test-{}", uuid::Uuid::new_v4())
}

#[tokio::test]
async fn an_append_on_one_replica_wakes_a_subscriber_on_another() {
    let (url, prefix) = (redis_url(), prefix());
    let h = SimHarness::start().await;
    let (a, b) = replicas::pair(
        &h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", &url),
            ("TRUSTLY_SIDECAR_REDIS_PREFIX", &prefix),
        ],
    )
    .await;
    let mut on_b = subscribe(&b, "app").await;
    // Its first read is over: from now on only a wake-up makes it read again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in ["9500000001", "9500000002"] {
        let (status, _) = post(a.intake_addr, signed("credit", id)).await;
        assert_eq!(status, 200);
        assert_eq!(woken(&mut on_b).await.notification_id, id);
    }
}

#[tokio::test]
async fn a_decision_on_one_replica_releases_intake_waiting_on_another() {
    let (url, prefix) = (redis_url(), prefix());
    let h = SimHarness::start().await;
    let vars = [
        ("TRUSTLY_SIDECAR_REDIS_URL", url.as_str()),
        ("TRUSTLY_SIDECAR_REDIS_PREFIX", prefix.as_str()),
    ];
    let (a, b) = replicas::pair(&h, &vars).await;
    replicas::decision_on_b_answers_intake_on_a(&a, &b, "9500000101").await;
}

#[tokio::test]
async fn a_broken_subscription_is_reestablished_and_nothing_is_missed_meanwhile() {
    // A private server: killing every pub/sub client must not touch other tests' replicas.
    let redis = PrivateRedis::start().await;
    let (url, prefix) = (redis.url(), prefix());
    let h = SimHarness::start().await;
    let (a, b) = replicas::pair(
        &h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", &url),
            ("TRUSTLY_SIDECAR_REDIS_PREFIX", &prefix),
        ],
    )
    .await;
    let mut on_b = subscribe(&b, "app").await;
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let channel = format!("{prefix}:wake");
    let subscribers = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        let channel = channel.clone();
        async move {
            let counts: Vec<(String, u64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut conn)
                .await
                .unwrap();
            counts[0].1
        }
    };
    assert_eq!(subscribers(&mut conn).await, 2, "both replicas listen");
    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(killed, 2);

    // Appended while B may not listen yet: its resubscription wakes its subscriber to look.
    let (status, _) = post(a.intake_addr, signed("credit", "9500000201")).await;
    assert_eq!(status, 200);
    assert_eq!(woken(&mut on_b).await.notification_id, "9500000201");

    // Listening again: the next append wakes it like before.
    tokio::time::timeout(WOKEN_WITHIN, async {
        while subscribers(&mut conn).await < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("both replicas subscribe again");
    let (status, _) = post(a.intake_addr, signed("credit", "9500000202")).await;
    assert_eq!(status, 200);
    assert_eq!(woken(&mut on_b).await.notification_id, "9500000202");
}
