//! The JSON-RPC endpoint `/api/1`: parse, verify the merchant's signature (636), check
//! credentials (616), answer identical UUID replays from the record (688 for a changed request),
//! refuse reused MessageIDs (637), validate, act, and answer signed with the simulator's key.

use std::sync::Arc;

use bytes::Bytes;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::{
    Sim,
    clock::Timestamp,
    state::{
        NotificationRecord, Order, OrderKind, OrderStatus, ReplayRecord, RequestRecord, State,
    },
    validate::*,
};
use crate::trustly::{canonical, wire};

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
    let request = match wire::parse_request(body) {
        Ok(request) => request,
        Err(_) => {
            // Wrong key casing or not JSON-RPC at all: 623, echoing what ids we can find.
            let (method, uuid) = lenient_ids(body);
            record.method.clone_from(&method);
            record.uuid.clone_from(&uuid);
            let response = sign_error(
                sim,
                method.as_deref(),
                uuid.as_deref(),
                INVALID_PARAMETERS,
                record,
            )
            .await;
            return Answer::Body(response);
        }
    };
    record.method = Some(request.method.clone());
    record.uuid = Some(request.uuid.clone());
    let mut logged = request.data.clone();
    if let Some(password) = logged.get_mut("Password") {
        *password = Value::String("[redacted]".into());
    }
    record.data = Some(logged);
    let (method, uuid) = (request.method.as_str(), request.uuid.as_str());

    let merchant = Arc::clone(&sim.merchant);
    let part = request.clone();
    record.signature_valid = sim
        .crypto
        .run(move || part.verify(merchant.as_ref()))
        .await
        .unwrap_or(false);
    if !record.signature_valid {
        return Answer::Body(
            sign_error(sim, Some(method), Some(uuid), BAD_SIGNATURE, record).await,
        );
    }
    let Value::Object(data) = &request.data else {
        return Answer::Body(
            sign_error(sim, Some(method), Some(uuid), INVALID_PARAMETERS, record).await,
        );
    };
    let credentials_ok = data.get("Username").and_then(Value::as_str)
        == Some(sim.config.username.as_str())
        && data.get("Password").and_then(Value::as_str)
            == Some(sim.config.password.expose().as_str());
    if !credentials_ok {
        return Answer::Body(
            sign_error(sim, Some(method), Some(uuid), INVALID_CREDENTIALS, record).await,
        );
    }
    if uuid::Uuid::parse_str(uuid)
        .map(|u| u.hyphenated().to_string())
        .as_deref()
        != Ok(uuid)
    {
        return Answer::Body(
            sign_error(sim, Some(method), Some(uuid), INVALID_PARAMETERS, record).await,
        );
    }

    // UUID replay (spec §8): reserve the UUID and act in one critical section, so two identical
    // requests can never both act.
    let step = {
        let mut state = sim.state.lock();
        match state.uuids.get(uuid) {
            Some(first) if first.method == method && first.data == request.data => {
                Step::Replay(first.response.clone())
            }
            Some(_) => Step::Reused,
            None => {
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
                Step::Acted(dispatch(context, method, &Fields::new(data)), notifications)
            }
        }
    };
    let (outcome, notifications) = match step {
        Step::Replay(response) => {
            record.replayed = true;
            record.outcome = "replay".into();
            // An empty record means the first request is still being processed.
            return if response.is_empty() {
                Answer::Busy
            } else {
                Answer::Body(response)
            };
        }
        Step::Reused => {
            return Answer::Body(
                sign_error(sim, Some(method), Some(uuid), DUPLICATE_UUID, record).await,
            );
        }
        Step::Acted(outcome, notifications) => (outcome, notifications),
    };

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

/// What the UUID check decided.
enum Step {
    /// An identical request was answered before: the first answer, unchanged.
    Replay(Bytes),
    /// The UUID was used for a different request: 688.
    Reused,
    /// A new UUID: the method ran.
    Acted(Result<Value, Rejection>, Vec<NotificationRecord>),
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
    match method {
        "Deposit" => checkout_order(&mut cx, data, OrderKind::Deposit),
        "Withdraw" => checkout_order(&mut cx, data, OrderKind::Withdraw),
        "SelectAccount" => checkout_order(&mut cx, data, OrderKind::SelectAccount),
        "Refund" => refund(&mut cx, data),
        "ApproveWithdrawal" => decide_withdrawal(&mut cx, data, true),
        "DenyWithdrawal" => decide_withdrawal(&mut cx, data, false),
        "RegisterAccount" | "CreateAccount" => register_account(&mut cx, data),
        "AccountPayout" => payout(&mut cx, data, OrderKind::AccountPayout),
        "RegisterAccountPayout" => payout(&mut cx, data, OrderKind::RegisterAccountPayout),
        "Charge" => charge(&mut cx, data),
        "CancelCharge" => cancel_charge(&mut cx, data),
        "GetWithdrawals" => {
            let key = format!("GetWithdrawals:{}", data.order_id().map_err(|_| NOT_FOUND)?);
            cx.state.poll(&key, cx.poll_window)?;
            get_withdrawals(&mut cx, data)
        }
        "Balance" => {
            cx.state.poll("Balance", cx.poll_window)?;
            Ok(balance(cx.state))
        }
        "AccountLedger" => account_ledger(&mut cx, data),
        "ViewAutomaticSettlementDetailsCSV" => settlement_report(&mut cx, data),
        "MerchantSettlement" => merchant_settlement(&mut cx, data),
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

/// Deposit, Withdraw and SelectAccount: validate, create the order, return its checkout URL.
fn checkout_order(
    cx: &mut Context<'_>,
    data: &Fields<'_>,
    kind: OrderKind,
) -> Result<Value, Rejection> {
    let notification_url = data.notification_url()?;
    let end_user_id = data.required_or("EndUserID", ENDUSERID_IS_NULL)?;
    let message_id = data.required_or("MessageID", MESSAGEID_IS_NULL)?;
    let attributes = data.attributes(true)?;
    attributes.checkout()?;
    let (currency, amount) = match kind {
        OrderKind::Deposit => {
            attributes.required("Email")?;
            attributes.required("ShopperStatement")?;
            attributes.optional_amount("SuggestedMinAmount")?;
            attributes.optional_amount("SuggestedMaxAmount")?;
            (
                Some(attributes.currency("Currency")?),
                attributes.optional_amount("Amount")?,
            )
        }
        OrderKind::Withdraw => {
            attributes.required("ShopperStatement")?;
            attributes.optional_amount("SuggestedMinAmount")?;
            attributes.optional_amount("SuggestedMaxAmount")?;
            (
                Some(data.currency("Currency")?),
                attributes.optional_amount("SuggestedAmount")?,
            )
        }
        _ => (None, None),
    };
    let request_kyc = attributes.flag("RequestKYC")?;
    let request_mandate = attributes.flag("RequestDirectDebitMandate")?;
    // A direct-debit mandate needs the end user's email (spec §5.7).
    attributes.email(request_mandate)?;
    let locale = attributes.required("Locale")?;
    let external_reference = attributes.optional("ExternalReference")?;
    claim_message_id(cx.state, &message_id)?;

    let order = cx.state.new_order(kind);
    order.notification_url = Some(notification_url);
    order.end_user_id = Some(end_user_id);
    order.message_id = Some(message_id);
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

fn refund(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
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
        return Err(INVALID_CURRENCY);
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

fn decide_withdrawal(
    cx: &mut Context<'_>,
    data: &Fields<'_>,
    approve: bool,
) -> Result<Value, Rejection> {
    let order_id = data.order_id().map_err(|_| NOT_FOUND)?;
    let order = cx
        .state
        .orders
        .get(&order_id)
        .filter(|o| o.kind == OrderKind::Withdraw)
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

/// The bank details of RegisterAccount / RegisterAccountPayout, registered.
fn bank_account(
    cx: &mut Context<'_>,
    data: &Fields<'_>,
) -> Result<super::state::Account, Rejection> {
    let clearinghouse = data.required("ClearingHouse")?;
    let bank_number = data.present("BankNumber")?;
    let account_number = data.required("AccountNumber")?;
    data.present("Firstname")?;
    data.present("Lastname")?;
    let digits = account_number
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .count();
    if digits < 4
        || !account_number
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
    {
        return Err(INVALID_BANK_ACCOUNT_NUMBER);
    }
    Ok(cx
        .state
        .register_account(&clearinghouse, &bank_number, &account_number))
}

fn register_account(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    data.attributes(false)?;
    let account = bank_account(cx, data)?;
    Ok(json!({
        "accountid": account.account_id,
        "clearinghouse": account.clearinghouse,
        "bank": account.bank,
        "descriptor": account.descriptor,
    }))
}

/// AccountPayout and RegisterAccountPayout: funds leave the balance when the payout is queued.
fn payout(cx: &mut Context<'_>, data: &Fields<'_>, kind: OrderKind) -> Result<Value, Rejection> {
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
        bank_account(cx, data)?.account_id
    };
    cx.state.ensure_funds(&p.currency, p.amount)?;
    claim_message_id(cx.state, &p.message_id)?;
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
struct Payment<'a> {
    notification_url: String,
    end_user_id: String,
    message_id: String,
    amount: Decimal,
    currency: String,
    attributes: Fields<'a>,
}

impl<'a> Payment<'a> {
    fn read(data: &Fields<'a>) -> Result<Self, Rejection> {
        let payment = Self {
            notification_url: data.notification_url()?,
            end_user_id: data.required_or("EndUserID", ENDUSERID_IS_NULL)?,
            message_id: data.required_or("MessageID", MESSAGEID_IS_NULL)?,
            amount: data.amount("Amount")?,
            currency: data.currency("Currency")?,
            attributes: data.attributes(true)?,
        };
        payment.attributes.required("ShopperStatement")?;
        Ok(payment)
    }

    /// The new order, queued to pay `account_id`.
    fn queue<'s>(
        &self,
        state: &'s mut State,
        kind: OrderKind,
        account_id: String,
    ) -> &'s mut Order {
        let order = state.new_order(kind);
        order.notification_url = Some(self.notification_url.clone());
        order.end_user_id = Some(self.end_user_id.clone());
        order.message_id = Some(self.message_id.clone());
        order.amount = Some(self.amount);
        order.currency = Some(self.currency.clone());
        order.account_id = Some(account_id);
        order.status = OrderStatus::Queued;
        order
    }
}

fn charge(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    let account_id = data.required("AccountID")?;
    let p = Payment::read(data)?;
    let attributes = &p.attributes;
    attributes.email(true)?;
    let payment_date = match attributes.optional("PaymentDate")? {
        Some(_) => Some(attributes.date("PaymentDate")?),
        None => None,
    };
    claim_message_id(cx.state, &p.message_id)?;
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

fn cancel_charge(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    let order_id = data.order_id()?;
    let order = cx
        .state
        .orders
        .get(&order_id)
        .filter(|o| o.kind == OrderKind::Charge)
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

fn get_withdrawals(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    let order_id = data.order_id().map_err(|_| NOT_FOUND)?;
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

fn balance(state: &State) -> Value {
    Value::Array(
        state
            .balances
            .iter()
            .map(|(currency, balance)| json!({ "currency": currency, "balance": money(*balance) }))
            .collect(),
    )
}

fn account_ledger(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    let from = data.date("FromDate")?;
    let to = data.date("ToDate")?;
    let currency = data.optional_currency("Currency")?;
    Ok(Value::Array(
        cx.state
            .ledger
            .iter()
            .filter(|row| row.date >= from && row.date <= to)
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

/// The v1.2 settlement CSV (spec §5.16) for one day's ledger rows.
fn settlement_report(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    let date = data.date("SettlementDate")?;
    let currency = data.optional_currency("Currency")?;
    let attributes = data.attributes(true)?;
    if attributes.required("APIVersion")? != "1.2" {
        return Err(INVALID_PARAMETERS);
    }
    let mut csv = String::from(
        "datestamp,accountname,currency,amount,total,orderid,ordertype,messageid,username,fxpaymentamount,fxpaymentcurrency,settlementbankwithdrawalid,extraref\n",
    );
    let mut totals: std::collections::BTreeMap<&str, Decimal> = Default::default();
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

fn merchant_settlement(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
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

/// An amount with two decimals, as Trustly prints balances and amounts.
pub fn money(amount: Decimal) -> String {
    format!("{amount:.2}")
}

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
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
