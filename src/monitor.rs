//! Gauges that need a question asked: the backlog of every consumer group (consumer lag, read at
//! scrape time), and the merchant's balance at Trustly per currency (polled, rate-limited).

use std::{collections::HashMap, sync::Arc, time::Duration};

use rust_decimal::{Decimal, prelude::ToPrimitive};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    grpc::Payments,
    metrics::{self, CurrencyLabels, GroupLabels},
    money::{Amount, Currency},
    store::{Log, Store},
};

/// The turn name replicas share so that only one of them calls Balance per interval.
const BALANCE_TURN: &str = "balance-poll";

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

/// Low-balance thresholds, and the gauges every Balance answer updates.
#[derive(Clone, Default)]
pub struct BalanceWatch {
    thresholds: Arc<HashMap<String, Decimal>>,
}

impl BalanceWatch {
    pub fn new(thresholds: &[(Currency, Amount)]) -> Self {
        Self {
            thresholds: Arc::new(
                thresholds
                    .iter()
                    .map(|(currency, amount)| (currency.to_string(), amount.value()))
                    .collect(),
            ),
        }
    }

    /// Records one Balance answer. The low-balance decision is made on the exact decimal; the
    /// gauge itself is a float because Prometheus has no other kind.
    pub fn observe<'a>(&self, balances: impl IntoIterator<Item = (&'a str, Decimal)>) {
        let metrics = metrics::global();
        for (currency, balance) in balances {
            let labels = CurrencyLabels {
                currency: currency.to_owned(),
            };
            metrics
                .balance
                .get_or_create(&labels)
                .set(balance.to_f64().unwrap_or(f64::NAN));
            let Some(threshold) = self.thresholds.get(currency) else {
                continue;
            };
            let low = balance < *threshold;
            let was_low = metrics
                .balance_low
                .get_or_create(&labels)
                .set(i64::from(low))
                == 1;
            if low && !was_low {
                warn!(%currency, %balance, %threshold, "Trustly balance is under its low-balance threshold: payouts may fail with insufficient funds");
            } else if !low && was_low {
                info!(%currency, %balance, %threshold, "Trustly balance is back above its threshold");
            }
        }
    }
}

/// Calls Balance every `interval` (≥ 15 minutes, Trustly's limit) while this replica wins the
/// shared turn, so a fleet of replicas together stays within the limit. The call goes through the
/// same polling window as the Balance RPC (`Payments::refresh_balances`): inside it the gauges are
/// refreshed from the last answer, so the monitor and the applications together call Trustly at
/// most once per window.
pub async fn poll_balances(
    payments: Payments,
    log: Store,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        match log.lease.take_turn(BALANCE_TURN, interval).await {
            Ok(true) => match payments.refresh_balances().await {
                Ok(response) => {
                    info!(currencies = response.balances.len(), "Trustly balance read");
                }
                Err(error) => warn!(%error, "could not read the Trustly balance"),
            },
            Ok(false) => {} // another replica has this interval's turn
            Err(error) => {
                metrics::global().store_errors.inc();
                warn!(%error, "could not take the balance-poll turn; skipping this interval");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
