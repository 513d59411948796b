//! Nothing pays twice: idempotency records in real Redis (each test under its own key prefix),
//! against the simulator with faults.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use support::requests::redis_url;

use std::time::Duration;

use serde_json::{Value, json};
use support::{app, sim::*};
use tonic::Code;
use tonic_types::StatusExt;
use trustly_sidecar::pb;

/// A simulator and a sidecar on real Redis (unique prefix), plus `extra` settings.
async fn start(extra: &[(&str, &str)]) -> (SimHarness, app::Sidecar) {
    start_at(&format!("test-{}", uuid::Uuid::new_v4()), extra).await
}

/// [`start`] under `prefix`.
async fn start_at(prefix: &str, extra: &[(&str, &str)]) -> (SimHarness, app::Sidecar) {
    let h = SimHarness::start().await;
    let url = redis_url();
    let mut vars = vec![
        ("TRUSTLY_SIDECAR_REDIS_URL", url.as_str()),
        ("TRUSTLY_SIDECAR_REDIS_PREFIX", prefix),
    ];
    vars.extend_from_slice(extra);
    let (vars, files) = app::vars_for(&h, &vars);
    let sidecar = app::spawn(vars, files).await;
    (h, sidecar)
}

async fn inject(h: &SimHarness, fault: Value) {
    assert_eq!(h.admin_post("faults", fault).await.0, 201);
}

async fn account(h: &SimHarness, sidecar: &app::Sidecar) -> String {
    let _ = h;
    sidecar
        .client
        .clone()
        .register_account(support::requests::register_account())
        .await
        .expect("register")
        .into_inner()
        .account_id
}

fn payout(account_id: &str, message_id: &str, amount: &str) -> pb::AccountPayoutRequest {
    pb::AccountPayoutRequest {
        account_id: account_id.into(),
        end_user_id: "user-1".into(),
        message_id: message_id.into(),
        amount: Some(pb::Money {
            amount: amount.into(),
            currency_code: "EUR".into(),
        }),
        shopper_statement: "Payout".into(),
        ..Default::default()
    }
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// Requests of `method` the simulator received.
async fn received(h: &SimHarness, method: &str) -> Vec<Value> {
    h.admin_get("requests")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method)
        .cloned()
        .collect()
}

async fn payout_orders(h: &SimHarness) -> Vec<Value> {
    h.admin_get("orders")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "AccountPayout")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_dropped_payout_response_then_a_retry_pays_once_with_the_real_orderid() {
    let (h, sidecar) = start(&[]).await;
    let account_id = account(&h, &sidecar).await;
    inject(
        &h,
        json!({"kind": "drop_after_commit", "method": "AccountPayout"}),
    )
    .await;
    let mut client = sidecar.client.clone();
    let status = client
        .account_payout(payout(&account_id, "pay-1", "10.00"))
        .await
        .expect_err("dropped");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(payout_orders(&h).await.len(), 1, "the simulator did pay");

    let retry = client
        .account_payout(payout(&account_id, "pay-1", "10.00"))
        .await
        .expect("retry")
        .into_inner();
    let orders = payout_orders(&h).await;
    assert_eq!(orders.len(), 1, "exactly one payout");
    assert_eq!(
        retry.order_id,
        orders[0]["order_id"].as_str().unwrap(),
        "the real orderid"
    );
    assert!(retry.accepted);
    assert_eq!(h.balance("EUR").await, "990.00");
    // The retry replayed the stored signed request: same UUID, answered by Trustly from its record.
    let requests = received(&h, "AccountPayout").await;
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["uuid"], requests[1]["uuid"]);
    assert_eq!(requests[1]["replayed"], true);
}

/// The idempotency records stored under `prefix`, as JSON.
async fn stored_records(prefix: &str) -> Vec<Value> {
    let mut conn = redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:idempotency:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut records = Vec::new();
    for key in keys {
        let raw: String = redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        records.push(serde_json::from_str(&raw).unwrap());
    }
    records
}

#[tokio::test]
async fn the_signed_request_is_kept_until_the_outcome_is_known_then_dropped() {
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let (h, sidecar) = start_at(&prefix, &[]).await;
    let account_id = account(&h, &sidecar).await;
    inject(
        &h,
        json!({"kind": "drop_after_commit", "method": "AccountPayout"}),
    )
    .await;
    let mut client = sidecar.client.clone();
    let pay = || payout(&account_id, "pay-slim", "10.00");
    client.account_payout(pay()).await.expect_err("dropped");
    let records = stored_records(&prefix).await;
    assert_eq!(records.len(), 1);
    let request = records[0]["request"].as_str().expect("kept for a replay");
    assert!(request.contains("\"AccountPayout\"") && request.contains("pay-slim"));
    let first = records[0].clone();

    let answered = client.account_payout(pay()).await.expect("replayed");
    let records = stored_records(&prefix).await;
    assert_eq!(records.len(), 1);
    for field in ["fingerprint", "uuid"] {
        assert_eq!(
            records[0][field], first[field],
            "{field} kept by the outcome"
        );
    }
    assert_eq!(records[0]["lease_until"], 0);
    assert!(
        records[0].get("request").is_none(),
        "dropped: {}",
        records[0]
    );
    assert_eq!(records[0]["outcome"]["kind"], "success");
    assert!(records[0].to_string().len() < 1024, "{}", records[0]);

    // A finished key still answers from its outcome and sends nothing.
    let again = client.account_payout(pay()).await.expect("from the record");
    assert_eq!(again.get_ref().order_id, answered.get_ref().order_id);
    assert_eq!(received(&h, "AccountPayout").await.len(), 2);
    assert_eq!(payout_orders(&h).await.len(), 1);
}

#[tokio::test]
async fn fifty_concurrent_identical_calls_send_one_request() {
    let (h, sidecar) = start(&[]).await;
    let account_id = account(&h, &sidecar).await;
    // Keep the first attempt in flight while the others arrive.
    inject(
        &h,
        json!({"kind": "latency", "latency_ms": 800, "method": "AccountPayout"}),
    )
    .await;
    let calls = (0..50).map(|_| {
        let mut client = sidecar.client.clone();
        let request = payout(&account_id, "pay-concurrent", "10.00");
        tokio::spawn(async move { client.account_payout(request).await })
    });
    let results: Vec<_> = futures_join(calls).await;
    let (mut ok, mut aborted) = (Vec::new(), 0);
    for result in results {
        match result {
            Ok(response) => ok.push(response.into_inner().order_id),
            Err(status) => {
                assert_eq!(
                    (status.code(), reason(&status).as_str()),
                    (Code::Aborted, "REQUEST_IN_PROGRESS")
                );
                aborted += 1;
            }
        }
    }
    assert_eq!(
        received(&h, "AccountPayout").await.len(),
        1,
        "one Trustly request"
    );
    assert_eq!(ok.len() + aborted, 50);
    assert!(!ok.is_empty());
    assert!(
        ok.iter().all(|id| *id == ok[0]),
        "every success has the same orderid"
    );
    assert_eq!(payout_orders(&h).await.len(), 1);
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await.expect("task"));
    }
    results
}

#[tokio::test]
async fn the_same_key_with_another_amount_is_refused_and_nothing_is_sent() {
    let (h, sidecar) = start(&[]).await;
    let account_id = account(&h, &sidecar).await;
    let mut client = sidecar.client.clone();
    client
        .account_payout(payout(&account_id, "pay-2", "10.00"))
        .await
        .expect("first");
    let status = client
        .account_payout(payout(&account_id, "pay-2", "99.00"))
        .await
        .expect_err("changed");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::FailedPrecondition, "IDEMPOTENCY_KEY_REUSED")
    );
    assert_eq!(
        received(&h, "AccountPayout").await.len(),
        1,
        "nothing sent for the changed request"
    );
    assert_eq!(h.balance("EUR").await, "990.00");
}

#[tokio::test]
async fn a_refund_retried_after_a_timeout_refunds_once() {
    let (h, sidecar) = start(&[("TRUSTLY_SIDECAR_TRUSTLY_TIMEOUT", "1s")]).await;
    let mut client = sidecar.client.clone();
    let order_id = client
        .deposit(pb::DepositRequest {
            end_user_id: "user-1".into(),
            message_id: "dep-refund".into(),
            currency_code: "EUR".into(),
            amount: "100.00".into(),
            shopper_statement: "Shop".into(),
            user: Some(pb::CheckoutUser {
                first_name: "Åsa".into(),
                last_name: "Öberg".into(),
                country: "SE".into(),
                locale: "sv_SE".into(),
                email: "asa@example.com".into(),
                success_url: "https://m.example/ok".into(),
                fail_url: "https://m.example/fail".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("deposit")
        .into_inner()
        .order_id;
    h.act(&order_id, "complete", json!({})).await;
    inject(
        &h,
        json!({"kind": "latency", "latency_ms": 2000, "method": "Refund"}),
    )
    .await;
    let refund = pb::RefundRequest {
        request_id: "refund-after-timeout".into(),
        order_id: order_id.clone(),
        amount: Some(pb::Money {
            amount: "30.00".into(),
            currency_code: "EUR".into(),
        }),
        ..Default::default()
    };
    let status = client.refund(refund.clone()).await.expect_err("times out");
    assert_eq!(status.code(), Code::DeadlineExceeded);
    // Retry until answered (the first attempt may still be running at the simulator).
    let answer = h
        .eventually("the refund retry succeeds", || {
            let mut client = client.clone();
            let refund = refund.clone();
            async move {
                client
                    .refund(refund)
                    .await
                    .ok()
                    .map(tonic::Response::into_inner)
            }
        })
        .await;
    assert!(answer.accepted);
    assert_eq!(
        h.order(&order_id).await["order"]["refunded"],
        "30.00",
        "refunded once"
    );
    assert_eq!(h.balance("EUR").await, "1070.00");
    let uuids: std::collections::BTreeSet<String> = received(&h, "Refund")
        .await
        .iter()
        .map(|r| r["uuid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(uuids.len(), 1, "every attempt was the same signed request");
}

#[tokio::test]
async fn redis_down_fails_closed_and_recovers_without_a_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spawn_redis = || {
        std::process::Command::new("redis-server")
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
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server")
    };
    let wait_up = || {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis did not start");
    };
    let mut redis = spawn_redis();
    wait_up();
    let h = SimHarness::start().await;
    let url = format!("redis://127.0.0.1:{port}");
    let (vars, files) = app::vars_for(
        &h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", &url),
            ("TRUSTLY_SIDECAR_REDIS_TIMEOUT", "300ms"),
        ],
    );
    let sidecar = app::spawn(vars, files).await;
    let account_id = account(&h, &sidecar).await; // RegisterAccount keeps no record
    let mut client = sidecar.client.clone();

    redis.kill().unwrap();
    redis.wait().unwrap();
    let status = client
        .account_payout(payout(&account_id, "pay-down", "10.00"))
        .await
        .expect_err("fail closed");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::Unavailable, "STORE_UNAVAILABLE")
    );
    assert!(
        received(&h, "AccountPayout").await.is_empty(),
        "nothing reached Trustly"
    );

    let mut redis = spawn_redis();
    wait_up();
    let answer = h
        .eventually("calls work again", || {
            let mut client = client.clone();
            let request = payout(&account_id, "pay-down", "10.00");
            async move { client.account_payout(request).await.ok() }
        })
        .await;
    assert!(answer.into_inner().accepted);
    assert_eq!(received(&h, "AccountPayout").await.len(), 1);
    redis.kill().unwrap();
    let _ = redis.wait();
}

#[tokio::test]
async fn a_replay_that_meets_637_recovers_the_order_and_never_reissues_it() {
    let h = SimHarness::start().await;
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let url = redis_url();
    let (vars, files) = app::vars_for(
        &h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", &url),
            ("TRUSTLY_SIDECAR_REDIS_PREFIX", &prefix),
        ],
    );
    let sidecar = app::spawn_with_intake(vars, files).await;
    let account_id = account(&h, &sidecar).await;
    let mut client = sidecar.client.clone();
    inject(
        &h,
        json!({"kind": "drop_after_commit", "method": "AccountPayout"}),
    )
    .await;
    client
        .account_payout(payout(&account_id, "pay-637", "10.00"))
        .await
        .expect_err("dropped");
    let order_id = payout_orders(&h).await[0]["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Its payoutconfirmation reaches the sidecar, which learns the order of MessageID pay-637.
    h.act(&order_id, "complete", json!({})).await;
    h.eventually("the confirmation is stored", || async {
        let deliveries = h.deliveries(&order_id).await;
        deliveries
            .iter()
            .any(|d| d["outcome"] == "acknowledged")
            .then_some(())
    })
    .await;
    // Trustly's UUID record expires: the replay is a new request with a used MessageID (637).
    assert_eq!(h.admin_post("uuids/forget", json!({})).await.0, 200);

    let status = client
        .account_payout(payout(&account_id, "pay-637", "10.00"))
        .await
        .expect_err("recovered, not re-issued");
    assert_eq!(
        (status.code(), reason(&status).as_str()),
        (Code::AlreadyExists, "ORDER_EXISTS")
    );
    let info = status.get_details_error_info().unwrap();
    assert_eq!(
        info.metadata.get("order_id"),
        Some(&order_id),
        "the real orderid"
    );
    assert_eq!(payout_orders(&h).await.len(), 1, "never paid twice");
    let last = received(&h, "AccountPayout").await.last().cloned().unwrap();
    assert_eq!(last["error_code"], 637);
}
