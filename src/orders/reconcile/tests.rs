#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::json;

use super::*;
use crate::{
    orders::{Source, fold},
    trustly::methods::FromData,
};

/// 2026-12-01 12:00 UTC, inside the test period.
const NOON: u64 = 1_796_126_400_000;

fn period() -> Period {
    Period::new("2026-12-01", "2026-12-02").unwrap()
}

fn fact(source: Source, method: &str, order_id: &str, amount: &str, at_ms: u64) -> Fact {
    Fact {
        id: format!("{method}:{order_id}:{at_ms}"),
        source,
        method: method.into(),
        order_id: order_id.into(),
        message_id: format!("m-{order_id}"),
        end_user_id: "user-1".into(),
        amount: amount.into(),
        currency: "EUR".into(),
        at_ms,
    }
}

fn known(facts: Vec<Fact>) -> (String, Known) {
    let order = fold(facts.clone()).unwrap();
    (order.order_id.clone(), Known { order, facts })
}

fn row(order_id: &str, kind: &str, currency: &str, amount: &str) -> LedgerEntry {
    LedgerEntry::from_data(json!({
        "userid": "user-1", "datestamp": "2026-12-01 12:00:01.000000+00", "orderid": order_id,
        "accountname": "CLIENT_FUNDS", "messageid": format!("m-{order_id}"),
        "transactiontype": kind, "currency": currency, "amount": amount, "gluepayid": order_id,
    }))
    .unwrap()
}

fn deposit(order_id: &str, amount: &str) -> (String, Known) {
    known(vec![
        fact(Source::Rpc, "Deposit", order_id, "", NOON),
        fact(Source::Notification, "credit", order_id, amount, NOON + 1),
    ])
}

fn payout(order_id: &str, amount: &str) -> (String, Known) {
    known(vec![
        fact(Source::Rpc, "AccountPayout", order_id, amount, NOON),
        fact(
            Source::Notification,
            "payoutconfirmation",
            order_id,
            amount,
            NOON + 1,
        ),
    ])
}

fn kinds(report: &Report) -> Vec<(MismatchKind, &str)> {
    report
        .mismatches
        .iter()
        .map(|m| (m.kind, m.order_id.as_str()))
        .collect()
}

#[test]
fn matching_books_report_nothing_whatever_the_scale_of_the_ledger_amounts() {
    let orders = BTreeMap::from([deposit("1", "100.00"), payout("2", "25.00")]);
    let rows = [
        row("1", "Deposit", "EUR", "100.00000000000000000000"),
        row("2", "AccountPayout", "EUR", "-25.00000000000000000000"),
        row("9", "Settlement", "EUR", "-10.50"),
    ];
    let report = compare(&period(), &orders, &rows);
    assert_eq!(report.mismatches, []);
    assert_eq!((report.orders_checked, report.ledger_rows_checked), (2, 2));
}

#[test]
fn each_discrepancy_has_its_kind() {
    let orders = BTreeMap::from([
        deposit("1", "100.00"),
        deposit("2", "50.00"),
        deposit("3", "10.00"),
        payout("4", "25.00"),
    ]);
    let rows = [
        // 1 dropped; 2 altered amount; 3 altered currency; 4 dropped; 5 unknown.
        row("2", "Deposit", "EUR", "50.01"),
        row("3", "Deposit", "SEK", "10.00"),
        row("5", "Deposit", "EUR", "7.00"),
    ];
    let report = compare(&period(), &orders, &rows);
    assert_eq!(
        kinds(&report),
        [
            (MismatchKind::CreditedWithoutLedgerRow, "1"),
            (MismatchKind::AmountMismatch, "2"),
            (MismatchKind::CurrencyMismatch, "3"),
            (MismatchKind::PayoutWithoutLedgerDebit, "4"),
            (MismatchKind::LedgerRowWithoutOrder, "5"),
        ]
    );
    let altered = &report.mismatches[1];
    assert_eq!(
        (altered.order_amount, altered.ledger_amount),
        (Some(Decimal::new(5000, 2)), Some(Decimal::new(5001, 2)))
    );
    assert_eq!(report.mismatches[4].order_amount, None);
}

#[test]
fn refunds_reversals_and_returned_payouts_net_out() {
    let (id, refunded) = known(vec![
        fact(Source::Rpc, "Deposit", "1", "", NOON),
        fact(Source::Notification, "credit", "1", "100.00", NOON + 1),
        fact(Source::Rpc, "Refund", "1", "30.00", NOON + 2),
    ]);
    let (reversed_id, reversed) = known(vec![
        fact(Source::Notification, "credit", "2", "40.00", NOON),
        fact(Source::Notification, "debit", "2", "40.00", NOON + 1),
    ]);
    let (cancelled_id, cancelled) = known(vec![
        fact(Source::Rpc, "AccountPayout", "3", "25.00", NOON),
        fact(Source::Notification, "cancel", "3", "", NOON + 1),
        fact(Source::Notification, "credit", "3", "25.00", NOON + 2),
    ]);
    let (withdraw_id, withdraw) = known(vec![
        fact(Source::Rpc, "Withdraw", "4", "", NOON),
        fact(Source::Notification, "debit", "4", "20.00", NOON + 1),
        fact(
            Source::Notification,
            "payoutconfirmation",
            "4",
            "20.00",
            NOON + 2,
        ),
    ]);
    let orders = BTreeMap::from([
        (id, refunded),
        (reversed_id, reversed),
        (cancelled_id, cancelled),
        (withdraw_id, withdraw),
    ]);
    let rows = [
        row("1", "Deposit", "EUR", "100.00"),
        row("1", "Refund", "EUR", "-30.00"),
        row("2", "Deposit", "EUR", "40.00"),
        row("2", "Deposit Reversal", "EUR", "-40.00"),
        row("3", "AccountPayout", "EUR", "-25.00"),
        row("3", "Cancelled AccountPayout", "EUR", "25.00"),
        row("4", "Withdraw", "EUR", "-20.00"),
    ];
    assert_eq!(compare(&period(), &orders, &rows).mismatches, []);
}

#[test]
fn facts_outside_the_period_are_not_expected_in_its_ledger() {
    let day = 86_400_000;
    // Credited the day before: its row is in that day's ledger, not this one.
    let orders = BTreeMap::from([known(vec![fact(
        Source::Notification,
        "credit",
        "1",
        "100.00",
        NOON - day,
    )])]);
    assert_eq!(compare(&period(), &orders, &[]).mismatches, []);
    let late = [row("1", "Deposit", "EUR", "100.00")];
    assert_eq!(
        kinds(&compare(&period(), &orders, &late)),
        [(MismatchKind::AmountMismatch, "1")]
    );
}

#[test]
fn ignored_rows_are_neither_checked_nor_reported() {
    let rows = [
        row("9", "Settlement", "EUR", "-10.50"),
        row("9", "Fee", "EUR", "-0.50"),
        row("", "Deposit", "EUR", "5.00"),
    ];
    let report = compare(&period(), &BTreeMap::new(), &rows);
    assert_eq!(
        (report.mismatches.len(), report.ledger_rows_checked),
        (0, 0)
    );
}

#[test]
fn periods_are_checked_and_to_date_is_exclusive() {
    let p = period();
    let (from, to) = p.millis();
    assert_eq!(to - from, 86_400_000);
    assert!(p.contains(from) && p.contains(to - 1) && !p.contains(to));
    for (from, to, field) in [
        ("2026-12-02", "2026-12-02", "to_date"),
        ("2026-12-03", "2026-12-02", "to_date"),
        ("2026-12-01", "2027-01-02", "to_date"),
        ("2026-13-01", "2026-12-02", "from_date"),
        ("2026-12-01", "tomorrow", "to_date"),
    ] {
        match Period::new(from, to) {
            Err(Error::Period { field: named, .. }) => assert_eq!(named, field, "{from}..{to}"),
            other => panic!("{from}..{to}: {other:?}"),
        }
    }
    assert!(Period::new("2026-12-01", "2027-01-01").is_ok(), "31 days");
    let around = Period::around(NOON);
    assert_eq!(
        (around.from_date.as_str(), around.to_date.as_str()),
        ("2026-11-30", "2026-12-02")
    );
}
