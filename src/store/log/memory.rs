//! The in-memory notification log: the embedded default. Same semantics as the Redis log
//! (dedupe, consumer groups, pending entries, redelivery, dead letters), but not durable and not
//! shared between replicas. Knows nothing of decisions, leases or who reads the events.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use parking_lot::Mutex;

use super::{Event, GroupBacklog, NewEvent, Reader, Recorded, Start};
use crate::store::{now_ms, orders::MessageIndex, wake::Wakes};

/// Events kept before the oldest are dropped: a memory bound for a long-running sandbox.
pub const MAX_EVENTS: usize = 100_000;

/// A stream id `<ms>-<seq>`, ordered like Redis's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Id(u64, u64);

impl Id {
    fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-').unwrap_or((text, "0"));
        Some(Id(ms.parse().ok()?, seq.parse().ok()?))
    }

    fn render(self) -> String {
        format!("{}-{}", self.0, self.1)
    }
}

struct Pending {
    consumer: String,
    deliveries: u64,
    since: Instant,
}

#[derive(Default)]
struct Group {
    last_delivered: Id,
    pending: BTreeMap<Id, Pending>,
    dead: BTreeMap<Id, Event>,
}

#[derive(Default)]
struct Inner {
    last_id: Id,
    events: BTreeMap<Id, NewEvent>,
    /// The dedupe records: the answer per notificationid (`None` while a decision is awaited).
    replies: HashMap<String, Option<Bytes>>,
    /// (when recorded in ms, notificationid) in recording order: the dedupe records' expiry.
    recorded: VecDeque<(u64, String)>,
    groups: HashMap<String, Group>,
    /// How long events and dedupe records are kept (as on Redis).
    retention: Duration,
}

impl Inner {
    /// Drops, as Redis does, the events received more than `retention` before `received_ms` (the
    /// event being appended: Redis trims with `MINID`) and the dedupe records made more than
    /// `retention` before `now_ms` (their `EX`). Each is dropped once, so the cost is amortized
    /// over the appends.
    fn expire(&mut self, received_ms: u64, now_ms: u64) {
        let retention_ms = u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX);
        let oldest_event = received_ms.saturating_sub(retention_ms);
        while self
            .events
            .first_key_value()
            .is_some_and(|(id, _)| id.0 < oldest_event)
        {
            self.events.pop_first();
        }
        let oldest = now_ms.saturating_sub(retention_ms);
        while self.recorded.front().is_some_and(|(ms, _)| *ms < oldest) {
            if let Some((_, notification_id)) = self.recorded.pop_front() {
                self.replies.remove(&notification_id);
            }
        }
    }
}

/// The in-memory log. Cloning shares it.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Mutex<Inner>>,
    wakes: Wakes,
    /// MessageID → order id, written with each event and read by [`crate::store::Orders`].
    messages: MessageIndex,
}

impl Log {
    /// A log that indexes MessageIDs into `messages` (shared with the memory `Orders`), wakes
    /// `wakes` on each append, and keeps events and dedupe records `retention`.
    pub(crate) fn new(messages: MessageIndex, wakes: Wakes, retention: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                retention,
                ..Inner::default()
            })),
            wakes,
            messages,
        }
    }

    pub(super) fn record(&self, event: &NewEvent, reply: Option<&Bytes>) -> Recorded {
        self.record_at(event, reply, now_ms())
    }

    /// [`Self::record`] at `now_ms` (the dedupe record's time, as Redis's `SET EX` counts it).
    fn record_at(&self, event: &NewEvent, reply: Option<&Bytes>, now_ms: u64) -> Recorded {
        let n = &event.notification;
        let mut inner = self.inner.lock();
        inner.expire(n.received_ms, now_ms);
        if let Some(reply) = inner.replies.get(&n.notification_id) {
            return Recorded::Duplicate {
                reply: reply.clone(),
            };
        }
        let id = if n.received_ms > inner.last_id.0 {
            Id(n.received_ms, 0)
        } else {
            Id(inner.last_id.0, inner.last_id.1 + 1)
        };
        inner.last_id = id;
        inner.events.insert(id, event.clone());
        if !n.message_id.is_empty() && !n.order_id.is_empty() {
            self.messages
                .lock()
                .insert(n.message_id.clone(), n.order_id.clone());
        }
        inner
            .replies
            .insert(n.notification_id.clone(), reply.cloned());
        inner
            .recorded
            .push_back((now_ms, n.notification_id.clone()));
        while inner.events.len() > MAX_EVENTS {
            inner.events.pop_first();
        }
        drop(inner);
        self.wakes.appended();
        Recorded::New {
            event_id: id.render(),
        }
    }

    pub(super) fn wakes(&self) -> &Wakes {
        &self.wakes
    }

    pub(super) fn set_reply(&self, notification_id: &str, reply: &Bytes) {
        self.inner
            .lock()
            .replies
            .insert(notification_id.to_owned(), Some(reply.clone()));
    }

    pub(super) fn replies(&self, notification_ids: &[&str]) -> Vec<Option<Bytes>> {
        let inner = self.inner.lock();
        notification_ids
            .iter()
            .map(|id| inner.replies.get(*id).cloned().flatten())
            .collect()
    }

    pub(super) fn join(&self, group: &str, start: &Start) {
        let mut inner = self.inner.lock();
        let last_id = inner.last_id;
        let exists = inner.groups.contains_key(group);
        let position = match start {
            Start::New if exists => return,
            Start::GroupPosition if exists => return,
            Start::New => last_id,
            Start::GroupPosition => Id::default(),
            Start::AfterEvent(id) => Id::parse(id).unwrap_or(last_id),
            Start::FromTime(ms) => Id(ms.saturating_sub(1), u64::MAX),
        };
        inner
            .groups
            .entry(group.to_owned())
            .or_default()
            .last_delivered = position;
    }

    pub(super) async fn read_new(&self, reader: Reader<'_>, block: Duration) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            // Registered before looking, so an append between the look and the wait wakes us.
            let mut appended = self.wakes.watch_appends();
            let events = self.take_new(reader);
            if !events.is_empty() {
                return events;
            }
            if !appended.wait_until(deadline).await {
                return Vec::new();
            }
        }
    }

    fn take_new(&self, reader: Reader<'_>) -> Vec<Event> {
        let mut inner = self.inner.lock();
        let Inner { events, groups, .. } = &mut *inner;
        let group = groups.entry(reader.group.to_owned()).or_default();
        let fresh: Vec<(Id, NewEvent)> = events
            .range((
                std::ops::Bound::Excluded(group.last_delivered),
                std::ops::Bound::Unbounded,
            ))
            .take(reader.count)
            .map(|(id, event)| (*id, event.clone()))
            .collect();
        fresh
            .into_iter()
            .map(|(id, event)| {
                group.last_delivered = id;
                group.pending.insert(
                    id,
                    Pending {
                        consumer: reader.consumer.to_owned(),
                        deliveries: 1,
                        since: Instant::now(),
                    },
                );
                stored(id, event, 1)
            })
            .collect()
    }

    pub(super) fn claim_stale(&self, reader: Reader<'_>, idle: Duration) -> Vec<Event> {
        let mut inner = self.inner.lock();
        let Inner { events, groups, .. } = &mut *inner;
        let Some(group) = groups.get_mut(reader.group) else {
            return Vec::new();
        };
        let now = Instant::now();
        let stale: Vec<Id> = group
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.since) >= idle)
            .map(|(id, _)| *id)
            .take(reader.count)
            .collect();
        let mut claimed = Vec::new();
        for id in stale {
            let Some(event) = events.get(&id) else {
                group.pending.remove(&id); // trimmed away: nothing left to deliver
                continue;
            };
            if let Some(pending) = group.pending.get_mut(&id) {
                pending.deliveries += 1;
                pending.consumer = reader.consumer.to_owned();
                pending.since = now;
                claimed.push(stored(id, event.clone(), pending.deliveries));
            }
        }
        claimed
    }

    pub(super) fn ack(&self, group: &str, event_id: &str) -> bool {
        let Some(id) = Id::parse(event_id) else {
            return false;
        };
        self.inner
            .lock()
            .groups
            .get_mut(group)
            .is_some_and(|g| g.pending.remove(&id).is_some())
    }

    pub(super) fn dead_letter(&self, group: &str, event: &Event) {
        let Some(id) = Id::parse(&event.id) else {
            return;
        };
        let mut inner = self.inner.lock();
        let group = inner.groups.entry(group.to_owned()).or_default();
        group.pending.remove(&id);
        group.dead.insert(id, event.clone());
    }

    pub(super) fn dead_letters(&self, group: &str, count: usize) -> Vec<Event> {
        self.inner
            .lock()
            .groups
            .get(group)
            .map(|g| g.dead.values().take(count).cloned().collect())
            .unwrap_or_default()
    }

    pub(super) fn replay_dead_letter(&self, group: &str, event_id: &str) -> bool {
        let Some(id) = Id::parse(event_id) else {
            return false;
        };
        let mut inner = self.inner.lock();
        let Some(group) = inner.groups.get_mut(group) else {
            return false;
        };
        if group.dead.remove(&id).is_none() {
            return false;
        }
        // Pending with no deliveries and "long idle": the next claim hands it out at once.
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(3600))
            .unwrap_or_else(Instant::now);
        group.pending.insert(
            id,
            Pending {
                consumer: String::new(),
                deliveries: 0,
                since: long_ago,
            },
        );
        true
    }

    pub(super) fn backlogs(&self) -> Vec<GroupBacklog> {
        let inner = self.inner.lock();
        let mut backlogs: Vec<GroupBacklog> = inner
            .groups
            .iter()
            .map(|(name, group)| GroupBacklog {
                group: name.clone(),
                undelivered: Some(
                    inner
                        .events
                        .range((
                            std::ops::Bound::Excluded(group.last_delivered),
                            std::ops::Bound::Unbounded,
                        ))
                        .count() as u64,
                ),
                pending: group.pending.len() as u64,
            })
            .collect();
        backlogs.sort_by(|a, b| a.group.cmp(&b.group));
        backlogs
    }
}

fn stored(id: Id, event: NewEvent, delivery_count: u64) -> Event {
    Event {
        id: id.render(),
        notification: event.notification,
        delivery_count,
        decision_required: Some(event.decision_required),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::log::Notification;

    const HOUR_MS: u64 = 3_600_000;

    fn event(notification_id: &str, received_ms: u64) -> NewEvent {
        NewEvent {
            notification: Notification {
                notification_id: notification_id.into(),
                method: "credit".into(),
                order_id: "o-1".into(),
                message_id: String::new(),
                received_ms,
                body: Bytes::from_static(b"{}"),
            },
            decision_required: false,
        }
    }

    #[test]
    fn dedupe_records_and_events_expire_after_the_retention() {
        let log = Log::new(
            MessageIndex::default(),
            Wakes::memory(),
            Duration::from_secs(24 * 3600),
        );
        let reply = Bytes::from_static(b"ok");
        let first = log.record_at(&event("n-1", 0), Some(&reply), 0);
        assert!(matches!(first, Recorded::New { .. }));
        let within = log.record_at(&event("n-1", 20 * HOUR_MS), None, 20 * HOUR_MS);
        assert_eq!(within, Recorded::Duplicate { reply: Some(reply) });
        // Past the retention the record is gone (as its Redis key would be) and so is the event.
        let later = 25 * HOUR_MS;
        let again = log.record_at(&event("n-1", later), None, later);
        assert!(matches!(again, Recorded::New { .. }));
        let inner = log.inner.lock();
        assert_eq!((inner.replies.len(), inner.recorded.len()), (1, 1));
        assert_eq!(
            inner.events.keys().map(|id| id.0).collect::<Vec<_>>(),
            [later]
        );
    }
}
