//! The end user's side of a checkout: the page the checkout URL opens, the order as that page
//! shows it, and the end user's choices (confirm with an amount, an account and order options,
//! or abandon). Choices run the same scenarios as the admin API, then the page returns to the
//! order's SuccessURL or FailURL. Unknown or missing OrderIDs are 404.

pub mod options;

use std::sync::Arc;

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use options::Effect;

use super::{
    Sim, api, notify,
    notify::Step,
    scenario::{self, ActionError, BankDetails, Complete},
    state::{CheckoutTerms, NotificationRecord, Order, OrderKind, OrderStatus, State},
    validate::plausible_account_number,
};

/// The checkout page: HTML, CSS and JS inline, nothing fetched from elsewhere.
const PAGE: &str = include_str!("assets/checkout.html");

/// What an unknown or missing OrderID gets.
const UNKNOWN_ORDER_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Order not found</title></head><body><main><h1>Order not found</h1>\
<p>This checkout link names no order the simulator knows.</p></main></body></html>\n";

/// Why an end user's choice was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no order {0}")]
    NotFound(String),
    #[error("this order is {0:?}: the checkout is finished")]
    Finished(OrderStatus),
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Action(#[from] ActionError),
}

impl Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::NotFound(_) | Error::Action(ActionError::NotFound(_)) => StatusCode::NOT_FOUND,
            Error::Finished(_) | Error::Action(ActionError::WrongState { .. }) => {
                StatusCode::CONFLICT
            }
            Error::BadInput(_) | Error::Action(ActionError::BadInput(_)) => StatusCode::BAD_REQUEST,
        }
    }
}

/// `GET /_/orderclient.php?...&OrderID=...`: the page, or 404 for an OrderID of no checkout.
pub fn page(sim: &Sim, query: Option<&str>) -> (StatusCode, &'static str) {
    let order_id = query.and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "OrderID")
            .map(|(_, value)| value.into_owned())
    });
    let known = order_id.is_some_and(|id| {
        sim.state
            .lock()
            .orders
            .get(&id)
            .is_some_and(|o| o.checkout.is_some())
    });
    if known {
        (StatusCode::OK, PAGE)
    } else {
        (StatusCode::NOT_FOUND, UNKNOWN_ORDER_PAGE)
    }
}

/// `GET /_/checkout/{order}`: the order as the page shows it.
pub fn view(sim: &Sim, order_id: &str) -> (StatusCode, Value) {
    let state = sim.state.lock();
    match checkout_order(&state, order_id) {
        Ok((order, terms)) => (StatusCode::OK, view_of(order, terms)),
        Err(error) => answer_error(&error),
    }
}

/// `POST /_/checkout/{order}/{confirm|abandon}`: the end user's choice.
pub async fn act(sim: &Arc<Sim>, order_id: &str, action: &str, body: &[u8]) -> (StatusCode, Value) {
    let outcome = match action {
        "confirm" => confirm(sim, order_id, body).await,
        "abandon" => abandon(sim, order_id).await,
        _ => Err(Error::NotFound(format!("{order_id}/{action}"))),
    };
    match outcome {
        Ok(value) => (StatusCode::OK, value),
        Err(error) => answer_error(&error),
    }
}

fn answer_error(error: &Error) -> (StatusCode, Value) {
    (error.status(), json!({ "error": error.to_string() }))
}

/// What the end user submits on confirming.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirm {
    /// The amount chosen, where the order leaves it open.
    amount: Option<String>,
    /// The account picked at the bank (or entered, for SelectAccount).
    account: Option<BankDetails>,
    /// The "Set order options" choice, an id of [`options::OPTIONS`].
    option: Option<String>,
}

async fn confirm(sim: &Arc<Sim>, order_id: &str, body: &[u8]) -> Result<Value, Error> {
    let choice: Confirm =
        serde_json::from_slice(body).map_err(|e| Error::BadInput(e.to_string()))?;
    let (records, steps, answer) = {
        let mut state = sim.state.lock();
        let (order, terms) = open_checkout(&state, order_id)?;
        let (kind, terms) = (order.kind, terms.clone());
        let effect = chosen_effect(kind, choice.option.as_deref())?;
        let amount = chosen_amount(order, &terms, choice.amount.as_deref())?;
        let account = chosen_account(kind, choice.account)?;
        let records = run(&mut state, order_id, effect, amount, account)?;
        let steps = schedule(&records, effect);
        (
            records,
            steps,
            finished(&state, order_id, &terms.success_url),
        )
    };
    notify::deliver_steps(sim, records, steps).await;
    Ok(answer)
}

async fn abandon(sim: &Arc<Sim>, order_id: &str) -> Result<Value, Error> {
    let (records, answer) = {
        let mut state = sim.state.lock();
        let fail_url = open_checkout(&state, order_id)?.1.fail_url.clone();
        let records = scenario::cancel(&mut state, order_id)?;
        (records, finished(&state, order_id, &fail_url))
    };
    notify::deliver(sim, records).await;
    Ok(answer)
}

/// The answer to a choice: the order as it is now, and where the page sends the end user.
fn finished(state: &State, order_id: &str, redirect: &str) -> Value {
    let order = checkout_order(state, order_id)
        .map(|(order, terms)| view_of(order, terms))
        .unwrap_or(Value::Null);
    json!({ "order": order, "redirect": redirect })
}

/// The order if it is a checkout.
fn checkout_order<'s>(
    state: &'s State,
    order_id: &str,
) -> Result<(&'s Order, &'s CheckoutTerms), Error> {
    state
        .orders
        .get(order_id)
        .and_then(|order| order.checkout.as_ref().map(|terms| (order, terms)))
        .ok_or_else(|| Error::NotFound(order_id.to_owned()))
}

/// The order if it is a checkout the end user has not finished.
fn open_checkout<'s>(
    state: &'s State,
    order_id: &str,
) -> Result<(&'s Order, &'s CheckoutTerms), Error> {
    let (order, terms) = checkout_order(state, order_id)?;
    if order.status != OrderStatus::Initiated {
        return Err(Error::Finished(order.status));
    }
    Ok((order, terms))
}

fn chosen_effect(kind: OrderKind, option: Option<&str>) -> Result<Option<Effect>, Error> {
    let Some(id) = option.filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    options::find(kind, id)
        .and_then(|option| option.effect)
        .map(Some)
        .ok_or_else(|| Error::BadInput(format!("order option {id} is not available here")))
}

/// The amount the end user chose, checked against the order's suggested range; `None` where the
/// order fixed it (or moves no money).
fn chosen_amount(
    order: &Order,
    terms: &CheckoutTerms,
    given: Option<&str>,
) -> Result<Option<String>, Error> {
    if order.kind == OrderKind::SelectAccount || terms.fixed_amount {
        return Ok(None);
    }
    let text = given.ok_or_else(|| Error::BadInput("choose an amount".into()))?;
    let amount = text
        .trim()
        .parse::<crate::money::Amount>()
        .map_err(|e| Error::BadInput(format!("amount: {e}")))?
        .value();
    let below = terms.min_amount.is_some_and(|min| amount < min);
    let above = terms.max_amount.is_some_and(|max| amount > max);
    if below || above {
        let bound = |b: Option<rust_decimal::Decimal>| b.map(api::money);
        return Err(Error::BadInput(format!(
            "the amount must be between {} and {}",
            bound(terms.min_amount).unwrap_or_else(|| "0.01".into()),
            bound(terms.max_amount).unwrap_or_else(|| "any amount".into()),
        )));
    }
    Ok(Some(api::money(amount)))
}

/// The account picked or entered: required for SelectAccount, checked when given.
fn chosen_account(
    kind: OrderKind,
    given: Option<BankDetails>,
) -> Result<Option<BankDetails>, Error> {
    match given {
        None if kind == OrderKind::SelectAccount => {
            Err(Error::BadInput("pick or enter an account".into()))
        }
        None => Ok(None),
        Some(details) => {
            let clearinghouse_ok = !details.clearinghouse.is_empty()
                && details
                    .clearinghouse
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_');
            if !clearinghouse_ok || !plausible_account_number(&details.account_number) {
                return Err(Error::BadInput("the account details are not valid".into()));
            }
            Ok(Some(details))
        }
    }
}

/// Runs the scenario the choice asks for; its notifications, in order.
fn run(
    state: &mut State,
    order_id: &str,
    effect: Option<Effect>,
    amount: Option<String>,
    account: Option<BankDetails>,
) -> Result<Vec<NotificationRecord>, ActionError> {
    let kind = state.orders.get(order_id).map(|o| o.kind);
    let mut complete = Complete {
        amount,
        ..Complete::default()
    };
    match effect {
        Some(Effect::CreditThenDebit) => scenario::credit_then_debit(state, order_id, &complete),
        Some(Effect::OutOfOrder) => {
            complete.account = account;
            complete.send_account = true;
            complete.reorder = true;
            scenario::complete(state, order_id, &complete)
        }
        _ => {
            // Trustly sends `account` for a Deposit only when enabled for the merchant (spec
            // §4.2); SelectAccount's result is the account.
            if kind == Some(OrderKind::SelectAccount) {
                complete.account = account;
            }
            scenario::complete(state, order_id, &complete)
        }
    }
}

/// When each notification goes out, as the option asks.
fn schedule(records: &[NotificationRecord], effect: Option<Effect>) -> Vec<Step> {
    let mut steps: Vec<Step> = records
        .iter()
        .map(|record| {
            let mut step = Step::now(&record.notification_id);
            if effect == Some(Effect::DelayedCredit) && record.method == "credit" {
                step.after = options::DELAYED_CREDIT_AFTER;
            }
            step
        })
        .collect();
    if effect == Some(Effect::Duplicate)
        && let Some(last) = records.last()
    {
        steps.push(Step::now(&last.notification_id));
    }
    steps
}

/// The order as the page shows it.
fn view_of(order: &Order, terms: &CheckoutTerms) -> Value {
    let money = |amount: Option<rust_decimal::Decimal>| amount.map(api::money);
    let offered: Vec<Value> = options::for_kind(order.kind)
        .iter()
        .map(|option| {
            let mut value = json!(option);
            value["available"] = json!(option.available());
            value
        })
        .collect();
    json!({
        "order_id": order.order_id,
        "kind": order.kind,
        "status": order.status,
        "open": order.status == OrderStatus::Initiated,
        "amount": money(order.amount),
        "fixed_amount": terms.fixed_amount,
        "currency": order.currency,
        "min_amount": money(terms.min_amount),
        "max_amount": money(terms.max_amount),
        "country": terms.country,
        "locale": terms.locale,
        "shopper_statement": terms.shopper_statement,
        "success_url": terms.success_url,
        "fail_url": terms.fail_url,
        "hold_notifications": order.hold_notifications,
        "options": offered,
    })
}
