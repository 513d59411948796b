//! Subscribers' decisions on notifications that wait for one (a Withdraw `debit`, a `kyc`):
//! written by the acknowledging subscriber, read by intake to sign its answer. Kept as long as the
//! notification log keeps events.
//!
//! Knows nothing of what a decision means (`notify::decisions` encodes it) nor of gRPC or HTTP.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;

use super::{Error, RedisAt, connection::Connection, redis_ttl_secs};

/// The decisions of the configured backend. Cloning shares them.
#[derive(Clone)]
pub struct Decisions(Backend);

#[derive(Clone)]
enum Backend {
    Memory(Arc<Mutex<HashMap<String, String>>>),
    Redis { at: RedisAt, retention: Duration },
}

impl Decisions {
    pub fn memory() -> Self {
        Decisions(Backend::Memory(Arc::default()))
    }

    /// Redis decisions under `prefix`, each kept `retention`.
    pub fn redis(conn: Connection, prefix: &str, retention: Duration, timeout: Duration) -> Self {
        Decisions(Backend::Redis {
            at: RedisAt::new(conn, prefix, timeout),
            retention,
        })
    }

    /// Records the (encoded) decision for a notification awaiting one.
    pub async fn set(&self, notification_id: &str, decision: &str) -> Result<(), Error> {
        match &self.0 {
            Backend::Memory(decisions) => {
                let mut decisions = decisions.lock();
                decisions.insert(notification_id.to_owned(), decision.to_owned());
                Ok(())
            }
            Backend::Redis { at, retention } => {
                let key = at.notifications_key("decision", notification_id);
                at.query(&redis::Cmd::set_ex(
                    key,
                    decision,
                    redis_ttl_secs(*retention),
                ))
                .await
            }
        }
    }

    /// The decision recorded for a notification, if any.
    pub async fn get(&self, notification_id: &str) -> Result<Option<String>, Error> {
        match &self.0 {
            Backend::Memory(decisions) => Ok(decisions.lock().get(notification_id).cloned()),
            Backend::Redis { at, .. } => {
                let key = at.notifications_key("decision", notification_id);
                at.query(&redis::Cmd::get(key)).await
            }
        }
    }
}
