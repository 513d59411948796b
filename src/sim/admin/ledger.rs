//! `/admin/ledger`: read the ledger AccountLedger answers from, and plant discrepancies in it —
//! add a row, drop an order's rows, alter an order's rows' amount or currency. Edits change the
//! books only: the balance does not move, and no notification is sent.

use hyper::StatusCode;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{bad_request, not_found, ok};
use crate::{
    money::Currency,
    sim::{Sim, clock::Timestamp, state::LedgerRow},
    trustly::time::is_date,
};

/// The body of `POST /admin/ledger`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRow {
    orderid: String,
    currency: String,
    /// A decimal string, signed: `"-25.00"` is a debit.
    amount: String,
    transactiontype: String,
    #[serde(default)]
    messageid: String,
    #[serde(default)]
    userid: String,
    /// Trustly's format, `2026-12-01 10:00:00.000000+00`; default now.
    datestamp: Option<String>,
}

/// The body of `PATCH /admin/ledger/<orderid>`: at least one field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Alteration {
    amount: Option<String>,
    currency: Option<String>,
}

/// Every row, oldest first.
pub(super) fn list(sim: &Sim) -> (StatusCode, Value) {
    ok(&sim.state.lock().ledger)
}

/// Adds a row (201 with the row).
pub(super) fn add(sim: &Sim, body: &[u8]) -> (StatusCode, Value) {
    let row = match serde_json::from_slice::<NewRow>(body) {
        Ok(row) => row,
        Err(error) => return bad_request(&format!("ledger row: {error}")),
    };
    if row.orderid.is_empty() || row.transactiontype.is_empty() {
        return bad_request("orderid and transactiontype must not be empty");
    }
    let (amount, currency) = match (amount(&row.amount), currency(&row.currency)) {
        (Ok(amount), Ok(currency)) => (amount, currency),
        (Err(error), _) | (_, Err(error)) => return error,
    };
    let datestamp = row.datestamp.unwrap_or_else(|| Timestamp::now().trustly());
    let date = datestamp.get(..10).unwrap_or_default().to_owned();
    if !is_date(&date) {
        return bad_request("datestamp must start with a YYYY-MM-DD date");
    }
    let row = LedgerRow {
        userid: row.userid,
        datestamp,
        date,
        orderid: row.orderid,
        accountname: "CLIENT_FUNDS",
        messageid: row.messageid,
        transactiontype: row.transactiontype,
        currency,
        amount,
    };
    let created = json!(row);
    sim.state.lock().ledger.push(row);
    (StatusCode::CREATED, created)
}

/// Drops every row of the order.
pub(super) fn drop_order(sim: &Sim, order_id: &str) -> (StatusCode, Value) {
    let mut state = sim.state.lock();
    let before = state.ledger.len();
    state.ledger.retain(|row| row.orderid != order_id);
    match before - state.ledger.len() {
        0 => not_found(&format!("no ledger row for order {order_id}")),
        dropped => ok(&json!({ "dropped": dropped })),
    }
}

/// Sets the amount and/or currency of every row of the order; answers with the altered rows.
pub(super) fn alter(sim: &Sim, order_id: &str, body: &[u8]) -> (StatusCode, Value) {
    let change = match serde_json::from_slice::<Alteration>(body) {
        Ok(change) if change.amount.is_some() || change.currency.is_some() => change,
        Ok(_) => return bad_request(r#"body must name "amount" and/or "currency""#),
        Err(error) => return bad_request(&format!("ledger alteration: {error}")),
    };
    let new_amount = match change.amount.as_deref().map(amount).transpose() {
        Ok(amount) => amount,
        Err(error) => return error,
    };
    let new_currency = match change.currency.as_deref().map(currency).transpose() {
        Ok(currency) => currency,
        Err(error) => return error,
    };
    let mut state = sim.state.lock();
    let mut altered = Vec::new();
    for row in state.ledger.iter_mut().filter(|r| r.orderid == order_id) {
        if let Some(amount) = new_amount {
            row.amount = amount;
        }
        if let Some(currency) = &new_currency {
            row.currency.clone_from(currency);
        }
        altered.push(json!(row));
    }
    if altered.is_empty() {
        return not_found(&format!("no ledger row for order {order_id}"));
    }
    ok(&altered)
}

fn amount(text: &str) -> Result<Decimal, (StatusCode, Value)> {
    text.parse::<Decimal>()
        .map_err(|_| bad_request(r#"amount must be a decimal string such as "-25.00""#))
}

fn currency(text: &str) -> Result<String, (StatusCode, Value)> {
    text.parse::<Currency>()
        .map(|_| text.to_owned())
        .map_err(|_| bad_request("currency must be an ISO 4217 code"))
}
