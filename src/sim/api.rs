//! The JSON-RPC endpoint `/api/1`: parse, verify the merchant's signature (636), check
//! credentials (616), answer identical UUID replays from the record (688 for a changed request),
//! refuse reused MessageIDs (637), validate, act, and answer signed with the simulator's key.
//! The methods live by family in the submodules; [`dispatch`] routes to them.

mod accounts;
mod charges;
mod checkout;
mod payouts;
mod reports;

use std::sync::Arc;

use bytes::Bytes;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::{
    Sim, SimConfig,
    clock::Timestamp,
    state::{NotificationRecord, OrderKind, ReplayRecord, RequestRecord, State},
    validate::*,
};
use crate::trustly::{
    canonical,
    wire::{self, SignedPart},
};

/// The answer to one API request.
pub enum Answer {
    /// A signed JSON-RPC body (success or error).
    Body(Bytes),
    /// The same UUID is being processed right now; the caller should replay later.
    Busy,
}

/// Handles one request body end to end. `fault` is only recorded in the request log.
pub async fn handle(sim: &Arc<Sim>, body: &[u8], fault: Option<String>) -> Answer {
    let mut record = RequestRecord {
        at: Timestamp::now().trustly(),
        method: None,
        uuid: None,
        signature_valid: false,
        outcome: String::new(),
        error_code: None,
        replayed: false,
        fault,
        data: None,
    };
    let answer = process(sim, body, &mut record).await;
    sim.state.lock().log_request(record);
    answer
}

async fn process(sim: &Arc<Sim>, body: &[u8], record: &mut RequestRecord) -> Answer {
    let Ok(request) = wire::parse_request(body) else {
        return Answer::Body(unparsable(sim, body, record).await);
    };
    note_request(record, &request);
    let (method, uuid) = (request.method.as_str(), request.uuid.as_str());
    let step = admit(sim, &request, record)
        .await
        .and_then(|data| reserve_and_act(sim, &request, data));
    match step {
        Ok(Step::Replay(response)) => replay(response, record),
        Ok(Step::Acted(outcome, notifications)) => {
            answer_acted(sim, method, uuid, outcome, notifications, record).await
        }
        Err(rejection) => {
            Answer::Body(sign_error(sim, Some(method), Some(uuid), rejection, record).await)
        }
    }
}

/// Wrong key casing or not JSON-RPC at all: 623, echoing what ids we can find.
async fn unparsable(sim: &Arc<Sim>, body: &[u8], record: &mut RequestRecord) -> Bytes {
    let (method, uuid) = lenient_ids(body);
    record.method.clone_from(&method);
    record.uuid.clone_from(&uuid);
    sign_error(
        sim,
        method.as_deref(),
        uuid.as_deref(),
        INVALID_PARAMETERS,
        record,
    )
    .await
}

/// Logs the request's ids and `Data`, with the Password redacted.
fn note_request(record: &mut RequestRecord, request: &SignedPart) {
    record.method = Some(request.method.clone());
    record.uuid = Some(request.uuid.clone());
    let mut logged = request.data.clone();
    if let Some(password) = logged.get_mut("Password") {
        *password = Value::String("[redacted]".into());
    }
    record.data = Some(logged);
}

/// The checks before the UUID is looked up, in Trustly's order: the merchant's signature (636),
/// a `Data` object (623), the credentials (616), and a UUID in canonical form (623).
async fn admit<'r>(
    sim: &Arc<Sim>,
    request: &'r SignedPart,
    record: &mut RequestRecord,
) -> Result<&'r Map<String, Value>, Rejection> {
    record.signature_valid = sim.verify_merchant(request.clone()).await;
    if !record.signature_valid {
        return Err(UNABLE_TO_VERIFY_RSA_SIGNATURE);
    }
    let Value::Object(data) = &request.data else {
        return Err(INVALID_PARAMETERS);
    };
    if !credentials_match(&sim.config, data) {
        return Err(INVALID_CREDENTIALS);
    }
    if !is_canonical_uuid(&request.uuid) {
        return Err(INVALID_PARAMETERS);
    }
    Ok(data)
}

fn credentials_match(config: &SimConfig, data: &Map<String, Value>) -> bool {
    data.get("Username").and_then(Value::as_str) == Some(config.username.as_str())
        && data.get("Password").and_then(Value::as_str) == Some(config.password.expose().as_str())
}

/// Lower-case and hyphenated, as Trustly requires.
fn is_canonical_uuid(uuid: &str) -> bool {
    uuid::Uuid::parse_str(uuid)
        .map(|u| u.hyphenated().to_string())
        .as_deref()
        == Ok(uuid)
}

/// What the UUID check decided.
enum Step {
    /// An identical request was answered before: the first answer, unchanged.
    Replay(Bytes),
    /// A new UUID: the method ran.
    Acted(Result<Value, Rejection>, Vec<NotificationRecord>),
}

/// UUID replay (spec §8): reserves the UUID and acts in one critical section, so two identical
/// requests can never both act. A UUID used before for a different request is 688.
fn reserve_and_act(
    sim: &Sim,
    request: &SignedPart,
    data: &Map<String, Value>,
) -> Result<Step, Rejection> {
    let (method, uuid) = (request.method.as_str(), request.uuid.as_str());
    let mut state = sim.state.lock();
    match state.uuids.get(uuid) {
        Some(first) if first.method == method && first.data == request.data => {
            return Ok(Step::Replay(first.response.clone()));
        }
        Some(_) => return Err(DUPLICATE_UUID),
        None => {}
    }
    state.uuids.insert(
        uuid.to_owned(),
        ReplayRecord {
            method: method.to_owned(),
            data: request.data.clone(),
            response: Bytes::new(),
        },
    );
    let mut notifications = Vec::new();
    let context = Context {
        state: &mut state,
        base_url: &sim.base_url,
        poll_window: sim.config.poll_window,
        notifications: &mut notifications,
    };
    let outcome = dispatch(context, method, &Fields::new(data));
    Ok(Step::Acted(outcome, notifications))
}

/// Answers an identical replay with the first answer; an empty record means the first request
/// is still being processed.
fn replay(response: Bytes, record: &mut RequestRecord) -> Answer {
    record.replayed = true;
    record.outcome = "replay".into();
    if response.is_empty() {
        Answer::Busy
    } else {
        Answer::Body(response)
    }
}

/// Signs what the method answered, keeps it for replays of the UUID, and only then delivers the
/// notifications the method produced.
async fn answer_acted(
    sim: &Arc<Sim>,
    method: &str,
    uuid: &str,
    outcome: Result<Value, Rejection>,
    notifications: Vec<NotificationRecord>,
    record: &mut RequestRecord,
) -> Answer {
    let response = match outcome {
        Ok(result) => {
            record.outcome = "OK".into();
            sign_success(sim, method, uuid, result).await
        }
        Err(rejection) => sign_error(sim, Some(method), Some(uuid), rejection, record).await,
    };
    if let Some(first) = sim.state.lock().uuids.get_mut(uuid) {
        first.response = response.clone();
    }
    super::notify::deliver(sim, notifications).await;
    Answer::Body(response)
}

/// What a method handler may touch.
pub struct Context<'a> {
    pub state: &'a mut State,
    pub base_url: &'a str,
    /// Balance, and GetWithdrawals per order, at most once per this window (zero: no limit).
    pub poll_window: std::time::Duration,
    /// Notifications to deliver, in order, once the answer is signed.
    pub notifications: &'a mut Vec<NotificationRecord>,
}

fn dispatch(mut cx: Context<'_>, method: &str, data: &Fields<'_>) -> Result<Value, Rejection> {
    let cx = &mut cx;
    match method {
        "Deposit" => checkout::open(cx, data, OrderKind::Deposit),
        "Withdraw" => checkout::open(cx, data, OrderKind::Withdraw),
        "SelectAccount" => checkout::open(cx, data, OrderKind::SelectAccount),
        "Refund" => payouts::refund(cx, data),
        "ApproveWithdrawal" => payouts::decide_withdrawal(cx, data, true),
        "DenyWithdrawal" => payouts::decide_withdrawal(cx, data, false),
        "RegisterAccount" | "CreateAccount" => accounts::register(cx, data),
        "AccountPayout" => payouts::payout(cx, data, OrderKind::AccountPayout),
        "RegisterAccountPayout" => payouts::payout(cx, data, OrderKind::RegisterAccountPayout),
        "Charge" => charges::charge(cx, data),
        "CancelCharge" => charges::cancel(cx, data),
        "GetWithdrawals" => reports::get_withdrawals(cx, data),
        "Balance" => reports::balance(cx),
        "AccountLedger" => reports::account_ledger(cx, data),
        "ViewAutomaticSettlementDetailsCSV" => reports::settlement_csv(cx, data),
        "MerchantSettlement" => reports::merchant_settlement(cx, data),
        _ => Err(INVALID_FUNCTION),
    }
}

/// Claims a MessageID for a new order (637 when reused).
fn claim_message_id(state: &mut State, message_id: &str) -> Result<(), Rejection> {
    if state.message_ids.insert(message_id.to_owned()) {
        Ok(())
    } else {
        Err(DUPLICATE_MESSAGE_ID)
    }
}

/// An amount with two decimals, as Trustly prints balances and amounts.
pub fn money(amount: Decimal) -> String {
    format!("{amount:.2}")
}

/// The method and UUID of a request that failed strict parsing, found case-insensitively.
fn lenient_ids(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let method = root
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let uuid = root
        .get("params")
        .and_then(Value::as_object)
        .and_then(|params| params.iter().find(|(k, _)| k.eq_ignore_ascii_case("uuid")))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_owned);
    (method, uuid)
}

async fn sign_success(sim: &Arc<Sim>, method: &str, uuid: &str, data: Value) -> Bytes {
    let signature = sim.sign(canonical::plaintext(method, uuid, &data)).await;
    encode(&wire::success_response(method, uuid, &signature, data))
}

/// A signed error. Protocol-level errors have null method/uuid, signed as "" (spec §2.3).
async fn sign_error(
    sim: &Arc<Sim>,
    method: Option<&str>,
    uuid: Option<&str>,
    rejection: Rejection,
    record: &mut RequestRecord,
) -> Bytes {
    record.outcome = rejection.name.to_owned();
    record.error_code = Some(rejection.code);
    let data = wire::error_data(rejection.code, rejection.name);
    let signature = sim
        .sign(canonical::plaintext(
            method.unwrap_or(""),
            uuid.unwrap_or(""),
            &data,
        ))
        .await;
    let mut body = wire::error_response(method.unwrap_or(""), uuid.unwrap_or(""), &signature, data);
    if method.is_none() {
        body["error"]["error"]["method"] = Value::Null;
    }
    if uuid.is_none() {
        body["error"]["error"]["uuid"] = Value::Null;
    }
    encode(&body)
}

pub fn encode(value: &Value) -> Bytes {
    // invariant: a serde_json::Value always encodes.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}
