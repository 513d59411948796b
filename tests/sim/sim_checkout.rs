//! The end user's checkout (page, state, confirm, abandon, "Set order options"),
//! `HoldNotifications` with release by hand, and the console's routes, over plain HTTP. The same
//! flows clicked through in Chromium are in `browser.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use serde_json::{Value, json};
use support::sim::*;

/// `http://addr` of the harness's simulator.
fn base(h: &SimHarness) -> String {
    h.admin_url.trim_end_matches("/admin").to_owned()
}

async fn get(h: &SimHarness, path: &str) -> reqwest::Response {
    reqwest::get(format!("{}{path}", base(h)))
        .await
        .expect("GET")
}

/// Posts the end user's choice; the status and the JSON answer.
async fn choose(h: &SimHarness, order_id: &str, action: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/_/checkout/{order_id}/{action}", base(h)))
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, json_of(response).await)
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.expect("body")).expect("json")
}

/// The order as the checkout page sees it.
async fn view(h: &SimHarness, order_id: &str) -> Value {
    json_of(get(h, &format!("/_/checkout/{order_id}")).await).await
}

async fn open(h: &SimHarness, method: &str, data: Value) -> (String, String) {
    let answer = h.call(method, data).await.expect("opens");
    (
        answer["orderid"].as_str().unwrap().to_owned(),
        answer["url"].as_str().unwrap().to_owned(),
    )
}

/// A Deposit that leaves the amount to the end user, between 10.00 and 500.00 EUR.
fn open_amount_deposit(h: &SimHarness, message_id: &str) -> Value {
    let mut data = h.deposit_data(message_id);
    let attributes = data["Attributes"].as_object_mut().unwrap();
    attributes.remove("Amount");
    attributes.insert("SuggestedMinAmount".into(), json!("10.00"));
    attributes.insert("SuggestedMaxAmount".into(), json!("500.00"));
    data
}

fn methods(received: &[ReceivedNotification]) -> Vec<&str> {
    received.iter().map(|n| n.method.as_str()).collect()
}

const SWEDISH_ACCOUNT: &str = "69706212";

/// How long a held order is watched for a delivery that must not happen: the harness's retry
/// policy would have made several attempts by then.
const HELD_QUIET: std::time::Duration = std::time::Duration::from_millis(300);

fn account() -> Value {
    json!({ "clearinghouse": "SWEDEN", "bank_number": "6112", "account_number": SWEDISH_ACCOUNT })
}

#[tokio::test]
async fn the_checkout_url_opens_a_self_contained_page_and_unknown_orders_are_404() {
    let h = SimHarness::start().await;
    let (order_id, url) = open(&h, "Deposit", h.deposit_data("m-page")).await;
    let page = reqwest::get(&url).await.expect("page");
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(html.contains("Set order options") && html.contains("<label"));
    for external in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(external), "external asset: {external}");
    }
    for path in [
        "/_/orderclient.php?OrderID=1".to_owned(),
        "/_/orderclient.php".to_owned(),
        format!("/_/orderclient.php?SessionID=x&OrderID={order_id}0"),
    ] {
        assert_eq!(get(&h, &path).await.status(), 404, "{path}");
    }
    assert_eq!(get(&h, "/_/checkout/1").await.status(), 404);
    let shown = view(&h, &order_id).await;
    assert_eq!(
        (&shown["status"], &shown["open"], &shown["amount"]),
        (&json!("Initiated"), &json!(true), &json!("100.00"))
    );
    assert_eq!(shown["success_url"], "https://merchant.example/ok");
    assert_eq!(shown["fail_url"], "https://merchant.example/fail");
}

#[tokio::test]
async fn confirming_checks_the_amount_credits_and_returns_to_the_success_url() {
    let h = SimHarness::start().await;
    let (order_id, _) = open(&h, "Deposit", open_amount_deposit(&h, "m-confirm")).await;
    let shown = view(&h, &order_id).await;
    assert_eq!(
        (&shown["amount"], &shown["min_amount"], &shown["max_amount"]),
        (&Value::Null, &json!("10.00"), &json!("500.00"))
    );
    for (amount, why) in [
        ("9.99", "below"),
        ("500.01", "above"),
        ("1.234", "3 decimals"),
    ] {
        let body = json!({ "amount": amount, "account": account() });
        let (status, answer) = choose(&h, &order_id, "confirm", body).await;
        assert_eq!(status, 400, "{why}: {answer}");
    }
    let (status, _) = choose(&h, &order_id, "confirm", json!({ "account": account() })).await;
    assert_eq!(status, 400, "the amount is the end user's to choose");

    let body = json!({ "amount": "25.00", "account": account() });
    let (status, answer) = choose(&h, &order_id, "confirm", body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["redirect"], "https://merchant.example/ok");
    assert_eq!(answer["order"]["status"], "Credited");
    let received = h.notifications_for(&order_id, 2).await;
    assert_eq!(methods(&received), ["pending", "credit"]);
    assert_eq!(received[1].data["amount"], "25.00");
    // The page shows the order's real state, and a finished checkout cannot be finished again.
    let (status, _) = choose(&h, &order_id, "confirm", body).await;
    assert_eq!(status, 409);
    let (status, _) = choose(&h, &order_id, "abandon", json!({})).await;
    assert_eq!(status, 409);
    let shown = view(&h, &order_id).await;
    assert_eq!(
        (&shown["status"], &shown["open"]),
        (&json!("Credited"), &json!(false))
    );
}

#[tokio::test]
async fn abandoning_cancels_and_returns_to_the_fail_url() {
    let h = SimHarness::start().await;
    let (order_id, _) = open(&h, "Deposit", h.deposit_data("m-abandon")).await;
    let (status, answer) = choose(&h, &order_id, "abandon", json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["redirect"], "https://merchant.example/fail");
    assert_eq!(answer["order"]["status"], "Cancelled");
    assert_eq!(
        methods(&h.notifications_for(&order_id, 1).await),
        ["cancel"]
    );
}

#[tokio::test]
async fn order_options_run_d1_and_our_scenarios_and_refuse_what_is_not_simulated() {
    let h = SimHarness::start().await;
    let (d1, _) = open(&h, "Deposit", h.deposit_data("m-d1")).await;
    let shown = view(&h, &d1).await;
    let listed: Vec<(&str, bool)> = shown["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap(), o["available"].as_bool().unwrap()))
        .collect();
    assert!(listed.contains(&("D1", true)) && listed.contains(&("D3", false)));
    assert!(listed.contains(&("duplicate", true)));

    let (status, _) = choose(&h, &d1, "confirm", json!({ "option": "D3" })).await;
    assert_eq!(status, 400, "listed by Trustly, not simulated");
    let (status, _) = choose(&h, &d1, "confirm", json!({ "option": "W1" })).await;
    assert_eq!(status, 400, "a Withdraw case");
    let (status, _) = choose(&h, &d1, "confirm", json!({ "option": "D1" })).await;
    assert_eq!(status, 200);
    let received = h.notifications_for(&d1, 3).await;
    assert_eq!(methods(&received), ["pending", "credit", "debit"]);

    let (duplicate, _) = open(&h, "Deposit", h.deposit_data("m-dup")).await;
    let (status, _) = choose(&h, &duplicate, "confirm", json!({ "option": "duplicate" })).await;
    assert_eq!(status, 200);
    let received = h.notifications_for(&duplicate, 3).await;
    assert_eq!(methods(&received), ["pending", "credit", "credit"]);
    assert_eq!(received[1].notification_id, received[2].notification_id);
    assert_eq!(received[1].uuid, received[2].uuid, "the same bytes again");

    let (reordered, _) = open(&h, "Deposit", h.deposit_data("m-order")).await;
    let body = json!({ "option": "out-of-order", "account": account() });
    let (status, _) = choose(&h, &reordered, "confirm", body).await;
    assert_eq!(status, 200);
    let received = h.notifications_for(&reordered, 3).await;
    assert_eq!(methods(&received), ["account", "credit", "pending"]);
    assert!(
        received[0].data["attributes"]["descriptor"]
            .as_str()
            .unwrap()
            .ends_with(&SWEDISH_ACCOUNT[2..])
    );
}

#[tokio::test]
async fn select_account_takes_the_entered_account_and_withdraw_keeps_its_fixed_amount() {
    let h = SimHarness::start().await;
    let mut data = h.deposit_data("m-select");
    let attributes = data["Attributes"].as_object_mut().unwrap();
    for field in ["Amount", "Currency", "ShopperStatement"] {
        attributes.remove(field);
    }
    let (select, _) = open(&h, "SelectAccount", data).await;
    let (status, _) = choose(&h, &select, "confirm", json!({})).await;
    assert_eq!(status, 400, "an account is required");
    let bad = json!({ "account": { "clearinghouse": "SWEDEN", "bank_number": "", "account_number": "1" } });
    assert_eq!(choose(&h, &select, "confirm", bad).await.0, 400);
    let (status, _) = choose(&h, &select, "confirm", json!({ "account": account() })).await;
    assert_eq!(status, 200);
    let received = h.notifications_for(&select, 1).await;
    assert_eq!(methods(&received), ["account"]);
    assert_eq!(received[0].data["attributes"]["descriptor"], "*706212");

    let mut data = h.deposit_data("m-withdraw");
    data["Currency"] = json!("EUR");
    let attributes = data["Attributes"].as_object_mut().unwrap();
    for field in ["Amount", "Currency", "Email"] {
        attributes.remove(field);
    }
    attributes.insert("SuggestedAmount".into(), json!("50.00"));
    let (withdraw, _) = open(&h, "Withdraw", data).await;
    let body = json!({ "amount": "999.00", "account": account() });
    let (status, answer) = choose(&h, &withdraw, "confirm", body).await;
    assert_eq!(status, 200, "{answer}");
    let received = h.notifications_for(&withdraw, 1).await;
    assert_eq!(methods(&received), ["debit"]);
    assert_eq!(received[0].data["amount"], "50.00", "the merchant fixed it");
}

#[tokio::test]
async fn held_notifications_wait_for_release_by_hand() {
    let h = SimHarness::start().await;
    let mut data = h.deposit_data("m-hold");
    data["Attributes"]["HoldNotifications"] = json!("1");
    let (order_id, _) = open(&h, "Deposit", data).await;
    let (status, _) = choose(&h, &order_id, "confirm", json!({})).await;
    assert_eq!(status, 200);
    tokio::time::sleep(HELD_QUIET).await;
    assert!(h.merchant.received().is_empty(), "held");
    let detail = h.order(&order_id).await;
    assert_eq!(detail["order"]["held"], 2);
    let notifications = detail["notifications"].as_array().unwrap();
    assert!(notifications.iter().all(|n| n["held"] == true));
    let curl = notifications[1]["curl"].as_str().unwrap();
    assert!(curl.starts_with("curl -X POST") && curl.ends_with(&format!("'{}'", h.merchant.url())));
    assert!(curl.contains("\"method\":\"credit\""), "{curl}");

    let (status, released) = h
        .admin_post(&format!("orders/{order_id}/release"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(released["released"].as_array().unwrap().len(), 2);
    let received = h.notifications_for(&order_id, 2).await;
    assert_eq!(methods(&received), ["pending", "credit"]);
    assert_eq!(h.order(&order_id).await["order"]["held"], 0);
    let (status, _) = h.admin_post("orders/1/release", json!({})).await;
    assert_eq!(status, 404);
    // The merchant's answer is logged with each attempt.
    let deliveries = h.deliveries(&order_id).await;
    assert!(
        deliveries[0]["answer"]
            .as_str()
            .unwrap()
            .contains("\"status\":\"OK\"")
    );
}

#[tokio::test]
async fn the_console_is_served_and_a_queued_payout_can_be_cancelled_which_returns_the_money() {
    let h = SimHarness::start().await;
    let console = get(&h, "/admin").await;
    assert_eq!(console.status(), 200);
    assert!(console.headers().contains_key("content-security-policy"));
    assert!(console.text().await.unwrap().contains("Copy as cURL"));

    let data = json!({
        "EndUserID": "user-1", "ClearingHouse": "SWEDEN", "BankNumber": "6112",
        "AccountNumber": SWEDISH_ACCOUNT, "Firstname": "Åsa", "Lastname": "Öberg",
        "NotificationURL": h.merchant.url(), "MessageID": "m-payout", "Amount": "40.00",
        "Currency": "EUR", "Attributes": { "ShopperStatement": "Payout" }
    });
    let answer = h.call("RegisterAccountPayout", data).await.expect("payout");
    let payout = answer["orderid"].as_str().unwrap().to_owned();
    assert_eq!(h.balance("EUR").await, "960.00");
    let listed = h.order(&payout).await["order"]["actions"].clone();
    assert_eq!(listed, json!(["complete", "fail", "cancel"]));
    h.act(&payout, "cancel", json!({})).await;
    let received = h.notifications_for(&payout, 2).await;
    assert_eq!(methods(&received), ["cancel", "credit"]);
    assert_eq!(h.balance("EUR").await, "1000.00");
    assert_eq!(h.order(&payout).await["order"]["actions"], json!([]));
}
