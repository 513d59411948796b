//! Gauges that need a question asked: the backlog of every consumer group (consumer lag, read at
//! scrape time). The balance gauges and their monitor are a payment use case (`payments`).

use std::collections::HashMap;

use tracing::warn;

use crate::{
    metrics::{self, GroupLabels},
    store::Log,
};

/// Reads every consumer group's backlog into `stream_lag` / `stream_pending`. Run on each
/// `/metrics` scrape (one `XINFO GROUPS`), so the figures are as fresh as the scrape; groups with
/// no subscriber at all are included, which is when lag grows. Groups past the label cap are
/// summed under one label.
pub async fn record_backlogs(log: &Log) {
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
            metrics
                .stream_lag
                .get_or_create(&labels)
                .set(gauge(undelivered));
        }
        metrics
            .stream_pending
            .get_or_create(&labels)
            .set(gauge(pending));
    }
}
