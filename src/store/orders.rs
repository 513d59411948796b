//! What the sidecar knows about orders from its own traffic: which orders came from Withdraw
//! (their `debit` then waits for a decision) and the order id a MessageID got (seen in
//! notifications; it recovers an order after a 637). The MessageID index is written by the log in
//! the same atomic step as the event, so it is only read here.
//!
//! Knows nothing of gRPC, payments or the notification rules that use it.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;

use super::{Error, RedisAt, connection::Connection, redis_ttl_secs};

/// MessageID → order id of the memory backend, shared with the memory log that writes it.
pub(crate) type MessageIndex = Arc<Mutex<HashMap<String, String>>>;

/// The order records of the configured backend. Cloning shares them.
#[derive(Clone)]
pub struct Orders(Backend);

#[derive(Clone)]
enum Backend {
    Memory {
        withdraws: Arc<Mutex<HashSet<String>>>,
        messages: MessageIndex,
    },
    Redis {
        at: RedisAt,
        retention: Duration,
    },
}

impl Orders {
    /// Memory records reading the MessageID index the memory log writes.
    pub(crate) fn memory(messages: MessageIndex) -> Self {
        Orders(Backend::Memory {
            withdraws: Arc::default(),
            messages,
        })
    }

    /// Redis records under `prefix`, each kept `retention`.
    pub fn redis(conn: Connection, prefix: &str, retention: Duration, timeout: Duration) -> Self {
        Orders(Backend::Redis {
            at: RedisAt::new(conn, prefix, timeout),
            retention,
        })
    }

    /// Remembers that an order came from Withdraw (its `debit` then needs a decision).
    pub async fn remember_withdraw(&self, order_id: &str) -> Result<(), Error> {
        match &self.0 {
            Backend::Memory { withdraws, .. } => {
                withdraws.lock().insert(order_id.to_owned());
                Ok(())
            }
            Backend::Redis { at, retention } => {
                let key = at.notifications_key("withdraw", order_id);
                at.query(&redis::Cmd::set_ex(key, 1, redis_ttl_secs(*retention)))
                    .await
            }
        }
    }

    /// `true` when the order came from Withdraw.
    pub async fn is_withdraw(&self, order_id: &str) -> Result<bool, Error> {
        match &self.0 {
            Backend::Memory { withdraws, .. } => Ok(withdraws.lock().contains(order_id)),
            Backend::Redis { at, .. } => {
                let key = at.notifications_key("withdraw", order_id);
                at.query(&redis::Cmd::exists(key)).await
            }
        }
    }

    /// The order id seen in notifications for a MessageID (recovers an order after a 637).
    pub async fn for_message(&self, message_id: &str) -> Result<Option<String>, Error> {
        match &self.0 {
            Backend::Memory { messages, .. } => Ok(messages.lock().get(message_id).cloned()),
            Backend::Redis { at, .. } => {
                let key = at.notifications_key("message", message_id);
                at.query(&redis::Cmd::get(key)).await
            }
        }
    }
}
