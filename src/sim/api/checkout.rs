//! The checkout flows the end user finishes at Trustly: Deposit, Withdraw and SelectAccount.
//! The API call only opens the order and returns its checkout URL; what happens next is driven
//! from the admin API (`scenario`).

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Context, claim_message_id};
use crate::sim::{state::OrderKind, validate::*};

/// Validates a checkout request, opens the order and returns its checkout URL.
pub(super) fn open(
    cx: &mut Context<'_>,
    data: &Fields<'_>,
    kind: OrderKind,
) -> Result<Value, Rejection> {
    let opening = data.opening()?;
    let attributes = data.attributes(true)?;
    attributes.checkout()?;
    let (currency, amount) = money_terms(data, &attributes, kind)?;
    let request_kyc = attributes.flag("RequestKYC")?;
    let request_mandate = attributes.flag("RequestDirectDebitMandate")?;
    // A direct-debit mandate needs the end user's email (spec §5.7).
    attributes.email(request_mandate)?;
    let locale = attributes.required("Locale")?;
    let external_reference = attributes.optional("ExternalReference")?;
    claim_message_id(cx.state, &opening.message_id)?;

    let order = cx.state.open_order(kind, &opening);
    order.currency = currency;
    order.amount = amount;
    order.request_kyc = request_kyc;
    order.request_mandate = request_mandate;
    order.external_reference = external_reference;
    let order_id = order.order_id.clone();
    let url = format!(
        "{}/_/orderclient.php?SessionID={}&OrderID={order_id}&Locale={locale}",
        cx.base_url,
        uuid::Uuid::new_v4()
    );
    Ok(json!({ "orderid": order_id, "url": url }))
}

/// The currency and the amount the order fixes, if any (the end user may choose it otherwise),
/// with the attributes only money-moving checkouts take. SelectAccount moves no money.
fn money_terms(
    data: &Fields<'_>,
    attributes: &Fields<'_>,
    kind: OrderKind,
) -> Result<(Option<String>, Option<Decimal>), Rejection> {
    match kind {
        OrderKind::Deposit => {
            attributes.required("Email")?;
            statement_and_range(attributes)?;
            Ok((
                Some(attributes.currency("Currency")?),
                attributes.optional_amount("Amount")?,
            ))
        }
        OrderKind::Withdraw => {
            statement_and_range(attributes)?;
            Ok((
                Some(data.currency("Currency")?),
                attributes.optional_amount("SuggestedAmount")?,
            ))
        }
        _ => Ok((None, None)),
    }
}

/// What Deposit and Withdraw both require (ShopperStatement) and may suggest (the range of
/// amounts the end user may choose from).
fn statement_and_range(attributes: &Fields<'_>) -> Result<(), Rejection> {
    attributes.required("ShopperStatement")?;
    attributes.optional_amount("SuggestedMinAmount")?;
    attributes.optional_amount("SuggestedMaxAmount")?;
    Ok(())
}
