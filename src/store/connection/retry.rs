//! Connecting in the background while Redis cannot be reached: attempts with capped exponential
//! backoff, and one log line per window (or when the cause changes), not one per attempt.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{super::ConnectCause, Connector, Error};

/// Wait before the second attempt. Short, so a Redis that is only restarting (a failover takes a
/// few seconds) is picked up within a fraction of a second of answering.
pub const CONNECT_BACKOFF_INITIAL: Duration = Duration::from_millis(200);
/// Longest wait between two attempts: bounds how long a replica stays unready after Redis is
/// back, while a fleet retrying against a recovering Redis adds one connection per replica per
/// 5 s at most.
pub const CONNECT_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// At most one log line per window while the cause stays the same: an outage of hours leaves a
/// readable trail (with the attempt count) instead of one line per attempt.
pub const CONNECT_LOG_WINDOW: Duration = Duration::from_secs(30);

/// Tries again after `first` failed, until connected or `stop` is cancelled.
pub(super) async fn until_connected(connector: Connector, first: Error, stop: CancellationToken) {
    let mut failures = Failures::default();
    failures.record(&first);
    let mut delay = CONNECT_BACKOFF_INITIAL;
    loop {
        let attempt = async {
            tokio::time::sleep(delay).await;
            connector.attempt().await
        };
        let outcome = tokio::select! {
            outcome = attempt => outcome,
            () = stop.cancelled() => return,
        };
        match outcome {
            Ok(()) => {
                info!(
                    endpoint = %connector.endpoints(),
                    attempts = failures.total + 1,
                    "store: connected to Redis"
                );
                return;
            }
            Err(error) => failures.record(&error),
        }
        delay = (delay * 2).min(CONNECT_BACKOFF_CAP);
    }
}

/// The failed attempts, and when the last line about them was logged.
#[derive(Default)]
struct Failures {
    total: u64,
    since_logged: u64,
    /// The cause last logged (`None` for an error without one) and when.
    logged: Option<(Option<ConnectCause>, Instant)>,
}

impl Failures {
    fn record(&mut self, failure: &Error) {
        self.total += 1;
        self.since_logged += 1;
        let cause = match failure {
            Error::Connect { cause, .. } => Some(*cause),
            _ => None,
        };
        let due = self
            .logged
            .is_none_or(|(logged, at)| logged != cause || at.elapsed() >= CONNECT_LOG_WINDOW);
        if !due {
            return;
        }
        let detail = std::error::Error::source(failure).map(ToString::to_string);
        let (attempts, retry) = (self.since_logged, CONNECT_BACKOFF_CAP);
        match cause {
            // Settings (or the server's users and certificates) to fix: retried all the same.
            Some(ConnectCause::Auth | ConnectCause::Tls) => error!(
                error = %failure, detail, attempts,
                "store: Redis refuses this sidecar; retrying (at most every {retry:?}), not ready until it connects"
            ),
            _ => warn!(
                error = %failure, detail, attempts,
                "store: cannot reach Redis; retrying (at most every {retry:?}), not ready until it answers"
            ),
        }
        self.logged = Some((cause, Instant::now()));
        self.since_logged = 0;
    }
}
