//! Watching orders: a consumer group reads the order change feed (one event per fact the book
//! added, see [`crate::store::order_states`]) and each watcher gets, per change, the order folded
//! now and the transition the fact caused. A change counts as delivered once it is handed to the
//! watcher's stream: it is acknowledged for the group right after, and a watcher that comes back
//! with the resume token of the last change it handled repositions its group to just after it.
//! Heartbeats keep an idle stream open; a watcher that falls behind its bounded buffer is closed
//! (it resumes with its token or from the group).
//!
//! Knows nothing of gRPC (the adapter maps items to its messages) nor of HTTP.

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, warn};

use super::{Kind, Order, OrderBook, Transition};
use crate::store::{self, Event, Log, Reader, Start, Wakes};

/// Changes a watcher may have in flight in its buffer before it counts as too slow (as many as a
/// notification subscriber).
pub const WATCHER_BUFFER: usize = 256;
/// Changes read from the feed per round trip.
const READ_BATCH: usize = 64;
/// Longest wait for changes other replicas appended while their wake-ups cannot reach this one;
/// appends otherwise wake watchers at once.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// A change read but not acknowledged for this long is taken over by another watcher of the
/// group. A live watcher acknowledges each change right after sending it, within its round (a
/// few store calls per change), so only a watcher whose client vanished mid-round or whose replica
/// died leaves one; 5 s is far above a round and keeps such a change from waiting long.
const STALE_AFTER: Duration = Duration::from_secs(5);
/// How often a watcher looks for such changes: one extra round trip per second, like a
/// notification subscriber's claims.
const CLAIM_EVERY: Duration = Duration::from_secs(1);
/// Longest resume token accepted (a stream id is two u64s and a dash: 41 characters).
const MAX_TOKEN_CHARS: usize = 41;

/// Why a watch could not start, or why it ended (the last thing its stream hands out).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the resume token is not one this service issued")]
    ResumeToken,
    #[error("order store unavailable")]
    Store(#[from] store::Error),
    #[error("order store unavailable")]
    Book(#[from] super::Error),
    #[error("watcher too slow")]
    TooSlow,
    /// The sidecar drains: the watcher reconnects (to another replica).
    #[error("sidecar shutting down")]
    ShuttingDown,
}

/// Which orders a watcher wants (empty / `None`: any).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub kind: Option<Kind>,
    pub end_user_id: String,
}

impl Filter {
    fn matches(&self, order: &Order) -> bool {
        self.kind.is_none_or(|kind| kind == order.kind)
            && (self.end_user_id.is_empty() || self.end_user_id == order.end_user_id)
    }
}

/// One fact added to an order, as a watcher receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The feed's event id: where the group resumes from (opaque to clients).
    pub resume_token: String,
    pub fact_id: String,
    /// The order folded when the change is sent (later facts already included).
    pub order: Order,
    /// The transition the fact caused, if any.
    pub transition: Option<Transition>,
}

/// What a watch hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Change(Box<Change>),
    /// Nothing to send for a while: keeps the stream open.
    Heartbeat(SystemTime),
}

/// The watch use case over one order book.
#[derive(Clone)]
pub struct Watches {
    book: OrderBook,
    wakes: Wakes,
    heartbeat_interval: Duration,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Watches {
    /// Watchers wait on `wakes` (the store's) between reads, send a heartbeat after
    /// `heartbeat_interval` idle, and run on `tasks` until `shutdown`.
    pub fn new(
        book: OrderBook,
        wakes: Wakes,
        heartbeat_interval: Duration,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            book,
            wakes,
            heartbeat_interval,
            tasks,
            shutdown,
        }
    }

    /// Joins `group` (a new group starts at the oldest retained change; `resume_token`, when not
    /// empty, repositions it to just after that change) and starts a watcher of it.
    pub async fn watch(
        &self,
        group: String,
        resume_token: &str,
        filter: Filter,
    ) -> Result<mpsc::Receiver<Result<Item, Error>>, Error> {
        let start = match resume_token {
            "" => Start::GroupPosition,
            token => Start::AfterEvent(check_token(token)?.to_owned()),
        };
        self.book.changes().join(&group, &start).await?;
        // One slot more than the buffer, kept for the error that ends a watcher.
        let (tx, rx) = mpsc::channel(WATCHER_BUFFER + 1);
        let watcher = Watcher {
            feed: self.book.changes().clone(),
            book: self.book.clone(),
            wakes: self.wakes.clone(),
            heartbeat_interval: self.heartbeat_interval,
            group,
            consumer: uuid::Uuid::new_v4().to_string(),
            filter,
            tx,
            shutdown: self.shutdown.clone(),
        };
        self.tasks.spawn(watcher.run());
        Ok(rx)
    }
}

/// A resume token is a feed event id, `<ms>-<seq>` in decimal.
fn check_token(token: &str) -> Result<&str, Error> {
    let number = |text: &str| !text.is_empty() && text.parse::<u64>().is_ok();
    match token.split_once('-') {
        Some((ms, seq)) if token.len() <= MAX_TOKEN_CHARS && number(ms) && number(seq) => Ok(token),
        _ => Err(Error::ResumeToken),
    }
}

/// One watch: the producer side of its stream.
struct Watcher {
    feed: Log,
    book: OrderBook,
    wakes: Wakes,
    heartbeat_interval: Duration,
    group: String,
    consumer: String,
    filter: Filter,
    tx: mpsc::Sender<Result<Item, Error>>,
    shutdown: CancellationToken,
}

/// What a round did: whether it sent anything, and whether a whole batch came (more may wait).
struct Round {
    sent: bool,
    full: bool,
}

/// Why a watch stopped early: its client went away, or it must end with an error.
enum End {
    Gone,
    Closed(Error),
}

impl From<store::Error> for End {
    fn from(error: store::Error) -> Self {
        End::Closed(Error::Store(error))
    }
}

impl From<super::Error> for End {
    fn from(error: super::Error) -> Self {
        End::Closed(Error::Book(error))
    }
}

impl Watcher {
    async fn run(self) {
        let end = match self.serve().await {
            Err(End::Closed(error)) => error,
            // Drained: a stream ending with OK would look like the end of the feed.
            Ok(()) if self.shutdown.is_cancelled() => Error::ShuttingDown,
            Ok(()) | Err(End::Gone) => return,
        };
        match &end {
            Error::TooSlow => {
                warn!(group = %self.group, consumer = %self.consumer, "order watcher too slow; closing its stream");
            }
            Error::Store(_) | Error::Book(_) => {
                debug!(error = %end, "order store failed; closing the watch");
            }
            Error::ResumeToken | Error::ShuttingDown => {}
        }
        let _ = self.tx.try_send(Err(end));
    }

    /// Sends changes until the client goes or the sidecar drains (`Ok`), or it must end.
    async fn serve(&self) -> Result<(), End> {
        let mut appends = self.feed.watch_appends();
        let now = tokio::time::Instant::now();
        let (mut last_sent, mut next_claim) = (now, now);
        loop {
            if self.tx.is_closed() || self.shutdown.is_cancelled() {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            let claim = now >= next_claim;
            if claim {
                next_claim = now + CLAIM_EVERY;
            }
            let round = self.round(claim).await?;
            if round.sent {
                last_sent = tokio::time::Instant::now();
            }
            if round.full {
                // More is waiting: read again once the stream has room for a whole batch.
                tokio::select! {
                    room = self.tx.reserve_many(READ_BATCH) => match room {
                        Ok(_) => continue,
                        Err(_) => return Ok(()),
                    },
                    () = self.shutdown.cancelled() => return Ok(()),
                }
            }
            if last_sent.elapsed() >= self.heartbeat_interval {
                self.send(Item::Heartbeat(SystemTime::now()))?;
                last_sent = tokio::time::Instant::now();
            }
            let until = (tokio::time::Instant::now() + self.feed_poll_every())
                .min(next_claim)
                .min(last_sent + self.heartbeat_interval);
            tokio::select! {
                _ = appends.wait_until(until) => {}
                () = self.shutdown.cancelled() => return Ok(()),
                () = self.tx.closed() => return Ok(()),
            }
        }
    }

    /// How long the watcher may go without reading: short while other replicas' appends cannot
    /// wake it, a long safety net while they can.
    fn feed_poll_every(&self) -> Duration {
        self.wakes.poll_every(POLL_INTERVAL)
    }

    /// One pass: take over stale changes (when `claim`), read new ones, send and acknowledge each.
    async fn round(&self, claim: bool) -> Result<Round, End> {
        let reader = Reader::new(&self.group, &self.consumer, READ_BATCH);
        let stale = if claim {
            self.feed.claim_stale(reader, STALE_AFTER).await?
        } else {
            Vec::new()
        };
        let fresh = self.feed.read_new(reader, Duration::ZERO).await?;
        let full = stale.len() == READ_BATCH || fresh.len() == READ_BATCH;
        let mut sent = false;
        for event in stale.into_iter().chain(fresh) {
            if let Some(change) = self.change(&event).await? {
                self.send(Item::Change(Box::new(change)))?;
                sent = true;
            }
            self.feed.ack(&self.group, &event.id).await?;
        }
        Ok(Round { sent, full })
    }

    /// The change an event announces, unless the order is gone or filtered out.
    async fn change(&self, event: &Event) -> Result<Option<Change>, super::Error> {
        let announced = &event.notification;
        let Some(order) = self.book.get(&announced.order_id).await? else {
            return Ok(None);
        };
        if !self.filter.matches(&order) {
            return Ok(None);
        }
        let transition = order
            .transitions
            .iter()
            .find(|t| t.fact_id == announced.notification_id)
            .cloned();
        Ok(Some(Change {
            resume_token: event.id.clone(),
            fact_id: announced.notification_id.clone(),
            order,
            transition,
        }))
    }

    fn send(&self, item: Item) -> Result<(), End> {
        // Keep the last slot for the error that ends the stream.
        if self.tx.capacity() <= 1 {
            return Err(End::Closed(Error::TooSlow));
        }
        self.tx.try_send(Ok(item)).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => End::Closed(Error::TooSlow),
            mpsc::error::TrySendError::Closed(_) => End::Gone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::{Fact, Source, State};

    fn fact(id: &str, method: &str, at_ms: u64) -> Fact {
        Fact {
            id: id.into(),
            source: Source::Notification,
            method: method.into(),
            order_id: "7001".into(),
            message_id: "m-7001".into(),
            end_user_id: "user-1".into(),
            amount: "12.50".into(),
            currency: "EUR".into(),
            at_ms,
        }
    }

    async fn next_change(rx: &mut mpsc::Receiver<Result<Item, Error>>) -> Change {
        loop {
            let item = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("a change within 5 s")
                .expect("stream open")
                .expect("not closed");
            if let Item::Change(change) = item {
                return *change;
            }
        }
    }

    fn watches(store: &crate::store::Store) -> Watches {
        Watches::new(
            OrderBook::new(store.order_states.clone()),
            store.wakes.clone(),
            Duration::from_secs(3600),
            TaskTracker::new(),
            CancellationToken::new(),
        )
    }

    #[tokio::test]
    async fn each_fact_is_one_change_with_its_transition_and_a_token_resumes_after_it() {
        let store = crate::store::Store::memory();
        let book = OrderBook::new(store.order_states.clone());
        book.record(&fact("n:1", "pending", 1_000)).await.unwrap();
        // A duplicate fact is no second change.
        book.record(&fact("n:1", "pending", 1_000)).await.unwrap();
        book.record(&fact("n:2", "credit", 2_000)).await.unwrap();
        let watches = watches(&store);
        let mut rx = watches
            .watch("g".into(), "", Filter::default())
            .await
            .unwrap();
        let first = next_change(&mut rx).await;
        let second = next_change(&mut rx).await;
        assert_eq!(
            (first.fact_id.as_str(), second.fact_id.as_str()),
            ("n:1", "n:2")
        );
        let to = |c: &Change| c.transition.as_ref().map(|t| (t.from, t.to));
        assert_eq!(to(&first), Some((State::Created, State::Pending)));
        assert_eq!(to(&second), Some((State::Pending, State::Credited)));
        assert_eq!(second.order.credited.to_string(), "12.50");
        drop(rx);
        let mut again = watches
            .watch("g".into(), &first.resume_token, Filter::default())
            .await
            .unwrap();
        assert_eq!(next_change(&mut again).await, second, "at least once");
        // A new group starts at the oldest change; user-1's order is skipped for it.
        let filtered = Filter {
            end_user_id: "user-2".into(),
            ..Filter::default()
        };
        let mut other = watches.watch("h".into(), "", filtered).await.unwrap();
        let another = Fact {
            order_id: "7002".into(),
            end_user_id: "user-2".into(),
            ..fact("n:4", "credit", 4_000)
        };
        book.record(&another).await.unwrap();
        assert_eq!(next_change(&mut other).await.fact_id, "n:4");
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_is_closed_too_slow_and_its_unsent_changes_stay_pending() {
        let store = crate::store::Store::memory();
        let book = OrderBook::new(store.order_states.clone());
        for i in 0..10u64 {
            book.record(&fact(&format!("n:{i}"), "pending", 1_000 + i))
                .await
                .unwrap();
        }
        let feed = book.changes().clone();
        feed.join("g", &Start::GroupPosition).await.unwrap();
        // A buffer of 3 + the slot kept for the closing error; nobody reads it.
        let (tx, mut rx) = mpsc::channel(4);
        let watcher = Watcher {
            feed: feed.clone(),
            book,
            wakes: store.wakes.clone(),
            heartbeat_interval: Duration::from_secs(3600),
            group: "g".into(),
            consumer: "c".into(),
            filter: Filter::default(),
            tx,
            shutdown: CancellationToken::new(),
        };
        tokio::time::timeout(Duration::from_secs(5), watcher.run())
            .await
            .expect("closed, not blocked");
        let mut items = Vec::new();
        while let Ok(item) = rx.try_recv() {
            items.push(item);
        }
        assert_eq!(items.len(), 4, "three changes, then the closing error");
        assert!(items[..3].iter().all(Result::is_ok));
        assert!(matches!(items[3], Err(Error::TooSlow)));
        // The seven it could not send were read but not acknowledged: still the group's.
        let pending = feed
            .claim_stale(Reader::new("g", "next", 100), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(pending.len(), 7);
    }

    #[test]
    fn a_resume_token_is_a_feed_event_id() {
        assert!(check_token("1764600000000-0").is_ok());
        for bad in ["", "abc", "1-", "-1", "1-2-3", "1764600000000", "x-1"] {
            assert!(matches!(check_token(bad), Err(Error::ResumeToken)), "{bad}");
        }
    }
}
