//! The AccountID cache (design §5): end user → AccountIDs with Trustly's non-sensitive
//! descriptors, filled by `account` notifications and RegisterAccount answers, so a payout flow can
//! ask "do we already have an AccountID?" without a Trustly round trip.
//!
//! All keys share the hash tag `{accounts}`, so the atomic multi-key update stays in one Redis
//! Cluster slot.
//!
//! Full account numbers are never stored: the lookup key built from bank details is an HMAC under
//! a secret derived from the merchant key (the same on every replica, never stored).

use std::{collections::HashMap, sync::Arc, time::Duration};

use hmac::{Hmac, Mac};

use super::{Backend, Connection, Expiring, RedisAt};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::Error;
pub use super::now_ms;

/// One cached account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub account_id: String,
    pub end_user_id: String,
    pub bank: String,
    pub clearing_house: String,
    pub descriptor: String,
    pub last_digits: String,
    pub verified: bool,
    /// `register_account` or `account_notification`.
    pub source: String,
    /// When it was last seen (ms since epoch).
    pub last_seen_ms: u64,
}

/// The keyed hash of bank details, scoped to an end user.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DetailsKey(String);

/// Derives lookup keys from bank details without keeping them.
#[derive(Clone)]
pub struct DetailsHasher {
    key: Arc<[u8; 32]>,
}

impl DetailsHasher {
    pub fn new(secret: [u8; 32]) -> Self {
        Self {
            key: Arc::new(secret),
        }
    }

    pub fn key(
        &self,
        end_user_id: &str,
        clearing_house: &str,
        bank_number: &str,
        account_number: &str,
    ) -> DetailsKey {
        // invariant: HMAC accepts keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.as_ref()).expect("hmac key");
        let normalized: String = account_number
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        for part in [end_user_id, clearing_house, bank_number, &normalized] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        DetailsKey(
            mac.finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }
}

impl std::fmt::Debug for DetailsHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DetailsHasher([redacted])")
    }
}

/// Entries are per (end user, AccountID): one bank account can belong to several end users (the
/// same details give the same AccountID), and each must keep seeing it.
#[derive(Default)]
struct Memory {
    by_user: HashMap<String, HashMap<String, Account>>,
    /// The most recently seen entry of each AccountID, for GetAccount.
    latest: HashMap<String, Account>,
    by_details: HashMap<DetailsKey, String>,
    orders: HashMap<String, String>,
}

/// The account cache of the configured backend.
#[derive(Clone)]
pub struct AccountCache(Backend<Memory, Expiring>);

impl AccountCache {
    pub fn memory() -> Self {
        AccountCache(Backend::memory())
    }

    /// `order_ttl`: how long order → end user links (for `account` notifications) are kept
    /// (accounts themselves do not expire).
    pub fn redis(conn: Connection, prefix: &str, timeout: Duration, order_ttl: Duration) -> Self {
        AccountCache(Backend::Redis(Expiring {
            at: RedisAt::new(conn, prefix, timeout),
            ttl: order_ttl,
        }))
    }

    /// Stores (or refreshes) an account; AccountIDs do not expire at Trustly, nor here.
    pub async fn put(&self, account: &Account, details: Option<&DetailsKey>) -> Result<(), Error> {
        match &self.0 {
            Backend::Memory(memory) => {
                let mut memory = memory.lock();
                memory
                    .by_user
                    .entry(account.end_user_id.clone())
                    .or_default()
                    .insert(account.account_id.clone(), account.clone());
                memory
                    .latest
                    .insert(account.account_id.clone(), account.clone());
                if let Some(details) = details {
                    memory
                        .by_details
                        .insert(details.clone(), account.account_id.clone());
                }
                Ok(())
            }
            Backend::Redis(Expiring { at, .. }) => {
                let json = serde_json::to_string(account)
                    .map_err(|_| Error::Protocol("account encoding"))?;
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .set(accounts_key(at, "id", &account.account_id), &json)
                    .hset(
                        accounts_key(at, "user", &account.end_user_id),
                        &account.account_id,
                        &json,
                    );
                if let Some(details) = details {
                    pipe.set(accounts_key(at, "details", &details.0), &account.account_id);
                }
                at.run(|mut conn| async move { pipe.query_async::<()>(&mut conn).await })
                    .await
            }
        }
    }

    pub async fn get(&self, account_id: &str) -> Result<Option<Account>, Error> {
        match &self.0 {
            Backend::Memory(memory) => Ok(memory.lock().latest.get(account_id).cloned()),
            Backend::Redis(Expiring { at, .. }) => {
                let json: Option<String> = at
                    .query(&redis::Cmd::get(accounts_key(at, "id", account_id)))
                    .await?;
                Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
            }
        }
    }

    /// The end user's accounts, most recently seen first.
    pub async fn list(&self, end_user_id: &str) -> Result<Vec<Account>, Error> {
        let mut accounts: Vec<Account> = match &self.0 {
            Backend::Memory(memory) => memory
                .lock()
                .by_user
                .get(end_user_id)
                .map(|accounts| accounts.values().cloned().collect())
                .unwrap_or_default(),
            Backend::Redis(Expiring { at, .. }) => {
                let entries: Vec<String> = at
                    .query(&redis::Cmd::hvals(accounts_key(at, "user", end_user_id)))
                    .await?;
                entries
                    .iter()
                    .filter_map(|json| serde_json::from_str(json).ok())
                    .collect()
            }
        };
        accounts.sort_by(|a: &Account, b| {
            b.last_seen_ms
                .cmp(&a.last_seen_ms)
                .then(a.account_id.cmp(&b.account_id))
        });
        Ok(accounts)
    }

    /// The end user's account registered for these (hashed, end-user-scoped) details, if any.
    pub async fn find(&self, details: &DetailsKey) -> Result<Option<Account>, Error> {
        let id = match &self.0 {
            Backend::Memory(memory) => memory.lock().by_details.get(details).cloned(),
            Backend::Redis(Expiring { at, .. }) => {
                at.query(&redis::Cmd::get(accounts_key(at, "details", &details.0)))
                    .await?
            }
        };
        match id {
            Some(id) => self.get(&id).await,
            None => Ok(None),
        }
    }

    /// Links an order this sidecar created to its end user (an `account` notification names only
    /// the order).
    pub async fn remember_order(&self, order_id: &str, end_user_id: &str) -> Result<(), Error> {
        match &self.0 {
            Backend::Memory(memory) => {
                memory
                    .lock()
                    .orders
                    .insert(order_id.to_owned(), end_user_id.to_owned());
                Ok(())
            }
            Backend::Redis(Expiring { at, ttl }) => {
                let ttl = ttl.as_secs().max(1);
                at.query(&redis::Cmd::set_ex(
                    accounts_key(at, "order", order_id),
                    end_user_id,
                    ttl,
                ))
                .await
            }
        }
    }

    pub async fn end_user_for_order(&self, order_id: &str) -> Result<Option<String>, Error> {
        match &self.0 {
            Backend::Memory(memory) => Ok(memory.lock().orders.get(order_id).cloned()),
            Backend::Redis(Expiring { at, .. }) => {
                at.query(&redis::Cmd::get(accounts_key(at, "order", order_id)))
                    .await
            }
        }
    }
}

/// `<prefix>:{accounts}:<kind>:<id>`: the hash tag keeps every account key in one Cluster slot.
fn accounts_key(at: &RedisAt, kind: &str, id: &str) -> String {
    at.key(format_args!("{{accounts}}:{kind}:{id}"))
}
