//! The notification log's semantics, the same on both backends: Redis (the real server at
//! `REDIS_URL`, default 127.0.0.1:6379, each test under its own random prefix) and memory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use std::time::Duration;

use bytes::Bytes;
use trustly_sidecar::store::{
    GroupBacklog, NewEvent, Reader, Recorded, Start, Store, log::Notification,
};

const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

async fn logs() -> Vec<(&'static str, Store)> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let redis = Store::connect(
        &url,
        None,
        &prefix,
        Duration::from_secs(3600),
        REDIS_TIMEOUT,
    )
    .await
    .unwrap_or_else(|e| panic!("these tests need a real Redis at {url} (.ci/run starts one): {e}"));
    vec![("memory", Store::memory()), ("redis", redis)]
}

fn event(notification_id: &str, received_ms: u64) -> NewEvent {
    NewEvent {
        notification: Notification {
            notification_id: notification_id.into(),
            method: "credit".into(),
            order_id: "123".into(),
            message_id: "m".into(),
            received_ms,
            body: Bytes::from(format!("{{\"n\":\"{notification_id}\"}}")),
        },
        decision_required: false,
    }
}

fn ids(events: &[trustly_sidecar::store::Event]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e.notification.notification_id.as_str())
        .collect()
}

#[tokio::test]
async fn a_notificationid_is_recorded_once_and_its_reply_kept() {
    for (name, log) in logs().await {
        let reply = Bytes::from_static(b"signed-ok");
        let first = log
            .log
            .record(&event("n1", 1_000), Some(&reply))
            .await
            .unwrap();
        assert!(matches!(first, Recorded::New { .. }), "{name}");
        let again = log
            .log
            .record(&event("n1", 2_000), Some(&Bytes::from_static(b"other")))
            .await
            .unwrap();
        assert_eq!(
            again,
            Recorded::Duplicate {
                reply: Some(reply.clone())
            },
            "{name}: the first reply"
        );

        let pending = log.log.record(&event("n2", 3_000), None).await.unwrap();
        assert!(matches!(pending, Recorded::New { .. }));
        assert_eq!(
            log.log.record(&event("n2", 3_001), None).await.unwrap(),
            Recorded::Duplicate { reply: None },
            "{name}"
        );
        log.log.set_reply("n2", &reply).await.unwrap();
        assert_eq!(
            log.log.record(&event("n2", 3_002), None).await.unwrap(),
            Recorded::Duplicate { reply: Some(reply) },
            "{name}"
        );
    }
}

#[tokio::test]
async fn groups_each_get_every_event_and_consumers_share_a_group() {
    for (name, log) in logs().await {
        log.log.join("a", &Start::GroupPosition).await.unwrap();
        log.log.join("b", &Start::GroupPosition).await.unwrap();
        for (i, n) in ["n1", "n2", "n3", "n4"].iter().enumerate() {
            log.log
                .record(
                    &event(n, 1_000 + i as u64),
                    Some(&Bytes::from_static(b"ok")),
                )
                .await
                .unwrap();
        }
        let a1 = log
            .log
            .read_new(Reader::new("a", "c1", 2), Duration::ZERO)
            .await
            .unwrap();
        let a2 = log
            .log
            .read_new(Reader::new("a", "c2", 10), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            (ids(&a1), ids(&a2)),
            (vec!["n1", "n2"], vec!["n3", "n4"]),
            "{name}: shared within a group"
        );
        let b = log
            .log
            .read_new(Reader::new("b", "c1", 10), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            ids(&b),
            ["n1", "n2", "n3", "n4"],
            "{name}: every group gets every event"
        );
        assert!(
            log.log
                .read_new(Reader::new("a", "c1", 10), Duration::ZERO)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        assert!(a1.iter().all(|e| e.delivery_count == 1));
    }
}

#[tokio::test]
async fn unacknowledged_events_are_redelivered_then_dead_lettered_and_replayable() {
    for (name, log) in logs().await {
        log.log.join("g", &Start::GroupPosition).await.unwrap();
        log.log
            .record(&event("n1", 1_000), Some(&Bytes::from_static(b"ok")))
            .await
            .unwrap();
        log.log
            .record(&event("n2", 1_001), Some(&Bytes::from_static(b"ok")))
            .await
            .unwrap();
        let first = log
            .log
            .read_new(Reader::new("g", "c1", 10), Duration::ZERO)
            .await
            .unwrap();
        assert!(log.log.ack("g", &first[0].id).await.unwrap(), "{name}");
        assert!(
            !log.log.ack("g", &first[0].id).await.unwrap(),
            "{name}: a second ack finds nothing"
        );

        assert!(
            log.log
                .claim_stale(Reader::new("g", "c2", 10), Duration::from_secs(60))
                .await
                .unwrap()
                .is_empty(),
            "{name}: not stale yet"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
        let again = log
            .log
            .claim_stale(Reader::new("g", "c2", 10), Duration::from_millis(20))
            .await
            .unwrap();
        assert_eq!(ids(&again), ["n2"], "{name}: only the unacknowledged one");
        assert_eq!(again[0].delivery_count, 2, "{name}");
        assert_eq!(again[0].notification.body, first[1].notification.body);

        log.log.dead_letter("g", &again[0]).await.unwrap();
        let dead = log.log.dead_letters("g", 10).await.unwrap();
        assert_eq!(ids(&dead), ["n2"], "{name}");
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            log.log
                .claim_stale(Reader::new("g", "c2", 10), Duration::from_millis(20))
                .await
                .unwrap()
                .is_empty(),
            "{name}: dead, not pending"
        );

        assert!(
            log.log.replay_dead_letter("g", &dead[0].id).await.unwrap(),
            "{name}"
        );
        assert!(
            log.log.dead_letters("g", 10).await.unwrap().is_empty(),
            "{name}"
        );
        let replayed = log
            .log
            .claim_stale(Reader::new("g", "c3", 10), Duration::from_millis(20))
            .await
            .unwrap();
        assert_eq!(ids(&replayed), ["n2"], "{name}: pending again");
        assert!(log.log.ack("g", &replayed[0].id).await.unwrap());
    }
}

#[tokio::test]
async fn start_positions() {
    for (name, log) in logs().await {
        log.log
            .record(&event("old", 1_000), Some(&Bytes::from_static(b"ok")))
            .await
            .unwrap();
        let Recorded::New { event_id: middle } = log
            .log
            .record(&event("middle", 2_000), Some(&Bytes::from_static(b"ok")))
            .await
            .unwrap()
        else {
            panic!("new")
        };
        log.log.join("new-only", &Start::New).await.unwrap();
        log.log
            .join("from-start", &Start::GroupPosition)
            .await
            .unwrap();
        log.log
            .join("after", &Start::AfterEvent(middle.clone()))
            .await
            .unwrap();
        log.log
            .record(&event("late", 3_000), Some(&Bytes::from_static(b"ok")))
            .await
            .unwrap();
        log.log.join("time", &Start::FromTime(2_000)).await.unwrap();
        let read = |group: &'static str| {
            let log = log.clone();
            async move {
                log.log
                    .read_new(Reader::new(group, "c", 10), Duration::ZERO)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(ids(&read("new-only").await), ["late"], "{name}");
        assert_eq!(
            ids(&read("from-start").await),
            ["old", "middle", "late"],
            "{name}"
        );
        assert_eq!(ids(&read("after").await), ["late"], "{name}");
        // Redis stamps its own clock on ids; memory uses received time. Both honour "at or after".
        let from_time = read("time").await;
        assert!(ids(&from_time).contains(&"late"), "{name}");
    }
}

#[tokio::test]
async fn the_decision_flag_set_at_intake_is_stored_with_the_event() {
    for (name, log) in logs().await {
        log.log.join("d", &Start::GroupPosition).await.unwrap();
        let needs = NewEvent {
            decision_required: true,
            ..event("needs", 1_000)
        };
        log.log.record(&needs, None).await.unwrap();
        log.log.record(&event("plain", 1_001), None).await.unwrap();
        let read = log
            .log
            .read_new(Reader::new("d", "c", 10), Duration::from_millis(10))
            .await
            .unwrap();
        let flags: Vec<_> = read
            .iter()
            .map(|e| (e.notification.notification_id.as_str(), e.decision_required))
            .collect();
        assert_eq!(
            flags,
            vec![("needs", Some(true)), ("plain", Some(false))],
            "{name}"
        );
    }
}

#[tokio::test]
async fn decisions_and_withdraw_orders() {
    for (name, log) in logs().await {
        assert_eq!(log.decisions.get("n1").await.unwrap(), None, "{name}");
        log.decisions.set("n1", "FAILED").await.unwrap();
        assert_eq!(
            log.decisions.get("n1").await.unwrap().as_deref(),
            Some("FAILED"),
            "{name}"
        );
        assert!(!log.orders.is_withdraw("42").await.unwrap());
        log.orders.remember_withdraw("42").await.unwrap();
        assert!(log.orders.is_withdraw("42").await.unwrap(), "{name}");
        log.ping().await.unwrap();
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let started = std::time::Instant::now();
    let result = Store::connect(
        "redis://127.0.0.1:1",
        None,
        "x",
        Duration::from_secs(60),
        Duration::from_millis(500),
    )
    .await;
    assert!(result.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn backlogs_count_undelivered_and_unacknowledged_events_per_group() {
    for (name, log) in logs().await {
        assert_eq!(
            log.log.backlogs().await.unwrap(),
            vec![],
            "{name}: no groups yet"
        );
        for (i, id) in ["b1", "b2", "b3"].into_iter().enumerate() {
            log.log
                .record(&event(id, 10_000 + i as u64), None)
                .await
                .unwrap();
        }
        log.log
            .join("lagging", &Start::GroupPosition)
            .await
            .unwrap();
        log.log
            .join("reading", &Start::GroupPosition)
            .await
            .unwrap();
        let read = log
            .log
            .read_new(Reader::new("reading", "c1", 2), Duration::from_millis(10))
            .await
            .unwrap();
        log.log.ack("reading", &read[0].id).await.unwrap();
        let backlog = |group: &str, undelivered, pending| GroupBacklog {
            group: group.into(),
            undelivered: Some(undelivered),
            pending,
        };
        let mut backlogs = log.log.backlogs().await.unwrap();
        backlogs.sort_by(|a, b| a.group.cmp(&b.group));
        assert_eq!(
            backlogs,
            vec![backlog("lagging", 3, 0), backlog("reading", 1, 1)],
            "{name}"
        );
    }
}

#[tokio::test]
async fn one_caller_takes_each_turn() {
    for (name, log) in logs().await {
        let period = Duration::from_millis(300);
        assert!(
            log.lease.take_turn("poll", period).await.unwrap(),
            "{name}: first"
        );
        assert!(
            !log.lease.take_turn("poll", period).await.unwrap(),
            "{name}: taken"
        );
        assert!(
            log.lease.take_turn("other", period).await.unwrap(),
            "{name}: other name"
        );
        tokio::time::sleep(period + Duration::from_millis(100)).await;
        assert!(
            log.lease.take_turn("poll", period).await.unwrap(),
            "{name}: next period"
        );
    }
}

#[tokio::test]
async fn an_append_wakes_this_processs_watchers_even_one_made_while_they_were_busy() {
    for (name, log) in logs().await {
        let mut watch = log.log.watch_appends();
        // Appended before the wait starts (the subscriber was busy reading): still wakes it.
        log.log.record(&event("w1", 20_000), None).await.unwrap();
        let woke =
            tokio::time::timeout(Duration::from_secs(10), watch.wait(Duration::from_secs(60)))
                .await;
        assert!(woke.is_ok(), "{name}: the append woke the watcher");
        // Seen: the next wait lasts until its bound (nothing new).
        let idle = tokio::time::timeout(
            Duration::from_millis(200),
            watch.wait(Duration::from_secs(60)),
        )
        .await;
        assert!(idle.is_err(), "{name}: no append, no wake");
    }
}

#[tokio::test]
async fn a_poll_window_is_taken_once_and_then_answers_with_the_last_answer() {
    use trustly_sidecar::store::polls::PollBegin;
    for (name, log) in logs().await {
        let window = Duration::from_secs(60);
        let replica_a = log.polls.clone();
        // On Redis a second handle is another replica; memory is one process's own store.
        let replica_b = if log.is_durable() {
            log.polls.clone()
        } else {
            replica_a.clone()
        };
        assert_eq!(
            replica_a.begin("Balance", window).await.unwrap(),
            PollBegin::Call,
            "{name}"
        );
        assert_eq!(
            replica_b.begin("Balance", window).await.unwrap(),
            PollBegin::Pending,
            "{name}: in flight, nothing to answer with yet"
        );
        replica_a
            .finish("Balance", Some(r#"[{"currency":"EUR","balance":"1.00"}]"#))
            .await
            .unwrap();
        match replica_b.begin("Balance", window).await.unwrap() {
            PollBegin::Cached { data, received_ms } => {
                assert_eq!(data, r#"[{"currency":"EUR","balance":"1.00"}]"#, "{name}");
                assert!(
                    trustly_sidecar::store::now_ms() - received_ms < 60_000,
                    "{name}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
        // A failed call gives the turn back: the next caller asks Trustly.
        assert_eq!(
            replica_a.begin("GetWithdrawals:1", window).await.unwrap(),
            PollBegin::Call,
            "{name}"
        );
        replica_a.finish("GetWithdrawals:1", None).await.unwrap();
        assert_eq!(
            replica_b.begin("GetWithdrawals:1", window).await.unwrap(),
            PollBegin::Call,
            "{name}"
        );
    }
}
