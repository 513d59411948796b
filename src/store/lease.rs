//! The fleet lease: `true` for exactly one caller per period among every replica sharing the
//! store, a cluster-wide rate limit (Trustly allows Balance once per 15 minutes per merchant, not
//! per pod). Memory leases are per process.
//!
//! Knows nothing of what the lease guards.

use std::{collections::HashMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use std::time::Instant;

use super::{Error, connection::Connection, connection::bounded, notifications_key};

/// The leases of the configured backend. Cloning shares them.
#[derive(Clone)]
pub struct Lease(Backend);

#[derive(Clone)]
enum Backend {
    /// When each named turn may be taken again.
    Memory(Arc<Mutex<HashMap<String, Instant>>>),
    Redis {
        conn: Connection,
        prefix: String,
        timeout: Duration,
    },
}

impl Lease {
    pub fn memory() -> Self {
        Lease(Backend::Memory(Arc::default()))
    }

    /// Redis leases under `prefix`.
    pub fn redis(conn: Connection, prefix: &str, timeout: Duration) -> Self {
        Lease(Backend::Redis {
            conn,
            prefix: prefix.to_owned(),
            timeout,
        })
    }

    /// `true` for exactly one caller per `period` among every replica sharing the store.
    pub async fn take_turn(&self, name: &str, period: Duration) -> Result<bool, Error> {
        match &self.0 {
            Backend::Memory(turns) => {
                let now = Instant::now();
                let mut turns = turns.lock();
                match turns.get(name) {
                    Some(next) if *next > now => Ok(false),
                    _ => {
                        turns.insert(name.to_owned(), now + period);
                        Ok(true)
                    }
                }
            }
            Backend::Redis {
                conn,
                prefix,
                timeout,
            } => {
                let mut conn = conn.clone();
                let taken: Option<String> = bounded(
                    *timeout,
                    redis::cmd("SET")
                        .arg(notifications_key(prefix, "turn", name))
                        .arg(1)
                        .arg("NX")
                        .arg("PX")
                        .arg(u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1))
                        .query_async(&mut conn),
                )
                .await?;
                Ok(taken.is_some())
            }
        }
    }
}
