//! Reconciliation against Trustly's books: the orders the sidecar folded from its facts, compared
//! with the AccountLedger rows of a period `[from_date, to_date)` (UTC dates, `to_date`
//! exclusive). The comparison itself is [`compare`], a pure function; this module gathers its
//! inputs — the ledger through the payment engine's AccountLedger call (signed like every call),
//! and the orders from the order book. Knows nothing of gRPC.
//!
//! Which orders belong to the period: those with a *money-moving fact* in it — a `credit`,
//! `debit` or `payoutconfirmation` notification, or a Refund, AccountPayout or
//! RegisterAccountPayout answer — by the fact's time (Trustly's timestamp for notifications).
//! The book lists orders by their earliest fact, so it is scanned from [`LOOK_BACK`] before
//! `from_date`; an order named by a ledger row of the period is looked up whatever its age.

mod compare;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use rust_decimal::Decimal;

pub use compare::{ORDER_TRANSACTION_TYPES, compare};

use super::{Fact, Order, OrderBook, Query, book};
use crate::{
    money::Currency,
    payments::{self, Payments, Prepared},
    trustly::{
        methods::{self as m, LedgerEntry, Method},
        time,
    },
};

/// The longest period one reconciliation covers: a month of ledger rows in one AccountLedger
/// answer stays within the Trustly client's response-size limit for a busy merchant.
pub const MAX_SPAN_DAYS: i64 = 31;
/// How far before `from_date` the book is scanned for orders created earlier whose money moved in
/// the period: a Deposit credited or a payout confirmed up to two weeks after it was created.
/// (Older orders with a ledger row in the period are still found, through the row.)
pub const LOOK_BACK_MS: u64 = 14 * DAY_MS;
/// Most orders read from the book per reconciliation; past it the call fails
/// ([`Error::TooManyOrders`]) rather than report a partial, misleading comparison. A shorter
/// period or one currency reads fewer.
pub const MAX_ORDERS_SCANNED: usize = 20_000;
/// Most ledger rows compared per reconciliation; past it the call fails
/// ([`Error::TooManyLedgerRows`]), for the same reason.
pub const MAX_LEDGER_ROWS: usize = 50_000;

const DAY_MS: u64 = 86_400_000;

/// Why a reconciliation could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The period is not one this use case accepts (`field` names the bad bound).
    #[error("{field} {problem}")]
    Period {
        field: &'static str,
        problem: &'static str,
    },
    #[error(transparent)]
    Book(#[from] book::Error),
    /// AccountLedger failed (Trustly or the engine).
    #[error(transparent)]
    Ledger(#[from] payments::Error),
    #[error("the period holds more than {MAX_ORDERS_SCANNED} orders; use a shorter period")]
    TooManyOrders,
    #[error("the period holds more than {MAX_LEDGER_ROWS} ledger rows; use a shorter period")]
    TooManyLedgerRows,
}

/// A period of whole UTC days, `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub from_date: String,
    pub to_date: String,
    from_day: i64,
    to_day: i64,
}

impl Period {
    /// `from_date < to_date`, both `YYYY-MM-DD`, at most [`MAX_SPAN_DAYS`] apart.
    pub fn new(from_date: &str, to_date: &str) -> Result<Self, Error> {
        let bad = |field, problem| Error::Period { field, problem };
        let from_day = day(from_date).ok_or(bad("from_date", "must be a date as YYYY-MM-DD"))?;
        let to_day = day(to_date).ok_or(bad("to_date", "must be a date as YYYY-MM-DD"))?;
        if to_day <= from_day {
            return Err(bad(
                "to_date",
                "must be after from_date (to_date is exclusive)",
            ));
        }
        if to_day - from_day > MAX_SPAN_DAYS {
            return Err(bad("to_date", "must be at most 31 days after from_date"));
        }
        Ok(Self {
            from_date: from_date.to_owned(),
            to_date: to_date.to_owned(),
            from_day,
            to_day,
        })
    }

    /// Yesterday and today (UTC) as of `now_ms`: the scheduled run's window, so a run shortly
    /// after midnight still sees the end of the previous day.
    pub fn around(now_ms: u64) -> Self {
        let today = i64::try_from(now_ms / DAY_MS).unwrap_or(0);
        let date = |days| {
            let (y, m, d) = time::civil_from_days(days);
            format!("{y:04}-{m:02}-{d:02}")
        };
        Self {
            from_date: date(today - 1),
            to_date: date(today + 1),
            from_day: today - 1,
            to_day: today + 1,
        }
    }

    /// The period in ms since the epoch, `[from, to)`.
    pub fn millis(&self) -> (u64, u64) {
        let ms = |day: i64| u64::try_from(day).unwrap_or(0).saturating_mul(DAY_MS);
        (ms(self.from_day), ms(self.to_day))
    }

    pub fn contains(&self, at_ms: u64) -> bool {
        let (from, to) = self.millis();
        (from..to).contains(&at_ms)
    }
}

/// Days since the epoch of a `YYYY-MM-DD` date.
fn day(text: &str) -> Option<i64> {
    if !time::is_date(text) {
        return None;
    }
    let part = |range| text.get(range).and_then(|p: &str| p.parse::<i64>().ok());
    Some(time::days_from_civil(
        part(0..4)?,
        part(5..7)?,
        part(8..10)?,
    ))
}

/// What was found wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MismatchKind {
    /// The order was credited in the period and the ledger has no row for it.
    CreditedWithoutLedgerRow,
    /// A ledger row names an order the sidecar has no fact about.
    LedgerRowWithoutOrder,
    /// The ledger's net for the order differs from what its facts say moved.
    AmountMismatch,
    /// A ledger row of the order is in another currency than the order.
    CurrencyMismatch,
    /// A payout confirmed (`payoutconfirmation`) without a debit row in the ledger.
    PayoutWithoutLedgerDebit,
}

impl MismatchKind {
    pub const ALL: [MismatchKind; 5] = [
        MismatchKind::CreditedWithoutLedgerRow,
        MismatchKind::LedgerRowWithoutOrder,
        MismatchKind::AmountMismatch,
        MismatchKind::CurrencyMismatch,
        MismatchKind::PayoutWithoutLedgerDebit,
    ];

    /// The metric label and log value.
    pub fn name(self) -> &'static str {
        match self {
            MismatchKind::CreditedWithoutLedgerRow => "credited_without_ledger_row",
            MismatchKind::LedgerRowWithoutOrder => "ledger_row_without_order",
            MismatchKind::AmountMismatch => "amount_mismatch",
            MismatchKind::CurrencyMismatch => "currency_mismatch",
            MismatchKind::PayoutWithoutLedgerDebit => "payout_without_ledger_debit",
        }
    }
}

/// One discrepancy. Amounts are exact (`None`: that side has none); identifiers only.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mismatch {
    pub kind: MismatchKind,
    pub order_id: String,
    pub message_id: String,
    pub currency: String,
    /// What the order's facts in the period say moved (net, signed as the ledger).
    pub order_amount: Option<Decimal>,
    /// The net of the order's ledger rows in the period.
    pub ledger_amount: Option<Decimal>,
    pub detail: String,
}

/// The outcome of one reconciliation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Sorted by order id, then kind.
    pub mismatches: Vec<Mismatch>,
    pub orders_checked: usize,
    /// Rows of an order transaction type (the others are ignored, see
    /// [`ORDER_TRANSACTION_TYPES`]).
    pub ledger_rows_checked: usize,
}

/// An order and the facts it was folded from.
#[derive(Clone, Debug)]
pub struct Known {
    pub order: Order,
    pub facts: Vec<Fact>,
}

/// Runs reconciliations. Cloning shares the book and the engine.
#[derive(Clone)]
pub struct Reconciler {
    book: OrderBook,
    payments: Payments,
}

impl Reconciler {
    pub fn new(book: OrderBook, payments: Payments) -> Self {
        Self { book, payments }
    }

    /// Compares the period's orders (of `currency` when given) with its ledger rows.
    pub async fn reconcile(
        &self,
        period: &Period,
        currency: Option<Currency>,
    ) -> Result<Report, Error> {
        let rows = self.ledger(period, currency).await?;
        let mut orders = self.orders_in(period, currency).await?;
        let named: Vec<String> = rows
            .iter()
            .filter_map(compare::order_row)
            .map(|(order_id, _)| order_id.to_owned())
            .collect();
        for order_id in named {
            if orders.contains_key(&order_id) {
                continue;
            }
            if orders.len() >= MAX_ORDERS_SCANNED {
                return Err(Error::TooManyOrders);
            }
            let facts = self.book.facts(&order_id).await?;
            if let Some(order) = super::fold(facts.iter().cloned()) {
                orders.insert(order_id, Known { order, facts });
            }
        }
        Ok(compare(period, &orders, &rows))
    }

    /// The period's ledger rows, through the engine's AccountLedger call.
    async fn ledger(
        &self,
        period: &Period,
        currency: Option<Currency>,
    ) -> Result<Vec<LedgerEntry>, Error> {
        let method = m::AccountLedger {
            from_date: period.from_date.clone(),
            to_date: period.to_date.clone(),
            currency,
            extra: m::Extra::new(),
        };
        let prepared = Prepared {
            method: m::AccountLedger::NAME,
            // A typed method always serializes; an empty tree would be refused by Trustly.
            data: method.data().unwrap_or_default(),
            idempotency_key: None,
        };
        let rows: Vec<LedgerEntry> = self.payments.call(prepared).await?.value;
        if rows.len() > MAX_LEDGER_ROWS {
            return Err(Error::TooManyLedgerRows);
        }
        Ok(rows)
    }

    /// The orders with a money-moving fact in the period (of `currency` when given).
    async fn orders_in(
        &self,
        period: &Period,
        currency: Option<Currency>,
    ) -> Result<BTreeMap<String, Known>, Error> {
        let (from_ms, to_ms) = period.millis();
        let mut query = Query {
            from_ms: from_ms.saturating_sub(LOOK_BACK_MS),
            to_ms: Some(to_ms),
            page_size: book::MAX_PAGE_SIZE,
            ..Query::default()
        };
        let (mut orders, mut scanned) = (BTreeMap::new(), 0);
        loop {
            let page = self.book.list(&query).await?;
            scanned += page.orders.len();
            if scanned > MAX_ORDERS_SCANNED {
                return Err(Error::TooManyOrders);
            }
            for order in page.orders {
                let other_currency = currency.is_some_and(|c| c.as_str() != order.currency);
                if order.updated_ms < from_ms || other_currency {
                    continue; // no fact in the period, or not asked for
                }
                let facts = self.book.facts(&order.order_id).await?;
                if facts
                    .iter()
                    .any(|f| compare::moves_money(f) && period.contains(f.at_ms))
                {
                    orders.insert(order.order_id.clone(), Known { order, facts });
                }
            }
            if page.next_page_token.is_empty() {
                return Ok(orders);
            }
            query.page_token = page.next_page_token;
        }
    }
}
