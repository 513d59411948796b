//! The payment use cases: execute a signed Trustly call with idempotency (begin / replay / finish,
//! 637 recovery), Trustly's polling window, balances and the account cache.
//!
//! Requests arrive validated and typed ([`Prepared`]); answers leave as wire-core types wrapped in
//! an [`Answer`] that says whether they were replayed or how old they are. This module knows
//! nothing of gRPC, `pb` or `tonic`: the transports adapt to it.

mod accounts;
mod balances;
mod execute;
mod polls;
mod reports;

use std::time::Duration;

use serde_json::{Map, Value};
use uuid::Uuid;

pub use accounts::{AccountSettings, BankDetails};
pub use balances::{BalanceWatch, poll_balances};

use crate::{
    store::{self, Store, idempotency::Idempotency, polls::Polls},
    trustly::{self, Client},
};

/// Namespace of the derived JSON-RPC UUIDs (a fixed random UUID, never to change: changing it
/// would turn every retry of an in-flight request into a new request).
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a0e_9b57_4d0b_8c43_1e7a_25d9_b3f4);

/// A validated request, ready to sign.
#[derive(Debug)]
pub struct Prepared {
    pub method: &'static str,
    /// `Data` without Username/Password (the client adds them).
    pub data: Map<String, Value>,
    /// The idempotency key: the same key and the same `data` give the same signed request.
    pub idempotency_key: Option<String>,
}

/// A use case's answer, with how it was obtained.
#[derive(Debug)]
pub struct Answer<T> {
    pub value: T,
    /// The answer is a stored outcome of an earlier call with the same idempotency key.
    pub replayed: bool,
    /// The answer is the last poll's (Trustly's polling window), this many whole seconds old.
    pub age: Option<u64>,
}

impl<T> Answer<T> {
    /// A fresh answer from Trustly.
    pub fn fresh(value: T) -> Self {
        Self {
            value,
            replayed: false,
            age: None,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        Answer {
            value: f(self.value),
            replayed: self.replayed,
            age: self.age,
        }
    }

    /// Like [`Answer::map`] for a conversion that may fail.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Answer<U>, E> {
        Ok(Answer {
            value: f(self.value)?,
            replayed: self.replayed,
            age: self.age,
        })
    }
}

/// Everything a payment use case can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The call to Trustly failed (definitively or ambiguously; see `trustly::Disposition`).
    #[error(transparent)]
    Trustly(#[from] trustly::Error),
    /// The idempotency (or poll) store could not be asked: nothing was sent (fail closed).
    #[error("idempotency store unavailable")]
    Store(#[from] store::Error),
    /// Another call with the same idempotency key (or the window's first poll) is in flight.
    #[error("a request with this idempotency key is in progress")]
    RequestInProgress,
    /// A replay met 637: Trustly has the order (its UUID record is gone); the order id is known
    /// when a notification named it. The order is never re-issued.
    #[error("the order exists at Trustly")]
    OrderExists { order_id: Option<String> },
    /// The idempotency key was used before for a different request.
    #[error("the idempotency key was used for a different request")]
    IdempotencyKeyReused,
}

/// Where idempotency records live and for how long.
#[derive(Clone)]
pub struct IdempotencySettings {
    pub store: Idempotency,
    /// How long one attempt may hold a key; after it a retry replays the stored request.
    pub lease: Duration,
    pub retention: Duration,
}

/// The payment engine: every payment use case goes through it.
#[derive(Clone)]
pub struct Payments {
    client: Client,
    idempotency: IdempotencySettings,
    accounts: AccountSettings,
    username: String,
    /// Withdraw orders are remembered here so their `debit` waits for the merchant's decision.
    log: Store,
    /// Every Balance answer updates the balance gauges.
    balances: BalanceWatch,
    /// The last answers of Balance and GetWithdrawals (per order), shared like the log.
    polls: Polls,
    /// Trustly's polling limit: those are called at most once per this window (zero: no limit).
    poll_window: Duration,
}

impl Payments {
    pub fn new(
        client: Client,
        username: String,
        log: Store,
        idempotency: IdempotencySettings,
        accounts: AccountSettings,
        balances: BalanceWatch,
    ) -> Self {
        Self {
            client,
            idempotency,
            accounts,
            username,
            polls: log.polls.clone(),
            log,
            balances,
            poll_window: crate::config::DEFAULT_POLL_WINDOW,
        }
    }

    /// Sets the polling window of Balance and GetWithdrawals (see `TRUSTLY_SIDECAR_POLL_WINDOW`).
    pub fn with_poll_window(mut self, window: Duration) -> Self {
        self.poll_window = window;
        self
    }

    /// The JSON-RPC UUID of a request: derived from its idempotency key, or fresh.
    pub fn uuid_for(&self, method: &str, key: Option<&str>) -> Uuid {
        match key {
            Some(key) => Uuid::new_v5(
                &IDEMPOTENCY_NAMESPACE,
                format!("{}\n{method}\n{key}", self.username).as_bytes(),
            ),
            None => Uuid::new_v4(),
        }
    }
}

/// An identifier (OrderID, MessageID) as logged: strings without quotes, numbers as written.
pub fn identifier(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
