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
use redis::AsyncCommands;

use super::{
    Error, connection::Connection, connection::bounded, notifications_key, redis_ttl_secs,
};

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
        conn: Connection,
        prefix: String,
        retention: Duration,
        timeout: Duration,
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
            conn,
            prefix: prefix.to_owned(),
            retention,
            timeout,
        })
    }

    /// Remembers that an order came from Withdraw (its `debit` then needs a decision).
    pub async fn remember_withdraw(&self, order_id: &str) -> Result<(), Error> {
        match &self.0 {
            Backend::Memory { withdraws, .. } => {
                withdraws.lock().insert(order_id.to_owned());
                Ok(())
            }
            Backend::Redis {
                conn,
                prefix,
                retention,
                timeout,
            } => {
                let key = notifications_key(prefix, "withdraw", order_id);
                let mut conn = conn.clone();
                let ttl = redis_ttl_secs(*retention);
                bounded(*timeout, conn.set_ex::<_, _, ()>(key, 1, ttl)).await
            }
        }
    }

    /// `true` when the order came from Withdraw.
    pub async fn is_withdraw(&self, order_id: &str) -> Result<bool, Error> {
        match &self.0 {
            Backend::Memory { withdraws, .. } => Ok(withdraws.lock().contains(order_id)),
            Backend::Redis {
                conn,
                prefix,
                timeout,
                ..
            } => {
                let key = notifications_key(prefix, "withdraw", order_id);
                let mut conn = conn.clone();
                bounded(*timeout, conn.exists(key)).await
            }
        }
    }

    /// The order id seen in notifications for a MessageID (recovers an order after a 637).
    pub async fn for_message(&self, message_id: &str) -> Result<Option<String>, Error> {
        match &self.0 {
            Backend::Memory { messages, .. } => Ok(messages.lock().get(message_id).cloned()),
            Backend::Redis {
                conn,
                prefix,
                timeout,
                ..
            } => {
                let key = notifications_key(prefix, "message", message_id);
                let mut conn = conn.clone();
                bounded(*timeout, conn.get(key)).await
            }
        }
    }
}
