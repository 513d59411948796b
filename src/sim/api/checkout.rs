//! The checkout flows the end user finishes at Trustly: Deposit, Withdraw and SelectAccount.
//! The API call only opens the order and returns its checkout URL; the end user's page
//! (`sim::checkout`) or the admin API (`scenario`) drives what happens next.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Context, claim_message_id};
use crate::sim::{
    state::{CheckoutTerms, OrderKind},
    validate::*,
};

/// Validates a checkout request, opens the order and returns its checkout URL.
pub(super) fn open(
    cx: &mut Context<'_>,
    data: &Fields<'_>,
    kind: OrderKind,
) -> Result<Value, Rejection> {
    let opening = data.opening()?;
    let attributes = data.attributes(true)?;
    attributes.checkout()?;
    let money = money_terms(data, &attributes, kind)?;
    let request_kyc = attributes.flag("RequestKYC")?;
    let request_mandate = attributes.flag("RequestDirectDebitMandate")?;
    // A direct-debit mandate needs the end user's email (spec §5.7).
    attributes.email(request_mandate)?;
    let locale = attributes.required("Locale")?;
    let external_reference = attributes.optional("ExternalReference")?;
    let terms = CheckoutTerms {
        success_url: attributes.required("SuccessURL")?,
        fail_url: attributes.required("FailURL")?,
        country: attributes.required("Country")?,
        locale: locale.clone(),
        shopper_statement: attributes.optional("ShopperStatement")?,
        fixed_amount: money.amount.is_some(),
        min_amount: money.min,
        max_amount: money.max,
    };
    // Trustly's test-only attribute (spec §5.3, §5.4, §5.7): "1", or the integer 1 that the
    // Python and PHP clients send. Anything else leaves delivery as usual, as before it existed.
    let hold = attributes.optional("HoldNotifications").ok().flatten() == Some("1".to_owned());
    claim_message_id(cx.state, &opening.message_id)?;

    let order = cx.state.open_order(kind, &opening);
    order.currency = money.currency;
    order.amount = money.amount;
    order.request_kyc = request_kyc;
    order.request_mandate = request_mandate;
    order.external_reference = external_reference;
    order.checkout = Some(terms);
    order.hold_notifications = hold;
    let order_id = order.order_id.clone();
    let url = format!(
        "{}/_/orderclient.php?SessionID={}&OrderID={order_id}&Locale={locale}",
        cx.base_url,
        uuid::Uuid::new_v4()
    );
    Ok(json!({ "orderid": order_id, "url": url }))
}

/// The money a checkout moves: its currency, the amount the order fixes (the end user chooses it
/// otherwise) and the range suggested for that choice. SelectAccount moves no money.
#[derive(Default)]
struct MoneyTerms {
    currency: Option<String>,
    amount: Option<Decimal>,
    min: Option<Decimal>,
    max: Option<Decimal>,
}

/// Reads the money terms, with the attributes only money-moving checkouts take.
fn money_terms(
    data: &Fields<'_>,
    attributes: &Fields<'_>,
    kind: OrderKind,
) -> Result<MoneyTerms, Rejection> {
    // The order of the checks decides which error a request with several bad fields gets.
    let fixed = match kind {
        OrderKind::Deposit => {
            attributes.required("Email")?;
            "Amount"
        }
        OrderKind::Withdraw => "SuggestedAmount",
        _ => return Ok(MoneyTerms::default()),
    };
    attributes.required("ShopperStatement")?;
    let min = attributes.optional_amount("SuggestedMinAmount")?;
    let max = attributes.optional_amount("SuggestedMaxAmount")?;
    let currency = match kind {
        OrderKind::Deposit => attributes.currency("Currency")?,
        _ => data.currency("Currency")?,
    };
    Ok(MoneyTerms {
        currency: Some(currency),
        amount: attributes.optional_amount(fixed)?,
        min,
        max,
    })
}
