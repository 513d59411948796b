//! The checkout and the console clicked through in a real browser: Debian's Chromium driven by
//! playwright-core (`tests/browser/scenarios.js`), against a sandbox gateway with every listener
//! on 127.0.0.1:0. This file does the gRPC side (orders, payouts, a notification subscriber); the
//! script does the clicking and saves a screenshot per step into `target/browser-screenshots/`.
//!
//! `.ci/setup` installs `chromium` and `npm ci`s tests/browser; a missing one fails these tests
//! loudly. The browser runs one scenario at a time (two cores are shared with the rest).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::{collections::HashMap, time::Duration};

use support::{app, requests::valid};
use tonic::Streaming;
use trustly_sidecar::pb::{
    self, notification::Payload, notification_service_client::NotificationServiceClient,
};

/// Upper bound for one script run: starting Chromium plus a scenario of bounded steps (15 s each
/// at most, see scenarios.js), on a loaded two-core machine.
const SCRIPT_RUN_LIMIT: Duration = Duration::from_secs(120);
/// How long a notification the clicks caused may take to reach the subscriber.
const ARRIVAL: Duration = Duration::from_secs(20);
/// How long a held order is watched for a notification that must not come.
const HELD_QUIET: Duration = Duration::from_secs(2);
/// The subscriber's consumer group.
const GROUP: &str = "browser";

/// One browser at a time: test threads run in parallel, Chromium is heavy.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A sandbox gateway, its simulator's console URL and a subscriber's stream.
struct Gateway {
    sidecar: app::Sidecar,
    console: String,
    stream: Streaming<pb::StreamNotificationsResponse>,
}

async fn gateway() -> Gateway {
    let vars = HashMap::from([("TRUSTLY_SIDECAR_SANDBOX".to_owned(), "1".to_owned())]);
    let sidecar = app::spawn_with_intake(vars, Vec::new()).await;
    let console = sidecar.simulator_admin.clone().expect("a sandbox");
    let stream = NotificationServiceClient::new(sidecar.channel.clone())
        .stream_notifications(pb::StreamNotificationsRequest {
            consumer_group: GROUP.into(),
            start: pb::StartPosition::Group as i32,
            ..Default::default()
        })
        .await
        .expect("subscribed")
        .into_inner();
    Gateway {
        sidecar,
        console,
        stream,
    }
}

impl Gateway {
    /// The next notification on the stream (heartbeats skipped), acknowledged; `None` if none
    /// arrives within `wait`.
    async fn next_within(&mut self, wait: Duration) -> Option<pb::Notification> {
        let stream = &mut self.stream;
        let notification = tokio::time::timeout(wait, async {
            loop {
                let item = stream.message().await.expect("stream ok").expect("open");
                if let Some(pb::stream_notifications_response::Item::Notification(n)) = item.item {
                    return n;
                }
            }
        })
        .await
        .ok()?;
        NotificationServiceClient::new(self.sidecar.channel.clone())
            .acknowledge_notification(pb::AcknowledgeNotificationRequest {
                consumer_group: GROUP.into(),
                event_id: notification.event_id.clone(),
                ..Default::default()
            })
            .await
            .expect("ack");
        Some(notification)
    }

    /// The next `count` notifications, all for `order_id`.
    async fn receive(&mut self, order_id: &str, count: usize) -> Vec<pb::Notification> {
        let mut received = Vec::new();
        while received.len() < count {
            let notification = self
                .next_within(ARRIVAL)
                .await
                .unwrap_or_else(|| panic!("only {received:?} within {ARRIVAL:?}"));
            assert_eq!(notification.order_id, order_id, "{notification:?}");
            received.push(notification);
        }
        received
    }
}

fn method_names(notifications: &[pb::Notification]) -> Vec<&str> {
    notifications.iter().map(|n| n.method.as_str()).collect()
}

/// Runs one scenario of scenarios.js with `vars`; its stdout.
async fn browse(scenario: &str, vars: &[(&str, &str)]) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = tokio::time::timeout(
        SCRIPT_RUN_LIMIT,
        tokio::process::Command::new("node")
            .arg(format!("{root}/tests/browser/scenarios.js"))
            .env("BROWSER_SCENARIO", scenario)
            .env(
                "SCREENSHOT_DIR",
                format!("{root}/target/browser-screenshots"),
            )
            .envs(vars.iter().copied())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{scenario} did not finish within {SCRIPT_RUN_LIMIT:?}"))
    .unwrap_or_else(|e| panic!("cannot run node tests/browser/scenarios.js: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(&format!("browser: {scenario} passed")),
        "{scenario} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

/// A Deposit leaving the amount to the end user (10.00 to 500.00 EUR); its OrderID and URL.
async fn deposit(gateway: &mut Gateway, message_id: &str, hold: bool) -> (String, String) {
    let request = pb::DepositRequest {
        amount: String::new(),
        suggested_min_amount: "10.00".into(),
        suggested_max_amount: "500.00".into(),
        hold_notifications: hold,
        ..valid::deposit("", message_id)
    };
    let answer = gateway
        .sidecar
        .client
        .deposit(request)
        .await
        .expect("deposit")
        .into_inner();
    (answer.order_id, answer.url)
}

#[tokio::test]
async fn a_deposit_clicked_through_the_checkout_credits_a_grpc_subscriber() {
    let _browser = BROWSER.lock().await;
    let mut gateway = gateway().await;
    let (order_id, url) = deposit(&mut gateway, "browser-deposit", false).await;
    browse("deposit", &[("CHECKOUT_URL", &url), ("AMOUNT", "25.00")]).await;
    let received = gateway.receive(&order_id, 2).await;
    assert_eq!(method_names(&received), ["pending", "credit"]);
    let Some(Payload::Credit(credit)) = &received[1].payload else {
        panic!("a typed credit: {:?}", received[1])
    };
    let amount = credit.amount.as_ref().expect("amount");
    assert_eq!(
        (amount.amount.as_str(), amount.currency_code.as_str()),
        ("25.00", "EUR")
    );
}

#[tokio::test]
async fn an_abandoned_checkout_sends_cancel() {
    let _browser = BROWSER.lock().await;
    let mut gateway = gateway().await;
    let (order_id, url) = deposit(&mut gateway, "browser-abandon", false).await;
    browse("abandon", &[("CHECKOUT_URL", &url)]).await;
    let received = gateway.receive(&order_id, 1).await;
    assert_eq!(method_names(&received), ["cancel"]);
}

#[tokio::test]
async fn test_case_d1_sends_credit_then_debit() {
    let _browser = BROWSER.lock().await;
    let mut gateway = gateway().await;
    let (order_id, url) = deposit(&mut gateway, "browser-d1", false).await;
    browse("d1", &[("CHECKOUT_URL", &url), ("AMOUNT", "40.00")]).await;
    let received = gateway.receive(&order_id, 3).await;
    assert_eq!(method_names(&received), ["pending", "credit", "debit"]);
}

#[tokio::test]
async fn a_payout_executed_from_the_console_sends_payoutconfirmation() {
    let _browser = BROWSER.lock().await;
    let mut gateway = gateway().await;
    let payout = gateway
        .sidecar
        .client
        .register_account_payout(valid::register_account_payout(
            "",
            "browser-payout",
            "69706212",
            "30.00",
        ))
        .await
        .expect("payout")
        .into_inner()
        .order_id;
    let console = gateway.console.clone();
    browse(
        "execute-payout",
        &[("CONSOLE_URL", &console), ("ORDER_ID", &payout)],
    )
    .await;
    let received = gateway.receive(&payout, 1).await;
    assert_eq!(method_names(&received), ["payoutconfirmation"]);
}

#[tokio::test]
async fn a_held_notification_is_released_from_the_console() {
    let _browser = BROWSER.lock().await;
    let mut gateway = gateway().await;
    let (order_id, url) = deposit(&mut gateway, "browser-held", true).await;
    let vars = [
        ("CHECKOUT_URL", url.as_str()),
        ("AMOUNT", "12.50"),
        ("SHOT_PREFIX", "held"),
    ];
    browse("deposit", &vars).await;
    if let Some(early) = gateway.next_within(HELD_QUIET).await {
        panic!("a held notification was delivered: {early:?}");
    }
    let console = gateway.console.clone();
    browse(
        "release",
        &[("CONSOLE_URL", &console), ("ORDER_ID", &order_id)],
    )
    .await;
    let received = gateway.receive(&order_id, 2).await;
    assert_eq!(method_names(&received), ["pending", "credit"]);
}
