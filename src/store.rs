//! Durable state shared by every replica, one module per concept: the notification [`log`],
//! subscribers' [`decisions`], what is known about [`orders`], the facts of each order's state
//! ([`order_states`]), the fleet [`lease`], the
//! [`idempotency`] records, the AccountID cache ([`accounts`]) and the poll records ([`polls`]).
//! Each has two backends with the same semantics: Redis (durable, shared, on one [`Connection`])
//! and memory (the embedded default; lost on restart, said at start). Appends and decisions
//! [`wake`] their waiters on every replica. What may be written after a call has answered (its
//! idempotency outcome, its order fact) goes through [`write_behind`].
//!
//! One backend pattern everywhere: the concept's public type wraps a [`Backend`] (its state in
//! memory, or its Redis side) and each method matches on it once. It needs no trait, no boxing
//! and no façade: a concept's two implementations sit side by side in one method, and only the
//! log, whose backends are large, and the orders, whose memory side is shared with the log, keep
//! their own. [`Store`] bundles and builds the concepts the notification path and the payments
//! share; the concepts built elsewhere (idempotency, accounts) have `memory`/`redis` constructors.
//!
//! Knows nothing of gRPC, HTTP, configuration or metrics.

pub mod accounts;
pub mod connection;
pub mod decisions;
pub mod idempotency;
pub mod lease;
pub mod log;
pub mod order_states;
pub mod orders;
pub mod polls;
pub mod wake;
pub mod write_behind;

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;

pub use connection::Connection;
pub use decisions::Decisions;
pub use lease::Lease;
pub use log::{Event, GroupBacklog, Log, NewEvent, Reader, Recorded, Start};
pub use order_states::OrderStates;
pub use orders::Orders;
pub use polls::Polls;
pub use wake::{AppendWatch, Wakes};
pub use write_behind::WriteBehind;

/// How long [`Store::memory`] keeps notification records: the configuration's default
/// notification retention (the application passes the configured one to
/// [`Store::memory_retaining`]).
pub const MEMORY_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Milliseconds since the Unix epoch: the time unit of every stored record.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("redis")]
    Redis(#[from] ::redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected store reply: {0}")]
    Protocol(&'static str),
    /// A connection attempt failed: names the server (never the password) and why.
    #[error("cannot reach redis at {endpoint}: {cause}")]
    Connect {
        endpoint: String,
        cause: ConnectCause,
        #[source]
        source: Option<::redis::RedisError>,
    },
}

/// Why a Redis server could not be reached, in the words an operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectCause {
    #[error("connection refused (is redis running there?)")]
    Refused,
    #[error(
        "no answer within {0:?} (host down, firewall, wrong port, or rediss:// to a server without TLS)"
    )]
    TimedOut(Duration),
    #[error("authentication failed (check the user and password in the URL)")]
    Auth,
    #[error("TLS handshake failed (rediss:// certificate or CA)")]
    Tls,
    #[error("host name not found")]
    UnknownHost,
    #[error("connection failed")]
    Other,
}

/// Every key of the notification family: `<prefix>:{notifications}:<kind>:<id>`. The hash tag
/// keeps the family in one Redis Cluster slot, so the log's scripts stay atomic.
pub(crate) fn notifications_key(prefix: &str, kind: &str, id: &str) -> String {
    format!("{prefix}:{{notifications}}:{kind}:{id}")
}

/// A concept's Redis side: the shared connection, the key prefix and the bound on every call.
#[derive(Clone)]
pub(crate) struct RedisAt {
    conn: Connection,
    prefix: String,
    timeout: Duration,
}

impl RedisAt {
    pub(crate) fn new(conn: Connection, prefix: &str, timeout: Duration) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            timeout,
        }
    }

    /// A key of the notification family under this prefix (see [`notifications_key`]).
    pub(crate) fn notifications_key(&self, kind: &str, id: &str) -> String {
        notifications_key(&self.prefix, kind, id)
    }

    /// A key of this concept's own family: `<prefix>:<rest>`.
    pub(crate) fn key(&self, rest: impl std::fmt::Display) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// Runs one command, pipeline or script (`call`, given a connection) within the timeout.
    pub(crate) async fn run<T, F>(&self, call: impl FnOnce(Connection) -> F) -> Result<T, Error>
    where
        F: std::future::Future<Output = redis::RedisResult<T>>,
    {
        connection::bounded(self.timeout, call(self.conn.clone())).await
    }

    /// Runs one command within the timeout.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, Error> {
        self.run(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }
}

/// A concept's backend: its state `M` in this process's memory (shared by the concept's clones),
/// or its Redis side `R`.
pub(crate) enum Backend<M, R = RedisAt> {
    Memory(Arc<Mutex<M>>),
    Redis(R),
}

/// Cloning shares the memory state (so `M` need not be `Clone`).
impl<M, R: Clone> Clone for Backend<M, R> {
    fn clone(&self) -> Self {
        match self {
            Backend::Memory(state) => Backend::Memory(Arc::clone(state)),
            Backend::Redis(redis) => Backend::Redis(redis.clone()),
        }
    }
}

impl<M: Default, R> Backend<M, R> {
    /// Empty state in this process's memory.
    pub(crate) fn memory() -> Self {
        Backend::Memory(Arc::default())
    }
}

/// A Redis side whose records expire after `ttl`.
#[derive(Clone)]
pub(crate) struct Expiring {
    pub(crate) at: RedisAt,
    pub(crate) ttl: Duration,
}

/// A retention as a Redis TTL in whole seconds (at least one: `EX 0` is an error).
pub(crate) fn redis_ttl_secs(retention: Duration) -> u64 {
    retention.as_secs().max(1)
}

/// The store concepts of the notification path and the payments, on one backend.
#[derive(Clone)]
pub struct Store {
    pub log: Log,
    pub decisions: Decisions,
    pub orders: Orders,
    /// The facts each order's state is folded from (`crate::orders`), and their change feed.
    pub order_states: OrderStates,
    pub lease: Lease,
    pub polls: Polls,
    /// Wakes subscribers and decision waits (the Redis ones need a [`wake::Listener`] to hear
    /// other replicas).
    pub wakes: Wakes,
    /// The writes that follow a call's answer (its idempotency outcome, its order fact); the
    /// order reads wait for them.
    pub write_behind: WriteBehind,
}

impl Store {
    /// Everything in this process's memory, notification records kept [`MEMORY_RETENTION`].
    pub fn memory() -> Self {
        Self::memory_retaining(MEMORY_RETENTION)
    }

    /// Everything in this process's memory; notification records (and the order facts derived
    /// from them) are kept `retention`, as on Redis.
    pub fn memory_retaining(retention: Duration) -> Self {
        let messages = orders::MessageIndex::default();
        let wakes = Wakes::memory();
        let write_behind = WriteBehind::default();
        Store {
            log: Log::memory(messages.clone(), wakes.clone(), retention),
            decisions: Decisions {
                backend: Backend::memory(),
                wakes: wakes.clone(),
            },
            orders: Orders::memory(messages),
            order_states: OrderStates {
                facts: Backend::Memory(Arc::new(Mutex::new(order_states::Memory::new(retention)))),
                changes: Log::memory(orders::MessageIndex::default(), wakes.clone(), retention),
                pending: write_behind.clone(),
            },
            lease: Lease(Backend::memory()),
            polls: Polls(Backend::memory()),
            wakes,
            write_behind,
        }
    }

    /// Everything on `conn` under `prefix`; notification records are kept `retention`. Other
    /// replicas' appends and decisions wake this one's waiters once a [`wake::Listener`] on
    /// `wakes` runs; until then they poll.
    pub fn redis(conn: Connection, prefix: &str, retention: Duration, timeout: Duration) -> Self {
        let at = RedisAt::new(conn.clone(), prefix, timeout);
        let wakes = Wakes::redis(prefix);
        let write_behind = WriteBehind::default();
        Store {
            log: Log::redis(conn.clone(), prefix, retention, timeout, wakes.clone()),
            decisions: Decisions {
                // Kept as long as the events that await them.
                backend: Backend::Redis(Expiring {
                    at: at.clone(),
                    ttl: retention,
                }),
                wakes: wakes.clone(),
            },
            orders: Orders::redis(conn.clone(), prefix, retention, timeout),
            // Kept as long as the notifications they are derived from.
            order_states: OrderStates {
                facts: Backend::Redis(Expiring {
                    at: at.clone(),
                    ttl: retention,
                }),
                // Its own stream and dedupe records; appends wake the same waiters.
                changes: Log::redis(
                    conn.clone(),
                    &format!("{prefix}:order-changes"),
                    retention,
                    timeout,
                    wakes.clone(),
                ),
                pending: write_behind.clone(),
            },
            lease: Lease(Backend::Redis(at.clone())),
            polls: Polls(Backend::Redis(at)),
            wakes,
            write_behind,
        }
    }

    /// Connects to one Redis server (see [`connection::connect`]).
    pub async fn connect(
        url: &str,
        ca_pem: Option<&[u8]>,
        prefix: &str,
        retention: Duration,
        timeout: Duration,
    ) -> Result<Self, Error> {
        Self::connect_to(&[url.to_owned()], false, ca_pem, prefix, retention, timeout).await
    }

    /// Connects to one server, or to a Redis Cluster through its seed nodes (`cluster`).
    pub async fn connect_to(
        urls: &[String],
        cluster: bool,
        ca_pem: Option<&[u8]>,
        prefix: &str,
        retention: Duration,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let conn = connection::connect(urls, cluster, ca_pem, timeout).await?;
        Ok(Self::redis(conn, prefix, retention, timeout))
    }

    /// `true` when records survive a restart and are shared by replicas.
    pub fn is_durable(&self) -> bool {
        self.log.is_durable()
    }

    /// Answers when the store works (readiness).
    pub async fn ping(&self) -> Result<(), Error> {
        self.log.ping().await
    }
}
