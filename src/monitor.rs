//! Gauges that need a question asked: the backlog of every consumer group (consumer lag, read at
//! scrape time), of the notification log and of the order change feed. The balance gauges and
//! their monitor are a payment use case (`payments`).

use std::collections::HashMap;

use prometheus_client::metrics::{family::Family, gauge::Gauge};
use tracing::warn;

use crate::{
    metrics::{self, GroupLabels},
    store::{Log, Store},
};

/// Reads every consumer group's backlog: the notification log's into `stream_lag` /
/// `stream_pending`, the order change feed's (`WatchOrders` groups) into `order_changes_lag` /
/// `order_changes_pending`. Run on each `/metrics` scrape (one `XINFO GROUPS` per log), so the
/// figures are as fresh as the scrape; groups with no subscriber at all are included, which is
/// when lag grows. Groups past the label cap are summed under one label.
pub async fn record_backlogs(store: &Store) {
    let metrics = metrics::global();
    record(&store.log, &metrics.stream_lag, &metrics.stream_pending).await;
    record(
        store.order_states.changes(),
        &metrics.order_changes_lag,
        &metrics.order_changes_pending,
    )
    .await;
}

/// One log's backlogs into its two families.
async fn record(
    log: &Log,
    lag: &Family<GroupLabels, Gauge>,
    pending_gauge: &Family<GroupLabels, Gauge>,
) {
    let metrics = metrics::global();
    let backlogs = match log.backlogs().await {
        Ok(backlogs) => backlogs,
        Err(error) => {
            metrics.store_errors.inc();
            return warn!(%error, "could not read the consumer-group backlog");
        }
    };
    let mut by_label: HashMap<GroupLabels, (Option<u64>, u64)> = HashMap::new();
    for backlog in backlogs {
        let (undelivered, pending) = by_label.entry(metrics.group(&backlog.group)).or_default();
        if let Some(more) = backlog.undelivered {
            *undelivered = Some(undelivered.unwrap_or(0).saturating_add(more));
        }
        *pending = pending.saturating_add(backlog.pending);
    }
    let gauge = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
    for (labels, (undelivered, pending)) in by_label {
        if let Some(undelivered) = undelivered {
            lag.get_or_create(&labels).set(gauge(undelivered));
        }
        pending_gauge.get_or_create(&labels).set(gauge(pending));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::orders::{Fact, OrderBook, Source};

    #[tokio::test]
    async fn the_change_feed_groups_have_their_own_lag_gauges() {
        let store = Store::memory();
        let group = "monitor-test-watch";
        store
            .order_states
            .changes()
            .join(group, &crate::store::Start::New)
            .await
            .unwrap();
        let book = OrderBook::new(store.order_states.clone());
        for i in 0..3 {
            let fact = Fact {
                id: format!("n:{i}"),
                source: Source::Notification,
                method: "pending".into(),
                order_id: "o-1".into(),
                message_id: String::new(),
                end_user_id: String::new(),
                amount: String::new(),
                currency: String::new(),
                at_ms: 1_000,
            };
            book.record(&fact).await.unwrap();
        }
        record_backlogs(&store).await;
        let metrics = metrics::global();
        let labels = GroupLabels {
            group: group.into(),
        };
        let text = metrics.encode();
        assert_eq!(metrics.order_changes_lag.get_or_create(&labels).get(), 3);
        assert_eq!(
            metrics.order_changes_pending.get_or_create(&labels).get(),
            0
        );
        assert!(
            !text.contains(&format!("trustly_sidecar_stream_lag{{group=\"{group}\"}}")),
            "not counted as a notification group"
        );
    }
}
