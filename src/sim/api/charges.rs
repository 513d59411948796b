//! Direct debit: Charge against an account with a mandate, and CancelCharge of one still
//! queued for a future date.

use serde_json::{Map, Value, json};

use super::{Context, claim_message_id, payouts::Payment};
use crate::sim::{
    clock::Timestamp,
    state::{OrderKind, OrderStatus},
    validate::*,
};

pub(super) fn charge(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    let account_id = data.required("AccountID")?;
    let p = Payment::read(data)?;
    let attributes = &p.attributes;
    attributes.email(true)?;
    let payment_date = match attributes.optional("PaymentDate")? {
        Some(_) => Some(attributes.date("PaymentDate")?),
        None => None,
    };
    claim_message_id(cx.state, &p.opening.message_id)?;
    // Business rejections come back inside a success envelope (spec §2.4).
    let rejected = match cx.state.accounts_by_id.get(&account_id) {
        None => Some("ERROR_ACCOUNT_NOT_FOUND"),
        Some(account) if !account.mandate => Some("ERROR_MANDATE_NOT_FOUND"),
        Some(_) => None,
    };
    if let Some(rejected) = rejected {
        return Ok(json!({ "result": "0", "orderid": null, "rejected": rejected }));
    }
    let order = p.queue(cx.state, OrderKind::Charge, account_id);
    order.payment_date = payment_date;
    Ok(json!({ "result": "1", "orderid": order.order_id, "rejected": null }))
}

pub(super) fn cancel(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    let order_id = data.order_id()?;
    let order = cx
        .state
        .order_of(&order_id, OrderKind::Charge)
        .ok_or(INVALID_ORDER_ID)?;
    // Only a charge still queued for a future date can be cancelled (spec §5.12).
    let today = Timestamp::now().date();
    let cancellable = order.status == OrderStatus::Queued
        && order
            .payment_date
            .as_deref()
            .is_some_and(|date| date > today.as_str());
    if !cancellable {
        return Ok(
            json!({ "result": "0", "orderid": order_id, "rejected": "Payment already executed" }),
        );
    }
    cx.state.set_status(&order_id, OrderStatus::Cancelled, None);
    cx.notifications
        .extend(cx.state.new_notification(&order_id, "cancel", Map::new()));
    Ok(json!({ "result": "1", "orderid": order_id, "rejected": null }))
}
