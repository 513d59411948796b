//! The simulator's notifications: what Trustly sends for each scenario, signed; resends with the
//! same notificationid until a valid signed answer; every attempt recorded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use serde_json::{Value, json};
use support::sim::*;

async fn deposit(h: &SimHarness, message_id: &str, adjust: impl FnOnce(&mut Value)) -> String {
    let mut data = h.deposit_data(message_id);
    adjust(&mut data);
    let answer = h.call("Deposit", data).await.expect("deposit");
    answer["orderid"].as_str().unwrap().to_owned()
}

fn methods(received: &[ReceivedNotification]) -> Vec<&str> {
    received
        .iter()
        .filter(|n| n.answered_ok)
        .map(|n| n.method.as_str())
        .collect()
}

#[tokio::test]
async fn a_completed_deposit_sends_pending_then_credit_signed_with_trustlys_fields() {
    let h = SimHarness::start().await;
    let order_id = deposit(&h, "m-complete", |_| {}).await;
    assert_eq!(h.balance("EUR").await, "1000.00");
    h.act(&order_id, "complete", json!({})).await;
    let received = h.notifications_for(&order_id, 2).await;
    assert_eq!(methods(&received), ["pending", "credit"]);
    for notification in &received {
        assert!(
            notification.signature_valid,
            "signed with the simulator's key"
        );
        let data = &notification.data;
        assert_eq!(data["messageid"], "m-complete");
        assert_eq!(data["enduserid"], "user-1");
        assert_eq!(
            data["amount"], "100.00",
            "amounts arrive as strings with two decimals"
        );
        assert_eq!(data["currency"], "EUR");
        assert!(data["timestamp"].as_str().unwrap().ends_with("+00"));
        assert_eq!(data["attributes"], json!({}));
    }
    assert_ne!(received[0].notification_id, received[1].notification_id);
    assert_ne!(received[0].uuid, received[1].uuid);
    assert_eq!(h.balance("EUR").await, "1100.00", "credited");
    assert_eq!(h.order(&order_id).await["order"]["status"], "Credited");
}

#[tokio::test]
async fn delivery_is_retried_with_the_same_notificationid_until_a_valid_signed_ok() {
    let h = SimHarness::start().await;
    let order_id = deposit(&h, "m-retry", |_| {}).await;
    // The `pending` notification: first the endpoint fails, then answers signed with the wrong
    // key, then with the right uuid missing, then correctly.
    h.merchant.script([
        MerchantAnswer::ServerError,
        MerchantAnswer::WrongKey,
        MerchantAnswer::WrongUuid,
        MerchantAnswer::Status("OK"),
    ]);
    h.act(&order_id, "complete", json!({})).await;
    let received = h.notifications_for(&order_id, 2).await;

    let pending: Vec<_> = received.iter().filter(|n| n.method == "pending").collect();
    assert_eq!(pending.len(), 4, "four deliveries of pending");
    assert!(
        pending
            .iter()
            .all(|n| n.notification_id == pending[0].notification_id && n.uuid == pending[0].uuid)
    );
    assert_eq!(
        methods(&received),
        ["pending", "credit"],
        "credit only after pending was acknowledged"
    );

    let order = h.order(&order_id).await;
    let attempts: Vec<(&str, Option<u64>, u64)> = order["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["method"] == "pending")
        .map(|d| {
            (
                d["outcome"].as_str().unwrap(),
                d["http_status"].as_u64(),
                d["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            ("not_a_notification_answer", Some(500), 1),
            ("bad_signature", Some(200), 2),
            ("wrong_uuid", Some(200), 3),
            ("acknowledged", Some(200), 4),
        ]
    );
    let record = order["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["method"] == "pending")
        .unwrap()
        .clone();
    assert_eq!(record["answered_status"], "OK");
    assert_eq!(record["attempts"], 4);
}

#[tokio::test]
async fn the_simulator_gives_up_after_max_attempts_and_records_it() {
    let h = SimHarness::start_with(|sim, _| sim.retry.max_attempts = 3).await;
    let order_id = deposit(&h, "m-giveup", |_| {}).await;
    h.merchant.script([
        MerchantAnswer::ServerError,
        MerchantAnswer::ServerError,
        MerchantAnswer::ServerError,
    ]);
    h.act(&order_id, "complete", json!({})).await;
    let record = h
        .eventually("the simulator to give up", || async {
            let order = h.order(&order_id).await;
            let pending = order["notifications"][0].clone();
            (pending["gave_up"] == true).then_some(pending)
        })
        .await;
    assert_eq!(record["attempts"], 3);
    assert!(record["answered_status"].is_null());
    assert_eq!(
        h.merchant.received().len(),
        3,
        "credit is not sent after pending was never acknowledged"
    );
}

#[tokio::test]
async fn an_unreachable_notification_url_is_retried_as_a_transport_error() {
    let h = SimHarness::start_with(|sim, _| sim.retry.max_attempts = 2).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/gone", closed.local_addr().unwrap());
    drop(closed);
    let order_id = deposit(&h, "m-unreachable", |d| d["NotificationURL"] = json!(url)).await;
    h.act(&order_id, "complete", json!({})).await;
    let deliveries = h
        .eventually("two failed attempts", || async {
            let order = h.order(&order_id).await;
            let deliveries = order["deliveries"].as_array().cloned().unwrap_or_default();
            (deliveries.len() == 2).then_some(deliveries)
        })
        .await;
    assert!(
        deliveries
            .iter()
            .all(|d| d["outcome"] == "transport_error" && d["http_status"].is_null())
    );
}

#[tokio::test]
async fn d1_credit_then_debit_sends_credit_then_debit_and_reverses_the_balance() {
    let h = SimHarness::start().await;
    let order_id = deposit(&h, "m-d1", |_| {}).await;
    h.act(&order_id, "credit-then-debit", json!({})).await;
    let received = h.notifications_for(&order_id, 3).await;
    assert_eq!(methods(&received), ["pending", "credit", "debit"]);
    assert_eq!(received[2].data["amount"], "100.00");
    assert_eq!(h.balance("EUR").await, "1000.00", "credited then debited");
    assert_eq!(h.order(&order_id).await["order"]["status"], "Debited");
}

#[tokio::test]
async fn a_duplicate_is_the_same_notification_again() {
    let h = SimHarness::start().await;
    let order_id = deposit(&h, "m-dup", |_| {}).await;
    h.act(&order_id, "complete", json!({})).await;
    let received = h.notifications_for(&order_id, 2).await;
    let credit = received
        .iter()
        .find(|n| n.method == "credit")
        .unwrap()
        .clone();
    let (status, _) = h
        .admin_post(
            &format!("notifications/{}/resend", credit.notification_id),
            json!({}),
        )
        .await;
    assert_eq!(status, 202);
    let received = h.notifications_for(&order_id, 3).await;
    let credits: Vec<_> = received.iter().filter(|n| n.method == "credit").collect();
    assert_eq!(credits.len(), 2);
    assert_eq!(credits[0].notification_id, credits[1].notification_id);
    assert_eq!(credits[0].uuid, credits[1].uuid);
    assert_eq!(credits[0].data, credits[1].data);
    assert_eq!(
        h.balance("EUR").await,
        "1100.00",
        "a duplicate moves no money"
    );
}

#[tokio::test]
async fn reorder_delivers_a_steps_notifications_in_reverse() {
    let h = SimHarness::start().await;
    let order_id = deposit(&h, "m-reorder", |_| {}).await;
    h.act(
        &order_id,
        "complete",
        json!({"reorder": true, "send_account": true}),
    )
    .await;
    let received = h.notifications_for(&order_id, 3).await;
    assert_eq!(methods(&received), ["account", "credit", "pending"]);
    let account = &received[0].data;
    assert_eq!(account["verified"], "1");
    assert!(
        account["accountid"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit())
    );
    assert!(
        account["attributes"]["descriptor"]
            .as_str()
            .unwrap()
            .starts_with('*')
    );
}

#[tokio::test]
async fn a_cancelled_deposit_sends_cancel_without_an_amount() {
    let h = SimHarness::start().await;
    let order_id = deposit(&h, "m-cancel", |_| {}).await;
    h.act(&order_id, "cancel", json!({})).await;
    let received = h.notifications_for(&order_id, 1).await;
    assert_eq!(methods(&received), ["cancel"]);
    assert!(received[0].data.get("amount").is_none());
    assert_eq!(h.balance("EUR").await, "1000.00");
    let (status, _) = h
        .admin_post(&format!("orders/{order_id}/complete"), json!({}))
        .await;
    assert_eq!(status, 409, "a cancelled order cannot complete");
}

#[tokio::test]
async fn a_withdraw_debit_answered_failed_is_followed_by_cancel() {
    let h = SimHarness::start().await;
    let answer = h
        .call(
            "Withdraw",
            json!({
                "NotificationURL": h.merchant.url(), "EndUserID": "user-1", "MessageID": "m-wd-failed",
                "Currency": "EUR",
                "Attributes": {
                    "Firstname": "Åsa", "Lastname": "Öberg", "Country": "SE", "Locale": "sv_SE",
                    "ShopperStatement": "Shop", "SuccessURL": "https://m.example/ok", "FailURL": "https://m.example/fail"
                }
            }),
        )
        .await
        .expect("withdraw");
    let order_id = answer["orderid"].as_str().unwrap().to_owned();
    h.merchant.script([MerchantAnswer::Status("FAILED")]);
    h.act(&order_id, "complete", json!({"amount": "25.00"}))
        .await;
    let received = h.notifications_for(&order_id, 2).await;
    assert_eq!(methods(&received), ["debit", "cancel"]);
    assert_eq!(received[0].data["amount"], "25.00");
    assert_eq!(h.order(&order_id).await["order"]["status"], "Cancelled");
    assert_eq!(h.balance("EUR").await, "1000.00");
}

#[tokio::test]
async fn a_kyc_deposit_waits_for_the_merchants_decision() {
    let h = SimHarness::start().await;
    let finish = deposit(&h, "m-kyc-finish", |d| {
        d["Attributes"]["RequestKYC"] = json!("1")
    })
    .await;
    h.merchant.script([MerchantAnswer::Status("FINISH")]);
    h.act(&finish, "complete", json!({})).await;
    let received = h.notifications_for(&finish, 2).await;
    assert_eq!(methods(&received), ["kyc", "cancel"]);
    assert!(received[0].data["kycentityid"].is_string());

    let proceed = deposit(&h, "m-kyc-continue", |d| {
        d["Attributes"]["RequestKYC"] = json!("1")
    })
    .await;
    h.merchant.script([MerchantAnswer::Status("CONTINUE")]);
    h.act(&proceed, "complete", json!({})).await;
    let received = h.notifications_for(&proceed, 3).await;
    assert_eq!(methods(&received), ["kyc", "pending", "credit"]);
    assert_eq!(
        h.balance("EUR").await,
        "1100.00",
        "only the continued deposit is credited"
    );
}

#[tokio::test]
async fn a_status_trustly_does_not_allow_is_not_an_acknowledgement() {
    let h = SimHarness::start().await;
    let order_id = deposit(&h, "m-status", |_| {}).await;
    // Only `debit` may be answered FAILED (spec §4.2): a FAILED `pending` is resent.
    h.merchant.script([MerchantAnswer::Status("FAILED")]);
    h.act(&order_id, "complete", json!({})).await;
    let deliveries = h
        .eventually("three recorded deliveries", || async {
            let deliveries = h.deliveries(&order_id).await;
            (deliveries.len() == 3).then_some(deliveries)
        })
        .await;
    let outcomes: Vec<(&str, &str)> = deliveries
        .iter()
        .map(|d| {
            (
                d["method"].as_str().unwrap(),
                d["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("pending", "status_not_allowed"),
            ("pending", "acknowledged"),
            ("credit", "acknowledged")
        ]
    );
}
