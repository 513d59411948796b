//! Money paid out of the merchant balance to the end user: the merchant's decision on a
//! withdrawal, AccountPayout / RegisterAccountPayout, and Refund. Each checks the balance before
//! it changes anything.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::{Context, accounts, claim_message_id};
use crate::{
    sim::{
        state::{Order, OrderKind, OrderStatus, State},
        validate::*,
    },
    trustly::methods::Opening,
};

/// Refund of a credited Deposit or Charge, in full or in part.
pub(super) fn refund(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    let order_id = data.order_id()?;
    let amount = data.amount("Amount")?;
    let currency = data.currency("Currency")?;
    let external_reference = data.attributes(false)?.optional("ExternalReference")?;
    let order = cx
        .state
        .orders
        .get(&order_id)
        .filter(|o| {
            matches!(o.kind, OrderKind::Deposit | OrderKind::Charge)
                && o.status == OrderStatus::Credited
        })
        .ok_or(INVALID_ORDER_ID)?;
    if order.currency.as_deref() != Some(currency.as_str()) {
        return Err(INVALID_CURRENCY_CODE);
    }
    // Partial refunds are allowed, up to what is left of the original amount (spec §5.5).
    if order.refunded + amount > order.amount.unwrap_or_default() {
        return Err(INVALID_AMOUNT);
    }
    let end_user_id = order.end_user_id.clone();
    cx.state
        .debit_balance(&currency, amount, &order_id, "Refund")?;
    if let Some(original) = cx.state.orders.get_mut(&order_id) {
        original.refunded += amount;
    }
    let refund = cx.state.new_order(OrderKind::Refund);
    refund.parent_order_id = Some(order_id.clone());
    refund.amount = Some(amount);
    refund.currency = Some(currency);
    refund.end_user_id = end_user_id;
    refund.status = OrderStatus::Executed;
    refund.transfer_state = Some("EXECUTED");
    refund.external_reference = external_reference;
    Ok(json!({ "orderid": order_id, "result": "1" }))
}

/// ApproveWithdrawal (`approve`) or DenyWithdrawal of a Withdraw the merchant has debited.
pub(super) fn decide_withdrawal(
    cx: &mut Context<'_>,
    data: &Fields<'_>,
    approve: bool,
) -> Result<Value, Rejection> {
    let order_id = data.order_id().map_err(|_| NOT_FOUND)?;
    let order = cx
        .state
        .order_of(&order_id, OrderKind::Withdraw)
        .ok_or(NOT_FOUND)?;
    if order.status != OrderStatus::AwaitingApproval {
        return Ok(json!({ "orderid": order_id, "result": "0" }));
    }
    let (currency, amount) = (
        order.currency.clone().unwrap_or_default(),
        order.amount.unwrap_or_default(),
    );
    if approve {
        cx.state
            .debit_balance(&currency, amount, &order_id, "Withdraw")?;
        cx.state
            .set_status(&order_id, OrderStatus::Executed, Some("EXECUTED"));
        cx.notifications.extend(cx.state.new_notification(
            &order_id,
            "payoutconfirmation",
            Map::new(),
        ));
    } else {
        // Deny gives cancel + credit: the merchant returns the amount to the user (spec §4.2).
        cx.state
            .set_status(&order_id, OrderStatus::Cancelled, Some("FAILED"));
        cx.notifications
            .extend(cx.state.new_notification(&order_id, "cancel", Map::new()));
        cx.notifications
            .extend(cx.state.new_notification(&order_id, "credit", Map::new()));
    }
    Ok(json!({ "orderid": order_id, "result": "1" }))
}

/// AccountPayout and RegisterAccountPayout: funds leave the balance when the payout is queued.
pub(super) fn payout(
    cx: &mut Context<'_>,
    data: &Fields<'_>,
    kind: OrderKind,
) -> Result<Value, Rejection> {
    let p = Payment::read(data)?;
    // Funds are checked before anything is registered, so a refused payout changes nothing.
    cx.state.ensure_funds(&p.currency, p.amount)?;
    let account_id = if kind == OrderKind::AccountPayout {
        let account_id = data.required("AccountID")?;
        if !cx.state.accounts_by_id.contains_key(&account_id) {
            return Err(INVALID_BANK_ACCOUNT_NUMBER);
        }
        account_id
    } else {
        accounts::bank_account(cx, data)?.account_id
    };
    cx.state.ensure_funds(&p.currency, p.amount)?;
    claim_message_id(cx.state, &p.opening.message_id)?;
    let order = p.queue(cx.state, kind, account_id);
    order.transfer_state = Some("QUEUED");
    order.external_reference = p.attributes.optional("ExternalReference")?;
    let order_id = order.order_id.clone();
    cx.state
        .debit_balance(&p.currency, p.amount, &order_id, "AccountPayout")?;
    Ok(json!({ "orderid": order_id, "result": "1" }))
}

/// What AccountPayout, RegisterAccountPayout and Charge read alike, in this order: the opening
/// fields, the money, and the Attributes with their ShopperStatement.
pub(super) struct Payment<'a> {
    pub(super) opening: Opening,
    amount: Decimal,
    currency: String,
    pub(super) attributes: Fields<'a>,
}

impl<'a> Payment<'a> {
    pub(super) fn read(data: &Fields<'a>) -> Result<Self, Rejection> {
        let payment = Self {
            opening: data.opening()?,
            amount: data.amount("Amount")?,
            currency: data.currency("Currency")?,
            attributes: data.attributes(true)?,
        };
        payment.attributes.required("ShopperStatement")?;
        Ok(payment)
    }

    /// The new order, queued to pay `account_id`.
    pub(super) fn queue<'s>(
        &self,
        state: &'s mut State,
        kind: OrderKind,
        account_id: String,
    ) -> &'s mut Order {
        let order = state.open_order(kind, &self.opening);
        order.amount = Some(self.amount);
        order.currency = Some(self.currency.clone());
        order.account_id = Some(account_id);
        order.status = OrderStatus::Queued;
        order
    }
}
