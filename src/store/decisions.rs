//! Subscribers' decisions on notifications that wait for one (a Withdraw `debit`, a `kyc`):
//! written by the acknowledging subscriber, read by intake to sign its answer. Kept as long as the
//! notification log keeps events. Recording one wakes intake's waits for it on every replica.
//!
//! Knows nothing of what a decision means (`notify::decisions` encodes it) nor of gRPC or HTTP.

use std::{collections::HashMap, time::Duration};

use redis::Script;

use super::{
    Backend, Error, Expiring, redis_ttl_secs,
    wake::{DecisionWatch, Wakes},
};

/// Stores a decision and announces it on the wake channel (ARGV[3], message ARGV[4]) in one
/// round trip, so intake waiting on another replica wakes at once (`pcall`: without pub/sub
/// rights the decision is still stored, and intake finds it by polling).
const SET: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.pcall('PUBLISH', ARGV[3], ARGV[4])
";

/// The decisions of the configured backend (on Redis, each kept `ttl`). Cloning shares them.
#[derive(Clone)]
pub struct Decisions {
    pub(super) backend: Backend<HashMap<String, String>, Expiring>,
    pub(super) wakes: Wakes,
}

impl Decisions {
    /// Records the (encoded) decision for a notification awaiting one, and wakes its waiters.
    pub async fn set(&self, notification_id: &str, decision: &str) -> Result<(), Error> {
        match &self.backend {
            Backend::Memory(decisions) => {
                let mut decisions = decisions.lock();
                decisions.insert(notification_id.to_owned(), decision.to_owned());
            }
            Backend::Redis(Expiring { at, ttl }) => {
                let script = Script::new(SET);
                let mut invocation = script.prepare_invoke();
                invocation
                    .key(at.notifications_key("decision", notification_id))
                    .arg(decision)
                    .arg(redis_ttl_secs(*ttl))
                    .arg(self.wakes.channel())
                    .arg(self.wakes.decision_message(notification_id));
                at.run(|mut conn| async move { invocation.invoke_async::<()>(&mut conn).await })
                    .await?;
            }
        }
        self.wakes.decided(notification_id);
        Ok(())
    }

    /// The decision recorded for a notification, if any.
    pub async fn get(&self, notification_id: &str) -> Result<Option<String>, Error> {
        match &self.backend {
            Backend::Memory(decisions) => Ok(decisions.lock().get(notification_id).cloned()),
            Backend::Redis(Expiring { at, .. }) => {
                let key = at.notifications_key("decision", notification_id);
                at.query(&redis::Cmd::get(key)).await
            }
        }
    }

    /// Follows recorded decisions; made before the first [`Self::get`] of a wait, so a decision
    /// recorded in between is not missed.
    pub fn watch(&self) -> DecisionWatch {
        self.wakes.watch_decisions()
    }

    /// How long a decision wait may sleep between looks (see [`Wakes::poll_every`]).
    pub fn poll_every(&self, fallback: Duration) -> Duration {
        self.wakes.poll_every(fallback)
    }
}
