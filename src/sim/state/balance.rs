//! The merchant balance per currency, and the ledger row every change of it writes
//! (AccountLedger and the settlement CSV read the ledger).

use rust_decimal::Decimal;
use serde::Serialize;

use super::State;
use crate::sim::{
    clock::Timestamp,
    validate::{INSUFFICIENT_FUNDS, Rejection},
};

/// One ledger row. The admin API may add, drop or alter rows (`/admin/ledger`) to plant
/// discrepancies for reconciliation; such edits do not move the balance.
#[derive(Clone, Debug, Serialize)]
pub struct LedgerRow {
    pub userid: String,
    pub datestamp: String,
    pub date: String,
    pub orderid: String,
    pub accountname: &'static str,
    pub messageid: String,
    pub transactiontype: String,
    pub currency: String,
    pub amount: Decimal,
}

impl State {
    /// The order's amount; zero when it has none (yet).
    fn order_amount(&self, order_id: &str) -> Decimal {
        self.orders
            .get(order_id)
            .and_then(|o| o.amount)
            .unwrap_or_default()
    }

    /// Adds the order's amount to the merchant balance and writes the ledger row.
    pub fn credit_order(&mut self, order_id: &str, transaction: &'static str) {
        let amount = self.order_amount(order_id);
        self.move_balance(order_id, amount, transaction);
    }

    /// Takes a credited order's amount back out of the merchant balance (test case D1).
    pub fn reverse_order(&mut self, order_id: &str, transaction: &'static str) {
        let amount = self.order_amount(order_id);
        self.move_balance(order_id, -amount, transaction);
    }

    /// Refuses an amount the merchant balance cannot cover.
    pub fn ensure_funds(&self, currency: &str, amount: Decimal) -> Result<(), Rejection> {
        if self.balances.get(currency).copied().unwrap_or_default() < amount {
            return Err(INSUFFICIENT_FUNDS);
        }
        Ok(())
    }

    /// Takes from the merchant balance, refusing to go below zero.
    pub fn debit_balance(
        &mut self,
        currency: &str,
        amount: Decimal,
        order_id: &str,
        transaction: &'static str,
    ) -> Result<(), Rejection> {
        self.ensure_funds(currency, amount)?;
        self.move_balance_in(currency, order_id, -amount, transaction);
        Ok(())
    }

    fn move_balance(&mut self, order_id: &str, delta: Decimal, transaction: &'static str) {
        let currency = self
            .orders
            .get(order_id)
            .and_then(|o| o.currency.clone())
            .unwrap_or_default();
        self.move_balance_in(&currency, order_id, delta, transaction);
    }

    fn move_balance_in(
        &mut self,
        currency: &str,
        order_id: &str,
        delta: Decimal,
        transaction: &'static str,
    ) {
        *self.balances.entry(currency.to_owned()).or_default() += delta;
        let order = self.orders.get(order_id);
        let now = Timestamp::now();
        self.ledger.push(LedgerRow {
            userid: order
                .and_then(|o| o.end_user_id.clone())
                .unwrap_or_default(),
            datestamp: now.trustly(),
            date: now.date(),
            orderid: order_id.to_owned(),
            accountname: "CLIENT_FUNDS",
            messageid: order.and_then(|o| o.message_id.clone()).unwrap_or_default(),
            transactiontype: transaction.to_owned(),
            currency: currency.to_owned(),
            amount: delta,
        });
    }
}
