//! The admin API: drive scenarios, inject faults, release held notifications, and read what the
//! simulator received and sent. Every answer is JSON; see the README for the routes with curl
//! examples. The console (`GET /admin`) is a page over these routes.

mod ledger;

use std::sync::Arc;

use hyper::{Method, StatusCode};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Fault, Sim, api, notify,
    scenario::{self, ActionError, Complete},
    state::{NotificationRecord, Order, State},
};

/// The console: HTML, CSS and JS inline, over the JSON routes below.
pub const CONSOLE_PAGE: &str = include_str!("assets/console.html");

/// Handles `/admin/<path>`.
pub async fn handle(
    sim: &Arc<Sim>,
    method: &Method,
    path: &[&str],
    body: &[u8],
) -> (StatusCode, Value) {
    match (method, path) {
        (&Method::GET, ["orders"]) => {
            let state = sim.state.lock();
            let orders: Vec<Value> = state.orders.values().map(|o| listed(&state, o)).collect();
            ok(&orders)
        }
        (&Method::GET, ["orders", id]) => order(sim, id),
        (&Method::POST, ["orders", id, "release"]) => match notify::release(sim, id) {
            Some(released) => ok(&json!({ "released": released })),
            None => not_found(&format!("no order {id}")),
        },
        (&Method::POST, ["orders", id, action]) => match parse_or_default::<Complete>(body) {
            Ok(options) => act(sim, id, action, &options).await,
            Err(error) => error,
        },
        (&Method::GET, ["notifications"]) => {
            ok(&sim.state.lock().notifications.values().collect::<Vec<_>>())
        }
        (&Method::GET, ["notifications", id]) => match sim.state.lock().notifications.get(*id) {
            Some(record) => ok(&with_curl(record)),
            None => not_found(&format!("no notification {id}")),
        },
        (&Method::POST, ["notifications", id, "resend"]) => {
            if !sim.state.lock().notifications.contains_key(*id) {
                return not_found(&format!("no notification {id}"));
            }
            notify::resend(sim, (*id).to_owned());
            (StatusCode::ACCEPTED, json!({ "resending": id }))
        }
        (&Method::GET, ["deliveries"]) => ok(&sim.state.lock().deliveries),
        (&Method::GET, ["requests"]) => ok(&sim.state.lock().requests),
        (&Method::GET, ["accounts"]) => {
            ok(&sim.state.lock().accounts_by_id.values().collect::<Vec<_>>())
        }
        (&Method::GET, ["balances"]) => ok(&balances(sim)),
        (&Method::PUT, ["balances", currency]) => set_balance(sim, currency, body),
        (&Method::GET, ["ledger"]) => ledger::list(sim),
        (&Method::POST, ["ledger"]) => ledger::add(sim, body),
        (&Method::DELETE, ["ledger", order_id]) => ledger::drop_order(sim, order_id),
        (&Method::PATCH, ["ledger", order_id]) => ledger::alter(sim, order_id, body),
        (&Method::GET, ["faults"]) => ok(&*sim.faults.lock()),
        // Simulates Trustly's UUID replay record expiring: identical replays are then new requests
        // (and a reused MessageID gets 637).
        (&Method::POST, ["uuids", "forget"]) => {
            let forgotten = std::mem::take(&mut sim.state.lock().uuids).len();
            (StatusCode::OK, json!({ "forgotten": forgotten }))
        }
        (&Method::POST, ["faults"]) => match serde_json::from_slice::<Fault>(body) {
            Ok(fault) => {
                sim.faults.lock().push(fault.clone());
                (StatusCode::CREATED, json!(fault))
            }
            Err(error) => bad_request(&format!("fault: {error}")),
        },
        (&Method::DELETE, ["faults"]) => {
            sim.faults.lock().clear();
            (StatusCode::OK, json!([]))
        }
        _ => not_found("no such admin route"),
    }
}

fn order(sim: &Sim, id: &str) -> (StatusCode, Value) {
    let state = sim.state.lock();
    let Some(order) = state.orders.get(id) else {
        return not_found(&format!("no order {id}"));
    };
    let notifications: Vec<Value> = order
        .notification_ids
        .iter()
        .filter_map(|n| state.notifications.get(n))
        .map(with_curl)
        .collect();
    let deliveries: Vec<_> = state
        .deliveries
        .iter()
        .filter(|d| d.order_id == id)
        .collect();
    let order = listed(&state, order);
    ok(&json!({ "order": order, "notifications": notifications, "deliveries": deliveries }))
}

/// An order with the actions its state allows and how many of its notifications are held (the
/// console's buttons).
fn listed(state: &State, order: &Order) -> Value {
    let held = order
        .notification_ids
        .iter()
        .filter(|id| state.notifications.get(*id).is_some_and(|n| n.held))
        .count();
    let mut value = json!(order);
    value["actions"] = json!(scenario::actions(order.kind, order.status));
    value["held"] = json!(held);
    value
}

/// A notification with the command that posts its signed body again, as Trustly's Notification
/// tool gives one (https://docs.trustly.com/api/notification-tool).
fn with_curl(record: &NotificationRecord) -> Value {
    let mut value = json!(record);
    let body = String::from_utf8_lossy(&record.body);
    value["curl"] = json!(format!(
        "curl -X POST -H 'Content-Type: application/json; charset=utf-8' --data-raw {} {}",
        shell_quote(&body),
        shell_quote(&record.url)
    ));
    value
}

/// `text` as one POSIX shell word: single-quoted, each `'` closed, escaped and reopened.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

async fn act(sim: &Arc<Sim>, id: &str, action: &str, options: &Complete) -> (StatusCode, Value) {
    let result = {
        let mut state = sim.state.lock();
        match action {
            "complete" => scenario::complete(&mut state, id, options),
            "cancel" => scenario::cancel(&mut state, id),
            "fail" => scenario::fail(&mut state, id, options),
            "credit-then-debit" => scenario::credit_then_debit(&mut state, id, options),
            _ => return not_found(&format!("no action {action}")),
        }
    };
    match result {
        Ok(notifications) => {
            let sent: Vec<Value> = notifications
                .iter()
                .map(|n| json!({ "notificationid": n.notification_id, "method": n.method }))
                .collect();
            notify::deliver(sim, notifications).await;
            let order = sim
                .state
                .lock()
                .orders
                .get(id)
                .map(|o| json!(o))
                .unwrap_or(Value::Null);
            (
                StatusCode::OK,
                json!({ "order": order, "notifications": sent }),
            )
        }
        Err(error @ ActionError::NotFound(_)) => not_found(&error.to_string()),
        Err(error @ ActionError::WrongState { .. }) => {
            (StatusCode::CONFLICT, json!({ "error": error.to_string() }))
        }
        Err(error @ ActionError::BadInput(_)) => bad_request(&error.to_string()),
    }
}

fn balances(sim: &Sim) -> Value {
    let state = sim.state.lock();
    Value::Object(
        state
            .balances
            .iter()
            .map(|(currency, balance)| (currency.clone(), json!(api::money(*balance))))
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBalance {
    balance: String,
}

fn set_balance(sim: &Sim, currency: &str, body: &[u8]) -> (StatusCode, Value) {
    if currency.parse::<crate::money::Currency>().is_err() {
        return bad_request("currency must be an ISO 4217 code");
    }
    let balance =
        match serde_json::from_slice::<SetBalance>(body).map(|b| b.balance.parse::<Decimal>()) {
            Ok(Ok(balance)) if balance >= Decimal::ZERO && balance.scale() <= 2 => balance,
            _ => {
                return bad_request(
                    r#"body must be {"balance": "<decimal >= 0 with at most 2 decimals>"}"#,
                );
            }
        };
    sim.state
        .lock()
        .balances
        .insert(currency.to_owned(), balance);
    ok(&balances(sim))
}

/// Parses a JSON body, treating an empty body (e.g. a bare `curl -X POST`) as the defaults.
fn parse_or_default<T: Default + serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, (StatusCode, Value)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| bad_request(&e.to_string()))
}

fn ok<T: serde::Serialize + ?Sized>(value: &T) -> (StatusCode, Value) {
    (StatusCode::OK, json!(value))
}

fn not_found(message: &str) -> (StatusCode, Value) {
    (StatusCode::NOT_FOUND, json!({ "error": message }))
}

fn bad_request(message: &str) -> (StatusCode, Value) {
    (StatusCode::BAD_REQUEST, json!({ "error": message }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_survives_quotes_and_backslashes() {
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote(r#"{"a":"it's \n"}"#), r#"'{"a":"it'\''s \n"}'"#);
    }
}
