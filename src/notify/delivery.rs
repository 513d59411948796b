//! The subscriber engine: consumer groups read the notification log with at-least-once
//! delivery: acks, redelivery after the ack deadline (claims), dead letters after too many
//! deliveries, method filters and heartbeats. It hands out typed [`Item`]s on a bounded channel
//! per subscriber; one that falls behind is closed with [`Closed::TooSlow`] (its events stay
//! pending and are redelivered), so a slow subscriber never slows intake.
//!
//! Knows nothing of gRPC (the adapter maps items to its messages) nor of HTTP.

use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, warn};

use super::decisions::{self, Decision};
use crate::{
    metrics,
    store::{self, Event, Reader, Start, Store},
    trustly::{notification::Kind, wire},
};

/// Events a subscriber may have in flight in its buffer before it counts as too slow.
pub const SUBSCRIBER_BUFFER: usize = 256;
/// Events read from the log per round trip.
const READ_BATCH: usize = 64;
/// Longest wait for events appended by other replicas while their wake-ups cannot reach this one
/// (its wake-up subscription is down); appends otherwise wake subscribers at once.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest time between two looks for events whose ack deadline passed (redelivery is at most
/// this late, or a quarter of the ack deadline when that is shorter).
const MAX_CLAIM_INTERVAL: Duration = Duration::from_secs(1);
/// Most dead letters listed at once.
pub const MAX_PAGE: usize = 1000;

/// Delivery settings.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub ack_deadline: Duration,
    pub max_deliveries: u64,
    /// An idle stream gets a heartbeat this often, so proxies and load balancers keep it open.
    pub heartbeat_interval: Duration,
}

/// A stored notification as a subscriber receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub event_id: String,
    pub notification_id: String,
    pub method: String,
    pub order_id: String,
    pub message_id: String,
    pub received: SystemTime,
    pub delivery_count: u64,
    /// The answer to Trustly waits for this subscriber's decision (decided at intake).
    pub decision_required: bool,
    pub kind: Kind,
}

/// What a subscription hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Notification(Box<Notification>),
    /// Nothing to deliver for a while: keeps the stream open.
    Heartbeat(SystemTime),
}

/// Why a subscription was closed (the last thing it hands out).
#[derive(Debug, thiserror::Error)]
pub enum Closed {
    #[error("subscriber too slow")]
    TooSlow,
    #[error("notification store unavailable")]
    Store(#[source] store::Error),
    /// The sidecar drains: a drain, not the end of the log, so the subscriber reconnects.
    #[error("sidecar shutting down")]
    ShuttingDown,
}

/// The delivery use cases over one store.
#[derive(Clone)]
pub struct Deliveries {
    store: Store,
    delivery: Delivery,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Deliveries {
    pub fn new(
        store: Store,
        delivery: Delivery,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            delivery,
            tasks,
            shutdown,
        }
    }

    /// Joins `group` at `start` and starts a subscriber for it (only `methods`, when not empty).
    pub async fn subscribe(
        &self,
        group: String,
        start: &Start,
        methods: Vec<String>,
    ) -> Result<mpsc::Receiver<Result<Item, Closed>>, store::Error> {
        self.store.log.join(&group, start).await?;
        // One slot more than the buffer: it is kept for the `Closed` that ends a subscriber that
        // fell behind.
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER + 1);
        let subscriber = Subscriber {
            store: self.store.clone(),
            delivery: self.delivery.clone(),
            group,
            consumer: uuid::Uuid::new_v4().to_string(),
            methods,
            tx,
            shutdown: self.shutdown.clone(),
        };
        self.tasks.spawn(subscriber.run());
        Ok(rx)
    }

    /// Records `decision` (when given) for intake, then acknowledges the event for `group`;
    /// `false` when it was not pending.
    pub async fn acknowledge(
        &self,
        group: &str,
        event_id: &str,
        decision: Option<(&str, &Decision)>,
    ) -> Result<bool, store::Error> {
        if let Some((notification_id, decision)) = decision {
            decisions::record(&self.store.decisions, notification_id, decision).await?;
        }
        self.store.log.ack(group, event_id).await
    }

    /// Up to `count` dead letters of `group`, oldest first.
    pub async fn dead_letters(
        &self,
        group: &str,
        count: usize,
    ) -> Result<Vec<Notification>, store::Error> {
        let events = self.store.log.dead_letters(group, count).await?;
        let mut notifications = Vec::with_capacity(events.len());
        for event in events {
            notifications.push(notification(&self.store, event).await);
        }
        Ok(notifications)
    }

    /// Makes a dead letter pending again; `false` when `group` has no such dead letter.
    pub async fn replay_dead_letter(
        &self,
        group: &str,
        event_id: &str,
    ) -> Result<bool, store::Error> {
        self.store.log.replay_dead_letter(group, event_id).await
    }
}

/// An event as the typed notification subscribers receive.
async fn notification(store: &Store, event: Event) -> Notification {
    let logged = event.notification;
    let data = wire::parse_notification(&logged.body)
        .map(|n| n.data)
        .unwrap_or(Value::Null);
    let decision_required = match event.decision_required {
        Some(required) => required,
        // Stored before intake recorded the flag: the rule, applied here.
        None => {
            let from_withdraw = logged.method == "debit"
                && store
                    .orders
                    .is_withdraw(&logged.order_id)
                    .await
                    .unwrap_or(false);
            decisions::required(&logged.method, from_withdraw)
        }
    };
    Notification {
        kind: Kind::parse(&logged.method, &data),
        received: std::time::UNIX_EPOCH + Duration::from_millis(logged.received_ms),
        event_id: event.id,
        notification_id: logged.notification_id,
        method: logged.method,
        order_id: logged.order_id,
        message_id: logged.message_id,
        delivery_count: event.delivery_count,
        decision_required,
    }
}

/// One subscription: the producer side of its stream.
struct Subscriber {
    store: Store,
    delivery: Delivery,
    group: String,
    consumer: String,
    methods: Vec<String>,
    tx: mpsc::Sender<Result<Item, Closed>>,
    shutdown: CancellationToken,
}

/// What a round did: how many events it sent, and whether a whole batch came (more may wait).
struct Round {
    sent: usize,
    full: bool,
}

/// Why a subscription ended.
enum End {
    Gone,
    Closed(Closed),
}

impl Subscriber {
    async fn run(self) {
        metrics::global().subscribers.inc();
        self.serve().await;
        if self.shutdown.is_cancelled() {
            // A stream ending with OK would look like the end of the log to its subscriber.
            self.close(End::Closed(Closed::ShuttingDown));
        }
        metrics::global().subscribers.dec();
    }

    async fn serve(&self) {
        let mut appends = self.store.log.watch_appends();
        // Stale events only exist after an ack deadline: looking for them on every round would
        // add a Redis round trip to every delivery for nothing.
        let claim_every = (self.delivery.ack_deadline / 4).min(MAX_CLAIM_INTERVAL);
        let now = tokio::time::Instant::now();
        let (mut last_sent, mut last_read, mut next_claim) = (now, now, now);
        // New events are read when an append woke us (or may have) and when the poll is due;
        // a round only due for claims or a heartbeat does not read them.
        let mut read = true;
        loop {
            if self.tx.is_closed() || self.shutdown.is_cancelled() {
                return;
            }
            let now = tokio::time::Instant::now();
            let claim = now >= next_claim;
            if claim {
                next_claim = now + claim_every;
            }
            read = read || now >= last_read + self.poll_every();
            if read {
                last_read = now;
            }
            match self.round(claim, read).await {
                Ok(Round {
                    sent: 0,
                    full: false,
                }) => {}
                Ok(round) => {
                    if round.sent > 0 {
                        last_sent = tokio::time::Instant::now();
                    }
                    // More may be waiting (a backlog drains a batch per round): read again as
                    // soon as the stream has room for a whole batch, instead of sleeping.
                    tokio::select! {
                        room = self.tx.reserve_many(READ_BATCH.min(self.tx.max_capacity())) => match room {
                            Ok(_) => { read = true; continue },
                            Err(_) => return,
                        },
                        () = self.shutdown.cancelled() => return,
                    }
                }
                Err(end) => return self.close(end),
            }
            if last_sent.elapsed() >= self.delivery.heartbeat_interval {
                if let Err(end) = self.send(Item::Heartbeat(SystemTime::now())) {
                    return self.close(end);
                }
                last_sent = tokio::time::Instant::now();
            }
            let until = (last_read + self.poll_every())
                .min(next_claim)
                .min(last_sent + self.delivery.heartbeat_interval);
            read = tokio::select! {
                woken = appends.wait_until(until) => woken,
                () = self.shutdown.cancelled() => return,
                () = self.tx.closed() => return,
            };
        }
    }

    /// How long the subscriber may go without reading new events: [`POLL_INTERVAL`] while other
    /// replicas' appends cannot wake it, a long safety net while they can.
    fn poll_every(&self) -> Duration {
        self.store.wakes.poll_every(POLL_INTERVAL)
    }

    /// Ends the stream: [`Closed::TooSlow`] for a subscriber that fell behind, [`Closed::Store`]
    /// when the store failed, [`Closed::ShuttingDown`] at shutdown; the subscriber reconnects and
    /// resumes from the group.
    fn close(&self, end: End) {
        match end {
            End::Gone => {}
            End::Closed(closed) => {
                match &closed {
                    Closed::TooSlow => {
                        warn!(group = %self.group, consumer = %self.consumer, "subscriber too slow; closing its stream (it resumes from the group)");
                    }
                    Closed::Store(error) => {
                        debug!(%error, "notification store failed; closing the stream");
                    }
                    Closed::ShuttingDown => {}
                }
                let _ = self.tx.try_send(Err(closed));
            }
        }
    }

    /// One pass: redeliver what went stale (when `claim`), then what is new (when `read`).
    async fn round(&self, claim: bool, read: bool) -> Result<Round, End> {
        let reader = Reader::new(&self.group, &self.consumer, READ_BATCH);
        let stale = if claim {
            self.store
                .log
                .claim_stale(reader, self.delivery.ack_deadline)
                .await
                .map_err(|e| End::Closed(Closed::Store(e)))?
        } else {
            Vec::new()
        };
        let fresh = if read {
            self.store
                .log
                .read_new(reader, Duration::ZERO)
                .await
                .map_err(|e| End::Closed(Closed::Store(e)))?
        } else {
            Vec::new()
        };
        // A full batch (even one filtered out or dead-lettered) may have more behind it.
        let full = stale.len() == READ_BATCH || fresh.len() == READ_BATCH;
        let mut sent = 0;
        for event in stale.into_iter().chain(fresh) {
            if event.delivery_count > self.delivery.max_deliveries {
                warn!(group = %self.group, event_id = %event.id, notification_id = %event.notification.notification_id, deliveries = event.delivery_count, "moving event to dead letters");
                self.store
                    .log
                    .dead_letter(&self.group, &event)
                    .await
                    .map_err(|e| End::Closed(Closed::Store(e)))?;
                metrics::global().dead_lettered(&self.group);
                continue;
            }
            if !self.methods.is_empty() && !self.methods.contains(&event.notification.method) {
                self.store
                    .log
                    .ack(&self.group, &event.id)
                    .await
                    .map_err(|e| End::Closed(Closed::Store(e)))?;
                continue;
            }
            let redelivery = event.delivery_count > 1;
            let notification = notification(&self.store, event).await;
            self.send(Item::Notification(Box::new(notification)))?;
            metrics::global().delivered(&self.group, redelivery);
            sent += 1;
        }
        Ok(Round { sent, full })
    }

    fn send(&self, item: Item) -> Result<(), End> {
        // Keep the last slot for the closing status.
        if self.tx.capacity() <= 1 {
            return Err(End::Closed(Closed::TooSlow));
        }
        self.tx.try_send(Ok(item)).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => End::Closed(Closed::TooSlow),
            mpsc::error::TrySendError::Closed(_) => End::Gone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewEvent, log};
    use bytes::Bytes;
    use tokio::sync::mpsc;

    async fn append(log: &store::Log, i: u64, method: &str) {
        let event = NewEvent {
            notification: log::Notification {
                notification_id: format!("n{i}"),
                method: method.into(),
                order_id: "1".into(),
                message_id: "m".into(),
                received_ms: 1_000 + i,
                body: Bytes::from_static(b"{}"),
            },
            decision_required: false,
        };
        log.record(&event, Some(&Bytes::from_static(b"ok")))
            .await
            .expect("record");
    }

    /// A subscriber of group `g` (joined at its position) sending to `tx`.
    fn subscriber(store: Store, tx: Sender, methods: Vec<String>) -> Subscriber {
        Subscriber {
            store,
            delivery: Delivery {
                ack_deadline: Duration::from_millis(1),
                max_deliveries: 10,
                heartbeat_interval: Duration::from_secs(3600),
            },
            group: "g".into(),
            consumer: "c".into(),
            methods,
            tx,
            shutdown: CancellationToken::new(),
        }
    }

    type Sender = mpsc::Sender<Result<Item, Closed>>;

    #[tokio::test]
    async fn a_backlog_filtered_out_whole_batches_at_a_time_drains_without_waiting() {
        let store = Store::memory();
        let log = store.log.clone();
        log.join("g", &Start::GroupPosition).await.expect("join");
        let skipped = READ_BATCH as u64 * 3;
        for i in 0..skipped {
            append(&log, i, "credit").await;
        }
        append(&log, skipped, "pending").await;
        let (tx, mut rx) = mpsc::channel(8);
        let subscriber = subscriber(store, tx, vec!["pending".into()]);
        let task = tokio::spawn(subscriber.run());
        // Each full batch is read again at once, not after a poll interval.
        let first = tokio::time::timeout(Duration::from_millis(500), rx.recv())
            .await
            .expect("delivered without waiting for a poll");
        assert!(
            matches!(first, Some(Ok(Item::Notification(n))) if n.method == "pending"),
            "only the method asked for"
        );
        task.abort();
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_closed_with_resource_exhausted_and_loses_nothing() {
        let store = Store::memory();
        let log = store.log.clone();
        log.join("g", &Start::GroupPosition).await.expect("join");
        for i in 0..10u64 {
            append(&log, i, "credit").await;
        }
        // A buffer of 3 + the slot kept for the closing status; nobody reads it.
        let (tx, mut rx) = mpsc::channel(4);
        let subscriber = subscriber(store, tx, Vec::new());
        tokio::time::timeout(Duration::from_secs(5), subscriber.run())
            .await
            .expect("the subscriber is closed, not blocked");
        let mut items = Vec::new();
        while let Ok(item) = rx.try_recv() {
            items.push(item);
        }
        assert_eq!(
            items.len(),
            4,
            "three notifications, then the closing status"
        );
        assert!(items[..3].iter().all(Result::is_ok));
        assert!(matches!(items[3], Err(Closed::TooSlow)));
        // Everything it was handed but never acknowledged is still pending for the group.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let pending = log
            .claim_stale(Reader::new("g", "next", 100), Duration::from_millis(1))
            .await
            .expect("claim");
        let unread = log
            .read_new(Reader::new("g", "next", 100), Duration::ZERO)
            .await
            .expect("read");
        assert_eq!(pending.len() + unread.len(), 10, "no event lost");
    }
}
