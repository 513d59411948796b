//! The simulator's memory: orders, accounts, balances, ledger, UUID replay records, notifications
//! and the logs the admin API reads. Plain data under one mutex; never held across `.await`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use bytes::Bytes;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    clock::Timestamp,
    validate::{INSUFFICIENT_FUNDS, Rejection, TOO_MANY_REQUESTS},
};

/// Entries kept in each admin log (requests, delivery attempts) before the oldest are dropped:
/// enough for any test or a long manual session, bounded so a soak test cannot exhaust memory.
pub const MAX_LOG_ENTRIES: usize = 10_000;

/// What created an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum OrderKind {
    Deposit,
    Withdraw,
    SelectAccount,
    AccountPayout,
    RegisterAccountPayout,
    Charge,
    Refund,
    MerchantSettlement,
}

impl OrderKind {
    pub fn is_payout(self) -> bool {
        matches!(
            self,
            OrderKind::AccountPayout | OrderKind::RegisterAccountPayout
        )
    }
}

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum OrderStatus {
    /// Created; the end user has not finished the checkout yet.
    Initiated,
    /// Waiting for the merchant's answer to a `kyc` or Withdraw `debit` notification.
    AwaitingMerchant,
    /// Withdraw debited by the merchant; waiting for Approve/DenyWithdrawal.
    AwaitingApproval,
    /// A payout or charge accepted and queued.
    Queued,
    /// Deposit or Charge funds credited.
    Credited,
    /// Deposit credited and then debited (test case D1).
    Debited,
    /// Payout, refund, withdrawal or settlement executed; account selected.
    Executed,
    Cancelled,
    Failed,
}

#[derive(Clone, Debug, Serialize)]
pub struct Order {
    pub order_id: String,
    pub kind: OrderKind,
    pub message_id: Option<String>,
    pub end_user_id: Option<String>,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub notification_url: Option<String>,
    pub account_id: Option<String>,
    pub status: OrderStatus,
    /// Withdrawal transfer state for GetWithdrawals (payout kinds and Withdraw only).
    pub transfer_state: Option<&'static str>,
    /// Sum of refunds drawn on this Deposit/Charge.
    pub refunded: Decimal,
    pub parent_order_id: Option<String>,
    pub request_kyc: bool,
    pub request_mandate: bool,
    pub payment_date: Option<String>,
    pub external_reference: Option<String>,
    pub created: String,
    pub modified: String,
    pub notification_ids: Vec<String>,
}

/// A registered bank account. The simulator is Trustly, so it may keep the full details; they are
/// never echoed (only the masked descriptor is).
#[derive(Clone, Debug, Serialize)]
pub struct Account {
    pub account_id: String,
    pub clearinghouse: String,
    pub bank: String,
    pub descriptor: String,
    pub last_digits: String,
    pub mandate: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LedgerRow {
    pub userid: String,
    pub datestamp: String,
    pub date: String,
    pub orderid: String,
    pub accountname: &'static str,
    pub messageid: String,
    pub transactiontype: &'static str,
    pub currency: String,
    pub amount: Decimal,
}

/// One JSON-RPC request as the simulator saw it.
#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    pub at: String,
    pub method: Option<String>,
    pub uuid: Option<String>,
    pub signature_valid: bool,
    /// `OK`, or the error name answered.
    pub outcome: String,
    pub error_code: Option<i64>,
    /// Answered from the UUID replay record, without acting.
    pub replayed: bool,
    /// The fault injected into this exchange, if any.
    pub fault: Option<String>,
    /// The request's `Data` as received, with the Password redacted (what the merchant sent).
    pub data: Option<Value>,
}

/// A notification the simulator has to deliver.
#[derive(Clone, Debug, Serialize)]
pub struct NotificationRecord {
    pub notification_id: String,
    pub uuid: String,
    pub method: String,
    pub order_id: String,
    pub url: String,
    pub data: Value,
    /// The exact signed body; every attempt resends these bytes.
    #[serde(skip)]
    pub body: Bytes,
    /// The status of the first valid signed answer (`OK`, `FAILED`, `CONTINUE`, `FINISH`).
    pub answered_status: Option<String>,
    pub attempts: u32,
    pub gave_up: bool,
}

/// One delivery attempt of a notification.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryAttempt {
    pub at: String,
    pub notification_id: String,
    pub method: String,
    pub order_id: String,
    pub attempt: u32,
    pub http_status: Option<u16>,
    /// `acknowledged`, `transport_error`, `timeout`, `bad_signature`, `wrong_uuid`, ...
    pub outcome: String,
    pub status: Option<String>,
    /// The `limit` a `kyc` answer gave with CONTINUE (Trustly's 2024 schema), as sent.
    pub limit: Option<String>,
}

/// The answer given the first time a UUID was used, and what it answered.
pub struct ReplayRecord {
    pub method: String,
    pub data: Value,
    pub response: Bytes,
}

/// The simulator's entire state.
pub struct State {
    next_order_id: u64,
    next_account_id: u64,
    next_notification_id: u64,
    pub orders: BTreeMap<String, Order>,
    pub message_ids: HashSet<String>,
    pub uuids: HashMap<String, ReplayRecord>,
    accounts: HashMap<(String, String, String), String>,
    pub accounts_by_id: BTreeMap<String, Account>,
    pub balances: BTreeMap<String, Decimal>,
    pub ledger: Vec<LedgerRow>,
    pub notifications: BTreeMap<String, NotificationRecord>,
    pub requests: VecDeque<RequestRecord>,
    pub deliveries: VecDeque<DeliveryAttempt>,
    /// When each rate-limited call (`Balance`, `GetWithdrawals:<order>`) was last answered.
    polls: HashMap<String, std::time::Instant>,
}

impl State {
    pub fn new(initial_balances: &[(String, Decimal)]) -> Self {
        // Ten-digit ids like Trustly's, started at random so two runs never share ids.
        let base = 1_000_000_000 + u64::from(rand::random::<u32>() % 1_000_000_000);
        Self {
            next_order_id: base,
            next_account_id: base + 1_000_000_000,
            next_notification_id: base + 2_000_000_000,
            orders: BTreeMap::new(),
            message_ids: HashSet::new(),
            uuids: HashMap::new(),
            accounts: HashMap::new(),
            accounts_by_id: BTreeMap::new(),
            balances: initial_balances.iter().cloned().collect(),
            ledger: Vec::new(),
            notifications: BTreeMap::new(),
            requests: VecDeque::new(),
            deliveries: VecDeque::new(),
            polls: HashMap::new(),
        }
    }

    /// Trustly's polling limit (spec §5.13, §5.14): `key` may be answered once per `window`; a
    /// call inside it is refused with [`TOO_MANY_REQUESTS`]. A zero window is no limit.
    pub fn poll(&mut self, key: &str, window: std::time::Duration) -> Result<(), Rejection> {
        if window.is_zero() {
            return Ok(());
        }
        let now = std::time::Instant::now();
        // Entries older than the window no longer limit anything: drop them so per-order keys
        // cannot pile up.
        self.polls.retain(|_, at| now.duration_since(*at) < window);
        if self.polls.contains_key(key) {
            return Err(TOO_MANY_REQUESTS);
        }
        self.polls.insert(key.to_owned(), now);
        Ok(())
    }

    pub fn new_order(&mut self, kind: OrderKind) -> &mut Order {
        self.next_order_id += 1;
        let order_id = self.next_order_id.to_string();
        let now = Timestamp::now().trustly();
        self.orders.entry(order_id.clone()).or_insert(Order {
            order_id,
            kind,
            message_id: None,
            end_user_id: None,
            amount: None,
            currency: None,
            notification_url: None,
            account_id: None,
            status: OrderStatus::Initiated,
            transfer_state: None,
            refunded: Decimal::ZERO,
            parent_order_id: None,
            request_kyc: false,
            request_mandate: false,
            payment_date: None,
            external_reference: None,
            created: now.clone(),
            modified: now,
            notification_ids: Vec::new(),
        })
    }

    /// Registers bank details; the same details always give the same account.
    pub fn register_account(
        &mut self,
        clearinghouse: &str,
        bank_number: &str,
        account_number: &str,
    ) -> Account {
        let key = (
            clearinghouse.to_owned(),
            bank_number.to_owned(),
            account_number.to_owned(),
        );
        if let Some(existing) = self
            .accounts
            .get(&key)
            .and_then(|id| self.accounts_by_id.get(id))
        {
            return existing.clone();
        }
        self.next_account_id += 1;
        let account_id = self.next_account_id.to_string();
        let digits: String = account_number
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        // Trustly's descriptor is "*" plus the last six digits ("*865391", spec vectors).
        let last_digits: String = digits
            .chars()
            .skip(digits.chars().count().saturating_sub(6))
            .collect();
        let account = Account {
            account_id: account_id.clone(),
            clearinghouse: clearinghouse.to_owned(),
            bank: format!("Simulated Bank ({clearinghouse})"),
            descriptor: format!("*{last_digits}"),
            last_digits,
            mandate: false,
        };
        self.accounts.insert(key, account_id.clone());
        self.accounts_by_id.insert(account_id, account.clone());
        account
    }

    /// Adds to the merchant balance and writes the ledger row.
    pub fn credit_balance(&mut self, order_id: &str, amount: Decimal, transaction: &'static str) {
        self.move_balance(order_id, amount, transaction);
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
            transactiontype: transaction,
            currency: currency.to_owned(),
            amount: delta,
        });
    }

    pub fn set_status(
        &mut self,
        order_id: &str,
        status: OrderStatus,
        transfer_state: Option<&'static str>,
    ) {
        if let Some(order) = self.orders.get_mut(order_id) {
            order.status = status;
            if transfer_state.is_some() {
                order.transfer_state = transfer_state;
            }
            order.modified = Timestamp::now().trustly();
        }
    }

    /// Creates a notification for `order_id` (not yet signed: `body` is filled by the caller).
    /// Returns `None` for orders without a NotificationURL.
    pub fn new_notification(
        &mut self,
        order_id: &str,
        method: &str,
        mut extra: serde_json::Map<String, Value>,
    ) -> Option<NotificationRecord> {
        let order = self.orders.get(order_id)?;
        let url = order.notification_url.clone()?;
        self.next_notification_id += 1;
        let notification_id = self.next_notification_id.to_string();
        let mut data = serde_json::Map::new();
        data.insert("orderid".into(), json!(order_id));
        data.insert(
            "messageid".into(),
            json!(order.message_id.clone().unwrap_or_default()),
        );
        data.insert("notificationid".into(), json!(notification_id));
        if method != "account" && method != "kyc" {
            data.insert(
                "enduserid".into(),
                json!(order.end_user_id.clone().unwrap_or_default()),
            );
            data.insert("timestamp".into(), json!(Timestamp::now().trustly()));
        }
        if matches!(
            method,
            "pending" | "credit" | "debit" | "payoutconfirmation" | "payoutfailed"
        ) {
            data.insert(
                "amount".into(),
                json!(order.amount.map(|a| format!("{a:.2}")).unwrap_or_default()),
            );
            data.insert(
                "currency".into(),
                json!(order.currency.clone().unwrap_or_default()),
            );
        }
        data.entry("attributes").or_insert_with(|| json!({}));
        data.append(&mut extra);
        let record = NotificationRecord {
            notification_id: notification_id.clone(),
            uuid: uuid::Uuid::new_v4().to_string(),
            method: method.to_owned(),
            order_id: order_id.to_owned(),
            url,
            data: Value::Object(data),
            body: Bytes::new(),
            answered_status: None,
            attempts: 0,
            gave_up: false,
        };
        if let Some(order) = self.orders.get_mut(order_id) {
            order.notification_ids.push(notification_id);
        }
        Some(record)
    }

    pub fn log_request(&mut self, record: RequestRecord) {
        push_bounded(&mut self.requests, record);
    }

    pub fn log_delivery(&mut self, attempt: DeliveryAttempt) {
        push_bounded(&mut self.deliveries, attempt);
    }
}

fn push_bounded<T>(log: &mut VecDeque<T>, entry: T) {
    if log.len() == MAX_LOG_ENTRIES {
        log.pop_front();
    }
    log.push_back(entry);
}
