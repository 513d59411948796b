//! What the merchant reads back (GetWithdrawals, Balance, AccountLedger, the settlement CSV),
//! and MerchantSettlement, which moves the balance out to the merchant's own bank account.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Context, claim_message_id, money};
use crate::sim::{
    state::{OrderKind, OrderStatus},
    validate::*,
};

/// The header of Trustly's v1.2 settlement CSV (spec §5.16).
const SETTLEMENT_CSV_HEADER: &str = "datestamp,accountname,currency,amount,total,orderid,ordertype,messageid,username,fxpaymentamount,fxpaymentcurrency,settlementbankwithdrawalid,extraref\n";

/// GetWithdrawals of one order, at most once per poll window.
pub(super) fn get_withdrawals(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    let order_id = data.order_id().map_err(|_| NOT_FOUND)?;
    cx.state
        .poll(&format!("GetWithdrawals:{order_id}"), cx.poll_window)?;
    let order = cx.state.orders.get(&order_id).ok_or(NOT_FOUND)?;
    let Some(transfer_state) = order.transfer_state else {
        return Ok(json!([]));
    };
    Ok(json!([{
        "reference": order.order_id,
        "modificationdate": order.modified,
        "orderid": order.order_id,
        "datestamp": order.created,
        "transferstate": transfer_state,
        "amount": money(order.amount.unwrap_or_default()),
        "accountid": order.account_id,
        "currency": order.currency,
        "eta": null,
    }]))
}

/// The merchant balance per currency, at most once per poll window.
pub(super) fn balance(cx: &mut Context<'_>) -> Result<Value, Rejection> {
    cx.state.poll("Balance", cx.poll_window)?;
    Ok(Value::Array(
        cx.state
            .balances
            .iter()
            .map(|(currency, balance)| json!({ "currency": currency, "balance": money(*balance) }))
            .collect(),
    ))
}

/// AccountLedger: the rows dated in [FromDate, ToDate) — ToDate is exclusive.
pub(super) fn account_ledger(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    let from = data.date("FromDate")?;
    let to = data.date("ToDate")?;
    let currency = data.optional_currency("Currency")?;
    Ok(Value::Array(
        cx.state
            .ledger
            .iter()
            .filter(|row| row.date >= from && row.date < to)
            .filter(|row| currency.as_ref().is_none_or(|c| *c == row.currency))
            .map(|row| {
                json!({
                    "userid": row.userid,
                    "datestamp": row.datestamp,
                    "orderid": row.orderid,
                    "accountname": row.accountname,
                    "messageid": row.messageid,
                    "transactiontype": row.transactiontype,
                    "currency": row.currency,
                    "amount": format!("{:.20}", row.amount),
                    "gluepayid": row.orderid,
                })
            })
            .collect(),
    ))
}

/// ViewAutomaticSettlementDetailsCSV: the v1.2 settlement CSV (spec §5.16) for one day's ledger
/// rows, with a running total per currency.
pub(super) fn settlement_csv(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    let date = data.date("SettlementDate")?;
    let currency = data.optional_currency("Currency")?;
    let attributes = data.attributes(true)?;
    if attributes.required("APIVersion")? != "1.2" {
        return Err(INVALID_PARAMETERS);
    }
    let mut csv = String::from(SETTLEMENT_CSV_HEADER);
    let mut totals: BTreeMap<&str, Decimal> = BTreeMap::new();
    for row in cx.state.ledger.iter().filter(|row| row.date == date) {
        if currency.as_ref().is_some_and(|c| *c != row.currency) {
            continue;
        }
        let total = totals.entry(row.currency.as_str()).or_default();
        *total += row.amount;
        let extraref = cx
            .state
            .orders
            .get(&row.orderid)
            .and_then(|o| o.external_reference.clone())
            .unwrap_or_default();
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},,,,{}\n",
            row.datestamp,
            row.accountname,
            row.currency,
            money(row.amount),
            money(*total),
            row.orderid,
            row.transactiontype,
            csv_field(&row.messageid),
            csv_field(&row.userid),
            csv_field(&extraref),
        ));
    }
    Ok(json!({ "view_automatic_settlement_details": csv }))
}

pub(super) fn merchant_settlement(
    cx: &mut Context<'_>,
    data: &Fields<'_>,
) -> Result<Value, Rejection> {
    let message_id = data.required_or("MessageID", MESSAGEID_IS_NULL)?;
    let amount = data.amount("Amount")?;
    let currency = data.currency("Currency")?;
    cx.state.ensure_funds(&currency, amount)?;
    claim_message_id(cx.state, &message_id)?;
    let order = cx.state.new_order(OrderKind::MerchantSettlement);
    order.message_id = Some(message_id);
    order.amount = Some(amount);
    order.currency = Some(currency.clone());
    order.status = OrderStatus::Executed;
    let reference = order.order_id.clone();
    cx.state
        .debit_balance(&currency, amount, &reference, "Settlement")?;
    Ok(json!({ "reference": reference }))
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
