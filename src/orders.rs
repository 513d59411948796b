//! Order state: where every order's money is, folded from the facts the sidecar saw about it —
//! the RPC answers it got ([`Fact::rpc`]), the verified notifications it stored
//! ([`Fact::notification`]) and the answers intake gave to Withdraw debits ([`Fact::decision`]).
//!
//! The facts of an order are a *set* keyed by fact id (a notification id, or the RPC and its
//! JSON-RPC uuid), stored first-write-wins, and [`fold`] is a function of that set: the state of a
//! kind depends only on which notification methods were seen, and the totals are exact sums over
//! distinct facts. So any arrival order, any duplicate and any number of replicas give the same
//! order, and a replay of the notification log ([`follow`]) rebuilds it. Every fact added is also
//! announced on a change feed that consumer groups [`watch`]. Knows nothing of gRPC or HTTP.

mod book;
mod fold;
pub mod follow;
pub mod reconcile;
pub mod schedule;
#[cfg(test)]
mod tests;
pub mod watch;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use book::{Error, OrderBook, Page, Query};
pub use fold::fold;
pub use watch::Watches;

use crate::{
    store::log::Notification as LoggedNotification,
    trustly::{notification::Kind as Notified, time, wire},
};

/// What created an order (the RPC the sidecar sent), or `Unknown` when only notifications named it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Unknown,
    Deposit,
    Withdraw,
    AccountPayout,
    RegisterAccountPayout,
    Refund,
    Charge,
}

impl Kind {
    /// The kind an RPC method creates (`None`: the method creates no order).
    pub fn of_method(method: &str) -> Option<Self> {
        Some(match method {
            "Deposit" => Kind::Deposit,
            "Withdraw" => Kind::Withdraw,
            "AccountPayout" => Kind::AccountPayout,
            "RegisterAccountPayout" => Kind::RegisterAccountPayout,
            "Refund" => Kind::Refund,
            "Charge" => Kind::Charge,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Unknown => "unknown",
            Kind::Deposit => "deposit",
            Kind::Withdraw => "withdraw",
            Kind::AccountPayout => "account_payout",
            Kind::RegisterAccountPayout => "register_account_payout",
            Kind::Refund => "refund",
            Kind::Charge => "charge",
        }
    }
}

/// Where an order is (see the README's "Order state" diagrams for which kind reaches which).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Deposit, Charge, Withdraw: Trustly accepted the order; nothing happened yet.
    Created,
    /// A payout or a refund Trustly accepted.
    Accepted,
    /// The end user finished the bank flow; funds not confirmed yet.
    Pending,
    /// Money reached the merchant (Deposit, Charge).
    Credited,
    /// Deposit/Charge: the money was taken back (test case D1). Withdraw: the merchant deducted it.
    Debited,
    /// A payout was sent (`payoutconfirmation`).
    Confirmed,
    /// A payout came back to the merchant (a `credit` on a payout).
    Returned,
    Cancelled,
    /// `payoutfailed`.
    Failed,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Accepted => "accepted",
            State::Pending => "pending",
            State::Credited => "credited",
            State::Debited => "debited",
            State::Confirmed => "confirmed",
            State::Returned => "returned",
            State::Cancelled => "cancelled",
            State::Failed => "failed",
        }
    }
}

/// Where a fact came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Source {
    Notification,
    Rpc,
    /// The answer intake gave Trustly to a Withdraw `debit`: the merchant's decision, or the
    /// fallback when none came in time.
    Decision,
}

/// The method of a decision fact that approved the debit (OK).
pub const DECISION_APPROVED: &str = "decision:ok";
/// The method of a decision fact that rejected the debit (FAILED, or any status but OK).
pub const DECISION_REJECTED: &str = "decision:failed";

/// What the merchant answered to a Withdraw's `debit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WithdrawDecision {
    /// The debit came and no answer is recorded yet.
    Awaited,
    /// OK: Trustly goes on with the withdrawal.
    Approved,
    /// FAILED: Trustly aborts the withdrawal (and sends `cancel`).
    Rejected,
}

/// One thing the sidecar saw about an order: what the fold reads, and what the store keeps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fact {
    /// Unique per fact: `n:<notificationid>`, `rpc:<Method>:<uuid>` or `d:<notificationid>` (the
    /// decision on that notification).
    pub id: String,
    pub source: Source,
    /// The notification method, the RPC method, or [`DECISION_APPROVED`] / [`DECISION_REJECTED`].
    pub method: String,
    pub order_id: String,
    pub message_id: String,
    pub end_user_id: String,
    /// As Trustly (or the request) wrote it; empty when the fact carries none.
    pub amount: String,
    pub currency: String,
    /// Trustly's timestamp when it carries one (it orders the history), else when the sidecar
    /// learned it; milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl Fact {
    /// The fact of a verified notification (`None` for methods that say nothing about money or
    /// state, such as `account` and `kyc`, and for a notification without an order id).
    pub fn notification(
        method: &str,
        notification_id: &str,
        message_id: &str,
        data: &Value,
        received_ms: u64,
    ) -> Option<Self> {
        let order_id = identifier(data.get("orderid"));
        let (end_user_id, amount, currency, timestamp) = match Notified::parse(method, data) {
            Notified::Credit(t)
            | Notified::Debit(t)
            | Notified::Pending(t)
            | Notified::PayoutConfirmation(t)
            | Notified::PayoutFailed(crate::trustly::notification::PayoutFailed {
                transaction: t,
                ..
            }) => (t.end_user_id, t.amount, t.currency, t.timestamp),
            Notified::Cancel(c) => (c.end_user_id, String::new(), String::new(), c.timestamp),
            Notified::Account(_) | Notified::Kyc(_) | Notified::Unknown { .. } => return None,
        };
        if order_id.is_empty() {
            return None;
        }
        let at_ms = time::parse_timestamp(&timestamp)
            .and_then(|t| {
                u64::try_from(i128::from(t.seconds) * 1000 + i128::from(t.nanos) / 1_000_000).ok()
            })
            .unwrap_or(received_ms);
        Some(Fact {
            id: format!("n:{notification_id}"),
            source: Source::Notification,
            method: method.to_owned(),
            order_id,
            message_id: message_id.to_owned(),
            end_user_id,
            amount,
            currency,
            at_ms,
        })
    }

    /// The fact of a successful RPC answer to `request` (`None` for an answer without an order
    /// id).
    pub fn rpc(request: &OrderRequest, uuid: &str, answer: &Value, at_ms: u64) -> Option<Self> {
        let order_id = match request.kind {
            Kind::Refund => request.refunded_order_id.clone(),
            _ => identifier(answer.get("orderid")),
        };
        if order_id.is_empty() || order_id == "null" {
            return None;
        }
        Some(Fact {
            id: format!("rpc:{}:{uuid}", request.method),
            source: Source::Rpc,
            method: request.method.to_owned(),
            order_id,
            message_id: request.message_id.clone(),
            end_user_id: request.end_user_id.clone(),
            amount: request.amount.clone(),
            currency: request.currency.clone(),
            at_ms,
        })
    }
}

impl Fact {
    /// The fact of the answer given to a Withdraw `debit` (`status` is OK or FAILED; anything but
    /// OK rejects). `None` without an order id.
    pub fn decision(
        notification_id: &str,
        order_id: &str,
        message_id: &str,
        status: &str,
        at_ms: u64,
    ) -> Option<Self> {
        if order_id.is_empty() {
            return None;
        }
        Some(Fact {
            id: format!("d:{notification_id}"),
            source: Source::Decision,
            method: if status == "OK" {
                DECISION_APPROVED
            } else {
                DECISION_REJECTED
            }
            .to_owned(),
            order_id: order_id.to_owned(),
            message_id: message_id.to_owned(),
            end_user_id: String::new(),
            amount: String::new(),
            currency: String::new(),
            at_ms,
        })
    }

    /// The decision fact of the answer given to a logged Withdraw `debit` (`status` as answered);
    /// `None` for another method or without an order id. Intake calls it when it answers, the
    /// log replay ([`follow`]) with the answer the log stored.
    pub fn answer(logged: &LoggedNotification, status: &str, at_ms: u64) -> Option<Self> {
        if logged.method != "debit" {
            return None;
        }
        Self::decision(
            &logged.notification_id,
            &logged.order_id,
            &logged.message_id,
            status,
            at_ms,
        )
    }

    /// [`Self::answer`] from the signed reply as stored (`None` also when it carries no status).
    pub fn stored_answer(logged: &LoggedNotification, reply: &[u8], at_ms: u64) -> Option<Self> {
        let reply = wire::parse_notification_response(reply).ok()?;
        let status = reply.data.get("status").and_then(Value::as_str)?;
        Self::answer(logged, status, at_ms)
    }
}

/// What a request that creates or refunds an order says about the order, read from its `Data`
/// before it is signed: the call keeps these few fields, not a copy of the whole request.
#[derive(Clone, Debug)]
pub struct OrderRequest {
    kind: Kind,
    method: &'static str,
    /// The order a Refund refunds (empty for other methods' requests).
    refunded_order_id: String,
    message_id: String,
    end_user_id: String,
    amount: String,
    currency: String,
}

impl OrderRequest {
    /// `None` for a method that neither creates nor refunds an order.
    pub fn of(method: &'static str, data: &Map<String, Value>) -> Option<Self> {
        let kind = Kind::of_method(method)?;
        // Deposit and Withdraw carry Amount and Currency among their Attributes.
        let field = |name: &str| {
            let top = identifier(data.get(name));
            if top.is_empty() {
                identifier(data.get("Attributes").and_then(|a| a.get(name)))
            } else {
                top
            }
        };
        Some(Self {
            kind,
            method,
            refunded_order_id: match kind {
                Kind::Refund => field("OrderID"),
                _ => String::new(),
            },
            message_id: field("MessageID"),
            end_user_id: field("EndUserID"),
            amount: field("Amount"),
            currency: field("Currency"),
        })
    }
}

/// An identifier field as text: strings as they are, numbers by their lexeme, null as empty.
fn identifier(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A change of state, caused by one fact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub at_ms: u64,
    pub fact_id: String,
}

/// Something the facts of an order disagree on. Flagged, never resolved by overwriting.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Contradiction {
    /// The facts name more than one currency.
    Currency(Vec<String>),
    /// The facts name more than one end user.
    EndUser(Vec<String>),
    /// Two `payoutconfirmation`s with different amounts.
    PayoutAmount(Vec<String>),
    /// A Deposit or Charge both cancelled and credited.
    CancelledAndCredited,
    /// The RPCs that created the order disagree on its kind.
    Kind(Vec<String>),
    /// A fact whose amount is not a decimal (left out of the totals).
    Amount { fact_id: String },
    /// One fact id seen with different contents (the first in sort order is used).
    Fact { fact_id: String },
}

impl Contradiction {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Contradiction::Currency(_) => "currency_mismatch",
            Contradiction::EndUser(_) => "end_user_mismatch",
            Contradiction::PayoutAmount(_) => "payout_amount_mismatch",
            Contradiction::CancelledAndCredited => "cancelled_and_credited",
            Contradiction::Kind(_) => "kind_mismatch",
            Contradiction::Amount { .. } => "unreadable_amount",
            Contradiction::Fact { .. } => "conflicting_fact",
        }
    }

    /// What disagrees (identifiers and amounts only).
    pub fn detail(&self) -> String {
        match self {
            Contradiction::Currency(values)
            | Contradiction::EndUser(values)
            | Contradiction::PayoutAmount(values)
            | Contradiction::Kind(values) => values.join(","),
            Contradiction::CancelledAndCredited => String::new(),
            Contradiction::Amount { fact_id } | Contradiction::Fact { fact_id } => fact_id.clone(),
        }
    }
}

/// An order as its facts tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub order_id: String,
    /// The first MessageID in fact order (the merchant's reference).
    pub message_id: String,
    pub kind: Kind,
    pub state: State,
    pub currency: String,
    pub end_user_id: String,
    /// The amount the creating RPC asked for, when the sidecar sent it.
    pub requested: Option<Decimal>,
    pub credited: Decimal,
    pub debited: Decimal,
    pub refunded: Decimal,
    pub paid_out: Decimal,
    /// A Withdraw's decision on its `debit` (`None`: not a Withdraw, or no debit and no decision
    /// yet).
    pub withdraw_decision: Option<WithdrawDecision>,
    /// The earliest and latest fact times.
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Every contributing notification id, sorted.
    pub notification_ids: Vec<String>,
    /// Every contributing RPC as `Method:uuid`, sorted.
    pub rpcs: Vec<String>,
    pub transitions: Vec<Transition>,
    pub contradictions: Vec<Contradiction>,
}
