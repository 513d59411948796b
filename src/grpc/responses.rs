//! Response building: wire-core answers (already verified and typed) become `pb` messages.
//! Trustly's formats (timestamps, the settlement CSV) are read by `trustly`; this only maps.

use std::collections::HashMap;

use prost_types::Timestamp;
use serde_json::Value;

use crate::{
    pb,
    trustly::{methods as m, time},
};

/// Verified answer fields this API does not type: strings as they are, others as JSON text.
pub fn extra_fields(extra: m::Extra) -> HashMap<String, String> {
    extra
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (key, text)
        })
        .collect()
}

/// Trustly's timestamp text as a protobuf `Timestamp` (the calendar is `trustly::time`).
pub fn timestamp(text: &str) -> Option<Timestamp> {
    time::parse_timestamp(text).map(|t| Timestamp {
        seconds: t.seconds,
        nanos: t.nanos,
    })
}

pub fn order_with_url(answer: m::OrderWithUrl) -> (String, String, HashMap<String, String>) {
    (answer.order_id, answer.url, extra_fields(answer.extra))
}

pub fn withdrawals(withdrawals: Vec<m::Withdrawal>) -> pb::GetWithdrawalsResponse {
    pb::GetWithdrawalsResponse {
        withdrawals: rows(withdrawals),
    }
}

pub fn balances(balances: Vec<m::CurrencyBalance>) -> pb::BalanceResponse {
    pb::BalanceResponse {
        balances: rows(balances),
    }
}

pub fn ledger(entries: Vec<m::LedgerEntry>) -> pb::AccountLedgerResponse {
    pb::AccountLedgerResponse {
        entries: rows(entries),
    }
}

/// The settlement report's rows (read from Trustly's CSV by `trustly::methods`).
pub fn settlement_rows(rows_read: Vec<m::SettlementRow>) -> pb::SettlementReportResponse {
    pb::SettlementReportResponse {
        rows: rows(rows_read),
    }
}

/// Each row of a list answer as its `pb` message (the `From` impls below).
fn rows<T, U: From<T>>(rows: Vec<T>) -> Vec<U> {
    rows.into_iter().map(U::from).collect()
}

impl From<m::Withdrawal> for pb::Withdrawal {
    fn from(w: m::Withdrawal) -> Self {
        Self {
            reference: w.reference.unwrap_or_default(),
            order_id: w.order_id,
            transfer_state: w.transfer_state,
            amount: w.amount.to_string(),
            currency_code: w.currency,
            account_id: w.account_id.unwrap_or_default(),
            create_time: w.datestamp.as_deref().and_then(timestamp),
            update_time: w.modification_date.as_deref().and_then(timestamp),
            eta: w.eta.unwrap_or_default(),
            extra_fields: extra_fields(w.extra),
        }
    }
}

impl From<m::CurrencyBalance> for pb::CurrencyBalance {
    fn from(b: m::CurrencyBalance) -> Self {
        Self {
            currency_code: b.currency,
            balance: b.balance.to_string(),
        }
    }
}

impl From<m::LedgerEntry> for pb::LedgerEntry {
    fn from(e: m::LedgerEntry) -> Self {
        Self {
            user_id: e.user_id.unwrap_or_default(),
            create_time: timestamp(&e.datestamp),
            order_id: e.order_id.unwrap_or_default(),
            account_name: e.account_name,
            message_id: e.message_id.unwrap_or_default(),
            transaction_type: e.transaction_type.unwrap_or_default(),
            currency_code: e.currency,
            amount: e.amount.to_string(),
            gluepay_id: e.gluepay_id.unwrap_or_default(),
            extra_fields: extra_fields(e.extra),
        }
    }
}

impl From<m::SettlementRow> for pb::SettlementReportRow {
    fn from(row: m::SettlementRow) -> Self {
        Self {
            create_time: timestamp(&row.datestamp),
            account_name: row.account_name,
            currency_code: row.currency,
            amount: row.amount,
            total: row.total,
            order_id: row.order_id,
            order_type: row.order_type,
            message_id: row.message_id,
            username: row.username,
            fx_payment_amount: row.fx_payment_amount,
            fx_payment_currency: row.fx_payment_currency,
            settlement_bank_withdrawal_id: row.settlement_bank_withdrawal_id,
            external_reference: row.external_reference,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calendar is tested in `trustly::time`; this checks only that its reading is carried over.
    #[test]
    fn timestamps_carry_the_calendar_reading() {
        let text = "2015-03-12 15:14:18.61671+00";
        let read = time::parse_timestamp(text).map(|t| (t.seconds, t.nanos));
        assert!(read.is_some());
        assert_eq!(timestamp(text).map(|t| (t.seconds, t.nanos)), read);
        assert_eq!(timestamp("yesterday"), None);
    }
}
