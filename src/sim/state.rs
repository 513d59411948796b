//! The simulator's memory: orders, accounts, balances, ledger, UUID replay records, notifications
//! and the logs the admin API reads. Plain data under one mutex; never held across `.await`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use bytes::Bytes;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    clock::Timestamp,
    validate::{Rejection, TOO_MANY_REQUESTS},
};
use crate::trustly::methods::Opening;

mod balance;
mod logs;

pub use balance::LedgerRow;
pub use logs::{DeliveryAttempt, MAX_LOG_ENTRIES, MAX_LOGGED_ANSWER_CHARS, RequestRecord};

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
    /// What the end user's checkout shows and allows (Deposit, Withdraw, SelectAccount).
    pub checkout: Option<CheckoutTerms>,
    /// `HoldNotifications`: the order's notifications wait until released by hand (console or
    /// admin API), as in Trustly's test environment.
    pub hold_notifications: bool,
}

/// The checkout attributes the end user's page needs, kept from the opening request.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckoutTerms {
    pub success_url: String,
    pub fail_url: String,
    pub country: String,
    pub locale: String,
    pub shopper_statement: Option<String>,
    /// The merchant fixed the amount (Deposit `Amount`, Withdraw `SuggestedAmount`).
    pub fixed_amount: bool,
    /// `SuggestedMinAmount` / `SuggestedMaxAmount`: the range the end user may choose from.
    pub min_amount: Option<Decimal>,
    pub max_amount: Option<Decimal>,
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
    /// Waiting to be released by hand (the order has `HoldNotifications`).
    pub held: bool,
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
            checkout: None,
            hold_notifications: false,
        })
    }

    /// A new order opened by a merchant's request: where to notify, the end user, the MessageID.
    pub fn open_order(&mut self, kind: OrderKind, opening: &Opening) -> &mut Order {
        let order = self.new_order(kind);
        order.notification_url = Some(opening.notification_url.clone());
        order.end_user_id = Some(opening.end_user_id.clone());
        order.message_id = Some(opening.message_id.clone());
        order
    }

    /// The order `order_id` if it is of `kind`.
    pub fn order_of(&self, order_id: &str, kind: OrderKind) -> Option<&Order> {
        self.orders.get(order_id).filter(|o| o.kind == kind)
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
            held: order.hold_notifications,
        };
        if let Some(order) = self.orders.get_mut(order_id) {
            order.notification_ids.push(notification_id);
        }
        Some(record)
    }
}
