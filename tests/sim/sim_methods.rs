//! Every Trustly method against the simulator with the wire-core client: a success for each, with
//! the answer and the simulator's state (orders, balances, accounts, notifications) checked
//! through the admin API; every validation error the simulator implements, table-driven, with the
//! numeric code and no order created; and 905 for payouts, refunds and settlements beyond the
//! merchant balance, with the balance unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::fmt::Debug;

use rust_decimal::Decimal;
use serde_json::{Value, json};
#[allow(unused_imports)] // the shared prelude; this file needs only the harness
use support::{sim::*, *};
use trustly_sidecar::{
    sim::clock::Timestamp,
    trustly::{
        Error,
        methods::{
            AccountRegistration, ApproveWithdrawal, Balance, BankAccount, CreateAccount,
            GetWithdrawals, Method, OrderId, RegisterAccount, RegisterAccountAttributes,
        },
    },
};

// === helpers ===

/// Calls `method`, which must succeed.
async fn ok(h: &SimHarness, method: &str, data: Value) -> Value {
    h.call(method, data)
        .await
        .unwrap_or_else(|error| panic!("{method}: {error:?}"))
}

/// The `orderid` of an answer.
fn orderid(answer: &Value) -> String {
    answer["orderid"].as_str().expect("orderid").to_owned()
}

/// The numeric code of a verified JSON-RPC error (panics on anything else).
fn code_of<T: Debug>(outcome: Result<T, Error>, what: &str) -> i64 {
    match outcome {
        Err(Error::Rejected { code, .. }) => code.code(),
        other => panic!("{what}: expected a verified rejection, got {other:?}"),
    }
}

/// The code and name of a verified JSON-RPC error.
fn rejection_of<T: Debug>(outcome: Result<T, Error>, what: &str) -> (i64, String) {
    match outcome {
        Err(Error::Rejected { code, .. }) => (code.code(), code.name().to_owned()),
        other => panic!("{what}: expected a verified rejection, got {other:?}"),
    }
}

/// `data` with the member at `pointer` (`/Attributes/Amount`) set to `value`, or removed.
fn edit(mut data: Value, pointer: &str, value: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let target = data
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent:?}"));
    match value {
        Some(value) => target.insert(key.to_owned(), value),
        None => target.remove(key),
    };
    data
}

fn with(data: Value, pointer: &str, value: impl Into<Value>) -> Value {
    edit(data, pointer, Some(value.into()))
}

fn without(data: Value, pointer: &str) -> Value {
    edit(data, pointer, None)
}

/// A validation case: one change to otherwise valid data, and the code it must get.
struct Case {
    pointer: &'static str,
    value: Option<Value>,
    code: i64,
}

/// Sets the member at `pointer` to `value`.
fn set(pointer: &'static str, value: impl Into<Value>, code: i64) -> Case {
    Case {
        pointer,
        value: Some(value.into()),
        code,
    }
}

/// Removes the member at `pointer`.
fn unset(pointer: &'static str, code: i64) -> Case {
    Case {
        pointer,
        value: None,
        code,
    }
}

/// Runs each case on `valid(i)` (fresh valid data, so MessageIDs differ) and asserts its code,
/// and that no order was created.
async fn assert_cases(
    h: &SimHarness,
    method: &str,
    cases: &[Case],
    valid: impl Fn(usize) -> Value,
) {
    for (i, case) in cases.iter().enumerate() {
        let what = match &case.value {
            Some(value) => format!("{} = {value}", case.pointer),
            None => format!("without {}", case.pointer),
        };
        let data = edit(valid(i), case.pointer, case.value.clone());
        assert_refused(h, method, data, case.code, &what).await;
    }
}

/// Calls `method` and asserts it is refused with `code` and that no order was created.
async fn assert_refused(h: &SimHarness, method: &str, data: Value, code: i64, what: &str) {
    let before = h.order_count().await;
    assert_eq!(
        code_of(h.call(method, data).await, &format!("{method} {what}")),
        code,
        "{method} {what}"
    );
    assert_eq!(
        h.order_count().await,
        before,
        "{method} {what}: no order may be created"
    );
}

async fn set_balance(h: &SimHarness, currency: &str, balance: &str) {
    let (status, body) = h
        .admin_put(
            &format!("balances/{currency}"),
            json!({ "balance": balance }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn today() -> String {
    Timestamp::now().date()
}

/// The day after today: AccountLedger's ToDate is exclusive.
fn tomorrow() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    let days = i64::try_from(now.as_secs() / 86_400).expect("days") + 1;
    let (y, m, d) = trustly_sidecar::trustly::time::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

async fn status_of(h: &SimHarness, order_id: &str) -> String {
    h.order(order_id).await["order"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn methods_of(notifications: &[ReceivedNotification]) -> Vec<&str> {
    notifications.iter().map(|n| n.method.as_str()).collect()
}

fn withdraw_data(h: &SimHarness, message_id: &str) -> Value {
    json!({
        "NotificationURL": h.merchant.url(),
        "EndUserID": "user-1",
        "MessageID": message_id,
        "Currency": "EUR",
        "Attributes": {
            "Firstname": "Åsa", "Lastname": "Öberg", "Country": "SE", "Locale": "sv_SE",
            "ShopperStatement": "Shop", "SuccessURL": "https://merchant.example/ok",
            "FailURL": "https://merchant.example/fail", "SuggestedAmount": "50.00"
        }
    })
}

fn select_account_data(h: &SimHarness, message_id: &str, end_user: &str) -> Value {
    json!({
        "NotificationURL": h.merchant.url(),
        "EndUserID": end_user,
        "MessageID": message_id,
        "Attributes": {
            "Firstname": "Åsa", "Lastname": "Öberg", "Country": "SE", "Locale": "sv_SE",
            "Email": "asa@example.com", "SuccessURL": "https://merchant.example/ok",
            "FailURL": "https://merchant.example/fail"
        }
    })
}

fn payout_data(h: &SimHarness, message_id: &str, account_id: &str, amount: &str) -> Value {
    json!({
        "NotificationURL": h.merchant.url(),
        "AccountID": account_id,
        "EndUserID": "user-1",
        "MessageID": message_id,
        "Amount": amount,
        "Currency": "EUR",
        "Attributes": { "ShopperStatement": "Payout" }
    })
}

fn register_payout_data(
    h: &SimHarness,
    message_id: &str,
    account_number: &str,
    amount: &str,
) -> Value {
    json!({
        "EndUserID": "user-1",
        "ClearingHouse": "SWEDEN",
        "BankNumber": "6112",
        "AccountNumber": account_number,
        "Firstname": "Åsa",
        "Lastname": "Öberg",
        "NotificationURL": h.merchant.url(),
        "MessageID": message_id,
        "Amount": amount,
        "Currency": "EUR",
        "Attributes": { "ShopperStatement": "Payout" }
    })
}

fn charge_data(h: &SimHarness, message_id: &str, account_id: &str, amount: &str) -> Value {
    json!({
        "AccountID": account_id,
        "NotificationURL": h.merchant.url(),
        "EndUserID": "user-dd",
        "MessageID": message_id,
        "Amount": amount,
        "Currency": "EUR",
        "Attributes": { "ShopperStatement": "Shop", "Email": "dd@example.com" }
    })
}

fn account_details(account_number: &str) -> RegisterAccount {
    RegisterAccount {
        end_user_id: "user-1".into(),
        account: BankAccount {
            clearing_house: "SWEDEN".into(),
            bank_number: "6112".into(),
            account_number: account_number.into(),
            firstname: "Åsa".into(),
            lastname: "Öberg".into(),
        },
        attributes: RegisterAccountAttributes::default(),
    }
}

/// Typed GetWithdrawals (the OrderID goes out as a JSON number).
fn get_withdrawals(order_id: &str) -> GetWithdrawals {
    GetWithdrawals {
        order_id: OrderId::parse(order_id).expect("an order id"),
        extra: Default::default(),
    }
}

async fn register_account(h: &SimHarness, account_number: &str) -> AccountRegistration {
    h.client
        .call(&account_details(account_number))
        .await
        .expect("RegisterAccount")
}

/// A Deposit of `amount` EUR that the end user completed: the balance is credited.
async fn completed_deposit(h: &SimHarness, message_id: &str, amount: &str) -> String {
    let data = with(h.deposit_data(message_id), "/Attributes/Amount", amount);
    let answer = ok(h, "Deposit", data).await;
    let order_id = orderid(&answer);
    h.act(&order_id, "complete", json!({})).await;
    assert_eq!(status_of(h, &order_id).await, "Credited");
    order_id
}

/// A Withdraw of 50.00 EUR whose `debit` the merchant answered OK: waiting for approval.
async fn prepared_withdrawal(h: &SimHarness, message_id: &str) -> String {
    let answer = ok(h, "Withdraw", withdraw_data(h, message_id)).await;
    let order_id = orderid(&answer);
    assert_eq!(status_of(h, &order_id).await, "Initiated");
    h.act(&order_id, "complete", json!({})).await;
    h.eventually("the withdrawal to await approval", || async {
        (status_of(h, &order_id).await == "AwaitingApproval").then_some(())
    })
    .await;
    order_id
}

/// SelectAccount with a direct-debit mandate, completed: the mandated account's id.
async fn mandated_account(h: &SimHarness, end_user: &str) -> String {
    let data = with(
        select_account_data(h, &format!("m-mandate-{end_user}"), end_user),
        "/Attributes/RequestDirectDebitMandate",
        1,
    );
    let answer = ok(h, "SelectAccount", data).await;
    let order_id = orderid(&answer);
    h.act(&order_id, "complete", json!({})).await;
    let received = h.notifications_for(&order_id, 1).await;
    assert_eq!(received[0].method, "account");
    assert_eq!(received[0].data["attributes"]["directdebitmandate"], 1);
    received[0].data["accountid"]
        .as_str()
        .expect("accountid")
        .to_owned()
}

// === 1. success for every method ===

#[tokio::test]
async fn deposit_answers_an_order_and_its_checkout_url_and_completing_it_credits_the_balance() {
    let h = SimHarness::start().await;
    let answer = ok(&h, "Deposit", h.deposit_data("m-deposit")).await;
    let order_id = answer["orderid"].as_str().expect("orderid");
    assert!(
        order_id.len() == 10 && order_id.bytes().all(|b| b.is_ascii_digit()),
        "{order_id}"
    );
    let url = answer["url"].as_str().expect("url");
    assert!(
        url.contains(&format!("OrderID={order_id}")) && url.contains("Locale=sv_SE"),
        "{url}"
    );

    let order = &h.order(order_id).await["order"];
    assert_eq!(order["kind"], "Deposit");
    assert_eq!(order["status"], "Initiated");
    assert_eq!(order["amount"], "100.00");
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["message_id"], "m-deposit");
    assert_eq!(order["end_user_id"], "user-1");
    assert_eq!(
        h.balance("EUR").await,
        "1000.00",
        "nothing is credited before the user pays"
    );

    h.act(order_id, "complete", json!({})).await;
    assert_eq!(status_of(&h, order_id).await, "Credited");
    assert_eq!(h.balance("EUR").await, "1100.00");
    let received = h.notifications_for(order_id, 2).await;
    assert_eq!(methods_of(&received), ["pending", "credit"]);
    assert_eq!(received[1].data["amount"], "100.00");
    assert_eq!(received[1].data["currency"], "EUR");
    assert_eq!(received[1].data["messageid"], "m-deposit");
    assert!(received.iter().all(|n| n.signature_valid));
}

#[tokio::test]
async fn withdraw_then_approve_debits_the_balance_and_confirms_the_payout() {
    let h = SimHarness::start().await;
    let order_id = prepared_withdrawal(&h, "m-withdraw").await;
    let order = &h.order(&order_id).await["order"];
    assert_eq!(order["kind"], "Withdraw");
    assert_eq!(order["amount"], "50.00");
    assert_eq!(order["transfer_state"], "PREPARED");
    assert_eq!(
        h.balance("EUR").await,
        "1000.00",
        "nothing leaves before approval"
    );

    // Typed: the OrderID goes out as a JSON number (spec §3.5).
    let approve = ApproveWithdrawal {
        order_id: OrderId::parse(&order_id).unwrap(),
        extra: Default::default(),
    };
    let answer = h.client.call(&approve).await.expect("ApproveWithdrawal");
    assert_eq!(answer.order_id, order_id);
    assert!(answer.accepted);
    assert_eq!(h.balance("EUR").await, "950.00");
    let order = &h.order(&order_id).await["order"];
    assert_eq!(order["status"], "Executed");
    assert_eq!(order["transfer_state"], "EXECUTED");

    let received = h.notifications_for(&order_id, 2).await;
    assert_eq!(methods_of(&received), ["debit", "payoutconfirmation"]);
    assert_eq!(received[0].data["amount"], "50.00");
    assert_eq!(received[1].data["amount"], "50.00");
    assert_eq!(received[1].data["currency"], "EUR");

    // Approving again is a business "0", not a second debit.
    let again = ok(&h, "ApproveWithdrawal", json!({"OrderID": order_id})).await;
    assert_eq!(again["result"], "0");
    assert_eq!(h.balance("EUR").await, "950.00");
}

#[tokio::test]
async fn withdraw_then_deny_cancels_and_credits_without_touching_the_balance() {
    let h = SimHarness::start().await;
    let order_id = prepared_withdrawal(&h, "m-deny").await;
    let answer = ok(&h, "DenyWithdrawal", json!({"OrderID": order_id})).await;
    assert_eq!(answer, json!({"orderid": order_id, "result": "1"}));
    assert_eq!(h.balance("EUR").await, "1000.00");
    let order = &h.order(&order_id).await["order"];
    assert_eq!(order["status"], "Cancelled");
    assert_eq!(order["transfer_state"], "FAILED");

    let received = h.notifications_for(&order_id, 3).await;
    assert_eq!(methods_of(&received), ["debit", "cancel", "credit"]);
    // A denied withdrawal can no longer be approved.
    let approve = ok(&h, "ApproveWithdrawal", json!({"OrderID": order_id})).await;
    assert_eq!(approve["result"], "0");
    assert_eq!(h.balance("EUR").await, "1000.00");
}

#[tokio::test]
async fn select_account_registers_the_chosen_account_and_sends_an_account_notification() {
    let h = SimHarness::start().await;
    let answer = ok(
        &h,
        "SelectAccount",
        select_account_data(&h, "m-select", "user-sel"),
    )
    .await;
    let order_id = orderid(&answer);
    assert!(answer["url"].as_str().unwrap().contains(&order_id));
    assert_eq!(h.order(&order_id).await["order"]["kind"], "SelectAccount");
    assert_eq!(
        h.admin_get("accounts").await,
        json!([]),
        "no account before the user picks one"
    );

    let details = json!({"account": {"clearinghouse": "SWEDEN", "bank_number": "6112", "account_number": "69706212"}});
    h.act(&order_id, "complete", details).await;
    let received = h.notifications_for(&order_id, 1).await;
    assert_eq!(methods_of(&received), ["account"]);
    let data = &received[0].data;
    assert_eq!(data["verified"], "1");
    assert_eq!(data["attributes"]["descriptor"], "*706212");
    assert_eq!(data["attributes"]["lastdigits"], "706212");
    assert_eq!(data["attributes"]["clearinghouse"], "SWEDEN");
    assert_eq!(data["attributes"]["directdebitmandate"], 0);
    let account_id = data["accountid"].as_str().expect("accountid");

    let order = &h.order(&order_id).await["order"];
    assert_eq!(order["status"], "Executed");
    assert_eq!(order["account_id"], account_id);
    let accounts = h.admin_get("accounts").await;
    assert_eq!(accounts.as_array().unwrap().len(), 1);
    assert_eq!(accounts[0]["account_id"], account_id);
    assert_eq!(accounts[0]["mandate"], false);
    // The same details registered by the merchant give the same accountid.
    assert_eq!(
        register_account(&h, "69706212").await.account_id,
        account_id
    );
}

#[tokio::test]
async fn refund_allows_partial_refunds_up_to_the_deposited_amount() {
    let h = SimHarness::start().await;
    let deposit = completed_deposit(&h, "m-refund", "100.00").await;
    assert_eq!(h.balance("EUR").await, "1100.00");

    let refund = |amount: &str| json!({"OrderID": deposit, "Amount": amount, "Currency": "EUR"});
    let first = ok(&h, "Refund", refund("30.00")).await;
    assert_eq!(first, json!({"orderid": deposit, "result": "1"}));
    assert_eq!(h.balance("EUR").await, "1070.00");
    let second = h
        .call("Refund", with(refund("50.00"), "/Attributes", Value::Null))
        .await;
    assert_eq!(second.expect("second partial refund")["result"], "1");
    assert_eq!(h.balance("EUR").await, "1020.00");

    // 30 + 50 + 30 > 100: refused, and nothing moves.
    let third = h.call("Refund", refund("30.00")).await;
    assert_eq!(code_of(third, "a refund beyond the deposit"), 615);
    assert_eq!(h.balance("EUR").await, "1020.00");
    assert_eq!(h.order(&deposit).await["order"]["refunded"], "80.00");

    // Exactly what is left is still allowed.
    ok(&h, "Refund", refund("20.00")).await;
    assert_eq!(h.balance("EUR").await, "1000.00");
    assert_eq!(
        code_of(
            h.call("Refund", refund("0.01")).await,
            "a fully refunded deposit"
        ),
        615
    );

    let orders = h.admin_get("orders").await;
    let refunds: Vec<&Value> = orders
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "Refund")
        .collect();
    assert_eq!(refunds.len(), 3);
    assert!(
        refunds
            .iter()
            .all(|r| r["parent_order_id"] == deposit.as_str() && r["transfer_state"] == "EXECUTED")
    );
    let amounts: Vec<&str> = refunds
        .iter()
        .map(|r| r["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, ["30.00", "50.00", "20.00"]);
}

#[tokio::test]
async fn register_account_and_create_account_give_the_same_accountid_for_the_same_details() {
    let h = SimHarness::start().await;
    let registered = register_account(&h, "69706212").await;
    assert!(
        registered.account_id.bytes().all(|b| b.is_ascii_digit()),
        "{}",
        registered.account_id
    );
    assert_eq!(registered.descriptor, "*706212");
    assert_eq!(registered.clearinghouse, "SWEDEN");
    assert!(!registered.bank.is_empty());

    let again = register_account(&h, "69706212").await;
    assert_eq!(again, registered);
    let created = h
        .client
        .call(&CreateAccount(account_details("69706212")))
        .await
        .expect("CreateAccount");
    assert_eq!(created.account_id, registered.account_id);
    assert_eq!(created.descriptor, "*706212");

    // Other details: another account; separators do not count as digits.
    let other = h
        .client
        .call(&CreateAccount(account_details("1234-567 890")))
        .await
        .expect("CreateAccount");
    assert_ne!(other.account_id, registered.account_id);
    assert_eq!(other.descriptor, "*567890");

    let accounts = h.admin_get("accounts").await;
    let ids: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(
        ids.contains(&registered.account_id.as_str()) && ids.contains(&other.account_id.as_str())
    );
    assert_eq!(h.order_count().await, 0, "registering creates no order");
}

#[tokio::test]
async fn account_payout_queues_executes_and_a_failed_payout_returns_the_money() {
    let h = SimHarness::start().await;
    let account = register_account(&h, "69706212").await.account_id;
    let answer = ok(
        &h,
        "AccountPayout",
        payout_data(&h, "m-payout-1", &account, "100.00"),
    )
    .await;
    assert_eq!(answer["result"], "1");
    let payout = orderid(&answer);
    assert_eq!(h.balance("EUR").await, "900.00");
    let order = &h.order(&payout).await["order"];
    assert_eq!(order["kind"], "AccountPayout");
    assert_eq!(order["status"], "Queued");
    assert_eq!(order["account_id"], account.as_str());

    let get = get_withdrawals(&payout);
    let withdrawals = h.client.call(&get).await.expect("GetWithdrawals");
    assert_eq!(withdrawals.len(), 1);
    assert_eq!(withdrawals[0].transfer_state, "QUEUED");
    assert_eq!(withdrawals[0].order_id, payout);
    assert_eq!(withdrawals[0].amount, money(10_000));
    assert_eq!(withdrawals[0].currency, "EUR");
    assert_eq!(withdrawals[0].account_id.as_deref(), Some(account.as_str()));

    h.act(&payout, "complete", json!({})).await;
    let withdrawals = h.client.call(&get).await.expect("GetWithdrawals");
    assert_eq!(withdrawals[0].transfer_state, "EXECUTED");
    let received = h.notifications_for(&payout, 1).await;
    assert_eq!(methods_of(&received), ["payoutconfirmation"]);
    assert_eq!(received[0].data["amount"], "100.00");
    assert_eq!(h.balance("EUR").await, "900.00");

    // A second payout fails at the bank: the money comes back with a `credit`.
    let answer = ok(
        &h,
        "AccountPayout",
        payout_data(&h, "m-payout-2", &account, "40.00"),
    )
    .await;
    let failing = orderid(&answer);
    assert_eq!(h.balance("EUR").await, "860.00");
    h.act(&failing, "fail", json!({})).await;
    assert_eq!(h.balance("EUR").await, "900.00");
    let received = h.notifications_for(&failing, 1).await;
    assert_eq!(methods_of(&received), ["credit"]);
    assert_eq!(received[0].data["amount"], "40.00");
    let get = get_withdrawals(&failing);
    assert_eq!(
        h.client.call(&get).await.expect("GetWithdrawals")[0].transfer_state,
        "FAILED"
    );
    assert_eq!(status_of(&h, &failing).await, "Failed");
}

#[tokio::test]
async fn register_account_payout_registers_the_account_and_pays_out_in_one_call() {
    let h = SimHarness::start().await;
    let answer = ok(
        &h,
        "RegisterAccountPayout",
        register_payout_data(&h, "m-rap", "11223344", "25.00"),
    )
    .await;
    assert_eq!(answer["result"], "1");
    let order_id = orderid(&answer);
    assert_eq!(h.balance("EUR").await, "975.00");
    let order = &h.order(&order_id).await["order"];
    assert_eq!(order["kind"], "RegisterAccountPayout");
    assert_eq!(order["status"], "Queued");
    assert_eq!(order["amount"], "25.00");
    // The account it registered is the one RegisterAccount finds for the same details.
    let registered = register_account(&h, "11223344").await;
    assert_eq!(order["account_id"], registered.account_id.as_str());
    assert_eq!(registered.descriptor, "*223344");

    h.act(&order_id, "complete", json!({})).await;
    let get = get_withdrawals(&order_id);
    assert_eq!(
        h.client.call(&get).await.expect("GetWithdrawals")[0].transfer_state,
        "EXECUTED"
    );
    assert_eq!(
        methods_of(&h.notifications_for(&order_id, 1).await),
        ["payoutconfirmation"]
    );
}

#[tokio::test]
async fn get_withdrawals_is_empty_for_a_deposit_and_not_found_for_an_unknown_order() {
    let h = SimHarness::start().await;
    let deposit = completed_deposit(&h, "m-gw", "10.00").await;
    let get = get_withdrawals(&deposit);
    assert_eq!(h.client.call(&get).await.expect("GetWithdrawals"), vec![]);
    let unknown = get_withdrawals("1");
    let (code, name) = rejection_of(
        h.client.call(&unknown).await,
        "GetWithdrawals of an unknown order",
    );
    assert_eq!((code, name.as_str()), (902, "ERROR_NOT_FOUND"));
}

#[tokio::test]
async fn balance_lists_every_currency_with_two_decimals() {
    let h = SimHarness::start().await;
    let balances = h.client.call(&Balance::default()).await.expect("Balance");
    let pairs: Vec<(&str, Decimal)> = balances
        .iter()
        .map(|b| (b.currency.as_str(), b.balance))
        .collect();
    assert_eq!(pairs, [("EUR", money(100_000)), ("SEK", money(100_000))]);

    set_balance(&h, "SEK", "5.5").await;
    completed_deposit(&h, "m-bal", "12.34").await;
    // Raw: balances are strings with exactly two decimals.
    let raw = ok(&h, "Balance", json!({})).await;
    assert_eq!(
        raw,
        json!([{"currency": "EUR", "balance": "1012.34"}, {"currency": "SEK", "balance": "5.50"}])
    );
    let typed = h.client.call(&Balance::default()).await.expect("Balance");
    assert_eq!(typed[0].balance, money(101_234));
    assert_eq!(typed[1].balance, money(550));
}

#[tokio::test]
async fn account_ledger_has_todays_rows_with_exact_amounts() {
    let h = SimHarness::start().await;
    let deposit = completed_deposit(&h, "m-ledger-dep", "100.00").await;
    let account = register_account(&h, "69706212").await.account_id;
    let payout = ok(
        &h,
        "AccountPayout",
        payout_data(&h, "m-ledger-pay", &account, "25.00"),
    )
    .await;
    let payout = orderid(&payout);
    let settlement = ok(
        &h,
        "MerchantSettlement",
        json!({"MessageID": "m-ledger-set", "Amount": "10.50", "Currency": "EUR"}),
    )
    .await;
    let settlement = settlement["reference"].as_str().unwrap().to_owned();

    let today = today();
    let rows = ok(
        &h,
        "AccountLedger",
        json!({"FromDate": today, "ToDate": tomorrow(), "Currency": "EUR"}),
    )
    .await;
    let rows = rows.as_array().expect("an array");
    let summary: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["orderid"].as_str().unwrap(),
                r["transactiontype"].as_str().unwrap(),
                r["amount"].as_str().unwrap(),
                r["messageid"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                deposit.as_str(),
                "Deposit",
                "100.00000000000000000000",
                "m-ledger-dep"
            ),
            (
                payout.as_str(),
                "AccountPayout",
                "-25.00000000000000000000",
                "m-ledger-pay"
            ),
            (
                settlement.as_str(),
                "Settlement",
                "-10.50000000000000000000",
                "m-ledger-set"
            ),
        ]
    );
    for row in rows {
        assert!(
            row["datestamp"].as_str().unwrap().starts_with(&today),
            "{row}"
        );
        assert_eq!(row["currency"], "EUR");
        assert_eq!(row["accountname"], "CLIENT_FUNDS");
        assert_eq!(row["gluepayid"], row["orderid"]);
    }
    assert_eq!(rows[0]["userid"], "user-1");

    // Another currency, or a period without activity: nothing.
    let sek = h
        .call(
            "AccountLedger",
            json!({"FromDate": today, "ToDate": tomorrow(), "Currency": "SEK"}),
        )
        .await;
    assert_eq!(sek.expect("ledger"), json!([]));
    // ToDate is exclusive: a period ending today holds none of today's rows.
    let to_today = h
        .call(
            "AccountLedger",
            json!({"FromDate": today, "ToDate": today, "Currency": "EUR"}),
        )
        .await;
    assert_eq!(to_today.expect("ledger"), json!([]));
    let past = h
        .call(
            "AccountLedger",
            json!({"FromDate": "2000-01-01", "ToDate": "2000-12-31"}),
        )
        .await;
    assert_eq!(past.expect("ledger"), json!([]));
    // Without a Currency: every currency.
    let all = h
        .call(
            "AccountLedger",
            json!({"FromDate": "2000-01-01", "ToDate": "2999-12-31"}),
        )
        .await;
    assert_eq!(all.expect("ledger").as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_settlement_report_is_the_v1_2_csv_with_a_row_per_ledger_entry() {
    let h = SimHarness::start().await;
    let deposit = completed_deposit(&h, "m-csv", "100.00").await;
    let account = register_account(&h, "69706212").await.account_id;
    let data = with(
        payout_data(&h, "m-csv-pay", &account, "25.00"),
        "/Attributes/ExternalReference",
        "ref-42",
    );
    let payout = orderid(&ok(&h, "AccountPayout", data).await);

    let today = today();
    let request =
        json!({"SettlementDate": today, "Currency": "EUR", "Attributes": {"APIVersion": "1.2"}});
    let answer = ok(&h, "ViewAutomaticSettlementDetailsCSV", request).await;
    let csv = answer["view_automatic_settlement_details"]
        .as_str()
        .expect("csv text");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "datestamp,accountname,currency,amount,total,orderid,ordertype,messageid,username,fxpaymentamount,fxpaymentcurrency,settlementbankwithdrawalid,extraref"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    let fields = |line: &str| line.split(',').map(str::to_owned).collect::<Vec<_>>();
    let deposit_row = fields(lines[1]);
    assert!(deposit_row[0].starts_with(&today), "{}", lines[1]);
    assert_eq!(
        deposit_row[1..],
        [
            "CLIENT_FUNDS",
            "EUR",
            "100.00",
            "100.00",
            &deposit,
            "Deposit",
            "m-csv",
            "user-1",
            "",
            "",
            "",
            ""
        ]
    );
    let payout_row = fields(lines[2]);
    assert_eq!(
        payout_row[1..],
        [
            "CLIENT_FUNDS",
            "EUR",
            "-25.00",
            "75.00",
            &payout,
            "AccountPayout",
            "m-csv-pay",
            "user-1",
            "",
            "",
            "",
            "ref-42"
        ]
    );

    // Another currency: only the header.
    let sek =
        json!({"SettlementDate": today, "Currency": "SEK", "Attributes": {"APIVersion": "1.2"}});
    let answer = ok(&h, "ViewAutomaticSettlementDetailsCSV", sek).await;
    assert_eq!(
        answer["view_automatic_settlement_details"]
            .as_str()
            .unwrap()
            .lines()
            .count(),
        1
    );
}

#[tokio::test]
async fn charge_is_accepted_only_for_an_account_with_a_mandate() {
    let h = SimHarness::start().await;
    let mandated = mandated_account(&h, "user-dd").await;
    let accounts = h.admin_get("accounts").await;
    assert_eq!(accounts[0]["account_id"], mandated.as_str());
    assert_eq!(accounts[0]["mandate"], true);
    let orders_before = h.order_count().await;

    let answer = ok(
        &h,
        "Charge",
        charge_data(&h, "m-charge", &mandated, "20.00"),
    )
    .await;
    assert_eq!(answer["result"], "1");
    assert_eq!(answer["rejected"], Value::Null);
    let charge = orderid(&answer);
    assert_eq!(h.order_count().await, orders_before + 1);
    let order = &h.order(&charge).await["order"];
    assert_eq!(order["kind"], "Charge");
    assert_eq!(order["status"], "Queued");
    assert_eq!(order["amount"], "20.00");
    assert_eq!(order["account_id"], mandated.as_str());
    assert_eq!(
        h.balance("EUR").await,
        "1000.00",
        "nothing before the charge executes"
    );

    h.act(&charge, "complete", json!({})).await;
    assert_eq!(status_of(&h, &charge).await, "Credited");
    assert_eq!(h.balance("EUR").await, "1020.00");
    let received = h.notifications_for(&charge, 1).await;
    assert_eq!(methods_of(&received), ["credit"]);
    assert_eq!(received[0].data["amount"], "20.00");

    // An account without a mandate: a business rejection inside a success envelope.
    let plain = register_account(&h, "55556666").await.account_id;
    let orders_before = h.order_count().await;
    let answer = ok(
        &h,
        "Charge",
        charge_data(&h, "m-charge-nomandate", &plain, "20.00"),
    )
    .await;
    assert_eq!(
        answer,
        json!({"result": "0", "orderid": null, "rejected": "ERROR_MANDATE_NOT_FOUND"})
    );
    let answer = ok(
        &h,
        "Charge",
        charge_data(&h, "m-charge-noaccount", "4242", "20.00"),
    )
    .await;
    assert_eq!(
        answer,
        json!({"result": "0", "orderid": null, "rejected": "ERROR_ACCOUNT_NOT_FOUND"})
    );
    assert_eq!(
        h.order_count().await,
        orders_before,
        "a rejected charge creates no order"
    );
    assert_eq!(h.balance("EUR").await, "1020.00");
}

#[tokio::test]
async fn cancel_charge_cancels_a_future_dated_charge_only() {
    let h = SimHarness::start().await;
    let account = mandated_account(&h, "user-dd").await;
    let future = with(
        charge_data(&h, "m-future", &account, "20.00"),
        "/Attributes/PaymentDate",
        "2099-01-01",
    );
    let charge = orderid(&ok(&h, "Charge", future).await);
    assert_eq!(
        h.order(&charge).await["order"]["payment_date"],
        "2099-01-01"
    );

    let answer = ok(&h, "CancelCharge", json!({"OrderID": charge})).await;
    assert_eq!(
        answer,
        json!({"result": "1", "orderid": charge, "rejected": null})
    );
    assert_eq!(status_of(&h, &charge).await, "Cancelled");
    assert_eq!(
        methods_of(&h.notifications_for(&charge, 1).await),
        ["cancel"]
    );
    // A cancelled charge never executes, and cannot be cancelled twice.
    let (status, _) = h
        .admin_post(&format!("orders/{charge}/complete"), json!({}))
        .await;
    assert_eq!(status, 409);
    assert_eq!(h.balance("EUR").await, "1000.00");
    let again = ok(&h, "CancelCharge", json!({"OrderID": charge})).await;
    assert_eq!(again["result"], "0");

    // As soon as possible (no PaymentDate): too late to cancel.
    let asap = ok(&h, "Charge", charge_data(&h, "m-asap", &account, "20.00")).await;
    let asap = orderid(&asap);
    let answer = ok(&h, "CancelCharge", json!({"OrderID": asap})).await;
    assert_eq!(answer["result"], "0");
    assert!(answer["rejected"].is_string(), "{answer}");
    assert_eq!(status_of(&h, &asap).await, "Queued");

    let orders = h.order_count().await;
    assert_eq!(
        code_of(
            h.call("CancelCharge", json!({"OrderID": "1"})).await,
            "CancelCharge unknown"
        ),
        655
    );
    assert_eq!(h.order_count().await, orders);
}

#[tokio::test]
async fn merchant_settlement_returns_a_reference_and_takes_the_amount_from_the_balance() {
    let h = SimHarness::start().await;
    let answer = ok(
        &h,
        "MerchantSettlement",
        json!({"MessageID": "m-settle", "Amount": "100.00", "Currency": "EUR"}),
    )
    .await;
    let reference = answer["reference"].as_str().expect("reference").to_owned();
    assert!(
        !reference.is_empty() && reference.bytes().all(|b| b.is_ascii_digit()),
        "{reference}"
    );
    assert_eq!(h.balance("EUR").await, "900.00");
    assert_eq!(h.balance("SEK").await, "1000.00");
    let order = &h.order(&reference).await["order"];
    assert_eq!(order["kind"], "MerchantSettlement");
    assert_eq!(order["status"], "Executed");
    assert_eq!(order["amount"], "100.00");

    // The MessageID is spent: a second settlement with it is refused and takes nothing.
    let again = h
        .call(
            "MerchantSettlement",
            json!({"MessageID": "m-settle", "Amount": "100.00", "Currency": "EUR"}),
        )
        .await;
    assert_eq!(code_of(again, "a reused MessageID"), 637);
    assert_eq!(h.balance("EUR").await, "900.00");
}

// === 2. validation errors ===

#[tokio::test]
async fn deposit_validation_errors_have_trustlys_codes_and_create_no_order() {
    let h = SimHarness::start().await;
    let cases = [
        set("/Attributes/Amount", "10", 615),
        set("/Attributes/Amount", "10.5", 615),
        set("/Attributes/Amount", "0.00", 615),
        set("/Attributes/Amount", "-1.00", 615),
        set("/Attributes/Amount", "1e2", 615),
        set("/Attributes/SuggestedMinAmount", "5", 615),
        set("/Attributes/Currency", "XXX", 622),
        set("/Attributes/Currency", "eur", 622),
        unset("/Attributes/Currency", 622),
        unset("/Attributes/Firstname", 623),
        unset("/Attributes/Lastname", 623),
        unset("/Attributes/ShopperStatement", 623),
        unset("/Attributes/Email", 623),
        set("/Attributes/Firstname", json!(["Åsa"]), 623),
        set("/Attributes/Firstname", json!({"first": "Åsa"}), 623),
        set("/Attributes/RequestKYC", "yes", 623),
        unset("/Attributes", 623),
        set("/Attributes", "Currency=EUR", 623),
        set("/Attributes/Email", "asa.example.com", 642),
        set("/Attributes/Email", "asa@", 642),
        set("/Attributes/Locale", "sv-SE", 645),
        set("/Attributes/Locale", "sv", 645),
        unset("/Attributes/Locale", 645),
        unset("/EndUserID", 696),
        set("/EndUserID", "", 696),
        unset("/MessageID", 697),
        set("/MessageID", Value::Null, 697),
        set("/Attributes/IP", "1.2.3.4, 5.6.7.8", 698),
        set("/Attributes/IP", "999.1.1.1", 698),
        set("/Attributes/SuccessURL", "not a url", 700),
        set("/Attributes/SuccessURL", "javascript:alert(1)", 700),
        unset("/Attributes/SuccessURL", 700),
        set("/Attributes/FailURL", "ftp://merchant.example/fail", 701),
        unset("/Attributes/FailURL", 701),
        set("/Attributes/TemplateURL", "not a url", 702),
        set("/NotificationURL", "https://merchant.example/n?x=1", 705),
        set("/NotificationURL", "not a url", 705),
        set("/NotificationURL", "ftp://merchant.example/n", 705),
        unset("/NotificationURL", 705),
        set("/NotificationURL", "http://merchant.example/n", 734),
        set("/NotificationURL", "http://localhost.example/n", 734),
        set("/Attributes/Country", "Sweden", 737),
        set("/Attributes/Country", "se", 737),
        unset("/Attributes/Country", 737),
    ];
    assert_cases(&h, "Deposit", &cases, |i| h.deposit_data(&format!("m-{i}"))).await;
    assert_eq!(h.order_count().await, 0);
    // An https NotificationURL, and plain http on loopback, are fine.
    let https = "https://merchant.example/n";
    ok(
        &h,
        "Deposit",
        with(h.deposit_data("m-https"), "/NotificationURL", https),
    )
    .await;
    ok(&h, "Deposit", h.deposit_data("m-loopback")).await;
    assert_eq!(h.order_count().await, 2);
}

#[tokio::test]
async fn a_refused_request_does_not_spend_its_message_id() {
    let h = SimHarness::start().await;
    let bad = with(h.deposit_data("m-retry"), "/Attributes/Amount", "10");
    assert_refused(&h, "Deposit", bad, 615, "Amount 10").await;
    ok(&h, "Deposit", h.deposit_data("m-retry")).await;
    assert_eq!(h.order_count().await, 1);
    // The accepted one did spend it.
    let again = h.deposit_data("m-retry");
    assert_refused(&h, "Deposit", again, 637, "the MessageID again").await;
}

#[tokio::test]
async fn withdraw_and_select_account_validation_errors() {
    let h = SimHarness::start().await;
    let withdraw = [
        set("/Attributes/SuggestedAmount", "50", 615),
        set("/Currency", "XXX", 622),
        set("/Currency", "eur", 622),
        unset("/Currency", 622),
        unset("/Attributes/ShopperStatement", 623),
        set("/Attributes/Email", "asa@example", 642),
        set("/Attributes/Locale", "sv-SE", 645),
        unset("/EndUserID", 696),
        unset("/MessageID", 697),
        set("/Attributes/IP", "1.2.3.4, 5.6.7.8", 698),
        set("/Attributes/SuccessURL", "merchant.example/ok", 700),
        set("/Attributes/FailURL", "not a url", 701),
        set("/NotificationURL", "https://merchant.example/n?x=1", 705),
        set("/NotificationURL", "http://merchant.example/n", 734),
        set("/Attributes/Country", "Sweden", 737),
    ];
    assert_cases(&h, "Withdraw", &withdraw, |i| {
        withdraw_data(&h, &format!("m-w-{i}"))
    })
    .await;
    let select = [
        unset("/Attributes/Firstname", 623),
        set("/Attributes/RequestDirectDebitMandate", 2, 623),
        set("/Attributes/Email", "nope", 642),
        set("/Attributes/Locale", "sv-SE", 645),
        unset("/EndUserID", 696),
        unset("/MessageID", 697),
        set("/Attributes/IP", "1.2.3.4, 5.6.7.8", 698),
        set("/Attributes/SuccessURL", "not a url", 700),
        set("/Attributes/FailURL", "not a url", 701),
        set("/NotificationURL", "not a url", 705),
        set("/NotificationURL", "http://merchant.example/n", 734),
        set("/Attributes/Country", "Sweden", 737),
    ];
    assert_cases(&h, "SelectAccount", &select, |i| {
        select_account_data(&h, &format!("m-s-{i}"), "user-1")
    })
    .await;
    assert_eq!(h.order_count().await, 0);
}

#[tokio::test]
async fn payout_validation_errors() {
    let h = SimHarness::start().await;
    let account = register_account(&h, "69706212").await.account_id;
    let cases = [
        set("/Amount", "10", 615),
        set("/Amount", "10.5", 615),
        set("/Amount", "0.00", 615),
        set("/Amount", "-1.00", 615),
        unset("/Amount", 615),
        set("/Currency", "XXX", 622),
        set("/Currency", "eur", 622),
        unset("/Attributes/ShopperStatement", 623),
        unset("/Attributes", 623),
        unset("/AccountID", 623),
        unset("/EndUserID", 696),
        unset("/MessageID", 697),
        set("/NotificationURL", "https://merchant.example/n?x=1", 705),
        set("/NotificationURL", "not a url", 705),
        set("/NotificationURL", "http://merchant.example/n", 734),
        // An AccountID the simulator never issued.
        set("/AccountID", "4242424242", 903),
    ];
    assert_cases(&h, "AccountPayout", &cases, |i| {
        payout_data(&h, &format!("m-p-{i}"), &account, "10.00")
    })
    .await;
    let unknown = payout_data(&h, "m-p-unknown", "4242424242", "10.00");
    let (code, name) = rejection_of(h.call("AccountPayout", unknown).await, "unknown AccountID");
    assert_eq!(
        (code, name.as_str()),
        (903, "ERROR_INVALID_BANK_ACCOUNT_NUMBER")
    );

    let rap = [
        set("/AccountNumber", "12", 903),
        set("/AccountNumber", "1234#5678", 903),
        unset("/AccountNumber", 623),
        unset("/ClearingHouse", 623),
        unset("/BankNumber", 623),
        unset("/Firstname", 623),
        set("/Amount", "10", 615),
        set("/Currency", "eur", 622),
        unset("/EndUserID", 696),
        unset("/MessageID", 697),
        set("/NotificationURL", "http://merchant.example/n", 734),
    ];
    assert_cases(&h, "RegisterAccountPayout", &rap, |i| {
        register_payout_data(&h, &format!("m-rap-{i}"), "11223344", "10.00")
    })
    .await;
    assert_eq!(h.order_count().await, 0);
    assert_eq!(h.balance("EUR").await, "1000.00");
}

#[tokio::test]
async fn register_account_validation_errors() {
    let h = SimHarness::start().await;
    let valid = Value::Object(Method::data(&account_details("69706212")).unwrap());
    let cases = [
        set("/AccountNumber", "123", 903),
        set("/AccountNumber", "1234;5678", 903),
        unset("/AccountNumber", 623),
        unset("/ClearingHouse", 623),
        unset("/BankNumber", 623),
        unset("/Firstname", 623),
        unset("/Lastname", 623),
        set("/Attributes", "x", 623),
    ];
    assert_cases(&h, "RegisterAccount", &cases, |_| valid.clone()).await;
    assert_cases(&h, "CreateAccount", &cases, |_| valid.clone()).await;
    assert_eq!(
        h.admin_get("accounts").await,
        json!([]),
        "no account registered"
    );
}

#[tokio::test]
async fn order_id_errors_655_902_and_a_refund_in_the_wrong_currency() {
    let h = SimHarness::start().await;
    let refund =
        |order_id: &str| json!({"OrderID": order_id, "Amount": "10.00", "Currency": "EUR"});
    assert_refused(&h, "Refund", refund("1234567890"), 655, "unknown OrderID").await;
    assert_refused(&h, "Refund", refund("12ab"), 655, "non-numeric OrderID").await;
    assert_refused(
        &h,
        "Refund",
        without(refund("1"), "/OrderID"),
        655,
        "no OrderID",
    )
    .await;
    for (method, data) in [
        ("ApproveWithdrawal", json!({"OrderID": "1234567890"})),
        ("ApproveWithdrawal", json!({"OrderID": 1_234_567_890_u64})),
        ("ApproveWithdrawal", json!({})),
        ("DenyWithdrawal", json!({"OrderID": "1234567890"})),
        ("GetWithdrawals", json!({"OrderID": "1234567890"})),
    ] {
        let what = format!("{method} {data}");
        let (code, name) = rejection_of(h.call(method, data).await, &what);
        assert_eq!((code, name.as_str()), (902, "ERROR_NOT_FOUND"), "{what}");
    }
    let unknown_charge = json!({"OrderID": "1234567890"});
    assert_refused(&h, "CancelCharge", unknown_charge, 655, "unknown charge").await;
    assert_eq!(h.order_count().await, 0);

    // Orders that exist but are of the wrong kind or state.
    let deposit = completed_deposit(&h, "m-kinds", "100.00").await;
    let pending = orderid(&ok(&h, "Deposit", h.deposit_data("m-pending")).await);
    assert_refused(
        &h,
        "Refund",
        refund(&pending),
        655,
        "a deposit not credited yet",
    )
    .await;
    let not_a_charge = json!({"OrderID": deposit});
    assert_refused(
        &h,
        "CancelCharge",
        not_a_charge,
        655,
        "a deposit is no charge",
    )
    .await;
    let approve = h
        .call("ApproveWithdrawal", json!({"OrderID": deposit}))
        .await;
    assert_eq!(code_of(approve, "approve a deposit"), 902);
    // The right order with the wrong currency or a malformed amount.
    let cases = [
        set("/Currency", "SEK", 622),
        set("/Currency", "eur", 622),
        set("/Amount", "10", 615),
        set("/Amount", "10.5", 615),
        set("/Amount", "0.00", 615),
        set("/Amount", "-1.00", 615),
    ];
    assert_cases(&h, "Refund", &cases, |_| refund(&deposit)).await;
    assert_eq!(h.balance("EUR").await, "1100.00");
}

#[tokio::test]
async fn charge_validation_errors() {
    let h = SimHarness::start().await;
    let account = mandated_account(&h, "user-dd").await;
    let cases = [
        set("/Amount", "10", 615),
        set("/Amount", "0.00", 615),
        set("/Currency", "XXX", 622),
        unset("/AccountID", 623),
        unset("/Attributes/ShopperStatement", 623),
        set("/Attributes/PaymentDate", "2099-13-01", 623),
        set("/Attributes/PaymentDate", "01/01/2099", 623),
        unset("/Attributes/Email", 642),
        set("/Attributes/Email", "dd.example.com", 642),
        unset("/EndUserID", 696),
        unset("/MessageID", 697),
        set("/NotificationURL", "https://merchant.example/n?x=1", 705),
        set("/NotificationURL", "http://merchant.example/n", 734),
    ];
    assert_cases(&h, "Charge", &cases, |i| {
        charge_data(&h, &format!("m-c-{i}"), &account, "10.00")
    })
    .await;
}

#[tokio::test]
async fn report_and_settlement_validation_errors() {
    let h = SimHarness::start().await;
    let today = today();
    let ledger = [
        unset("/FromDate", 623),
        set("/ToDate", "2026-13-01", 623),
        set("/FromDate", "2026-01-01 00:00:00", 623),
        set("/Currency", "eur", 622),
        set("/Currency", "XXX", 622),
    ];
    assert_cases(
        &h,
        "AccountLedger",
        &ledger,
        |_| json!({"FromDate": today, "ToDate": today}),
    )
    .await;
    let report = [
        unset("/Attributes/APIVersion", 623),
        set("/Attributes/APIVersion", "1.1", 623),
        unset("/Attributes", 623),
        unset("/SettlementDate", 623),
        set("/SettlementDate", "yesterday", 623),
        set("/Currency", "XXX", 622),
    ];
    assert_cases(
        &h,
        "ViewAutomaticSettlementDetailsCSV",
        &report,
        |_| json!({"SettlementDate": today, "Attributes": {"APIVersion": "1.2"}}),
    )
    .await;
    let settlement = [
        set("/Amount", "10", 615),
        set("/Amount", "-1.00", 615),
        set("/Currency", "eur", 622),
        unset("/MessageID", 697),
    ];
    assert_cases(
        &h,
        "MerchantSettlement",
        &settlement,
        |i| json!({"MessageID": format!("m-{i}"), "Amount": "10.00", "Currency": "EUR"}),
    )
    .await;
    assert_eq!(h.order_count().await, 0);
    assert_eq!(h.balance("EUR").await, "1000.00");
}

// === 3. insufficient balance ===

#[tokio::test]
async fn an_account_payout_beyond_the_balance_gets_905_and_moves_nothing() {
    let h = SimHarness::start().await;
    let account = register_account(&h, "69706212").await.account_id;
    set_balance(&h, "EUR", "5.00").await;
    let (code, name) = rejection_of(
        h.call("AccountPayout", payout_data(&h, "m-905", &account, "5.01"))
            .await,
        "AccountPayout beyond the balance",
    );
    assert_eq!((code, name.as_str()), (905, "ERROR_INSUFFICIENT_FUNDS"));
    assert_eq!(h.balance("EUR").await, "5.00");
    assert_eq!(h.order_count().await, 0);
    let (code, _) = rejection_of(
        h.call(
            "RegisterAccountPayout",
            register_payout_data(&h, "m-905-rap", "11223344", "5.01"),
        )
        .await,
        "RegisterAccountPayout beyond the balance",
    );
    assert_eq!(code, 905);
    assert_eq!(h.balance("EUR").await, "5.00");
    assert_eq!(h.order_count().await, 0);

    // Exactly the balance is fine, and the refused MessageID was not spent.
    ok(
        &h,
        "AccountPayout",
        payout_data(&h, "m-905", &account, "5.00"),
    )
    .await;
    assert_eq!(h.balance("EUR").await, "0.00");
    assert_eq!(h.balance("SEK").await, "1000.00");
}

#[tokio::test]
async fn a_refund_beyond_the_balance_gets_905_and_moves_nothing() {
    let h = SimHarness::start().await;
    let deposit = completed_deposit(&h, "m-905-refund", "100.00").await;
    set_balance(&h, "EUR", "5.00").await;
    let refund = json!({"OrderID": deposit, "Amount": "10.00", "Currency": "EUR"});
    let (code, name) = rejection_of(
        h.call("Refund", refund.clone()).await,
        "Refund beyond the balance",
    );
    assert_eq!((code, name.as_str()), (905, "ERROR_INSUFFICIENT_FUNDS"));
    assert_eq!(h.balance("EUR").await, "5.00");
    assert_eq!(h.order_count().await, 1, "no refund order");
    assert_eq!(h.order(&deposit).await["order"]["refunded"], "0");

    // With funds back, the whole deposit can still be refunded: the refused one did not count.
    set_balance(&h, "EUR", "1000.00").await;
    ok(&h, "Refund", with(refund, "/Amount", "100.00")).await;
    assert_eq!(h.balance("EUR").await, "900.00");
}

#[tokio::test]
async fn a_merchant_settlement_beyond_the_balance_gets_905_and_moves_nothing() {
    let h = SimHarness::start().await;
    let settle =
        |amount: &str| json!({"MessageID": "m-905-settle", "Amount": amount, "Currency": "EUR"});
    let (code, name) = rejection_of(
        h.call("MerchantSettlement", settle("1000.01")).await,
        "settlement beyond the balance",
    );
    assert_eq!((code, name.as_str()), (905, "ERROR_INSUFFICIENT_FUNDS"));
    assert_eq!(h.balance("EUR").await, "1000.00");
    assert_eq!(h.order_count().await, 0);
    let (code, _) = rejection_of(
        h.call(
            "MerchantSettlement",
            json!({"MessageID": "m-905-nok", "Amount": "1.00", "Currency": "NOK"}),
        )
        .await,
        "settlement in a currency without balance",
    );
    assert_eq!(code, 905);
    ok(&h, "MerchantSettlement", settle("1000.00")).await;
    assert_eq!(h.balance("EUR").await, "0.00");
}

#[tokio::test]
async fn approving_a_withdrawal_beyond_the_balance_gets_905_and_keeps_it_waiting() {
    let h = SimHarness::start().await;
    let order_id = prepared_withdrawal(&h, "m-905-withdraw").await;
    set_balance(&h, "EUR", "49.99").await;
    let (code, _) = rejection_of(
        h.call("ApproveWithdrawal", json!({"OrderID": order_id}))
            .await,
        "approve beyond the balance",
    );
    assert_eq!(code, 905);
    assert_eq!(h.balance("EUR").await, "49.99");
    assert_eq!(status_of(&h, &order_id).await, "AwaitingApproval");
}

// === regressions: bugs this suite found in the simulator ===

#[tokio::test]
async fn a_deposits_external_reference_appears_in_the_settlement_report() {
    let h = SimHarness::start().await;
    let data = with(
        h.deposit_data("m-extref"),
        "/Attributes/ExternalReference",
        "dep-ref-1",
    );
    let deposit = orderid(&ok(&h, "Deposit", data).await);
    h.act(&deposit, "complete", json!({})).await;
    let request = json!({"SettlementDate": today(), "Attributes": {"APIVersion": "1.2"}});
    let answer = ok(&h, "ViewAutomaticSettlementDetailsCSV", request).await;
    let csv = answer["view_automatic_settlement_details"]
        .as_str()
        .expect("csv text");
    let row = csv.lines().nth(1).expect("the deposit's row");
    assert!(row.contains(&deposit), "{csv}");
    assert_eq!(row.rsplit(',').next(), Some("dep-ref-1"), "{csv}");
}

#[tokio::test]
async fn select_account_with_a_mandate_requires_an_email() {
    let h = SimHarness::start().await;
    let data = with(
        select_account_data(&h, "m-mandate-noemail", "user-1"),
        "/Attributes/RequestDirectDebitMandate",
        1,
    );
    assert_refused(
        &h,
        "SelectAccount",
        without(data, "/Attributes/Email"),
        642,
        "mandate without Email",
    )
    .await;
}

#[tokio::test]
async fn charge_refuses_an_email_without_a_domain() {
    let h = SimHarness::start().await;
    let account = mandated_account(&h, "user-dd").await;
    let data = with(
        charge_data(&h, "m-bad-email", &account, "10.00"),
        "/Attributes/Email",
        "dd@",
    );
    assert_refused(&h, "Charge", data, 642, "Email dd@").await;
}
