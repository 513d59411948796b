//! The wire core's client against the simulator at the protocol level: signatures (636),
//! credentials (616), UUID replay and 688, MessageID 637, key casing (623), malformed bodies,
//! and every injected fault with the client's classification.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use support::{sim::*, *};
use trustly_sidecar::trustly::{
    Client, ClientConfig, Disposition, Error, ErrorCode, SignedRequest,
    sign::{Backend, CryptoPool},
};

fn rejected_code(outcome: Result<Value, Error>) -> i64 {
    match outcome {
        Err(Error::Rejected { code, .. }) => code.code(),
        other => panic!("expected a verified rejection, got {other:?}"),
    }
}

async fn post_raw(h: &SimHarness, body: impl Into<reqwest::Body>) -> (u16, Bytes) {
    let url = h.simulator.as_ref().expect("running").api_url();
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
async fn a_request_signed_with_the_wrong_key_gets_636() {
    let h = SimHarness::start().await;
    let mut config = ClientConfig::new(
        h.simulator.as_ref().unwrap().api_url(),
        USERNAME,
        PASSWORD.to_owned().into(),
    );
    config.request_timeout = Duration::from_secs(10);
    let impostor = Client::new(
        config,
        signer(Backend::RustCrypto, "python-client-test-private-1.pem"),
        verifier(Backend::RustCrypto, TRUSTLY_PUBLIC),
        CryptoPool::new(1),
    )
    .unwrap();
    let request = impostor
        .sign_data("Balance", uuid::Uuid::new_v4(), Default::default())
        .await
        .unwrap();
    let error = impostor.send(&request).await.expect_err("refused");
    assert!(
        matches!(
            error,
            Error::Rejected {
                code: ErrorCode::UnableToVerifyRsaSignature,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.disposition(), Disposition::Definitive);
    let log = h.admin_get("requests").await;
    assert_eq!(log[0]["signature_valid"], false);
}

#[tokio::test]
async fn a_request_tampered_after_signing_gets_636_and_changes_nothing() {
    let h = SimHarness::start().await;
    let signed = h
        .client
        .sign_data(
            "Deposit",
            uuid::Uuid::new_v4(),
            object(h.deposit_data("m-tamper")),
        )
        .await
        .unwrap();
    let tampered = String::from_utf8(signed.body.to_vec())
        .unwrap()
        .replace("100.00", "900.00");
    let tampered = SignedRequest {
        body: Bytes::from(tampered),
        ..signed
    };
    assert_eq!(rejected_code(h.client.send(&tampered).await), 636);
    assert_eq!(h.order_count().await, 0);
}

#[tokio::test]
async fn wrong_credentials_get_616() {
    let h = SimHarness::start_with(|_, client| client.password = "wrong".to_owned().into()).await;
    assert_eq!(rejected_code(h.call("Balance", json!({})).await), 616);
}

#[tokio::test]
async fn wrong_key_casing_gets_623() {
    let h = SimHarness::start().await;
    let signed = h
        .client
        .sign_data("Balance", uuid::Uuid::new_v4(), Default::default())
        .await
        .unwrap();
    // `UUID` → `uuid`: the casing trap that cost trustly-client-js a fix (spec §2).
    let lowercase = String::from_utf8(signed.body.to_vec())
        .unwrap()
        .replace("\"UUID\"", "\"uuid\"");
    let error = h
        .client
        .send(&SignedRequest {
            body: Bytes::from(lowercase),
            ..signed.clone()
        })
        .await
        .expect_err("refused");
    assert!(
        matches!(
            error,
            Error::Rejected {
                code: ErrorCode::InvalidParameters,
                ..
            }
        ),
        "{error:?}"
    );
    // A wrongly cased field inside Data is a missing required field: also 623.
    let mut data = object(json!({"FromDate": "2026-01-01", "ToDate": "2026-12-31"}));
    data.insert("currency".into(), json!("EUR"));
    data.insert("todate".into(), data["ToDate"].clone());
    data.remove("ToDate");
    let request = h
        .client
        .sign_data("AccountLedger", uuid::Uuid::new_v4(), data)
        .await
        .unwrap();
    assert_eq!(rejected_code(h.client.send(&request).await), 623);
}

#[tokio::test]
async fn an_identical_replay_returns_the_first_answer_without_a_second_order() {
    let h = SimHarness::start().await;
    let (request, first) = h.call_raw("Deposit", h.deposit_data("m-replay")).await;
    let first = first.expect("deposit");
    let again = h.client.send(&request).await.expect("replay answered");
    assert_eq!(again, first, "the same orderid and url");
    assert_eq!(h.order_count().await, 1, "no second order");
    let log = h.admin_get("requests").await;
    assert_eq!(log[1]["replayed"], true);
}

#[tokio::test]
async fn a_reused_uuid_with_different_content_gets_688() {
    let h = SimHarness::start().await;
    let (first, outcome) = h.call_raw("Deposit", h.deposit_data("m-688-a")).await;
    outcome.expect("deposit");
    let uuid = uuid::Uuid::parse_str(&first.uuid).unwrap();
    let different = h
        .client
        .sign_data("Deposit", uuid, object(h.deposit_data("m-688-b")))
        .await
        .unwrap();
    assert_eq!(rejected_code(h.client.send(&different).await), 688);
    assert_eq!(h.order_count().await, 1);
}

#[tokio::test]
async fn a_reused_message_id_gets_637() {
    let h = SimHarness::start().await;
    h.call("Deposit", h.deposit_data("m-637"))
        .await
        .expect("first");
    assert_eq!(
        rejected_code(h.call("Deposit", h.deposit_data("m-637")).await),
        637
    );
    assert_eq!(h.order_count().await, 1);
}

#[tokio::test]
async fn malformed_bodies_never_panic_the_simulator() {
    let h = SimHarness::start().await;
    let deep = "[".repeat(100_000);
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80],
        b"[]".to_vec(),
        b"{\"method\": 5}".to_vec(),
        b"{\"method\": \"Deposit\", \"params\": []}".to_vec(),
        b"{\"method\": \"Deposit\", \"params\": {\"Signature\": 1, \"UUID\": null, \"Data\": \"x\"}}".to_vec(),
        deep.into_bytes(),
        vec![b'{'; 2 * 1024 * 1024],
    ];
    for body in bodies {
        let (status, answer) = post_raw(&h, body).await;
        assert!(status == 200 || status == 413, "status {status}");
        if status == 200 {
            let value: Value = serde_json::from_slice(&answer).expect("a JSON-RPC error");
            assert_eq!(value["error"]["code"], 623);
        }
    }
    // Still serving.
    h.call("Balance", json!({}))
        .await
        .expect("balance after garbage");
}

#[tokio::test]
async fn an_unknown_method_is_refused_by_name() {
    let h = SimHarness::start().await;
    let error = h.call("Hello", json!({})).await.expect_err("unknown");
    match error {
        Error::Rejected { code, .. } => assert_eq!(code.name(), "ERROR_INVALID_FUNCTION"),
        other => panic!("{other:?}"),
    }
}

// === faults ===

async fn inject(h: &SimHarness, fault: Value) {
    let (status, body) = h.admin_post("faults", fault).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn latency_within_the_timeout_still_succeeds_and_beyond_it_is_ambiguous() {
    let h =
        SimHarness::start_with(|_, client| client.request_timeout = Duration::from_millis(1000))
            .await;
    inject(&h, json!({"kind": "latency", "latency_ms": 50})).await;
    h.call("Balance", json!({}))
        .await
        .expect("slow but in time");

    inject(
        &h,
        json!({"kind": "latency", "latency_ms": 2500, "method": "Deposit"}),
    )
    .await;
    let (request, outcome) = h.call_raw("Deposit", h.deposit_data("m-slow")).await;
    let error = outcome.expect_err("times out");
    assert!(matches!(error, Error::Timeout), "{error:?}");
    assert_eq!(error.disposition(), Disposition::Ambiguous);
    // The simulator finishes the first attempt; the replay gets its answer, not a second order.
    // The request log entry is written once the first answer is stored (the order alone exists
    // earlier, while the answer is still being signed).
    h.eventually("the slow deposit to be answered", || async {
        let log = h.admin_get("requests").await;
        log.as_array()
            .unwrap()
            .iter()
            .any(|r| r["method"] == "Deposit")
            .then_some(())
    })
    .await;
    h.client.send(&request).await.expect("replay answered");
    assert_eq!(h.order_count().await, 1);
}

#[tokio::test]
async fn a_dropped_response_after_commit_is_ambiguous_and_the_replay_recovers_the_order() {
    let h = SimHarness::start().await;
    inject(
        &h,
        json!({"kind": "drop_after_commit", "method": "Deposit"}),
    )
    .await;
    let (request, outcome) = h.call_raw("Deposit", h.deposit_data("m-drop")).await;
    let error = outcome.expect_err("connection dropped");
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert!(error.is_ambiguous());
    assert_eq!(h.order_count().await, 1, "the order was committed");

    let recovered = h
        .client
        .send(&request)
        .await
        .expect("replay answered from the record");
    let orders = h.admin_get("orders").await;
    assert_eq!(orders.as_array().unwrap().len(), 1, "no second order");
    assert_eq!(recovered["orderid"], orders[0]["order_id"]);
    // A new UUID with the same MessageID would have been refused: the replay is the only way back.
    assert_eq!(
        rejected_code(h.call("Deposit", h.deposit_data("m-drop")).await),
        637
    );
}

#[tokio::test]
async fn a_5xx_is_ambiguous_and_commits_nothing() {
    let h = SimHarness::start().await;
    inject(&h, json!({"kind": "status", "status": 503})).await;
    let (request, outcome) = h.call_raw("Deposit", h.deposit_data("m-503")).await;
    let error = outcome.expect_err("503");
    assert!(
        matches!(error, Error::HttpStatus { status: 503 }),
        "{error:?}"
    );
    assert!(error.is_ambiguous());
    assert_eq!(h.order_count().await, 0);
    h.client.send(&request).await.expect("replay acts once");
    assert_eq!(h.order_count().await, 1);
}

#[tokio::test]
async fn a_garbage_body_is_ambiguous() {
    let h = SimHarness::start().await;
    inject(&h, json!({"kind": "garbage"})).await;
    let error = h.call("Balance", json!({})).await.expect_err("garbage");
    assert!(matches!(error, Error::Malformed(_)), "{error:?}");
    assert!(error.is_ambiguous());
}

#[tokio::test]
async fn a_bad_signature_is_never_believed_and_the_replay_is_verified() {
    let h = SimHarness::start().await;
    inject(&h, json!({"kind": "bad_signature", "method": "Deposit"})).await;
    let (request, outcome) = h.call_raw("Deposit", h.deposit_data("m-badsig")).await;
    let error = outcome.expect_err("bad signature");
    assert!(matches!(error, Error::BadSignature), "{error:?}");
    assert!(error.is_ambiguous());
    let answer = h.client.send(&request).await.expect("the replay verifies");
    assert!(answer["orderid"].is_string());
    assert_eq!(h.order_count().await, 1);
}

#[tokio::test]
async fn faults_can_target_a_method_and_count_down() {
    let h = SimHarness::start().await;
    inject(
        &h,
        json!({"kind": "status", "status": 500, "method": "Deposit", "count": 2}),
    )
    .await;
    h.call("Balance", json!({}))
        .await
        .expect("other methods unaffected");
    for _ in 0..2 {
        assert!(matches!(
            h.call("Deposit", h.deposit_data("m-count")).await,
            Err(Error::HttpStatus { status: 500 })
        ));
    }
    h.call("Deposit", h.deposit_data("m-count"))
        .await
        .expect("fault used up");
    assert_eq!(h.admin_get("faults").await, json!([]));
}
