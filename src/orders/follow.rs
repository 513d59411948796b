//! The rebuild: every replica follows the notification log in one internal consumer group and
//! records each event's fact, acknowledging it after. The intake's direct update makes a
//! notification visible at once; this makes the state a derivation of the durable log — an
//! update that failed, a replica killed between storing a notification and recording it, or a
//! new deployment (the group starts at the oldest retained event) is caught up here. Recording
//! is idempotent, so the overlap costs nothing but a write.
//!
//! A Withdraw `debit` (an event stored as awaiting a decision) also carries a decision fact: the
//! answer intake gave Trustly, which the log stores with the event. The follower reads the stored
//! answers of a batch in one call and records each as intake does ([`Fact::stored_answer`]).
//! While the answer is still awaited the event is left **unacknowledged**: the answer may come
//! (and intake's own write of its fact fail) after this replica saw the event, and once answered
//! Trustly does not resend, so nothing else would fill the fact in. The event is taken over again
//! after [`STALE_AFTER`] and looked at once more, until its answer is stored or the log's
//! retention drops it (a decision never given leaves it pending, visible in the group's
//! `stream_pending`).

use std::time::Duration;

use bytes::Bytes;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Fact, OrderBook};
use crate::{
    metrics,
    store::{Event, Log, Reader, Start, now_ms},
    trustly::wire,
};

/// The internal consumer group (its lag is exported with the others).
pub const GROUP: &str = "trustly-sidecar.order-states";
/// Events per read: a burst after a restart is caught up 256 events per round trip.
const BATCH: usize = 256;
/// How long a read waits for a new event (memory) or between polls (Redis): new events reach the
/// state through intake at once, so this only bounds the catch-up delay.
const POLL: Duration = Duration::from_secs(1);
/// An event read by a replica that died is taken over after this long unacknowledged.
const STALE_AFTER: Duration = Duration::from_secs(30);
/// When the first round starts after the replica does. The catch-up is not urgent (intake updates
/// the state directly), and its first calls — on a new deployment a backfill of the whole
/// retained log — are kept away from a replica's first requests: on a Redis Cluster that has just
/// formed, an early call that meets an unserved slot makes the client refresh its slot map while
/// the first payments wait (seen as their 500 ms store timeout in the cluster start-up test; on
/// 2026-12-01, with no delay, 2 of 3 runs of `redis_health`'s cluster start-up test saw `/readyz`
/// fall back to 503 just after health said SERVING: the readiness ping waited behind the refresh).
const FIRST_ROUND_AFTER: Duration = Duration::from_secs(5);
/// Pause after a store error before trying again (the store's own timeout bounds each call).
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Follows the log until `stop`, recording every event's fact.
pub async fn follow(log: Log, book: OrderBook, stop: CancellationToken) {
    let mut follower = Follower::new(log, book);
    tokio::select! {
        () = stop.cancelled() => return,
        () = tokio::time::sleep(FIRST_ROUND_AFTER) => {}
    }
    while !stop.is_cancelled() {
        let pause = tokio::select! {
            () = stop.cancelled() => return,
            result = follower.round(POLL, STALE_AFTER) => match result {
                Ok(false) => Duration::ZERO,
                // Redis reads do not block: poll at most once per POLL while nothing is new.
                Ok(true) if follower.log.is_durable() => POLL,
                Ok(true) => Duration::ZERO,
                Err(error) => {
                    metrics::global().store_errors.inc();
                    warn!(%error, "order state: following the notification log failed; retrying");
                    RETRY_AFTER
                }
            },
        };
        if !pause.is_zero() {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// One replica's consumer of [`GROUP`].
struct Follower {
    log: Log,
    book: OrderBook,
    consumer: String,
    joined: bool,
}

/// What an event's answer says for its decision fact.
enum Answer {
    /// Not a Withdraw `debit`: no decision fact.
    None,
    /// A decision is still awaited (no answer stored yet).
    Awaited,
    /// The signed answer as stored.
    Given(Bytes),
}

impl Follower {
    fn new(log: Log, book: OrderBook) -> Self {
        Self {
            log,
            book,
            consumer: format!("replica-{}", uuid::Uuid::new_v4()),
            joined: false,
        }
    }

    /// Takes over events unacknowledged for `stale_after`, reads new ones (waiting up to `poll`
    /// on memory), records their facts and acknowledges each but those whose answer is awaited.
    /// `Ok(true)` when there was nothing to read.
    async fn round(&mut self, poll: Duration, stale_after: Duration) -> Result<bool, super::Error> {
        let reader = Reader::new(GROUP, &self.consumer, BATCH);
        if !self.joined {
            self.log.join(GROUP, &Start::GroupPosition).await?;
            self.joined = true;
        }
        let mut events = self.log.claim_stale(reader, stale_after).await?;
        events.extend(self.log.read_new(reader, poll).await?);
        let answers = self.answers(&events).await?;
        for (event, answer) in events.iter().zip(answers) {
            record(&self.book, event).await?;
            match answer {
                Answer::Awaited => {
                    debug!(event_id = %event.id, "decision still awaited; left pending");
                    continue;
                }
                Answer::Given(reply) => record_answer(&self.book, event, &reply).await?,
                Answer::None => {}
            }
            self.log.ack(GROUP, &event.id).await?;
        }
        Ok(events.is_empty())
    }

    /// Each event's [`Answer`], the stored ones read in one call.
    async fn answers(&self, events: &[Event]) -> Result<Vec<Answer>, super::Error> {
        // Stored as awaiting a decision when intake found the debit's order a Withdraw. An event
        // stored before that flag (`None`) predates decision facts and is left to intake.
        let decided = |event: &Event| {
            event.decision_required == Some(true) && event.notification.method == "debit"
        };
        let ids: Vec<&str> = events
            .iter()
            .filter(|event| decided(event))
            .map(|event| event.notification.notification_id.as_str())
            .collect();
        let mut replies = if ids.is_empty() {
            Vec::new()
        } else {
            self.log.replies(&ids).await?
        }
        .into_iter();
        Ok(events
            .iter()
            .map(|event| match decided(event) {
                false => Answer::None,
                true => replies
                    .next()
                    .flatten()
                    .map_or(Answer::Awaited, Answer::Given),
            })
            .collect())
    }
}

/// Records one logged notification's fact (events that carry none are skipped).
async fn record(book: &OrderBook, event: &Event) -> Result<(), super::Error> {
    let logged = &event.notification;
    let Ok(notification) = wire::parse_notification(&logged.body) else {
        debug!(event_id = %event.id, "a logged notification that does not parse; skipped");
        return Ok(());
    };
    match Fact::notification(
        &logged.method,
        &logged.notification_id,
        &logged.message_id,
        &notification.data,
        logged.received_ms,
    ) {
        Some(fact) => book.record(&fact).await,
        None => Ok(()),
    }
}

/// Records the decision fact of a Withdraw `debit` from the answer the log stored. The answer's
/// time is not stored: the fact is dated when the replay learns it, as intake dates it when it
/// answers (a fact intake recorded first keeps its own date: facts are first-write-wins).
async fn record_answer(book: &OrderBook, event: &Event, reply: &Bytes) -> Result<(), super::Error> {
    match Fact::stored_answer(&event.notification, reply, now_ms()) {
        Some(fact) => book.record(&fact).await,
        None => {
            debug!(event_id = %event.id, "a stored answer without a status; no decision fact");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::{
        orders::WithdrawDecision,
        store::{GroupBacklog, NewEvent, Store, log::Notification},
    };

    /// A Withdraw `debit` of order `o-1` as intake logs it: awaiting a decision.
    fn debit(notification_id: &str) -> NewEvent {
        let data = json!({
            "orderid": "o-1", "messageid": "m-1", "notificationid": notification_id,
            "enduserid": "user-1", "amount": "10.00", "currency": "EUR",
            "timestamp": "2026-11-21 10:00:00.000000+00", "attributes": {}
        });
        let body = wire::notification("debit", "u-1", "signature", data);
        NewEvent {
            notification: Notification {
                notification_id: notification_id.into(),
                method: "debit".into(),
                order_id: "o-1".into(),
                message_id: "m-1".into(),
                received_ms: now_ms(),
                body: serde_json::to_vec(&body).unwrap().into(),
            },
            decision_required: true,
        }
    }

    fn answer(status: &str) -> Bytes {
        let reply = wire::notification_response("debit", "u-1", "s", json!({ "status": status }));
        serde_json::to_vec(&reply).unwrap().into()
    }

    async fn pending(log: &Log) -> u64 {
        let backlogs = log.backlogs().await.unwrap();
        let ours = backlogs.iter().find(|b| b.group == GROUP);
        ours.map_or(0, |b: &GroupBacklog| b.pending)
    }

    #[tokio::test]
    async fn a_stored_answer_becomes_the_decision_fact() {
        let store = Store::memory();
        let book = OrderBook::new(store.order_states.clone());
        store
            .log
            .record(&debit("n-1"), Some(&answer("FAILED")))
            .await
            .unwrap();
        let mut follower = Follower::new(store.log.clone(), book.clone());
        assert!(!follower.round(Duration::ZERO, STALE_AFTER).await.unwrap());
        let order = book.get("o-1").await.unwrap().unwrap();
        assert_eq!(
            (order.withdraw_decision, order.debited.to_string()),
            (Some(WithdrawDecision::Rejected), "10.00".to_owned())
        );
        assert_eq!(pending(&store.log).await, 0);
    }

    #[tokio::test]
    async fn an_awaited_answer_leaves_the_event_pending_until_it_is_stored() {
        let store = Store::memory();
        let book = OrderBook::new(store.order_states.clone());
        store.log.record(&debit("n-2"), None).await.unwrap();
        let mut follower = Follower::new(store.log.clone(), book.clone());
        follower.round(Duration::ZERO, STALE_AFTER).await.unwrap();
        let order = book.get("o-1").await.unwrap().unwrap();
        assert_eq!(order.withdraw_decision, None, "no decision fact yet");
        assert_eq!(order.notification_ids, ["n-2"]);
        assert_eq!(pending(&store.log).await, 1, "left unacknowledged");
        // Still awaited when taken over again: still pending, still no fact.
        follower
            .round(Duration::ZERO, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(pending(&store.log).await, 1);
        // Answered (and intake's own write of the fact lost): the next take-over records it.
        store.log.set_reply("n-2", &answer("OK")).await.unwrap();
        follower
            .round(Duration::ZERO, Duration::ZERO)
            .await
            .unwrap();
        let order = book.get("o-1").await.unwrap().unwrap();
        assert_eq!(order.withdraw_decision, Some(WithdrawDecision::Approved));
        assert_eq!(pending(&store.log).await, 0);
    }
}
