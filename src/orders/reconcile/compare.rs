//! The comparison: what each order's facts in the period say moved on the merchant's account,
//! against the net of its ledger rows in the period. Exact decimals throughout
//! (`5.00000000000000000000` equals `5.00`).
//!
//! What a fact moves (signed as the ledger: money in is positive), confirmed against what the
//! simulator writes for each:
//!
//! | order                            | fact                          | ledger row                      |
//! |----------------------------------|-------------------------------|---------------------------------|
//! | Deposit, Charge, unknown         | `credit`                      | +amount `Deposit`/`Charge`      |
//! | Deposit, Charge, unknown         | `debit`                       | -amount `Deposit Reversal`      |
//! | any                              | Refund answer                 | -amount `Refund`                |
//! | (Register)AccountPayout          | the RPC's answer              | -amount `AccountPayout`         |
//! | payout                           | `credit` (cancel, failure)    | +amount `Cancelled`/`Failed ..` |
//! | payout only notifications named  | `payoutconfirmation`          | -amount                         |
//! | Withdraw                         | `payoutconfirmation`          | -amount `Withdraw`              |
//! | Withdraw                         | `credit` after a confirmation | +amount                         |
//!
//! A Withdraw's `debit` (the merchant deducting the end user's balance) and a denied Withdraw's
//! `credit` move nothing at Trustly; a payout's `payoutconfirmation` after its RPC moves nothing
//! more (the debit came when Trustly accepted it).

use std::{collections::BTreeMap, str::FromStr};

use rust_decimal::Decimal;

use super::{Known, Mismatch, MismatchKind, Period, Report};
use crate::{
    money::Amount,
    orders::{Fact, Kind, Source},
    trustly::methods::LedgerEntry,
};

/// Ledger transaction types that belong to an order the sidecar creates or is notified about.
/// Rows of any other type — `Settlement` (MerchantSettlement), fees, FX, interest, manual
/// adjustments — and rows without an order id are ignored: the sidecar cannot know them.
pub const ORDER_TRANSACTION_TYPES: [&str; 8] = [
    "Deposit",
    "Deposit Reversal",
    "Charge",
    "Refund",
    "Withdraw",
    "AccountPayout",
    "Cancelled AccountPayout",
    "Failed AccountPayout",
];

/// The order id of a row of an order transaction type (`None`: the row is ignored).
pub fn order_row(row: &LedgerEntry) -> Option<(&str, &LedgerEntry)> {
    let order_id = row.order_id.as_deref().filter(|id| !id.is_empty())?;
    let kind = row.transaction_type.as_deref()?;
    ORDER_TRANSACTION_TYPES
        .contains(&kind)
        .then_some((order_id, row))
}

/// True for a fact that may move money (it makes its order part of a period it falls in).
pub fn moves_money(fact: &Fact) -> bool {
    match fact.source {
        Source::Notification => {
            matches!(
                fact.method.as_str(),
                "credit" | "debit" | "payoutconfirmation"
            )
        }
        Source::Rpc => matches!(
            fact.method.as_str(),
            "Refund" | "AccountPayout" | "RegisterAccountPayout"
        ),
        // The merchant's answer to a Withdraw debit moves nothing by itself.
        Source::Decision => false,
    }
}

/// How an order's facts map to ledger movements.
#[derive(Clone, Copy)]
enum Class {
    /// Deposit, Charge, a Refund-only order, an order only checkout notifications named.
    Checkout,
    /// AccountPayout or RegisterAccountPayout; `debited_on_rpc` when the sidecar saw the RPC.
    Payout { debited_on_rpc: bool },
    /// Withdraw; `confirmed` once a `payoutconfirmation` was seen.
    Withdraw { confirmed: bool },
}

fn class(known: &Known) -> Class {
    let has = |source, method: &str| {
        known
            .facts
            .iter()
            .any(|f| f.source == source && f.method == method)
    };
    let confirmed = has(Source::Notification, "payoutconfirmation");
    let payout_rpc = has(Source::Rpc, "AccountPayout") || has(Source::Rpc, "RegisterAccountPayout");
    match known.order.kind {
        Kind::Withdraw => Class::Withdraw { confirmed },
        Kind::AccountPayout | Kind::RegisterAccountPayout => Class::Payout {
            debited_on_rpc: payout_rpc,
        },
        Kind::Unknown if confirmed || has(Source::Notification, "payoutfailed") => Class::Payout {
            debited_on_rpc: false,
        },
        _ => Class::Checkout,
    }
}

/// What one fact moves on the ledger (`None`: nothing).
fn movement(class: Class, fact: &Fact) -> Option<Decimal> {
    let amount = Amount::from_str(&fact.amount).ok()?.value();
    let sign = match (fact.source, fact.method.as_str(), class) {
        (Source::Rpc, "Refund" | "AccountPayout" | "RegisterAccountPayout", _) => -1,
        (Source::Notification, "credit", Class::Withdraw { confirmed: false }) => return None,
        (Source::Notification, "credit", _) => 1,
        (Source::Notification, "debit", Class::Checkout) => -1,
        (Source::Notification, "payoutconfirmation", Class::Withdraw { .. })
        | (
            Source::Notification,
            "payoutconfirmation",
            Class::Payout {
                debited_on_rpc: false,
            },
        ) => -1,
        _ => return None,
    };
    Some(amount * Decimal::from(sign))
}

/// Compares the orders of the period (and those its ledger rows name) with its ledger rows.
pub fn compare(period: &Period, orders: &BTreeMap<String, Known>, rows: &[LedgerEntry]) -> Report {
    let mut by_order: BTreeMap<&str, Vec<&LedgerEntry>> = BTreeMap::new();
    for (order_id, row) in rows.iter().filter_map(order_row) {
        by_order.entry(order_id).or_default().push(row);
    }
    let mut report = Report {
        ledger_rows_checked: by_order.values().map(Vec::len).sum(),
        orders_checked: orders.len(),
        mismatches: Vec::new(),
    };
    for (order_id, rows) in &by_order {
        if orders.contains_key(*order_id) {
            continue;
        }
        report.mismatches.extend(rows.iter().map(|row| Mismatch {
            kind: MismatchKind::LedgerRowWithoutOrder,
            order_id: (*order_id).to_owned(),
            message_id: row.message_id.clone().unwrap_or_default(),
            currency: row.currency.clone(),
            order_amount: None,
            ledger_amount: Some(row.amount),
            detail: format!(
                "a {} row for an order the sidecar has no fact about",
                row.transaction_type.as_deref().unwrap_or_default()
            ),
        }));
    }
    for (order_id, known) in orders {
        let rows = by_order
            .get(order_id.as_str())
            .map_or(&[][..], Vec::as_slice);
        report.mismatches.extend(check(period, known, rows));
    }
    report
        .mismatches
        .sort_by(|a, b| (&a.order_id, a.kind, a).cmp(&(&b.order_id, b.kind, b)));
    report
}

/// The mismatch of one known order, if any.
fn check(period: &Period, known: &Known, rows: &[&LedgerEntry]) -> Option<Mismatch> {
    let class = class(known);
    let moves: Vec<(&Fact, Decimal)> = known
        .facts
        .iter()
        .filter(|f| period.contains(f.at_ms))
        .filter_map(|f| movement(class, f).map(|amount| (f, amount)))
        .collect();
    let expected: Decimal = moves.iter().map(|(_, amount)| *amount).sum();
    let ledger: Decimal = rows.iter().map(|row| row.amount).sum();
    let order = &known.order;
    let mismatch = |kind, detail: String| Mismatch {
        kind,
        order_id: order.order_id.clone(),
        message_id: order.message_id.clone(),
        currency: order.currency.clone(),
        order_amount: Some(expected),
        ledger_amount: (!rows.is_empty()).then_some(ledger),
        detail,
    };
    let payout = !matches!(class, Class::Checkout);
    let debits = moves.iter().any(|(_, amount)| *amount < Decimal::ZERO);
    if payout
        && order.paid_out > Decimal::ZERO
        && debits
        && !rows.iter().any(|r| r.amount.is_sign_negative())
    {
        return Some(mismatch(
            MismatchKind::PayoutWithoutLedgerDebit,
            format!(
                "paid out {} but the ledger has no debit row in the period",
                order.paid_out
            ),
        ));
    }
    if rows.is_empty() {
        let credited = moves
            .iter()
            .any(|(f, amount)| f.method == "credit" && *amount > Decimal::ZERO);
        return if credited {
            Some(mismatch(
                MismatchKind::CreditedWithoutLedgerRow,
                "credited in the period; the ledger has no row for it".to_owned(),
            ))
        } else if expected != Decimal::ZERO {
            Some(mismatch(
                MismatchKind::AmountMismatch,
                "the ledger has no row for it".to_owned(),
            ))
        } else {
            None
        };
    }
    let currencies: Vec<&str> = rows
        .iter()
        .map(|r| r.currency.as_str())
        .filter(|c| !order.currency.is_empty() && *c != order.currency)
        .collect();
    if let Some(other) = currencies.first() {
        return Some(mismatch(
            MismatchKind::CurrencyMismatch,
            format!(
                "the order is in {}, a ledger row in {other}",
                order.currency
            ),
        ));
    }
    (ledger != expected).then(|| {
        mismatch(
            MismatchKind::AmountMismatch,
            format!(
                "{} ledger row(s) net {ledger}, the order's facts {expected}",
                rows.len()
            ),
        )
    })
}
