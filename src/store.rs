//! Durable state shared by every replica: the notification log (and, with issue 6, idempotency
//! records and the AccountID cache). Two backends with the same semantics: Redis (durable, shared)
//! and memory (the embedded default; lost on restart, said at start).
//!
//! Knows nothing of gRPC or HTTP: it stores and hands out [`Event`]s.

pub mod accounts;
pub mod idempotency;
pub mod memory;
pub mod polls;
pub mod redis;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

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
    /// The first connection failed: names the server (never the password) and why.
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

/// A verified notification to append.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub notification_id: String,
    pub method: String,
    pub order_id: String,
    pub message_id: String,
    /// Milliseconds since the Unix epoch when the sidecar received it.
    pub received_ms: u64,
    /// The notification exactly as Trustly sent it (the verified raw JSON).
    pub body: Bytes,
}

/// An event as stored, with its stable id.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The log's id (Redis stream id form `<ms>-<seq>`): stable, ordered, and a cursor.
    pub id: String,
    pub notification_id: String,
    pub method: String,
    pub order_id: String,
    pub message_id: String,
    pub received_ms: u64,
    pub body: Bytes,
    /// How many times it has been handed to a subscriber of this group (1 on first delivery).
    pub delivery_count: u64,
}

/// What recording a notification did.
#[derive(Clone, Debug, PartialEq)]
pub enum Recorded {
    /// First time: appended under this event id.
    New { event_id: String },
    /// Seen before: the reply stored the first time (`None` while a decision is still awaited).
    Duplicate { reply: Option<Bytes> },
}

/// Where a consumer group starts reading when it is created or repositioned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// Only events appended from now on (a new group), or the group's position (existing).
    New,
    /// The group's last position; a new group starts at the oldest retained event.
    GroupPosition,
    /// Repositions the group to just after this event id.
    AfterEvent(String),
    /// Repositions the group to the first event received at or after this time (ms since epoch).
    FromTime(u64),
}

/// A consumer group's backlog (the consumer-lag metrics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupBacklog {
    pub group: String,
    /// Events appended but not yet delivered to the group (`None` when Redis cannot tell, e.g.
    /// after entries were trimmed past the group's position).
    pub undelivered: Option<u64>,
    /// Events delivered to the group but not acknowledged.
    pub pending: u64,
}

/// Appends made by this process since the watch last woke (see [`NotificationLog::watch_appends`]).
pub struct AppendWatch(tokio::sync::watch::Receiver<u64>);

impl AppendWatch {
    /// Waits until this process appends an event (or has appended one since the last wait), or
    /// `max` passes. Appends by other replicas are noticed by polling: callers read at least every
    /// `max`.
    pub async fn wait(&mut self, max: Duration) {
        let _ = tokio::time::timeout(max, self.0.changed()).await;
    }
}

/// Counts appends and wakes the process's watchers (shared by the log's clones).
#[derive(Clone, Debug)]
pub(crate) struct Appends(std::sync::Arc<tokio::sync::watch::Sender<u64>>);

impl Default for Appends {
    fn default() -> Self {
        Self(std::sync::Arc::new(tokio::sync::watch::Sender::new(0)))
    }
}

impl Appends {
    fn appended(&self) {
        self.0.send_modify(|count| *count = count.wrapping_add(1));
    }

    fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// The notification log of the configured backend.
#[derive(Clone)]
pub enum NotificationLog {
    Memory(memory::Log),
    Redis(redis::Log),
}

impl NotificationLog {
    /// `true` when events survive a restart and are shared by replicas.
    pub fn is_durable(&self) -> bool {
        matches!(self, NotificationLog::Redis(_))
    }

    /// Appends `event` unless its notificationid was recorded before; stores `reply` (the signed
    /// answer to give every later duplicate) in the same atomic step. `reply` is `None` when the
    /// answer waits for a subscriber's decision; [`Self::set_reply`] fills it in later.
    pub async fn record(&self, event: &NewEvent, reply: Option<&Bytes>) -> Result<Recorded, Error> {
        match self {
            NotificationLog::Memory(log) => Ok(log.record(event, reply)),
            NotificationLog::Redis(log) => log.record(event, reply).await,
        }
    }

    /// Stores the answer of a notification recorded without one.
    pub async fn set_reply(&self, notification_id: &str, reply: &Bytes) -> Result<(), Error> {
        match self {
            NotificationLog::Memory(log) => {
                log.set_reply(notification_id, reply);
                Ok(())
            }
            NotificationLog::Redis(log) => log.set_reply(notification_id, reply).await,
        }
    }

    /// Creates the group at `start` (or repositions it, for `AfterEvent`/`FromTime`).
    pub async fn join(&self, group: &str, start: &Start) -> Result<(), Error> {
        match self {
            NotificationLog::Memory(log) => {
                log.join(group, start);
                Ok(())
            }
            NotificationLog::Redis(log) => log.join(group, start).await,
        }
    }

    /// Up to `count` events never delivered to `group`, waiting at most `block` for the first.
    pub async fn read_new(
        &self,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Event>, Error> {
        match self {
            NotificationLog::Memory(log) => Ok(log.read_new(group, consumer, count, block).await),
            NotificationLog::Redis(log) => log.read_new(group, consumer, count, block).await,
        }
    }

    /// Takes over up to `count` events of `group` delivered but not acknowledged for `idle`
    /// (to any consumer), counting the new delivery.
    pub async fn claim_stale(
        &self,
        group: &str,
        consumer: &str,
        idle: Duration,
        count: usize,
    ) -> Result<Vec<Event>, Error> {
        match self {
            NotificationLog::Memory(log) => Ok(log.claim_stale(group, consumer, idle, count)),
            NotificationLog::Redis(log) => log.claim_stale(group, consumer, idle, count).await,
        }
    }

    /// Acknowledges an event for `group`; `false` if it was not pending.
    pub async fn ack(&self, group: &str, event_id: &str) -> Result<bool, Error> {
        match self {
            NotificationLog::Memory(log) => Ok(log.ack(group, event_id)),
            NotificationLog::Redis(log) => log.ack(group, event_id).await,
        }
    }

    /// Moves a pending event of `group` to the group's dead-letter list (and acknowledges it).
    pub async fn dead_letter(&self, group: &str, event: &Event) -> Result<(), Error> {
        match self {
            NotificationLog::Memory(log) => {
                log.dead_letter(group, event);
                Ok(())
            }
            NotificationLog::Redis(log) => log.dead_letter(group, event).await,
        }
    }

    /// The group's dead-lettered events, oldest first.
    pub async fn dead_letters(&self, group: &str, count: usize) -> Result<Vec<Event>, Error> {
        match self {
            NotificationLog::Memory(log) => Ok(log.dead_letters(group, count)),
            NotificationLog::Redis(log) => log.dead_letters(group, count).await,
        }
    }

    /// Removes an event from the dead-letter list and makes it pending again for redelivery.
    pub async fn replay_dead_letter(&self, group: &str, event_id: &str) -> Result<bool, Error> {
        match self {
            NotificationLog::Memory(log) => Ok(log.replay_dead_letter(group, event_id)),
            NotificationLog::Redis(log) => log.replay_dead_letter(group, event_id).await,
        }
    }

    /// Records a subscriber's decision for a notification awaiting one (`debit`, `kyc`).
    pub async fn set_decision(&self, notification_id: &str, decision: &str) -> Result<(), Error> {
        match self {
            NotificationLog::Memory(log) => {
                log.set_decision(notification_id, decision);
                Ok(())
            }
            NotificationLog::Redis(log) => log.set_decision(notification_id, decision).await,
        }
    }

    /// The decision recorded for a notification, if any.
    pub async fn decision(&self, notification_id: &str) -> Result<Option<String>, Error> {
        match self {
            NotificationLog::Memory(log) => Ok(log.decision(notification_id)),
            NotificationLog::Redis(log) => log.decision(notification_id).await,
        }
    }

    /// Remembers that an order came from Withdraw (its `debit` then needs a decision).
    pub async fn remember_withdraw_order(&self, order_id: &str) -> Result<(), Error> {
        match self {
            NotificationLog::Memory(log) => {
                log.remember_withdraw_order(order_id);
                Ok(())
            }
            NotificationLog::Redis(log) => log.remember_withdraw_order(order_id).await,
        }
    }

    pub async fn is_withdraw_order(&self, order_id: &str) -> Result<bool, Error> {
        match self {
            NotificationLog::Memory(log) => Ok(log.is_withdraw_order(order_id)),
            NotificationLog::Redis(log) => log.is_withdraw_order(order_id).await,
        }
    }

    /// Follows this process's appends. A subscriber holds one and waits on it between reads;
    /// an append that happens while it is busy reading is not missed (unlike a bare `Notify`).
    pub fn watch_appends(&self) -> AppendWatch {
        AppendWatch(match self {
            NotificationLog::Memory(log) => log.appends(),
            NotificationLog::Redis(log) => log.appends(),
        })
    }

    /// The order id seen in notifications for a MessageID (recovers an order after a 637).
    pub async fn order_for_message(&self, message_id: &str) -> Result<Option<String>, Error> {
        match self {
            NotificationLog::Memory(log) => Ok(log.order_for_message(message_id)),
            NotificationLog::Redis(log) => log.order_for_message(message_id).await,
        }
    }

    /// The backlog of every consumer group.
    pub async fn backlogs(&self) -> Result<Vec<GroupBacklog>, Error> {
        match self {
            NotificationLog::Memory(log) => Ok(log.backlogs()),
            NotificationLog::Redis(log) => log.backlogs().await,
        }
    }

    /// `true` for exactly one caller per `period` among every replica sharing the store: a
    /// cluster-wide rate limit (Trustly allows Balance once per 15 minutes per merchant, not per
    /// pod).
    /// The poll records (see [`polls`]) on the same backend as this log: Redis records are shared
    /// by every replica, memory ones by this process.
    pub fn polls(&self) -> polls::Polls {
        match self {
            NotificationLog::Memory(_) => polls::Polls::memory(),
            NotificationLog::Redis(log) => {
                let (conn, prefix, timeout) = log.poll_parts();
                polls::Polls::redis(conn, prefix, timeout)
            }
        }
    }

    pub async fn take_turn(&self, name: &str, period: Duration) -> Result<bool, Error> {
        match self {
            NotificationLog::Memory(log) => Ok(log.take_turn(name, period)),
            NotificationLog::Redis(log) => log.take_turn(name, period).await,
        }
    }

    /// Answers when the store works (readiness).
    pub async fn ping(&self) -> Result<(), Error> {
        match self {
            NotificationLog::Memory(_) => Ok(()),
            NotificationLog::Redis(log) => log.ping().await,
        }
    }
}
