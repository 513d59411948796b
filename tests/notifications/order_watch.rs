//! Watching orders end to end: OrderService.WatchOrders against the simulator, in memory and on
//! real Redis (a random key prefix per test): a Deposit's changes in order with their
//! transitions, filters, a resume token that replays what follows it, a change one replica
//! learned reaching a watcher on another through the wake-ups, and bad requests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::{app, replicas};
use tonic::{Code, Streaming};
use tonic_types::StatusExt;
use trustly_sidecar::pb::{self, watch_orders_response::Item};

use super::order_state::{deposit, orders, post, redis_vars, signed, start, unique_prefix};

type Changes = Streaming<pb::WatchOrdersResponse>;

/// How long a test waits for a change it expects.
const CHANGE_WITHIN: Duration = Duration::from_secs(10);

async fn watch(sidecar: &app::Sidecar, request: pb::WatchOrdersRequest) -> Changes {
    orders(sidecar)
        .watch_orders(request)
        .await
        .expect("watch")
        .into_inner()
}

fn group(consumer_group: &str, resume_token: &str) -> pb::WatchOrdersRequest {
    pb::WatchOrdersRequest {
        consumer_group: consumer_group.into(),
        resume_token: resume_token.into(),
        ..Default::default()
    }
}

/// The next change (heartbeats skipped).
async fn next_change(changes: &mut Changes) -> pb::OrderChange {
    tokio::time::timeout(CHANGE_WITHIN, async {
        loop {
            let response = changes.message().await.expect("stream ok").expect("open");
            if let Some(Item::Change(change)) = response.item {
                return change;
            }
        }
    })
    .await
    .expect("a change")
}

/// The transition a change carries, as (from, to).
fn step(change: &pb::OrderChange) -> Option<(pb::OrderState, pb::OrderState)> {
    change
        .transition
        .as_ref()
        .map(|t| (t.from_state(), t.to_state()))
}

async fn a_watcher_sees_a_deposits_changes_in_order(extra: &[(&str, &str)]) {
    let (h, s) = start(extra).await;
    let mut changes = watch(
        &s,
        pb::WatchOrdersRequest {
            kind: pb::OrderKind::Deposit.into(),
            end_user_id: "user-1".into(),
            ..group("ledger", "")
        },
    )
    .await;
    let order_id = deposit(&s, "m-watch-1").await;
    let created = next_change(&mut changes).await;
    assert!(created.fact_id.starts_with("rpc:Deposit:"), "{created:?}");
    assert_eq!(step(&created), None, "the order starts created");
    let order = created.order.expect("order");
    assert_eq!(
        (
            order.order_id.as_str(),
            order.kind(),
            order.requested_amount.as_str()
        ),
        (order_id.as_str(), pb::OrderKind::Deposit, "100.00")
    );
    h.act(&order_id, "complete", json!({})).await;
    let pending = next_change(&mut changes).await;
    let credited = next_change(&mut changes).await;
    assert_eq!(
        (step(&pending), step(&credited)),
        (
            Some((pb::OrderState::Created, pb::OrderState::Pending)),
            Some((pb::OrderState::Pending, pb::OrderState::Credited))
        )
    );
    for change in [&pending, &credited] {
        assert!(change.fact_id.starts_with("n:"), "{change:?}");
        assert_eq!(change.transition.as_ref().unwrap().fact_id, change.fact_id);
    }
    let order = credited.order.expect("order");
    assert_eq!(
        (
            order.state(),
            order.credited_amount.as_str(),
            order.currency_code.as_str()
        ),
        (pb::OrderState::Credited, "100.00", "EUR")
    );
    // Another end user's order (kind UNKNOWN) is skipped: the next change is the next deposit's.
    post(&s, &signed("credit", "8300001", 7)).await;
    let next_order = deposit(&s, "m-watch-2").await;
    let next = next_change(&mut changes).await;
    assert_eq!(next.order.expect("order").order_id, next_order);
}

#[tokio::test]
async fn a_watcher_sees_a_deposits_changes_in_order_in_memory() {
    a_watcher_sees_a_deposits_changes_in_order(&[]).await;
}

#[tokio::test]
async fn a_watcher_sees_a_deposits_changes_in_order_on_redis() {
    let vars = redis_vars(&unique_prefix());
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    a_watcher_sees_a_deposits_changes_in_order(&vars).await;
}

#[tokio::test]
async fn a_resume_token_delivers_again_everything_after_it() {
    let vars = redis_vars(&unique_prefix());
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (h, s) = start(&vars).await;
    let mut changes = watch(&s, group("resumer", "")).await;
    let order_id = deposit(&s, "m-watch-resume").await;
    h.act(&order_id, "complete", json!({})).await;
    let first = next_change(&mut changes).await;
    let second = next_change(&mut changes).await;
    drop(changes);
    // Reconnected with the first change's token: the second comes again (at least once).
    let mut again = watch(&s, group("resumer", &first.resume_token)).await;
    assert_eq!(next_change(&mut again).await.fact_id, second.fact_id);
    let third = next_change(&mut again).await;
    assert_eq!(
        step(&third).map(|(_, to)| to),
        Some(pb::OrderState::Credited)
    );
    // A new group starts at the oldest retained change: the order's whole history.
    let mut history = watch(&s, group("auditor", "")).await;
    let mut facts = Vec::new();
    for _ in 0..3 {
        facts.push(next_change(&mut history).await.fact_id);
    }
    assert_eq!(facts, [first.fact_id, second.fact_id, third.fact_id]);
}

#[tokio::test]
async fn a_change_learned_by_one_replica_wakes_a_watcher_on_another() {
    let prefix = unique_prefix();
    let vars = redis_vars(&prefix);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let h = support::sim::SimHarness::start().await;
    // The replicas poll for each other once a minute: only a wake-up brings the change in time.
    let (a, b) = replicas::pair(&h, &vars).await;
    let mut on_b = watch(&b, group("cross", "")).await;
    // Its first read is over: from now on only a wake-up makes it read again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = replicas::post(a.intake_addr, replicas::signed("credit", "9600000001")).await;
    assert_eq!(status, 200);
    // Within CHANGE_WITHIN, well under the replicas' minute of polling.
    let change = next_change(&mut on_b).await;
    assert_eq!(change.fact_id, "n:9600000001");
    assert_eq!(
        step(&change),
        Some((pb::OrderState::Created, pb::OrderState::Credited))
    );
    assert_eq!(change.order.expect("order").credited_amount, "5.00");
}

#[tokio::test]
async fn a_bad_group_or_resume_token_is_invalid_argument_naming_the_field() {
    let (_h, s) = start(&[]).await;
    for (request, field) in [
        (group("no spaces", ""), "consumer_group"),
        (group("", ""), "consumer_group"),
        (group("ok", "not-a-token"), "resume_token"),
        (group("ok", "1764600000000"), "resume_token"),
    ] {
        let status = orders(&s).watch_orders(request).await.expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<String> = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, [field]);
    }
}

#[tokio::test]
async fn at_shutdown_a_watch_ends_unavailable_and_does_not_hold_the_drain() {
    let (_h, mut s) = start(&[]).await;
    let mut changes = watch(&s, group("drained", "")).await;
    s.begin_stop();
    let ended = tokio::time::timeout(CHANGE_WITHIN, async {
        loop {
            match changes.message().await {
                Ok(Some(_heartbeat)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the watch ends");
    let status = ended.expect_err("UNAVAILABLE, not the end of the feed");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    tokio::time::timeout(CHANGE_WITHIN, s.stop())
        .await
        .expect("the drain finishes")
        .expect("clean stop");
}
