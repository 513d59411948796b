//! The fleet lease: `true` for exactly one caller per period among every replica sharing the
//! store, a cluster-wide rate limit (Trustly allows Balance once per 15 minutes per merchant, not
//! per pod). Memory leases are per process.
//!
//! Knows nothing of what the lease guards.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use super::{Backend, Error};

/// The leases of the configured backend (in memory: when each named turn may be taken again).
/// Cloning shares them.
#[derive(Clone)]
pub struct Lease(pub(super) Backend<HashMap<String, Instant>>);

impl Lease {
    /// `true` for exactly one caller per `period` among every replica sharing the store.
    pub async fn take_turn(&self, name: &str, period: Duration) -> Result<bool, Error> {
        match &self.0 {
            Backend::Memory(turns) => {
                let now = Instant::now();
                let mut turns = turns.lock();
                if turns.get(name).is_some_and(|next| *next > now) {
                    return Ok(false);
                }
                turns.insert(name.to_owned(), now + period);
                Ok(true)
            }
            Backend::Redis(at) => {
                let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
                let mut set = redis::cmd("SET");
                set.arg(at.notifications_key("turn", name))
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(period_ms);
                let taken: Option<String> = at.query(&set).await?;
                Ok(taken.is_some())
            }
        }
    }
}
