//! The rebuild: every replica follows the notification log in one internal consumer group and
//! records each event's fact, acknowledging it after. The intake's direct update makes a
//! notification visible at once; this makes the state a derivation of the durable log — an
//! update that failed, a replica killed between storing a notification and recording it, or a
//! new deployment (the group starts at the oldest retained event) is caught up here. Recording
//! is idempotent, so the overlap costs nothing but a write.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Fact, OrderBook};
use crate::{
    metrics,
    store::{Event, Log, Reader, Start},
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
/// the first payments wait (seen as their 500 ms store timeout in the cluster start-up test).
const FIRST_ROUND_AFTER: Duration = Duration::from_secs(5);
/// Pause after a store error before trying again (the store's own timeout bounds each call).
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Follows the log until `stop`, recording every event's fact.
pub async fn follow(log: Log, book: OrderBook, stop: CancellationToken) {
    let consumer = format!("replica-{}", uuid::Uuid::new_v4());
    let reader = Reader::new(GROUP, &consumer, BATCH);
    let mut joined = false;
    tokio::select! {
        () = stop.cancelled() => return,
        () = tokio::time::sleep(FIRST_ROUND_AFTER) => {}
    }
    while !stop.is_cancelled() {
        let round = async {
            if !joined {
                log.join(GROUP, &Start::GroupPosition).await?;
                joined = true;
            }
            let mut events = log.claim_stale(reader, STALE_AFTER).await?;
            events.extend(log.read_new(reader, POLL).await?);
            for event in &events {
                record(&book, event).await?;
                log.ack(GROUP, &event.id).await?;
            }
            Ok::<_, super::Error>(events.is_empty())
        };
        let pause = tokio::select! {
            () = stop.cancelled() => return,
            result = round => match result {
                Ok(false) => Duration::ZERO,
                // Redis reads do not block: poll at most once per POLL while nothing is new.
                Ok(true) if log.is_durable() => POLL,
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
