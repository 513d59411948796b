//! Wake-ups: subscribers and intake's decision waits sleep until an append or a decision may
//! concern them, instead of polling. A write in this process wakes its waiters directly; on Redis
//! the write also publishes a small message on `<prefix>:wake` (in the same script, so no extra
//! round trip), and every replica's [`Listener`] turns what it hears into the same wake-ups.
//! While the listener is not subscribed, waiters poll at their old intervals (a safety net).
//!
//! Knows nothing of what waiters do once woken.

mod listener;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use tokio::{
    sync::{broadcast, watch},
    time::Instant,
};

pub use listener::Listener;

/// Longest sleep of a waiter while wake-ups from every replica reach it. Pub/sub loses messages
/// only with the connection (the listener notices, falls back to polling and wakes everyone), so
/// this covers what it cannot see: a Redis Cluster bus link down between the writer's node and
/// ours. 2 s bounds delivery then, for one read per idle subscriber every 2 s.
pub const SAFETY_NET_POLL: Duration = Duration::from_secs(2);
/// Decisions a decision wait may fall behind by; one that lags re-reads its own decision, so a
/// small buffer only costs an extra read in a burst.
const DECISION_WAKES: usize = 64;

/// Who may be waiting for a decision: one notification's waiters, or everyone (after a
/// resubscribe, when decisions may have been missed).
#[derive(Clone, Debug)]
enum Decided {
    One(Arc<str>),
    All,
}

/// The wake-ups of one process's store, shared by its concepts' clones.
#[derive(Clone)]
pub struct Wakes(Arc<Inner>);

struct Inner {
    appends: watch::Sender<u64>,
    decisions: broadcast::Sender<Decided>,
    /// Whether every write that concerns this process's waiters wakes them: always in memory,
    /// on Redis while the listener is subscribed.
    live: watch::Sender<bool>,
    /// The Redis channel every replica of the deployment listens on.
    channel: String,
    /// This process's mark on what it publishes, so it ignores its own messages (it woke its
    /// waiters already).
    origin: String,
    /// Tests only: every waiter polls this often, whatever the listener's state.
    polling: OnceLock<Duration>,
}

impl Wakes {
    /// Wake-ups of a memory store: every writer is in this process.
    pub(crate) fn memory() -> Self {
        Self::new(String::new(), true)
    }

    /// Wake-ups of a Redis store under `prefix`: down until a [`Listener`] subscribes.
    pub(crate) fn redis(prefix: &str) -> Self {
        Self::new(format!("{prefix}:wake"), false)
    }

    fn new(channel: String, live: bool) -> Self {
        Self(Arc::new(Inner {
            appends: watch::Sender::new(0),
            decisions: broadcast::Sender::new(DECISION_WAKES),
            live: watch::Sender::new(live),
            channel,
            origin: uuid::Uuid::new_v4().simple().to_string(),
            polling: OnceLock::new(),
        }))
    }

    /// How long a waiter may sleep before looking for itself: `fallback` (its old polling
    /// interval) while wake-ups from other replicas cannot reach it, [`SAFETY_NET_POLL`] while
    /// they can.
    pub fn poll_every(&self, fallback: Duration) -> Duration {
        if let Some(every) = self.0.polling.get() {
            return *every;
        }
        if self.is_live() {
            SAFETY_NET_POLL
        } else {
            fallback
        }
    }

    /// Tests only: makes every waiter poll at `every` (e.g. a minute, to show that deliveries
    /// come from wake-ups and not from polling). The first call wins.
    pub fn poll_only_every(&self, every: Duration) {
        let _ = self.0.polling.set(every);
    }

    /// Whether wake-ups from every replica reach this process's waiters.
    pub fn is_live(&self) -> bool {
        *self.0.live.borrow()
    }

    /// Returns once wake-ups from every replica reach this process (at once in memory).
    pub async fn until_live(&self) {
        let mut live = self.0.live.subscribe();
        // The sender lives as long as `self`: the wait cannot fail.
        let _ = live.wait_for(|live| *live).await;
    }

    /// Follows appends (this process's, and other replicas' while the listener is subscribed).
    pub fn watch_appends(&self) -> AppendWatch {
        AppendWatch(self.0.appends.subscribe())
    }

    /// Follows decisions, like [`Self::watch_appends`].
    pub fn watch_decisions(&self) -> DecisionWatch {
        DecisionWatch(self.0.decisions.subscribe())
    }

    /// Wakes this process's append watchers.
    pub(crate) fn appended(&self) {
        self.0
            .appends
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Wakes this process's waiters for `notification_id`'s decision.
    pub(crate) fn decided(&self, notification_id: &str) {
        // No receiver: nobody waits, nothing to wake.
        let _ = self.0.decisions.send(Decided::One(notification_id.into()));
    }

    /// Wakes every waiter once, to look for what a wake-up may have missed.
    fn wake_all(&self) {
        self.appended();
        let _ = self.0.decisions.send(Decided::All);
    }

    /// Marks wake-ups from other replicas as arriving (or not), and wakes everyone: after a
    /// (re)subscribe to find what was missed, after a loss to start polling at once.
    fn set_live(&self, live: bool) {
        self.0.live.send_replace(live);
        self.wake_all();
    }

    /// The channel the deployment's replicas publish on.
    pub(crate) fn channel(&self) -> &str {
        &self.0.channel
    }

    /// The message announcing an append.
    pub(crate) fn append_message(&self) -> String {
        format!("append:{}", self.0.origin)
    }

    /// The message announcing a decision on `notification_id`.
    pub(crate) fn decision_message(&self, notification_id: &str) -> String {
        format!("decision:{}:{notification_id}", self.0.origin)
    }

    /// Turns a message heard on the channel into wake-ups; `false` for one it does not know.
    fn heard(&self, message: &str) -> bool {
        let (kind, rest) = message.split_once(':').unwrap_or((message, ""));
        let (origin, notification_id) = rest.split_once(':').unwrap_or((rest, ""));
        if origin == self.0.origin {
            return true;
        }
        match kind {
            "append" => self.appended(),
            "decision" => self.decided(notification_id),
            _ => return false,
        }
        true
    }
}

/// Appends since the watch last woke (see [`Wakes::watch_appends`]): an append made while its
/// holder was busy is not missed (unlike a bare `Notify`).
pub struct AppendWatch(watch::Receiver<u64>);

impl AppendWatch {
    /// Waits until an append (or one since the last wait), or `max` passes.
    pub async fn wait(&mut self, max: Duration) {
        self.wait_until(Instant::now() + max).await;
    }

    /// Waits until an append (or one since the last wait), or `deadline`; `true` when woken.
    pub async fn wait_until(&mut self, deadline: Instant) -> bool {
        matches!(
            tokio::time::timeout_at(deadline, self.0.changed()).await,
            Ok(Ok(()))
        )
    }
}

/// Decisions since the watch was made (see [`Wakes::watch_decisions`]).
pub struct DecisionWatch(broadcast::Receiver<Decided>);

impl DecisionWatch {
    /// Waits until `notification_id` may have been decided, or `deadline`.
    pub async fn wait(&mut self, notification_id: &str, deadline: Instant) {
        loop {
            match tokio::time::timeout_at(deadline, self.0.recv()).await {
                Ok(Ok(Decided::One(id))) if *id != *notification_id => continue,
                // Its own, everyone's, or missed while lagging: look.
                Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => return,
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return tokio::time::sleep_until(deadline).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_from_other_replicas_wake_and_a_replicas_own_are_ignored() {
        let (mine, theirs) = (Wakes::redis("p"), Wakes::redis("p"));
        assert_eq!(mine.channel(), "p:wake");
        let mut appends = mine.watch_appends();
        let soon = || Instant::now() + Duration::from_millis(50);
        assert!(mine.heard(&mine.append_message()));
        assert!(!appends.wait_until(soon()).await, "its own append: no wake");
        assert!(mine.heard(&theirs.append_message()));
        assert!(appends.wait_until(soon()).await, "another replica's append");

        let mut decisions = mine.watch_decisions();
        assert!(mine.heard(&theirs.decision_message("other")));
        assert!(mine.heard(&theirs.decision_message("9100000001")));
        let began = Instant::now();
        decisions
            .wait("9100000001", began + Duration::from_secs(60))
            .await;
        assert!(
            began.elapsed() < Duration::from_secs(1),
            "its decision woke it"
        );
        assert!(!mine.heard("something:else"));
    }

    #[test]
    fn waiters_poll_at_their_fallback_until_the_listener_subscribes() {
        let fallback = Duration::from_millis(100);
        let wakes = Wakes::redis("p");
        assert_eq!(wakes.poll_every(fallback), fallback);
        wakes.set_live(true);
        assert_eq!(wakes.poll_every(fallback), SAFETY_NET_POLL);
        assert_eq!(Wakes::memory().poll_every(fallback), SAFETY_NET_POLL);
        wakes.poll_only_every(Duration::from_secs(60));
        wakes.set_live(false);
        assert_eq!(wakes.poll_every(fallback), Duration::from_secs(60));
    }
}
