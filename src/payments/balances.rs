//! The merchant's balance at Trustly: the Balance use case (inside the polling window), the
//! low-balance gauges every answer updates, and the fleet-wide balance monitor.

use std::{collections::HashMap, sync::Arc, time::Duration};

use rust_decimal::{Decimal, prelude::ToPrimitive};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Answer, Error, Payments, Prepared, execute::typed};
use crate::{
    metrics::{self, CurrencyLabels},
    money::{Amount, Currency},
    store::Store,
    trustly::methods::{self as m, Method},
};

/// The turn name replicas share so that only one of them calls Balance per interval.
const BALANCE_TURN: &str = "balance-poll";

impl Payments {
    /// Calls Balance and records the answer in the balance gauges (the Balance RPC and the
    /// balance monitor both come here).
    pub async fn refresh_balances(&self) -> Result<Answer<Vec<m::CurrencyBalance>>, Error> {
        let prepared = Prepared {
            method: m::Balance::NAME,
            data: serde_json::Map::new(),
            idempotency_key: None,
        };
        let answer = self.polled("Balance", prepared).await?.try_map(typed)?;
        let balances: &Vec<m::CurrencyBalance> = &answer.value;
        self.balances
            .observe(balances.iter().map(|b| (b.currency.as_str(), b.balance)));
        Ok(answer)
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
/// same polling window as the Balance RPC ([`Payments::refresh_balances`]): inside it the gauges
/// are refreshed from the last answer, so the monitor and the applications together call Trustly
/// at most once per window.
pub async fn poll_balances(
    payments: Payments,
    log: Store,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        match log.lease.take_turn(BALANCE_TURN, interval).await {
            Ok(true) => match payments.refresh_balances().await {
                Ok(answer) => {
                    info!(currencies = answer.value.len(), "Trustly balance read");
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
