//! Gauges that need a question asked: the backlog of every consumer group (consumer lag, read at
//! scrape time). The balance gauges and their monitor are a payment use case (`payments`).

use tracing::warn;

use crate::{
    metrics::{self, GroupLabels},
    store::Log,
};

/// Reads every consumer group's backlog into `stream_lag` / `stream_pending`. Run on each
/// `/metrics` scrape (one `XINFO GROUPS`), so the figures are as fresh as the scrape; groups with
/// no subscriber at all are included, which is when lag grows.
pub async fn record_backlogs(log: &Log) {
    let metrics = metrics::global();
    match log.backlogs().await {
        Ok(backlogs) => {
            for backlog in backlogs {
                let labels = GroupLabels {
                    group: backlog.group,
                };
                if let Some(undelivered) = backlog.undelivered {
                    metrics
                        .stream_lag
                        .get_or_create(&labels)
                        .set(i64::try_from(undelivered).unwrap_or(i64::MAX));
                }
                metrics
                    .stream_pending
                    .get_or_create(&labels)
                    .set(i64::try_from(backlog.pending).unwrap_or(i64::MAX));
            }
        }
        Err(error) => {
            metrics.store_errors.inc();
            warn!(%error, "could not read the consumer-group backlog");
        }
    }
}
