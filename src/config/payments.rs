//! The payments section: Trustly's polling limit, the balance monitor and the account cache, as
//! the payment engine uses them.

use std::time::Duration;

use super::*;
use crate::money::{Amount, Currency};

/// `true`: RegisterAccount with bank details already registered for that end user answers from the
/// AccountID cache without calling Trustly (the same details always give the same AccountID).
pub const ENV_REGISTER_ACCOUNT_FROM_CACHE: &str = "TRUSTLY_SIDECAR_REGISTER_ACCOUNT_FROM_CACHE";
/// How often the Trustly balance is read into the `trustly_balance` gauges, e.g. `15m`. Unset: never
/// (the Balance RPC still updates them). Trustly allows Balance once per 15 minutes per merchant,
/// so shorter intervals are refused, and replicas sharing Redis take turns.
pub const ENV_BALANCE_INTERVAL: &str = "TRUSTLY_SIDECAR_BALANCE_INTERVAL";
pub const MIN_BALANCE_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Trustly's polling limit, e.g. `15m`: Balance, and GetWithdrawals per order, are called at most
/// once per this window across every replica sharing the store (Redis); a call inside the window
/// gets the last answer, with its age in the `trustly-answer-age-seconds` response metadata. The
/// balance monitor shares the window. Default 15m, Trustly's documented limit (spec §5.13,
/// §5.14); `0s` turns it off and leaves the limit to the application.
pub const ENV_POLL_WINDOW: &str = "TRUSTLY_SIDECAR_POLL_WINDOW";
pub const DEFAULT_POLL_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How often the fleet reconciles yesterday and today against Trustly's AccountLedger, e.g. `1h`
/// (one replica per interval, fleet-wide; intervals aligned to the epoch). `0`, `0s` or `off`
/// turns it off. Each run is one AccountLedger call.
pub const ENV_RECONCILE_INTERVAL: &str = "TRUSTLY_SIDECAR_RECONCILE_INTERVAL";
/// Hourly: a missing ledger row is noticed within the hour, for 24 AccountLedger calls a day.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// Low-balance thresholds per currency, e.g. `EUR=5000.00,SEK=50000`: the balance gauge of a
/// currency under its threshold sets `trustly_balance_low` and logs a warning (payouts need funds).
pub const ENV_LOW_BALANCE: &str = "TRUSTLY_SIDECAR_LOW_BALANCE";

/// What the payment engine is told beyond Trustly's credentials.
#[derive(Clone, Debug)]
pub struct Payments {
    /// Balance and GetWithdrawals (per order) at most once per this window; zero: no limit.
    pub poll_window: Duration,
    /// How often the balance is polled; `None`: only when the Balance RPC is called.
    pub balance_interval: Option<Duration>,
    /// Per-currency low-balance thresholds.
    pub low_balance: Vec<(Currency, Amount)>,
    pub register_account_from_cache: bool,
    /// How often the scheduled reconciliation runs; `None`: off.
    pub reconcile_interval: Option<Duration>,
}

impl Payments {
    pub(super) fn read(r: &mut Reader<'_>) -> Option<Self> {
        let balance_interval = r.optional(ENV_BALANCE_INTERVAL, |v| {
            parse_duration(v).and_then(|interval| {
                if interval >= MIN_BALANCE_INTERVAL {
                    Ok(interval)
                } else {
                    Err(format!(
                        "{v:?} is shorter than Trustly's limit of one Balance call per 15 minutes"
                    ))
                }
            })
        });
        // `0s` is allowed here (no limit), unlike the other durations.
        let poll_window = match r.get(ENV_POLL_WINDOW).as_deref() {
            None => DEFAULT_POLL_WINDOW,
            Some("0" | "0s") => Duration::ZERO,
            Some(v) => r
                .parsed(ENV_POLL_WINDOW, parse_duration(v))
                .unwrap_or(DEFAULT_POLL_WINDOW),
        };
        let low_balance = r
            .optional(ENV_LOW_BALANCE, parse_thresholds)
            .unwrap_or_default();
        let register_account_from_cache = r.flag(ENV_REGISTER_ACCOUNT_FROM_CACHE, true);
        let reconcile_interval = match r.get(ENV_RECONCILE_INTERVAL).as_deref() {
            None => Some(DEFAULT_RECONCILE_INTERVAL),
            Some("0" | "0s" | "off") => None,
            Some(v) => r.parsed(ENV_RECONCILE_INTERVAL, parse_duration(v)),
        };
        Some(Self {
            poll_window,
            balance_interval,
            low_balance,
            register_account_from_cache,
            reconcile_interval,
        })
    }
}

/// `EUR=5000.00,SEK=50000`: one decimal threshold per ISO 4217 currency.
fn parse_thresholds(text: &str) -> Result<Vec<(Currency, Amount)>, String> {
    text.split(',')
        .map(|pair| {
            let (currency, amount) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not CURRENCY=AMOUNT"))?;
            let currency = currency
                .trim()
                .parse::<Currency>()
                .map_err(|e| format!("{pair:?}: {e}"))?;
            let amount = amount
                .trim()
                .parse::<Amount>()
                .map_err(|e| format!("{pair:?}: {e}"))?;
            Ok((currency, amount))
        })
        .collect()
}
