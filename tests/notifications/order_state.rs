//! Order state end to end: orders created through the sidecar against the simulator, completed
//! from its admin API, read back with OrderService; notifications posted to the intake shuffled
//! and duplicated; two replicas on one Redis. Memory and real Redis (a random key prefix per test).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use serde_json::{Value, json};
use support::{app, requests::redis_url, requests::valid, sim::*, *};
use tonic::Code;
use trustly_sidecar::{
    pb::{self, order_service_client::OrderServiceClient},
    trustly::{canonical, sign::Backend, wire},
};

/// A simulator and a sidecar whose default NotificationURL is its own intake.
pub(crate) async fn start(extra: &[(&str, &str)]) -> (SimHarness, app::Sidecar) {
    let h = SimHarness::start().await;
    let (vars, files) = app::vars_for(&h, extra);
    let sidecar = app::spawn_with_intake(vars, files).await;
    (h, sidecar)
}

pub(crate) fn orders(sidecar: &app::Sidecar) -> OrderServiceClient<tonic::transport::Channel> {
    OrderServiceClient::new(sidecar.channel.clone())
}

pub(crate) fn redis_vars(prefix: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TRUSTLY_SIDECAR_REDIS_URL", redis_url()),
        ("TRUSTLY_SIDECAR_REDIS_PREFIX", prefix.to_owned()),
    ]
}

pub(crate) fn unique_prefix() -> String {
    format!("test-{}", uuid::Uuid::new_v4())
}

pub(crate) async fn get(sidecar: &app::Sidecar, order_id: &str) -> Option<pb::Order> {
    orders(sidecar)
        .get_order(pb::GetOrderRequest {
            order_id: order_id.into(),
            ..Default::default()
        })
        .await
        .ok()?
        .into_inner()
        .order
}

/// Waits until the order reaches `state`.
pub(crate) async fn reaches(
    h: &SimHarness,
    sidecar: &app::Sidecar,
    order_id: &str,
    state: pb::OrderState,
) -> pb::Order {
    h.eventually(&format!("order {order_id} {state:?}"), || async {
        get(sidecar, order_id).await.filter(|o| o.state() == state)
    })
    .await
}

pub(crate) async fn deposit(sidecar: &app::Sidecar, message_id: &str) -> String {
    sidecar
        .client
        .clone()
        .deposit(valid::deposit("", message_id))
        .await
        .expect("deposit")
        .into_inner()
        .order_id
}

async fn a_deposit_is_credited_with_its_exact_amount(extra: &[(&str, &str)]) {
    let (h, s) = start(extra).await;
    let order_id = deposit(&s, "m-order-1").await;
    let created = get(&s, &order_id).await.expect("known from the RPC answer");
    assert_eq!(
        (created.kind(), created.state()),
        (pb::OrderKind::Deposit, pb::OrderState::Created)
    );
    h.act(&order_id, "complete", json!({})).await;
    let order = reaches(&h, &s, &order_id, pb::OrderState::Credited).await;
    assert_eq!(
        (
            order.credited_amount.as_str(),
            order.requested_amount.as_str(),
            order.currency_code.as_str(),
            order.end_user_id.as_str(),
        ),
        ("100.00", "100.00", "EUR", "user-1")
    );
    assert_eq!(order.rpcs.len(), 1);
    assert!(!order.notification_ids.is_empty() && order.contradictions.is_empty());
    let by_message = orders(&s)
        .get_order(pb::GetOrderRequest {
            message_id: "m-order-1".into(),
            ..Default::default()
        })
        .await
        .expect("by message id")
        .into_inner()
        .order;
    assert_eq!(by_message.as_ref(), Some(&order));
    let listed = orders(&s)
        .list_orders(pb::ListOrdersRequest {
            end_user_id: "user-1".into(),
            state: pb::OrderState::Credited.into(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.orders, [order]);
    let missing = orders(&s)
        .get_order(pb::GetOrderRequest {
            order_id: "404".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let neither = orders(&s)
        .get_order(pb::GetOrderRequest::default())
        .await
        .unwrap_err();
    assert_eq!(neither.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_completed_deposit_is_credited_in_memory() {
    a_deposit_is_credited_with_its_exact_amount(&[]).await;
}

#[tokio::test]
async fn a_completed_deposit_is_credited_on_redis() {
    let vars = redis_vars(&unique_prefix());
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    a_deposit_is_credited_with_its_exact_amount(&vars).await;
}

#[tokio::test]
async fn d1_credit_then_debit_ends_debited_with_both_totals() {
    let (h, s) = start(&[]).await;
    let order_id = deposit(&s, "m-order-d1").await;
    h.act(&order_id, "credit-then-debit", json!({"reorder": true}))
        .await;
    // Reordered, the `debit` alone already reads debited: wait for the credit too.
    let order = h
        .eventually("the D1 credit and debit", || async {
            get(&s, &order_id)
                .await
                .filter(|o| o.credited_amount != "0.00" && o.debited_amount != "0.00")
        })
        .await;
    assert_eq!(order.state(), pb::OrderState::Debited);
    assert_eq!(
        (
            order.credited_amount.as_str(),
            order.debited_amount.as_str()
        ),
        ("100.00", "100.00")
    );
}

#[tokio::test]
async fn a_payout_executed_in_the_simulator_is_confirmed() {
    let (h, s) = start(&[]).await;
    let account_id = registered_account(&s).await;
    let order_id = payout(&s, "m-order-payout", &account_id, "42.50").await;
    let accepted = get(&s, &order_id).await.expect("known from the answer");
    assert_eq!(
        (accepted.kind(), accepted.state()),
        (pb::OrderKind::AccountPayout, pb::OrderState::Accepted)
    );
    h.act(&order_id, "complete", json!({})).await;
    let order = reaches(&h, &s, &order_id, pb::OrderState::Confirmed).await;
    assert_eq!(
        (
            order.paid_out_amount.as_str(),
            order.requested_amount.as_str()
        ),
        ("42.50", "42.50")
    );
}

/// A notification for order 5550001 signed by Trustly's test key, at minute `minute`.
pub(super) fn signed(method: &str, notification_id: &str, minute: u32) -> Value {
    let signer = signer(Backend::RustCrypto, TRUSTLY_PRIVATE);
    let uuid = uuid::Uuid::new_v4().to_string();
    let mut data = json!({
        "orderid": "5550001", "messageid": "m-shuffled", "notificationid": notification_id,
        "enduserid": "user-7", "amount": "30.00", "currency": "SEK",
        "timestamp": format!("2026-11-21 10:{minute:02}:00.000000+00"), "attributes": {}
    });
    if method == "cancel" {
        let fields = data.as_object_mut().unwrap();
        fields.remove("amount");
        fields.remove("currency");
    }
    let signature = signer
        .sign(canonical::plaintext(method, &uuid, &data).as_bytes())
        .unwrap();
    wire::notification(method, &uuid, &signature, data)
}

pub(crate) async fn post(sidecar: &app::Sidecar, body: &Value) {
    let url = format!("http://{}/trustly/notifications", sidecar.intake_addr);
    let response = reqwest::Client::new()
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 200);
}

/// Pending, credit, debit (D1) as Trustly would send them.
fn d1_sequence() -> Vec<Value> {
    vec![
        signed("pending", "8100001", 1),
        signed("credit", "8100002", 2),
        signed("debit", "8100003", 3),
    ]
}

#[tokio::test]
async fn shuffled_and_duplicated_notifications_give_the_same_order() {
    let (_h, in_order) = start(&[]).await;
    let (h, shuffled) = start(&[]).await;
    let sequence = d1_sequence();
    for notification in &sequence {
        post(&in_order, notification).await;
    }
    // Reversed, every one twice (a resend carries a new uuid, the same notificationid).
    for notification in sequence.iter().rev().chain(sequence.iter()) {
        post(&shuffled, notification).await;
    }
    let expected = reaches(&h, &in_order, "5550001", pb::OrderState::Debited).await;
    let got = reaches(&h, &shuffled, "5550001", pb::OrderState::Debited).await;
    assert_eq!(got, expected);
    assert_eq!(
        (
            got.kind(),
            got.credited_amount.as_str(),
            got.debited_amount.as_str(),
            got.notification_ids.len(),
            got.transitions.len(),
        ),
        (pb::OrderKind::Unknown, "30.00", "30.00", 3, 3)
    );
}

#[tokio::test]
async fn two_replicas_on_one_redis_see_the_same_order() {
    let prefix = unique_prefix();
    let vars = redis_vars(&prefix);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (h, a) = start(&vars).await;
    let (vars_b, files_b) = app::vars_for(&h, &vars);
    let b = app::spawn_with_intake(vars_b, files_b).await;
    // The RPC through one replica, the notifications split over both, one of them twice.
    let order_id = deposit(&a, "m-order-replicas").await;
    h.act(&order_id, "complete", json!({})).await;
    let on_a = reaches(&h, &a, &order_id, pb::OrderState::Credited).await;
    let on_b = reaches(&h, &b, &order_id, pb::OrderState::Credited).await;
    assert_eq!(on_a, on_b);
    let sequence = d1_sequence();
    post(&b, &sequence[2]).await;
    post(&a, &sequence[0]).await;
    post(&b, &sequence[1]).await;
    post(&a, &sequence[2]).await;
    let on_a = reaches(&h, &a, "5550001", pb::OrderState::Debited).await;
    let on_b = reaches(&h, &b, "5550001", pb::OrderState::Debited).await;
    assert_eq!(on_a, on_b);
    assert_eq!(on_a.notification_ids.len(), 3);
}

#[tokio::test]
async fn a_notification_logged_without_its_state_update_is_rebuilt_from_the_log() {
    // A replica killed after storing the notification, before recording its fact: the event is
    // in the log and the order state knows nothing of it.
    let prefix = unique_prefix();
    let credit = signed("credit", "8200001", 5);
    log_without_its_fact(&prefix, &credit, false, None).await;
    // A sidecar started on that store catches the state up from the log.
    let vars = redis_vars(&prefix);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (h, s) = start(&vars).await;
    let order = reaches(&h, &s, "5550001", pb::OrderState::Credited).await;
    assert_eq!(
        (
            order.credited_amount.as_str(),
            order.notification_ids.as_slice()
        ),
        ("30.00", ["8200001".to_owned()].as_slice())
    );
}

#[tokio::test]
async fn a_withdraw_debit_answered_without_its_decision_fact_is_rebuilt_from_the_log() {
    // A replica that answered a Withdraw's debit (the answer stored with the event) and was
    // killed before recording the decision fact: Trustly got its answer and will not resend.
    let prefix = unique_prefix();
    let debit = signed("debit", "8300001", 6);
    let uuid = debit["params"]["uuid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let answer = wire::notification_response("debit", &uuid, "sig", json!({"status": "FAILED"}));
    log_without_its_fact(&prefix, &debit, true, Some(answer.to_string().into())).await;
    let vars = redis_vars(&prefix);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (h, s) = start(&vars).await;
    let order = h
        .eventually("the decision fact rebuilt", || async {
            get(&s, "5550001")
                .await
                .filter(|o| o.withdraw_decision() == pb::WithdrawDecision::Rejected)
        })
        .await;
    assert_eq!(
        (
            order.debited_amount.as_str(),
            order.notification_ids.as_slice()
        ),
        ("30.00", ["8300001".to_owned()].as_slice())
    );
}

#[tokio::test]
async fn list_pages_through_orders_on_redis() {
    use trustly_sidecar::orders::{Fact, OrderBook, Query, Source};
    let book = OrderBook::new(redis_store(&unique_prefix()).await.order_states);
    let now = trustly_sidecar::store::now_ms();
    for i in 0..5u64 {
        let fact = Fact {
            id: format!("n:{i}"),
            source: Source::Notification,
            method: "credit".into(),
            order_id: format!("order-{i}"),
            message_id: format!("m-{i}"),
            end_user_id: "user-1".into(),
            amount: "1.00".into(),
            currency: "EUR".into(),
            // Two orders share a millisecond: the token orders them by id.
            at_ms: now - 10 + i / 2 * 2,
        };
        book.record(&fact).await.expect("record");
    }
    let mut query = Query {
        page_size: 2,
        ..Query::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = book.list(&query).await.expect("list");
        seen.extend(page.orders.into_iter().map(|o| o.order_id));
        if page.next_page_token.is_empty() {
            break;
        }
        query.page_token = page.next_page_token;
    }
    assert_eq!(
        seen,
        ["order-0", "order-1", "order-2", "order-3", "order-4"]
    );
    let by_message = book
        .get_by_message("m-3")
        .await
        .expect("get")
        .expect("known");
    assert_eq!(by_message.order_id, "order-3");
}

/// The Redis store under `prefix`, as a sidecar on it sees it.
async fn redis_store(prefix: &str) -> trustly_sidecar::store::Store {
    trustly_sidecar::store::Store::connect(
        &redis_url(),
        None,
        prefix,
        std::time::Duration::from_secs(3600),
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("redis")
}

/// What a replica killed between storing a notification and recording its fact leaves: the
/// signed notification (order 5550001, MessageID m-shuffled) in the log under `prefix`, with its
/// stored `answer`, and nothing in the order state.
async fn log_without_its_fact(
    prefix: &str,
    notification: &Value,
    decision_required: bool,
    answer: Option<bytes::Bytes>,
) {
    let params = &notification["params"];
    let event = trustly_sidecar::store::NewEvent {
        notification: trustly_sidecar::store::log::Notification {
            notification_id: params["data"]["notificationid"]
                .as_str()
                .expect("notificationid")
                .to_owned(),
            method: notification["method"].as_str().expect("method").to_owned(),
            order_id: "5550001".into(),
            message_id: "m-shuffled".into(),
            received_ms: trustly_sidecar::store::now_ms(),
            body: notification.to_string().into(),
        },
        decision_required,
    };
    redis_store(prefix)
        .await
        .log
        .record(&event, answer.as_ref())
        .await
        .expect("logged");
}

/// A bank account registered through the sidecar; its AccountID.
pub(crate) async fn registered_account(sidecar: &app::Sidecar) -> String {
    sidecar
        .client
        .clone()
        .register_account(valid::register_account("69706212"))
        .await
        .expect("register")
        .into_inner()
        .account_id
}

/// An AccountPayout of `amount` EUR to `account_id`; its order id.
pub(crate) async fn payout(
    sidecar: &app::Sidecar,
    message_id: &str,
    account_id: &str,
    amount: &str,
) -> String {
    let request = valid::account_payout("", message_id, account_id, amount);
    sidecar
        .client
        .clone()
        .account_payout(request)
        .await
        .expect("payout")
        .into_inner()
        .order_id
}
