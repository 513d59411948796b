//! The scheduled reconciliation: every `interval`, exactly one replica of the fleet reconciles
//! yesterday and today (UTC, [`Period::around`]), sets the mismatch gauges and logs each mismatch
//! with identifiers and amounts only (never an end user id).
//!
//! Intervals are aligned to the Unix epoch (interval `k` is `[k·interval, (k+1)·interval)`), so
//! every replica wakes at the same boundaries whatever its start time; the one whose
//! `SET <prefix>:{notifications}:turn:reconcile:<k> 1 NX PX <2·interval>` succeeds runs interval `k` (the fleet
//! lease, `store::Lease`: one key per interval, held for two so that a replica waking late cannot
//! take it again). On the memory store every replica is alone and runs every interval.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::reconcile::{MismatchKind, Period, Reconciler, Report};
use crate::{metrics, store};

/// The lease name of interval `k` is this, `:` and `k`.
const TURN: &str = "reconcile";

/// Reconciles once per `interval` while `stop` is not cancelled. `(lease, shared)`: the fleet
/// lease and whether the store is shared by the fleet (Redis: replicas take turns); otherwise
/// this replica runs every interval.
pub async fn run(
    reconciler: Reconciler,
    (lease, shared): (store::Lease, bool),
    interval: Duration,
    stop: CancellationToken,
) {
    let metrics = metrics::global();
    for kind in MismatchKind::ALL {
        metrics.reconcile_mismatches(kind.name(), 0);
    }
    let interval_ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    loop {
        let now = store::now_ms();
        let index = now / interval_ms + 1;
        let wait = Duration::from_millis(index.saturating_mul(interval_ms).saturating_sub(now));
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        if shared {
            // Held for two intervals: a replica waking late still finds interval `index` taken.
            let hold = interval.saturating_mul(2);
            match lease.take_turn(&format!("{TURN}:{index}"), hold).await {
                Ok(true) => {}
                Ok(false) => {
                    debug!(interval = index, "another replica reconciles this interval");
                    continue;
                }
                Err(error) => {
                    metrics.store_errors.inc();
                    metrics.reconcile_failures.inc();
                    warn!(%error, interval = index, "could not take the reconciliation turn; skipped");
                    continue;
                }
            }
        }
        run_once(&reconciler, index).await;
    }
}

/// One scheduled reconciliation of yesterday and today.
async fn run_once(reconciler: &Reconciler, index: u64) {
    let metrics = metrics::global();
    let period = Period::around(store::now_ms());
    metrics.reconcile_runs.inc();
    match reconciler.reconcile(&period, None).await {
        Ok(report) => {
            publish(&report);
            info!(
                interval = index,
                from_date = %period.from_date,
                to_date = %period.to_date,
                orders = report.orders_checked,
                ledger_rows = report.ledger_rows_checked,
                mismatches = report.mismatches.len(),
                "reconciliation run"
            );
        }
        Err(error) => {
            metrics.reconcile_failures.inc();
            warn!(%error, interval = index, "reconciliation failed");
        }
    }
    metrics.reconcile_last_run(store::now_ms() / 1000);
}

/// Sets the gauges (every kind, zero when none) and logs each mismatch.
fn publish(report: &Report) {
    let metrics = metrics::global();
    for kind in MismatchKind::ALL {
        let count = report.mismatches.iter().filter(|m| m.kind == kind).count();
        metrics.reconcile_mismatches(kind.name(), i64::try_from(count).unwrap_or(i64::MAX));
    }
    for mismatch in &report.mismatches {
        warn!(
            kind = mismatch.kind.name(),
            order_id = %mismatch.order_id,
            message_id = %mismatch.message_id,
            currency = %mismatch.currency,
            order_amount = %shown(mismatch.order_amount),
            ledger_amount = %shown(mismatch.ledger_amount),
            "reconciliation mismatch"
        );
    }
}

/// An amount for the log: exact, normalized; `none` when that side has none.
fn shown(amount: Option<rust_decimal::Decimal>) -> String {
    amount.map_or_else(|| "none".to_owned(), |a| a.normalize().to_string())
}
