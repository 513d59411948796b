//! The notification log: verified notifications appended once (deduplicated on
//! `notificationid`, with the answer to repeat), read by consumer groups with acks, redelivery of
//! stale events and dead letters. Two backends with the same semantics: [`redis`] (a Redis Stream,
//! durable and shared by replicas) and [`memory`] (the embedded default).
//!
//! Knows nothing of decisions, orders, leases, gRPC or HTTP: it stores and hands out [`Event`]s.

pub mod memory;
pub mod redis;

use std::time::Duration;

use bytes::Bytes;

use super::{
    Error,
    connection::Connection,
    orders::MessageIndex,
    wake::{AppendWatch, Wakes},
};

/// A verified notification as the log keeps it: what every event carries, new or stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub notification_id: String,
    pub method: String,
    pub order_id: String,
    pub message_id: String,
    /// Milliseconds since the Unix epoch when the sidecar received it.
    pub received_ms: u64,
    /// The notification exactly as Trustly sent it (the verified raw JSON).
    pub body: Bytes,
}

/// A verified notification to append.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub notification: Notification,
    /// Whether its answer waits for a subscriber's decision (decided once, at intake).
    pub decision_required: bool,
}

/// An event as stored, with its stable id.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The log's id (Redis stream id form `<ms>-<seq>`): stable, ordered, and a cursor.
    pub id: String,
    pub notification: Notification,
    /// How many times it has been handed to a subscriber of this group (1 on first delivery).
    pub delivery_count: u64,
    /// Whether its answer waits for a subscriber's decision, as decided at intake; `None` for an
    /// event stored before the flag was (the reader then applies the rule itself).
    pub decision_required: Option<bool>,
}

/// Who reads events and how many: a consumer of a group, taking at most `count` at a time.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    pub group: &'a str,
    pub consumer: &'a str,
    pub count: usize,
}

impl<'a> Reader<'a> {
    pub fn new(group: &'a str, consumer: &'a str, count: usize) -> Self {
        Self {
            group,
            consumer,
            count,
        }
    }
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

/// The notification log of the configured backend.
#[derive(Clone)]
pub struct Log(Backend);

#[derive(Clone)]
enum Backend {
    Memory(memory::Log),
    Redis(redis::Log),
}

/// Runs one call on the backend: memory calls return their value, Redis calls a future of a
/// `Result`. One `match` per method, written once here.
macro_rules! on_backend {
    ($self:ident, $log:ident => $call:expr) => {
        match &$self.0 {
            Backend::Memory($log) => Ok($call),
            Backend::Redis($log) => $call.await,
        }
    };
}

impl Log {
    /// A memory log indexing MessageIDs into `messages` (shared with the memory `Orders`),
    /// waking `wakes` on each append; events and dedupe records are kept `retention`.
    pub(crate) fn memory(messages: MessageIndex, wakes: Wakes, retention: Duration) -> Self {
        Log(Backend::Memory(memory::Log::new(
            messages, wakes, retention,
        )))
    }

    /// The Redis log on `conn` under `prefix`; events and dedupe records live `retention`. Each
    /// append wakes `wakes` here and is announced to the other replicas.
    pub(crate) fn redis(
        conn: Connection,
        prefix: &str,
        retention: Duration,
        timeout: Duration,
        wakes: Wakes,
    ) -> Self {
        Log(Backend::Redis(redis::Log::new(
            conn, prefix, retention, timeout, wakes,
        )))
    }

    /// `true` when events survive a restart and are shared by replicas.
    pub fn is_durable(&self) -> bool {
        matches!(self.0, Backend::Redis(_))
    }

    /// Appends `event` unless its notificationid was recorded before; stores `reply` (the signed
    /// answer to give every later duplicate) in the same atomic step. `reply` is `None` when the
    /// answer waits for a subscriber's decision; [`Self::set_reply`] fills it in later.
    pub async fn record(&self, event: &NewEvent, reply: Option<&Bytes>) -> Result<Recorded, Error> {
        on_backend!(self, log => log.record(event, reply))
    }

    /// Stores the answer of a notification recorded without one.
    pub async fn set_reply(&self, notification_id: &str, reply: &Bytes) -> Result<(), Error> {
        on_backend!(self, log => log.set_reply(notification_id, reply))
    }

    /// The answers stored for these notifications, in their order, in one round trip: `None` for
    /// one recorded without its answer yet (a decision awaited), or not recorded (or expired).
    pub async fn replies(&self, notification_ids: &[&str]) -> Result<Vec<Option<Bytes>>, Error> {
        on_backend!(self, log => log.replies(notification_ids))
    }

    /// Creates the group at `start` (or repositions it, for `AfterEvent`/`FromTime`).
    pub async fn join(&self, group: &str, start: &Start) -> Result<(), Error> {
        on_backend!(self, log => log.join(group, start))
    }

    /// Events never delivered to the reader's group, waiting at most `block` for the first (Redis
    /// does not wait: its readers wait on [`Self::watch_appends`]).
    pub async fn read_new(&self, reader: Reader<'_>, block: Duration) -> Result<Vec<Event>, Error> {
        match &self.0 {
            Backend::Memory(log) => Ok(log.read_new(reader, block).await),
            Backend::Redis(log) => log.read_new(reader).await,
        }
    }

    /// Takes over events of the reader's group delivered but not acknowledged for `idle` (to any
    /// consumer), counting the new delivery.
    pub async fn claim_stale(
        &self,
        reader: Reader<'_>,
        idle: Duration,
    ) -> Result<Vec<Event>, Error> {
        on_backend!(self, log => log.claim_stale(reader, idle))
    }

    /// Acknowledges an event for `group`; `false` if it was not pending.
    pub async fn ack(&self, group: &str, event_id: &str) -> Result<bool, Error> {
        on_backend!(self, log => log.ack(group, event_id))
    }

    /// Moves a pending event of `group` to the group's dead-letter list (and acknowledges it).
    pub async fn dead_letter(&self, group: &str, event: &Event) -> Result<(), Error> {
        on_backend!(self, log => log.dead_letter(group, event))
    }

    /// The group's dead-lettered events, oldest first.
    pub async fn dead_letters(&self, group: &str, count: usize) -> Result<Vec<Event>, Error> {
        on_backend!(self, log => log.dead_letters(group, count))
    }

    /// Removes an event from the dead-letter list and makes it pending again for redelivery.
    pub async fn replay_dead_letter(&self, group: &str, event_id: &str) -> Result<bool, Error> {
        on_backend!(self, log => log.replay_dead_letter(group, event_id))
    }

    /// Follows appends (this replica's, and the others' while their announcements are heard).
    /// A subscriber holds one and waits on it between reads; an append that happens while it is
    /// busy reading is not missed (unlike a bare `Notify`).
    pub fn watch_appends(&self) -> AppendWatch {
        match &self.0 {
            Backend::Memory(log) => log.wakes().watch_appends(),
            Backend::Redis(log) => log.wakes().watch_appends(),
        }
    }

    /// The backlog of every consumer group.
    pub async fn backlogs(&self) -> Result<Vec<GroupBacklog>, Error> {
        on_backend!(self, log => log.backlogs())
    }

    /// Answers when the store works (readiness).
    pub async fn ping(&self) -> Result<(), Error> {
        match &self.0 {
            Backend::Memory(_) => Ok(()),
            Backend::Redis(log) => log.ping().await,
        }
    }
}
