//! Every RPC of `trustly.v1.PaymentService` over real gRPC: a tonic client talks to an in-process
//! sidecar, which signs and sends to an in-process Trustly simulator.
//!
//! For each RPC: a success with the typed answer checked field by field and, where money moves,
//! the simulator's state checked through its admin API; validation failures that name the bad
//! field paths in `google.rpc.BadRequest` (INVALID_ARGUMENT, ErrorInfo reason INVALID_ARGUMENT,
//! domain trustly.com) and send nothing to the simulator; and `extra_attributes` passing through
//! to Trustly, signed.
//!
//! The sidecar's configured NotificationURL is undeliverable (https://merchant.example/...);
//! flows that need notifications acknowledged send `notification_url` = the harness's merchant
//! endpoint (plain http on loopback).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::{
    collections::BTreeSet,
    fmt::Debug,
    future::Future,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};
use support::{
    app,
    requests::{
        extras, money, person,
        valid::{
            self, account_payout, charge, deposit, refund, register_account,
            register_account_payout, select_account, withdraw,
        },
    },
    sim::*,
};
use tonic::{Code, Response, Status};
use tonic_types::StatusExt;
use trustly_sidecar::{pb, sim::clock::Timestamp};

// === harness ===

/// A simulator and a sidecar talking to it, as the harness's merchant.
async fn start() -> (SimHarness, app::Sidecar) {
    start_with(&[]).await
}

async fn start_with(extra: &[(&str, &str)]) -> (SimHarness, app::Sidecar) {
    let h = SimHarness::start().await;
    let (vars, files) = app::vars_for(&h, extra);
    let sidecar = app::spawn(vars, files).await;
    (h, sidecar)
}

/// A sidecar without its polling window, for tests that read state changes through Balance and
/// GetWithdrawals (the window itself is tested in `polls_are_limited_...`).
const NO_POLL_WINDOW: &[(&str, &str)] = &[("TRUSTLY_SIDECAR_POLL_WINDOW", "0s")];

fn today() -> String {
    Timestamp::now().date()
}

/// The day after today (AccountLedger's ToDate is exclusive).
fn tomorrow() -> String {
    let days = now_secs().div_euclid(86_400) + 1;
    let (y, m, d) = trustly_sidecar::trustly::time::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn now_secs() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits")
}

/// The answer of a call that must succeed.
fn ok<T>(result: Result<Response<T>, Status>, what: &str) -> T {
    match result {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("{what}: {status:?}"),
    }
}

/// A Trustly OrderID: a non-empty string of digits.
fn assert_digits(id: &str, what: &str) {
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        "{what}: {id:?} is not a string of digits"
    );
}

/// A timestamp within the last ten minutes (the simulator books everything "now").
fn assert_recent(time: Option<&prost_types::Timestamp>, what: &str) {
    let time = time.unwrap_or_else(|| panic!("{what}: no timestamp"));
    let now = now_secs();
    assert!(
        (now - 600..=now + 60).contains(&time.seconds),
        "{what}: {time:?} is not about now ({now})"
    );
}

async fn status_of(h: &SimHarness, order_id: &str) -> String {
    h.order(order_id).await["order"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The simulator's request log.
async fn requests(h: &SimHarness) -> Vec<Value> {
    h.admin_get("requests")
        .await
        .as_array()
        .expect("an array")
        .clone()
}

/// The one logged request for `method`, which must have been signed correctly and answered OK.
async fn logged(h: &SimHarness, method: &str) -> Value {
    let matching: Vec<Value> = requests(h)
        .await
        .into_iter()
        .filter(|r| r["method"] == method)
        .collect();
    assert_eq!(matching.len(), 1, "{method} requests: {matching:?}");
    let request = matching.into_iter().next().unwrap();
    assert_eq!(request["signature_valid"], true, "{request}");
    assert_eq!(request["outcome"], "OK", "{request}");
    request
}

async fn assert_nothing_sent(h: &SimHarness, what: &str) {
    assert_eq!(
        h.admin_get("requests").await,
        json!([]),
        "{what}: an invalid request must not reach Trustly"
    );
}

// === validation ===

/// Asserts INVALID_ARGUMENT with ErrorInfo {INVALID_ARGUMENT, trustly.com} and a BadRequest
/// naming exactly `fields`, each with a description.
fn assert_invalid<T: Debug>(result: Result<Response<T>, Status>, fields: &[&str], what: &str) {
    let status = match result {
        Ok(response) => panic!("{what}: expected INVALID_ARGUMENT, got {response:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("{what}: no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, "INVALID_ARGUMENT", "{what}");
    assert_eq!(info.domain, "trustly.com", "{what}");
    let bad_request = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("{what}: no BadRequest in {status:?}"));
    assert!(
        bad_request
            .field_violations
            .iter()
            .all(|v| !v.description.is_empty()),
        "{what}: {bad_request:?}"
    );
    let got: BTreeSet<&str> = bad_request
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    let expected: BTreeSet<&str> = fields.iter().copied().collect();
    assert_eq!(got, expected, "{what}: {bad_request:?}");
}

/// A change to an otherwise valid request, and the field paths it must be refused for.
type Case<R> = (&'static [&'static str], fn(&mut R));

/// Runs every case on a fresh `valid()` request through `call`, then checks that nothing reached
/// the simulator.
async fn assert_cases<R, T, F, Fut>(
    h: &SimHarness,
    rpc: &str,
    valid: impl Fn() -> R,
    cases: &[Case<R>],
    call: F,
) where
    T: Debug,
    F: Fn(R) -> Fut,
    Fut: Future<Output = Result<Response<T>, Status>>,
{
    for (i, (fields, change)) in cases.iter().enumerate() {
        let mut request = valid();
        change(&mut request);
        assert_invalid(
            call(request).await,
            fields,
            &format!("{rpc} case {i} ({fields:?})"),
        );
    }
    assert_nothing_sent(h, rpc).await;
}

// === valid requests: support::requests::valid ===

// === flows ===

/// A Deposit of `amount` EUR over gRPC that the end user completed: the balance is credited.
async fn completed_deposit(
    h: &SimHarness,
    s: &app::Sidecar,
    mut request: pb::DepositRequest,
    amount: &str,
) -> String {
    request.amount = amount.into();
    let answer = ok(s.client.clone().deposit(request).await, "Deposit");
    assert_digits(&answer.order_id, "Deposit order_id");
    h.act(&answer.order_id, "complete", json!({})).await;
    assert_eq!(status_of(h, &answer.order_id).await, "Credited");
    answer.order_id
}

/// A Withdraw of 50.00 EUR over gRPC whose `debit` the merchant acknowledged: it awaits approval.
async fn prepared_withdrawal(h: &SimHarness, s: &app::Sidecar, message_id: &str) -> String {
    let answer = ok(
        s.client
            .clone()
            .withdraw(withdraw(&h.merchant.url(), message_id))
            .await,
        "Withdraw",
    );
    let order_id = answer.order_id;
    assert_digits(&order_id, "Withdraw order_id");
    assert!(answer.url.contains(&order_id), "{}", answer.url);
    h.act(&order_id, "complete", json!({})).await;
    h.eventually("the withdrawal to await approval", || async {
        (status_of(h, &order_id).await == "AwaitingApproval").then_some(())
    })
    .await;
    order_id
}

/// A completed SelectAccount over gRPC: the account's id from the `account` notification.
async fn selected_account(
    h: &SimHarness,
    s: &app::Sidecar,
    end_user_id: &str,
    mandate: bool,
    details: Value,
) -> String {
    let request = select_account(
        &h.merchant.url(),
        &format!("m-select-{end_user_id}"),
        end_user_id,
        mandate,
    );
    let answer = ok(
        s.client.clone().select_account(request).await,
        "SelectAccount",
    );
    assert_digits(&answer.order_id, "SelectAccount order_id");
    assert!(answer.url.contains(&answer.order_id), "{}", answer.url);
    h.act(&answer.order_id, "complete", details).await;
    let received = h.notifications_for(&answer.order_id, 1).await;
    assert_eq!(received[0].method, "account");
    assert!(received[0].signature_valid);
    assert_eq!(
        received[0].data["attributes"]["directdebitmandate"],
        u8::from(mandate)
    );
    received[0].data["accountid"]
        .as_str()
        .expect("accountid")
        .to_owned()
}

async fn registered_account(s: &app::Sidecar, account_number: &str) -> pb::RegisterAccountResponse {
    ok(
        s.client
            .clone()
            .register_account(register_account(account_number))
            .await,
        "RegisterAccount",
    )
}

// === 1. success, RPC by RPC ===

#[tokio::test]
async fn deposit_returns_order_and_checkout_url_and_sends_two_decimal_amounts() {
    let (h, s) = start().await;
    let mut request = deposit("", "m-deposit");
    request.amount = "12.5".into();
    request.external_reference = "ext-1".into();
    let answer = ok(s.client.clone().deposit(request).await, "Deposit");
    assert_digits(&answer.order_id, "order_id");
    assert!(
        answer.url.contains(&format!("OrderID={}", answer.order_id))
            && answer.url.contains("sv_SE"),
        "{}",
        answer.url
    );
    let order = &h.order(&answer.order_id).await["order"];
    assert_eq!(order["kind"], "Deposit");
    assert_eq!(order["status"], "Initiated");
    assert_eq!(order["amount"], "12.50");
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["message_id"], "m-deposit");
    assert_eq!(order["end_user_id"], "user-1");

    // What went over the wire: the default NotificationURL, two decimals, no password.
    let sent = &logged(&h, "Deposit").await["data"];
    assert_eq!(
        sent["NotificationURL"],
        "https://merchant.example/trustly/notifications"
    );
    assert_eq!(sent["Username"], USERNAME);
    assert_eq!(sent["Password"], "[redacted]");
    assert_eq!(sent["MessageID"], "m-deposit");
    assert_eq!(sent["Attributes"]["Amount"], "12.50");
    assert_eq!(sent["Attributes"]["Currency"], "EUR");
    assert_eq!(sent["Attributes"]["Locale"], "sv_SE");
    assert_eq!(sent["Attributes"]["Firstname"], "Åsa");
    assert_eq!(sent["Attributes"]["ExternalReference"], "ext-1");

    assert_eq!(h.balance("EUR").await, "1000.00");
    h.act(&answer.order_id, "complete", json!({})).await;
    assert_eq!(h.balance("EUR").await, "1012.50");
}

#[tokio::test]
async fn withdraw_then_approve_withdrawal_debits_exactly_the_amount() {
    let (h, s) = start().await;
    let order_id = prepared_withdrawal(&h, &s, "m-withdraw").await;
    let order = &h.order(&order_id).await["order"];
    assert_eq!(order["kind"], "Withdraw");
    assert_eq!(order["amount"], "50.00");
    assert_eq!(order["transfer_state"], "PREPARED");
    assert_eq!(h.balance("EUR").await, "1000.00", "nothing before approval");

    let request = pb::ApproveWithdrawalRequest {
        request_id: "approve-1".into(),
        order_id: order_id.clone(),
        ..Default::default()
    };
    let answer = ok(
        s.client.clone().approve_withdrawal(request).await,
        "ApproveWithdrawal",
    );
    assert_eq!(answer.order_id, order_id);
    assert!(answer.accepted);
    assert_eq!(h.balance("EUR").await, "950.00");
    let order = &h.order(&order_id).await["order"];
    assert_eq!(order["status"], "Executed");
    assert_eq!(order["transfer_state"], "EXECUTED");
}

#[tokio::test]
async fn withdraw_then_deny_withdrawal_cancels_without_moving_money() {
    let (h, s) = start().await;
    let order_id = prepared_withdrawal(&h, &s, "m-deny").await;
    let request = pb::DenyWithdrawalRequest {
        request_id: "deny-1".into(),
        order_id: order_id.clone(),
        ..Default::default()
    };
    let answer = ok(
        s.client.clone().deny_withdrawal(request).await,
        "DenyWithdrawal",
    );
    assert_eq!(answer.order_id, order_id);
    assert!(answer.accepted);
    assert_eq!(h.balance("EUR").await, "1000.00");
    let order = &h.order(&order_id).await["order"];
    assert_eq!(order["status"], "Cancelled");
    assert_eq!(order["transfer_state"], "FAILED");
}

#[tokio::test]
async fn select_account_gives_the_account_that_register_account_finds_for_the_same_details() {
    let (h, s) = start().await;
    let details = json!({"account": {"clearinghouse": "SWEDEN", "bank_number": "6112", "account_number": "69706212"}});
    let account_id = selected_account(&h, &s, "user-sel", false, details).await;
    assert_digits(&account_id, "accountid");
    let accounts = h.admin_get("accounts").await;
    assert_eq!(accounts.as_array().unwrap().len(), 1, "{accounts}");
    assert_eq!(accounts[0]["account_id"], account_id.as_str());
    assert_eq!(accounts[0]["mandate"], false);

    let registered = registered_account(&s, "69706212").await;
    assert_eq!(registered.account_id, account_id);
    assert_eq!(registered.descriptor, "*706212");
}

#[tokio::test]
async fn refund_refunds_exactly_the_amount_and_a_retry_with_the_same_request_id_does_not() {
    let (h, s) = start().await;
    let deposit_id = completed_deposit(&h, &s, deposit("", "m-refund"), "100.00").await;
    assert_eq!(h.balance("EUR").await, "1100.00");

    let answer = ok(
        s.client
            .clone()
            .refund(refund("refund-1", &deposit_id, "30.00"))
            .await,
        "Refund",
    );
    assert_eq!(answer.order_id, deposit_id);
    assert!(answer.accepted);
    assert_eq!(h.balance("EUR").await, "1070.00");
    assert_eq!(h.order(&deposit_id).await["order"]["refunded"], "30.00");

    // The same request_id and fields: answered from the sidecar's idempotency record without a
    // second request to Trustly; nothing is refunded twice.
    let again = ok(
        s.client
            .clone()
            .refund(refund("refund-1", &deposit_id, "30.00"))
            .await,
        "Refund retry",
    );
    assert_eq!(again, answer);
    assert_eq!(h.balance("EUR").await, "1070.00");
    assert_eq!(h.order(&deposit_id).await["order"]["refunded"], "30.00");
    let replays: Vec<bool> = requests(&h)
        .await
        .iter()
        .filter(|r| r["method"] == "Refund")
        .map(|r| r["replayed"].as_bool().unwrap())
        .collect();
    assert_eq!(replays, [false], "one Refund ever reached Trustly");
}

#[tokio::test]
async fn register_account_is_idempotent_for_the_same_details() {
    let (h, s) = start().await;
    let registered = registered_account(&s, "69706212").await;
    assert_digits(&registered.account_id, "account_id");
    assert_eq!(registered.clearing_house, "SWEDEN");
    assert!(!registered.bank.is_empty());
    assert_eq!(registered.descriptor, "*706212");
    assert!(
        registered.descriptor.starts_with('*')
            && registered.descriptor[1..]
                .bytes()
                .all(|b| b.is_ascii_digit())
    );
    let again = registered_account(&s, "69706212").await;
    assert_eq!(again, registered);
    let other = registered_account(&s, "11223344").await;
    assert_ne!(other.account_id, registered.account_id);
    assert_eq!(other.descriptor, "*223344");
    assert_eq!(h.admin_get("accounts").await.as_array().unwrap().len(), 2);
    assert_eq!(h.order_count().await, 0, "registering creates no order");
}

#[tokio::test]
async fn account_payout_and_get_withdrawals_report_the_typed_transfer() {
    let (h, s) = start_with(NO_POLL_WINDOW).await;
    let account_id = registered_account(&s, "69706212").await.account_id;
    let answer = ok(
        s.client
            .clone()
            .account_payout(account_payout(
                &h.merchant.url(),
                "m-payout",
                &account_id,
                "100.00",
            ))
            .await,
        "AccountPayout",
    );
    assert!(answer.accepted);
    assert_digits(&answer.order_id, "AccountPayout order_id");
    let payout = answer.order_id;
    assert_eq!(h.balance("EUR").await, "900.00");
    let order = &h.order(&payout).await["order"];
    assert_eq!(order["kind"], "AccountPayout");
    assert_eq!(order["status"], "Queued");
    assert_eq!(order["account_id"], account_id.as_str());

    let get = || pb::GetWithdrawalsRequest {
        order_id: payout.clone(),
    };
    let withdrawals = ok(
        s.client.clone().get_withdrawals(get()).await,
        "GetWithdrawals",
    )
    .withdrawals;
    assert_eq!(withdrawals.len(), 1, "{withdrawals:?}");
    let w = &withdrawals[0];
    assert_eq!(w.order_id, payout);
    assert_eq!(w.transfer_state, "QUEUED");
    assert_eq!(w.amount, "100.00");
    assert_eq!(w.currency_code, "EUR");
    assert_eq!(w.account_id, account_id);
    assert_eq!(w.reference, payout);
    assert_eq!(w.eta, "");
    assert_recent(w.create_time.as_ref(), "create_time");
    assert_recent(w.update_time.as_ref(), "update_time");

    h.act(&payout, "complete", json!({})).await;
    let withdrawals = ok(
        s.client.clone().get_withdrawals(get()).await,
        "GetWithdrawals",
    )
    .withdrawals;
    assert_eq!(withdrawals[0].transfer_state, "EXECUTED");
    assert_eq!(h.balance("EUR").await, "900.00");
}

#[tokio::test]
async fn get_withdrawals_of_a_deposit_is_empty() {
    let (h, s) = start().await;
    let deposit_id = completed_deposit(&h, &s, deposit("", "m-gw"), "10.00").await;
    let answer = ok(
        s.client
            .clone()
            .get_withdrawals(pb::GetWithdrawalsRequest {
                order_id: deposit_id,
            })
            .await,
        "GetWithdrawals",
    );
    assert_eq!(answer.withdrawals, []);
}

#[tokio::test]
async fn register_account_payout_registers_and_pays_out_in_one_call() {
    let (h, s) = start().await;
    let answer = ok(
        s.client
            .clone()
            .register_account_payout(register_account_payout(
                &h.merchant.url(),
                "m-rap",
                "11223344",
                "25.00",
            ))
            .await,
        "RegisterAccountPayout",
    );
    assert!(answer.accepted);
    assert_digits(&answer.order_id, "RegisterAccountPayout order_id");
    assert_eq!(h.balance("EUR").await, "975.00");
    let order = &h.order(&answer.order_id).await["order"];
    assert_eq!(order["kind"], "RegisterAccountPayout");
    assert_eq!(order["status"], "Queued");
    assert_eq!(order["amount"], "25.00");
    let registered = registered_account(&s, "11223344").await;
    assert_eq!(order["account_id"], registered.account_id.as_str());
}

#[tokio::test]
async fn balance_lists_every_currency_as_a_two_decimal_string() {
    let (h, s) = start_with(NO_POLL_WINDOW).await;
    let pairs = |answer: pb::BalanceResponse| -> Vec<(String, String)> {
        answer
            .balances
            .into_iter()
            .map(|b| (b.currency_code, b.balance))
            .collect()
    };
    let answer = ok(
        s.client.clone().balance(pb::BalanceRequest {}).await,
        "Balance",
    );
    assert_eq!(
        pairs(answer),
        [
            ("EUR".to_owned(), "1000.00".to_owned()),
            ("SEK".to_owned(), "1000.00".to_owned())
        ]
    );

    let (status, body) = h.admin_put("balances/SEK", json!({"balance": "5.5"})).await;
    assert_eq!(status, 200, "{body}");
    completed_deposit(&h, &s, deposit("", "m-balance"), "12.34").await;
    let answer = ok(
        s.client.clone().balance(pb::BalanceRequest {}).await,
        "Balance",
    );
    assert_eq!(
        pairs(answer),
        [
            ("EUR".to_owned(), "1012.34".to_owned()),
            ("SEK".to_owned(), "5.50".to_owned())
        ]
    );
}

#[tokio::test]
async fn account_ledger_has_typed_entries_with_exact_amounts() {
    let (h, s) = start().await;
    let mut c = s.client.clone();
    let deposit_id = completed_deposit(&h, &s, deposit("", "m-ledger-dep"), "100.00").await;
    let account_id = registered_account(&s, "69706212").await.account_id;
    let payout = ok(
        c.account_payout(account_payout("", "m-ledger-pay", &account_id, "25.00"))
            .await,
        "AccountPayout",
    )
    .order_id;
    let settlement = ok(
        c.merchant_settlement(pb::MerchantSettlementRequest {
            message_id: "m-ledger-set".into(),
            amount: money("10.50", "EUR"),
            ..Default::default()
        })
        .await,
        "MerchantSettlement",
    )
    .reference;

    let today = today();
    let ledger = |currency: &str, from: &str, to: &str| pb::AccountLedgerRequest {
        from_date: from.into(),
        to_date: to.into(),
        currency_code: currency.into(),
    };
    let entries = ok(
        c.account_ledger(ledger("EUR", &today, &tomorrow())).await,
        "AccountLedger",
    )
    .entries;
    let summary: Vec<(&str, &str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e.order_id.as_str(),
                e.transaction_type.as_str(),
                e.amount.as_str(),
                e.message_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                deposit_id.as_str(),
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
    for entry in &entries {
        assert_recent(entry.create_time.as_ref(), "create_time");
        assert_eq!(entry.currency_code, "EUR");
        assert_eq!(entry.account_name, "CLIENT_FUNDS");
        assert_eq!(entry.gluepay_id, entry.order_id);
    }
    assert_eq!(entries[0].user_id, "user-1");
    // Net movement: exactly what the balance moved.
    assert_eq!(h.balance("EUR").await, "1064.50");

    let sek = ok(
        c.account_ledger(ledger("SEK", &today, &tomorrow())).await,
        "AccountLedger SEK",
    );
    assert_eq!(sek.entries, []);
    let all = ok(
        c.account_ledger(ledger("", "2000-01-01", "2999-12-31"))
            .await,
        "AccountLedger, every currency",
    );
    assert_eq!(all.entries.len(), 3);
    let to_today = ok(
        c.account_ledger(ledger("", &today, &today)).await,
        "AccountLedger, ToDate exclusive",
    );
    assert_eq!(to_today.entries, [], "ToDate is exclusive");
}

#[tokio::test]
async fn settlement_report_rows_are_typed_and_carry_the_external_reference() {
    let (h, s) = start().await;
    let mut c = s.client.clone();
    let mut request = deposit("", "m-csv");
    request.external_reference = "dep-ref-1".into();
    let deposit_id = completed_deposit(&h, &s, request, "100.00").await;
    let account_id = registered_account(&s, "69706212").await.account_id;
    let mut payout = account_payout("", "m-csv-pay", &account_id, "25.00");
    payout.external_reference = "ref-42".into();
    let payout = ok(c.account_payout(payout).await, "AccountPayout").order_id;

    let today = today();
    let rows = ok(
        c.settlement_report(pb::SettlementReportRequest {
            settlement_date: today.clone(),
            currency_code: "EUR".into(),
        })
        .await,
        "SettlementReport",
    )
    .rows;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_recent(row.create_time.as_ref(), "create_time");
        assert_eq!(row.account_name, "CLIENT_FUNDS");
        assert_eq!(row.currency_code, "EUR");
        assert_eq!(row.username, "user-1");
        assert_eq!(
            (
                row.fx_payment_amount.as_str(),
                row.fx_payment_currency.as_str(),
                row.settlement_bank_withdrawal_id.as_str()
            ),
            ("", "", "")
        );
    }
    let typed: Vec<(&str, &str, &str, &str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.order_id.as_str(),
                r.order_type.as_str(),
                r.amount.as_str(),
                r.total.as_str(),
                r.message_id.as_str(),
                r.external_reference.as_str(),
            )
        })
        .collect();
    assert_eq!(
        typed,
        [
            (
                deposit_id.as_str(),
                "Deposit",
                "100.00",
                "100.00",
                "m-csv",
                "dep-ref-1"
            ),
            (
                payout.as_str(),
                "AccountPayout",
                "-25.00",
                "75.00",
                "m-csv-pay",
                "ref-42"
            ),
        ]
    );

    let sek = ok(
        c.settlement_report(pb::SettlementReportRequest {
            settlement_date: today,
            currency_code: "SEK".into(),
        })
        .await,
        "SettlementReport SEK",
    );
    assert_eq!(sek.rows, []);
}

#[tokio::test]
async fn charge_is_accepted_with_a_mandate_and_rejected_without_one() {
    let (h, s) = start().await;
    let mut c = s.client.clone();
    let mandated = selected_account(&h, &s, "user-dd", true, json!({})).await;
    let answer = ok(
        c.charge(charge(&h.merchant.url(), "m-charge", &mandated, "20.00"))
            .await,
        "Charge",
    );
    assert!(answer.accepted);
    assert_eq!(answer.rejected, "");
    assert_digits(&answer.order_id, "Charge order_id");
    let order = &h.order(&answer.order_id).await["order"];
    assert_eq!(order["kind"], "Charge");
    assert_eq!(order["status"], "Queued");
    assert_eq!(order["amount"], "20.00");
    assert_eq!(order["account_id"], mandated.as_str());
    assert_eq!(h.balance("EUR").await, "1000.00");
    h.act(&answer.order_id, "complete", json!({})).await;
    assert_eq!(h.balance("EUR").await, "1020.00");

    // Without a mandate: a business rejection inside a successful response.
    let plain = registered_account(&s, "55556666").await.account_id;
    let orders = h.order_count().await;
    let answer = ok(
        c.charge(charge("", "m-charge-nomandate", &plain, "20.00"))
            .await,
        "Charge without a mandate",
    );
    assert!(!answer.accepted);
    assert_eq!(answer.rejected, "ERROR_MANDATE_NOT_FOUND");
    assert_eq!(answer.order_id, "");
    assert_eq!(h.order_count().await, orders, "no order for a rejection");
    assert_eq!(h.balance("EUR").await, "1020.00");
}

#[tokio::test]
async fn cancel_charge_cancels_a_future_dated_charge_and_rejects_an_immediate_one() {
    let (h, s) = start().await;
    let mut c = s.client.clone();
    let account = selected_account(&h, &s, "user-dd", true, json!({})).await;
    let mut future = charge(&h.merchant.url(), "m-future", &account, "20.00");
    future.payment_date = "2099-01-01".into();
    let charged = ok(c.charge(future).await, "Charge").order_id;
    assert_eq!(
        h.order(&charged).await["order"]["payment_date"],
        "2099-01-01"
    );

    let cancel = |request_id: &str, order_id: &str| pb::CancelChargeRequest {
        request_id: request_id.into(),
        order_id: order_id.into(),
        ..Default::default()
    };
    let answer = ok(
        c.cancel_charge(cancel("cancel-1", &charged)).await,
        "CancelCharge",
    );
    assert!(answer.accepted);
    assert_eq!(answer.rejected, "");
    assert_eq!(status_of(&h, &charged).await, "Cancelled");

    let asap = ok(
        c.charge(charge(&h.merchant.url(), "m-asap", &account, "20.00"))
            .await,
        "Charge",
    )
    .order_id;
    let answer = ok(
        c.cancel_charge(cancel("cancel-2", &asap)).await,
        "CancelCharge too late",
    );
    assert!(!answer.accepted);
    assert!(!answer.rejected.is_empty(), "{answer:?}");
    assert_eq!(status_of(&h, &asap).await, "Queued");
    assert_eq!(h.balance("EUR").await, "1000.00");
}

#[tokio::test]
async fn merchant_settlement_returns_a_reference_and_debits_exactly_the_amount() {
    let (h, s) = start().await;
    let answer = ok(
        s.client
            .clone()
            .merchant_settlement(pb::MerchantSettlementRequest {
                message_id: "m-settle".into(),
                amount: money("100.25", "EUR"),
                ..Default::default()
            })
            .await,
        "MerchantSettlement",
    );
    assert_digits(&answer.reference, "reference");
    assert_eq!(h.balance("EUR").await, "899.75");
    assert_eq!(h.balance("SEK").await, "1000.00");
    let order = &h.order(&answer.reference).await["order"];
    assert_eq!(order["kind"], "MerchantSettlement");
    assert_eq!(order["status"], "Executed");
    assert_eq!(order["amount"], "100.25");
}

// === 3. extra_attributes pass through ===

#[tokio::test]
async fn extra_attributes_reach_trustly_signed() {
    let (h, s) = start().await;
    let mut c = s.client.clone();
    let mut request = deposit("", "m-extra");
    request.extra_attributes = extras(&[("NewTrustlyAttribute", "x")]);
    let answer = ok(c.deposit(request).await, "Deposit");
    assert_digits(&answer.order_id, "order_id");
    let sent = logged(&h, "Deposit").await;
    assert_eq!(sent["data"]["Attributes"]["NewTrustlyAttribute"], "x");
    assert_eq!(sent["data"]["Attributes"]["Amount"], "100.00");

    // For a method without Attributes they go into Data.
    let answer = ok(
        c.merchant_settlement(pb::MerchantSettlementRequest {
            message_id: "m-extra-settle".into(),
            amount: money("1.00", "EUR"),
            extra_attributes: extras(&[("NewTrustlyField", "y")]),
        })
        .await,
        "MerchantSettlement",
    );
    assert_digits(&answer.reference, "reference");
    let sent = logged(&h, "MerchantSettlement").await;
    assert_eq!(sent["data"]["NewTrustlyField"], "y");
    assert_eq!(sent["data"]["Amount"], "1.00");
}

// === 2. validation, RPC by RPC ===

#[tokio::test]
async fn deposit_validation_names_every_bad_field_at_once() {
    let (h, s) = start().await;
    let mut request = deposit("", "");
    request.end_user_id = " ".into();
    request.amount = "10.001".into();
    request.notification_url = "http://merchant.example/n".into();
    request.shipping_address_country = "Sweden".into();
    request.recipient_information = person().map(|mut p| {
        p.party_type = pb::PartyType::Unspecified as i32;
        p
    });
    let u = request.user.as_mut().unwrap();
    u.locale = "sv-SE".into();
    u.country = "Sweden".into();
    u.success_url = "not a url".into();
    u.email = "asa@example".into();
    assert_invalid(
        s.client.clone().deposit(request).await,
        &[
            "message_id",
            "end_user_id",
            "amount",
            "notification_url",
            "shipping_address_country",
            "recipient_information.party_type",
            "user.locale",
            "user.country",
            "user.success_url",
            "user.email",
        ],
        "Deposit with many bad fields",
    );
    assert_nothing_sent(&h, "Deposit").await;
}

#[tokio::test]
async fn deposit_validation_cases() {
    let (h, s) = start().await;
    let cases: &[Case<pb::DepositRequest>] = &[
        (&["message_id"], |r| r.message_id.clear()),
        (&["message_id"], |r| r.message_id = "m".repeat(201)),
        (&["end_user_id"], |r| r.end_user_id.clear()),
        (&["shopper_statement"], |r| r.shopper_statement.clear()),
        (&["amount"], |r| r.amount = "10.001".into()),
        (&["amount"], |r| r.amount = "0".into()),
        (&["amount"], |r| r.amount = "1e3".into()),
        (&["amount"], |r| r.amount = "-5".into()),
        (&["suggested_min_amount"], |r| {
            r.suggested_min_amount = "1,00".into();
        }),
        (&["currency_code"], |r| r.currency_code = "XXX".into()),
        (&["currency_code"], |r| r.currency_code.clear()),
        (&["user"], |r| r.user = None),
        (&["user.first_name"], |r| {
            r.user.as_mut().unwrap().first_name.clear();
        }),
        (&["user.locale"], |r| {
            r.user.as_mut().unwrap().locale = "sv-SE".into();
        }),
        (&["user.country"], |r| {
            r.user.as_mut().unwrap().country = "Sweden".into();
        }),
        (&["user.email"], |r| {
            r.user.as_mut().unwrap().email = "asa.example.com".into();
        }),
        (&["user.email"], |r| r.user.as_mut().unwrap().email.clear()),
        (&["user.success_url"], |r| {
            r.user.as_mut().unwrap().success_url = "javascript:alert(1)".into();
        }),
        (&["user.fail_url"], |r| {
            r.user.as_mut().unwrap().fail_url = "ftp://merchant.example/fail".into();
        }),
        (&["user.template_url"], |r| {
            r.user.as_mut().unwrap().template_url = "not a url".into();
        }),
        (&["user.ip"], |r| {
            r.user.as_mut().unwrap().ip = "1.2.3.4, 5.6.7.8".into();
        }),
        (&["user.url_target"], |r| {
            r.user.as_mut().unwrap().url_target = "_blank".into();
        }),
        (&["notification_url"], |r| {
            r.notification_url = "http://merchant.example/n".into();
        }),
        (&["notification_url"], |r| {
            r.notification_url = "https://merchant.example/n?x=1".into();
        }),
        (&["notification_url"], |r| {
            r.notification_url = "not a url".into();
        }),
        (&["psp_merchant.url"], |r| {
            r.psp_merchant = Some(pb::PspMerchant {
                name: "Shop".into(),
                url: "shop.example".into(),
                merchant_category_code: "5499".into(),
            });
        }),
        (&["recipient_information.party_type"], |r| {
            r.recipient_information = person().map(|mut p| {
                p.party_type = pb::PartyType::Unspecified as i32;
                p
            });
        }),
        (&["recipient_information.country_code"], |r| {
            r.recipient_information = person().map(|mut p| {
                p.country_code = "Sweden".into();
                p
            });
        }),
        (&["extra_attributes[Amount]"], |r| {
            r.extra_attributes = extras(&[("Amount", "1.00")]);
        }),
        (&["extra_attributes[Currency]"], |r| {
            r.extra_attributes = extras(&[("Currency", "SEK")]);
        }),
        (&["extra_attributes[Attributes]"], |r| {
            r.extra_attributes = extras(&[("Attributes", "{}")]);
        }),
    ];
    let c = s.client.clone();
    assert_cases(
        &h,
        "Deposit",
        || deposit("", "m-1"),
        cases,
        |r| {
            let mut c = c.clone();
            async move { c.deposit(r).await }
        },
    )
    .await;
}

#[tokio::test]
async fn withdraw_validation_cases() {
    let (h, s) = start().await;
    let cases: &[Case<pb::WithdrawRequest>] = &[
        (&["message_id"], |r| r.message_id.clear()),
        (&["end_user_id"], |r| r.end_user_id.clear()),
        (&["currency_code"], |r| r.currency_code = "XXX".into()),
        (&["suggested_amount"], |r| {
            r.suggested_amount = "10.001".into()
        }),
        (&["suggested_max_amount"], |r| {
            r.suggested_max_amount = "-5".into();
        }),
        (&["date_of_birth"], |r| {
            r.date_of_birth = "2026-13-01".into()
        }),
        (&["address_country"], |r| {
            r.address_country = "Sweden".into()
        }),
        (&["user.locale"], |r| {
            r.user.as_mut().unwrap().locale = "sv-SE".into();
        }),
        (&["user.email"], |r| {
            r.user.as_mut().unwrap().email = "asa@example".into();
        }),
        (&["notification_url"], |r| {
            r.notification_url = "http://merchant.example/n".into();
        }),
        (&["sender_information.party_type"], |r| {
            r.sender_information = person().map(|mut p| {
                p.party_type = pb::PartyType::Unspecified as i32;
                p
            });
        }),
        (&["extra_attributes[SuggestedAmount]"], |r| {
            r.extra_attributes = extras(&[("SuggestedAmount", "1.00")]);
        }),
    ];
    let c = s.client.clone();
    assert_cases(
        &h,
        "Withdraw",
        || withdraw("", "m-1"),
        cases,
        |r| {
            let mut c = c.clone();
            async move { c.withdraw(r).await }
        },
    )
    .await;
}

#[tokio::test]
async fn select_account_validation_cases() {
    let (h, s) = start().await;
    let cases: &[Case<pb::SelectAccountRequest>] = &[
        (&["message_id"], |r| r.message_id.clear()),
        (&["end_user_id"], |r| r.end_user_id.clear()),
        (&["user"], |r| r.user = None),
        (&["user.locale"], |r| {
            r.user.as_mut().unwrap().locale = "sv-SE".into();
        }),
        (&["user.country"], |r| {
            r.user.as_mut().unwrap().country = "Sweden".into();
        }),
        (&["date_of_birth"], |r| {
            r.date_of_birth = "2026-13-01".into()
        }),
        // A mandate needs the end user's email.
        (&["user.email"], |r| {
            r.request_direct_debit_mandate = true;
            r.user.as_mut().unwrap().email.clear();
        }),
        (&["notification_url"], |r| {
            r.notification_url = "https://merchant.example/n?x=1".into();
        }),
        (&["extra_attributes[Locale]"], |r| {
            r.extra_attributes = extras(&[("Locale", "en_GB")]);
        }),
    ];
    let c = s.client.clone();
    assert_cases(
        &h,
        "SelectAccount",
        || select_account("", "m-1", "user-1", false),
        cases,
        |r| {
            let mut c = c.clone();
            async move { c.select_account(r).await }
        },
    )
    .await;
}

#[tokio::test]
async fn refund_validation_cases() {
    let (h, s) = start().await;
    let cases: &[Case<pb::RefundRequest>] = &[
        (&["request_id"], |r| r.request_id.clear()),
        (&["request_id"], |r| r.request_id = "r".repeat(201)),
        (&["order_id"], |r| r.order_id = "12a".into()),
        (&["order_id"], |r| r.order_id.clear()),
        (&["order_id"], |r| r.order_id = "1".repeat(20)),
        (&["amount"], |r| r.amount = None),
        (&["amount.amount"], |r| r.amount = money("10.001", "EUR")),
        (&["amount.amount"], |r| r.amount = money("0", "EUR")),
        (&["amount.amount"], |r| r.amount = money("1e3", "EUR")),
        (&["amount.amount"], |r| r.amount = money("-5", "EUR")),
        (&["amount.amount"], |r| r.amount = money("", "EUR")),
        (&["amount.currency_code"], |r| {
            r.amount = money("1.00", "XXX")
        }),
        (&["amount.amount", "amount.currency_code"], |r| {
            r.amount = money("-5", "");
        }),
        (&["extra_attributes[ExternalReference]"], |r| {
            r.external_reference = "ref".into();
            r.extra_attributes = extras(&[("ExternalReference", "other")]);
        }),
    ];
    let c = s.client.clone();
    assert_cases(
        &h,
        "Refund",
        || refund("refund-1", "1234567890", "10.00"),
        cases,
        |r| {
            let mut c = c.clone();
            async move { c.refund(r).await }
        },
    )
    .await;
}

#[tokio::test]
async fn approve_and_deny_withdrawal_validation_cases() {
    let (h, s) = start().await;
    let approve: &[Case<pb::ApproveWithdrawalRequest>] = &[
        (&["request_id"], |r| r.request_id.clear()),
        (&["order_id"], |r| r.order_id = "12a".into()),
        (&["order_id"], |r| r.order_id.clear()),
        (&["request_id", "order_id"], |r| {
            r.request_id.clear();
            r.order_id = "12a".into();
        }),
        (&["extra_attributes[OrderID]"], |r| {
            r.extra_attributes = extras(&[("OrderID", "2")]);
        }),
        (&["extra_attributes[Password]"], |r| {
            r.extra_attributes = extras(&[("Password", "x")]);
        }),
        (&["extra_attributes[Username]"], |r| {
            r.extra_attributes = extras(&[("Username", "someone-else")]);
        }),
    ];
    let c = s.client.clone();
    assert_cases(
        &h,
        "ApproveWithdrawal",
        valid::approve_withdrawal,
        approve,
        |r| {
            let mut c = c.clone();
            async move { c.approve_withdrawal(r).await }
        },
    )
    .await;
    let deny: &[Case<pb::DenyWithdrawalRequest>] = &[
        (&["request_id"], |r| r.request_id.clear()),
        (&["request_id"], |r| r.request_id = "   ".into()),
        (&["order_id"], |r| r.order_id = "12a".into()),
        (&["extra_attributes[OrderID]"], |r| {
            r.extra_attributes = extras(&[("OrderID", "2")]);
        }),
    ];
    assert_cases(&h, "DenyWithdrawal", valid::deny_withdrawal, deny, |r| {
        let mut c = c.clone();
        async move { c.deny_withdrawal(r).await }
    })
    .await;
}

#[tokio::test]
async fn register_account_validation_cases() {
    let (h, s) = start().await;
    let cases: &[Case<pb::RegisterAccountRequest>] = &[
        (&["end_user_id"], |r| r.end_user_id.clear()),
        (&["account"], |r| r.account = None),
        (&["account.clearing_house"], |r| {
            r.account.as_mut().unwrap().clearing_house.clear();
        }),
        (&["account.account_number"], |r| {
            r.account.as_mut().unwrap().account_number.clear();
        }),
        (&["account.first_name"], |r| {
            r.account.as_mut().unwrap().first_name = " ".into();
        }),
        (&["holder.date_of_birth"], |r| {
            r.holder = Some(pb::AccountHolder {
                date_of_birth: "2026-13-01".into(),
                ..Default::default()
            });
        }),
        (&["holder.email"], |r| {
            r.holder = Some(pb::AccountHolder {
                email: "asa@".into(),
                ..Default::default()
            });
        }),
        (&["holder.address_country"], |r| {
            r.holder = Some(pb::AccountHolder {
                address_country: "Sweden".into(),
                ..Default::default()
            });
        }),
        (&["extra_attributes[Email]"], |r| {
            r.holder = Some(pb::AccountHolder {
                email: "asa@example.com".into(),
                ..Default::default()
            });
            r.extra_attributes = extras(&[("Email", "other@example.com")]);
        }),
    ];
    let c = s.client.clone();
    assert_cases(
        &h,
        "RegisterAccount",
        || register_account("69706212"),
        cases,
        |r| {
            let mut c = c.clone();
            async move { c.register_account(r).await }
        },
    )
    .await;
    assert_eq!(h.admin_get("accounts").await, json!([]));
}

#[tokio::test]
async fn account_payout_and_register_account_payout_validation_cases() {
    let (h, s) = start().await;
    let payout: &[Case<pb::AccountPayoutRequest>] = &[
        (&["message_id"], |r| r.message_id.clear()),
        (&["account_id"], |r| r.account_id.clear()),
        (&["end_user_id"], |r| r.end_user_id.clear()),
        (&["shopper_statement"], |r| r.shopper_statement.clear()),
        (&["amount"], |r| r.amount = None),
        (&["amount.amount"], |r| r.amount = money("10.001", "EUR")),
        (&["amount.amount"], |r| r.amount = money("0", "EUR")),
        (&["amount.currency_code"], |r| {
            r.amount = money("1.00", "XXX")
        }),
        (&["notification_url"], |r| {
            r.notification_url = "http://merchant.example/n".into();
        }),
        (&["notification_url"], |r| {
            r.notification_url = "https://merchant.example/n?x=1".into();
        }),
        (&["sender_information.party_type"], |r| {
            r.sender_information = person().map(|mut p| {
                p.party_type = pb::PartyType::Unspecified as i32;
                p
            });
        }),
        (&["psp_merchant.url"], |r| {
            r.psp_merchant = Some(pb::PspMerchant {
                url: "not a url".into(),
                ..Default::default()
            });
        }),
        (&["extra_attributes[ShopperStatement]"], |r| {
            r.extra_attributes = extras(&[("ShopperStatement", "x")]);
        }),
    ];
    let c = s.client.clone();
    assert_cases(
        &h,
        "AccountPayout",
        || account_payout("", "m-1", "4242424242", "10.00"),
        payout,
        |r| {
            let mut c = c.clone();
            async move { c.account_payout(r).await }
        },
    )
    .await;
    let rap: &[Case<pb::RegisterAccountPayoutRequest>] = &[
        (&["message_id"], |r| r.message_id.clear()),
        (&["account"], |r| r.account = None),
        (&["account.clearing_house"], |r| {
            r.account.as_mut().unwrap().clearing_house.clear();
        }),
        (&["amount.amount"], |r| r.amount = money("1e3", "EUR")),
        (&["amount.amount"], |r| r.amount = money("-5", "EUR")),
        (&["holder.date_of_birth"], |r| {
            r.holder = Some(pb::AccountHolder {
                date_of_birth: "2026-13-01".into(),
                ..Default::default()
            });
        }),
        (&["notification_url"], |r| {
            r.notification_url = "http://merchant.example/n".into();
        }),
        (&["sender_information.party_type"], |r| {
            r.sender_information = person().map(|mut p| {
                p.party_type = pb::PartyType::Unspecified as i32;
                p
            });
        }),
    ];
    assert_cases(
        &h,
        "RegisterAccountPayout",
        || register_account_payout("", "m-1", "11223344", "10.00"),
        rap,
        |r| {
            let mut c = c.clone();
            async move { c.register_account_payout(r).await }
        },
    )
    .await;
    assert_eq!(h.balance("EUR").await, "1000.00");
}

#[tokio::test]
async fn get_withdrawals_validation_cases() {
    let (h, s) = start().await;
    let cases: &[Case<pb::GetWithdrawalsRequest>] = &[
        (&["order_id"], |r| r.order_id.clear()),
        (&["order_id"], |r| r.order_id = "12a".into()),
        (&["order_id"], |r| r.order_id = "-1".into()),
        (&["order_id"], |r| r.order_id = "1".repeat(20)),
    ];
    let c = s.client.clone();
    assert_cases(&h, "GetWithdrawals", valid::get_withdrawals, cases, |r| {
        let mut c = c.clone();
        async move { c.get_withdrawals(r).await }
    })
    .await;
}

#[tokio::test]
async fn account_ledger_and_settlement_report_validation_cases() {
    let (h, s) = start().await;
    let ledger: &[Case<pb::AccountLedgerRequest>] = &[
        (&["from_date"], |r| r.from_date.clear()),
        (&["to_date"], |r| r.to_date = "2026-13-01".into()),
        (&["from_date"], |r| {
            r.from_date = "2026-01-01 00:00:00".into()
        }),
        (&["from_date", "to_date"], |r| {
            r.from_date = "01/01/2026".into();
            r.to_date = "yesterday".into();
        }),
        (&["to_date"], |r| {
            r.from_date = "2026-02-01".into();
            r.to_date = "2026-01-31".into();
        }),
        (&["currency_code"], |r| r.currency_code = "XXX".into()),
        (&["currency_code"], |r| r.currency_code = "eur".into()),
    ];
    let c = s.client.clone();
    assert_cases(&h, "AccountLedger", valid::account_ledger, ledger, |r| {
        let mut c = c.clone();
        async move { c.account_ledger(r).await }
    })
    .await;
    let report: &[Case<pb::SettlementReportRequest>] = &[
        (&["settlement_date"], |r| r.settlement_date.clear()),
        (&["settlement_date"], |r| {
            r.settlement_date = "2026-13-01".into();
        }),
        (&["settlement_date"], |r| {
            r.settlement_date = "yesterday".into()
        }),
        (&["currency_code"], |r| r.currency_code = "XXX".into()),
    ];
    assert_cases(
        &h,
        "SettlementReport",
        valid::settlement_report,
        report,
        |r| {
            let mut c = c.clone();
            async move { c.settlement_report(r).await }
        },
    )
    .await;
}

#[tokio::test]
async fn charge_and_cancel_charge_validation_cases() {
    let (h, s) = start().await;
    let cases: &[Case<pb::ChargeRequest>] = &[
        (&["message_id"], |r| r.message_id.clear()),
        (&["account_id"], |r| r.account_id.clear()),
        (&["end_user_id"], |r| r.end_user_id.clear()),
        (&["shopper_statement"], |r| r.shopper_statement.clear()),
        (&["email"], |r| r.email.clear()),
        (&["email"], |r| r.email = "dd.example.com".into()),
        (&["payment_date"], |r| r.payment_date = "2026-13-01".into()),
        (&["payment_date"], |r| r.payment_date = "01/01/2099".into()),
        (&["amount"], |r| r.amount = None),
        (&["amount.amount"], |r| r.amount = money("1e3", "EUR")),
        (&["amount.currency_code"], |r| {
            r.amount = money("10.00", "XXX")
        }),
        (&["notification_url"], |r| {
            r.notification_url = "http://merchant.example/n".into();
        }),
        (&["extra_attributes[Email]"], |r| {
            r.extra_attributes = extras(&[("Email", "other@example.com")]);
        }),
    ];
    let c = s.client.clone();
    assert_cases(
        &h,
        "Charge",
        || charge("", "m-1", "4242424242", "10.00"),
        cases,
        |r| {
            let mut c = c.clone();
            async move { c.charge(r).await }
        },
    )
    .await;
    let cancel: &[Case<pb::CancelChargeRequest>] = &[
        (&["request_id"], |r| r.request_id.clear()),
        (&["order_id"], |r| r.order_id = "12a".into()),
        (&["order_id"], |r| r.order_id.clear()),
        (&["extra_attributes[OrderID]"], |r| {
            r.extra_attributes = extras(&[("OrderID", "2")]);
        }),
    ];
    assert_cases(&h, "CancelCharge", valid::cancel_charge, cancel, |r| {
        let mut c = c.clone();
        async move { c.cancel_charge(r).await }
    })
    .await;
}

#[tokio::test]
async fn merchant_settlement_validation_cases() {
    let (h, s) = start().await;
    let cases: &[Case<pb::MerchantSettlementRequest>] = &[
        (&["message_id"], |r| r.message_id.clear()),
        (&["amount"], |r| r.amount = None),
        (&["amount.amount"], |r| r.amount = money("-5", "EUR")),
        (&["amount.amount"], |r| r.amount = money("10.001", "EUR")),
        (&["amount.amount"], |r| r.amount = money("0", "EUR")),
        (&["amount.currency_code"], |r| {
            r.amount = money("10.00", "XXX")
        }),
        (&["extra_attributes[Currency]"], |r| {
            r.extra_attributes = extras(&[("Currency", "SEK")]);
        }),
        (&["extra_attributes"], |r| {
            r.extra_attributes = (0..65).map(|i| (format!("K{i}"), "v".to_owned())).collect();
        }),
    ];
    let c = s.client.clone();
    assert_cases(
        &h,
        "MerchantSettlement",
        valid::merchant_settlement,
        cases,
        |r| {
            let mut c = c.clone();
            async move { c.merchant_settlement(r).await }
        },
    )
    .await;
    assert_eq!(h.balance("EUR").await, "1000.00");
}

// === regressions: bugs this suite found in src/grpc ===

/// An invalid `currency_code` makes Deposit (and Withdraw) return early, so every other bad
/// field goes unreported, against "BadRequest naming every bad field".
#[tokio::test]

async fn a_bad_currency_does_not_hide_the_other_bad_fields() {
    let (h, s) = start().await;
    let mut request = deposit("", "m-1");
    request.currency_code = "XXX".into();
    request.amount = "10.001".into();
    request.user.as_mut().unwrap().locale = "sv-SE".into();
    assert_invalid(
        s.client.clone().deposit(request).await,
        &["currency_code", "amount", "user.locale"],
        "Deposit",
    );
    let mut request = withdraw("", "m-1");
    request.currency_code = "XXX".into();
    request.end_user_id.clear();
    request.notification_url = "http://merchant.example/n".into();
    request.user.as_mut().unwrap().locale = "sv-SE".into();
    assert_invalid(
        s.client.clone().withdraw(request).await,
        &[
            "currency_code",
            "end_user_id",
            "notification_url",
            "user.locale",
        ],
        "Withdraw",
    );
    assert_nothing_sent(&h, "Deposit/Withdraw").await;
}

/// A typed field left empty is not in the Data tree, so an extra attribute with its Trustly name
/// slips past the collision check and reaches Trustly unvalidated.
#[tokio::test]

async fn an_extra_attribute_named_like_an_unset_typed_field_is_refused() {
    let (h, s) = start().await;
    let mut request = deposit("", "m-1");
    request.amount.clear();
    request.extra_attributes = extras(&[("Amount", "1e3")]);
    assert_invalid(
        s.client.clone().deposit(request).await,
        &["extra_attributes[Amount]"],
        "Deposit",
    );
    assert_nothing_sent(&h, "Deposit").await;
}

/// Colliding extras are only checked once every field is valid: a request with both is refused
/// twice, one problem at a time.
#[tokio::test]

async fn colliding_extras_are_reported_with_the_other_bad_fields() {
    let (h, s) = start().await;
    let mut request = deposit("", "m-1");
    request.user.as_mut().unwrap().locale = "sv-SE".into();
    request.extra_attributes = extras(&[("Currency", "SEK")]);
    assert_invalid(
        s.client.clone().deposit(request).await,
        &["user.locale", "extra_attributes[Currency]"],
        "Deposit",
    );
    assert_nothing_sent(&h, "Deposit").await;
}

/// Dates are checked for shape only: 2026-02-30 passes as a date and is sent to Trustly.
#[tokio::test]

async fn a_date_that_does_not_exist_is_refused() {
    let (h, s) = start().await;
    let request = pb::AccountLedgerRequest {
        from_date: "2026-02-30".into(),
        to_date: "2026-03-01".into(),
        currency_code: String::new(),
    };
    assert_invalid(
        s.client.clone().account_ledger(request).await,
        &["from_date"],
        "AccountLedger",
    );
    assert_nothing_sent(&h, "AccountLedger").await;
}

/// Where a rate-limited answer came from: its age in seconds when it was the last poll's.
fn answer_age<T>(response: &Response<T>) -> Option<u64> {
    response
        .metadata()
        .get("trustly-answer-age-seconds")
        .map(|age| age.to_str().unwrap().parse().unwrap())
}

/// How many requests of `method` the simulator received.
async fn received(h: &SimHarness, method: &str) -> usize {
    h.admin_get("requests")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == method)
        .count()
}

#[tokio::test]
async fn polls_are_limited_to_one_call_per_window_and_answered_with_their_age() {
    // Trustly's limits (spec §5.13, §5.14) enforced by the simulator too, as Trustly would.
    let h =
        SimHarness::start_with(|sim, _| sim.poll_window = std::time::Duration::from_secs(15 * 60))
            .await;
    let (vars, files) = app::vars_for(&h, &[]);
    let s = app::spawn(vars, files).await;
    let mut c = s.client.clone();

    let first = c.balance(pb::BalanceRequest {}).await.expect("balance");
    assert_eq!(answer_age(&first), None, "a fresh answer has no age");
    let second = c.balance(pb::BalanceRequest {}).await.expect("balance");
    assert!(answer_age(&second).is_some_and(|age| age < 60));
    assert_eq!(first.into_inner(), second.into_inner());
    assert_eq!(received(&h, "Balance").await, 1, "Trustly was asked once");

    let account = ok(
        c.register_account(support::requests::register_account())
            .await,
        "RegisterAccount",
    )
    .account_id;
    let payout = |message_id: &str| pb::AccountPayoutRequest {
        account_id: account.clone(),
        end_user_id: "user-1".into(),
        message_id: message_id.into(),
        amount: money("10.00", "EUR"),
        shopper_statement: "Payout".into(),
        ..Default::default()
    };
    let one = ok(c.account_payout(payout("m-poll-1")).await, "payout").order_id;
    let two = ok(c.account_payout(payout("m-poll-2")).await, "payout").order_id;
    let get = |order_id: &str| pb::GetWithdrawalsRequest {
        order_id: order_id.to_owned(),
    };
    let fresh = c.get_withdrawals(get(&one)).await.expect("get");
    assert_eq!(answer_age(&fresh), None);
    h.act(&one, "complete", json!({})).await;
    let cached = c.get_withdrawals(get(&one)).await.expect("get");
    assert!(answer_age(&cached).is_some());
    assert_eq!(
        cached.into_inner().withdrawals[0].transfer_state,
        "QUEUED",
        "inside the window the last answer is returned, not a new one"
    );
    // The window is per order.
    let other = c.get_withdrawals(get(&two)).await.expect("get");
    assert_eq!(answer_age(&other), None);
    assert_eq!(received(&h, "GetWithdrawals").await, 2);

    // Without the sidecar's window, the second call reaches Trustly, which refuses it.
    let (vars, files) = app::vars_for(&h, NO_POLL_WINDOW);
    let unlimited = app::spawn(vars, files).await;
    let status = unlimited
        .client
        .clone()
        .get_withdrawals(get(&one))
        .await
        .expect_err("refused by Trustly's limit");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.get_details_error_info().expect("error info").reason,
        "ERROR_TOO_MANY_REQUESTS"
    );
}
