//! Subscribers' decisions on notifications that wait for one (a Withdraw `debit`, a `kyc`):
//! written by the acknowledging subscriber, read by intake to sign its answer. Kept as long as the
//! notification log keeps events.
//!
//! Knows nothing of what a decision means (`notify::decisions` encodes it) nor of gRPC or HTTP.

use std::collections::HashMap;

use super::{Backend, Error, Expiring, redis_ttl_secs};

/// The decisions of the configured backend (on Redis, each kept `ttl`). Cloning shares them.
#[derive(Clone)]
pub struct Decisions(pub(super) Backend<HashMap<String, String>, Expiring>);

impl Decisions {
    /// Records the (encoded) decision for a notification awaiting one.
    pub async fn set(&self, notification_id: &str, decision: &str) -> Result<(), Error> {
        match &self.0 {
            Backend::Memory(decisions) => {
                let mut decisions = decisions.lock();
                decisions.insert(notification_id.to_owned(), decision.to_owned());
                Ok(())
            }
            Backend::Redis(Expiring { at, ttl }) => {
                let key = at.notifications_key("decision", notification_id);
                at.query(&redis::Cmd::set_ex(key, decision, redis_ttl_secs(*ttl)))
                    .await
            }
        }
    }

    /// The decision recorded for a notification, if any.
    pub async fn get(&self, notification_id: &str) -> Result<Option<String>, Error> {
        match &self.0 {
            Backend::Memory(decisions) => Ok(decisions.lock().get(notification_id).cloned()),
            Backend::Redis(Expiring { at, .. }) => {
                let key = at.notifications_key("decision", notification_id);
                at.query(&redis::Cmd::get(key)).await
            }
        }
    }
}
