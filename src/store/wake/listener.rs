//! The replica's one pub/sub connection: subscribes to the wake channel, turns what it hears into
//! wake-ups, and reconnects with a capped backoff, waiters polling meanwhile. On Redis Cluster a
//! classic PUBLISH reaches every node, so a subscription on any seed node hears all; a lost node
//! makes the next attempt use the next seed.

use std::time::Duration;

use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Wakes;
use crate::store::{
    Error,
    connection::{self, bounded},
};

/// First wait before subscribing again after a failure or a lost connection: quick enough that
/// a restarted Redis is heard again within a poll or two, slow enough not to spin.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
/// Longest wait between attempts while Redis stays unreachable: waiters poll meanwhile, so this
/// only bounds how long after Redis returns the fallback polling ends.
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// A silent subscription is pinged this often, so a connection that died without a reset (a
/// vanished host, a dropped NAT entry) is noticed within this plus the store's timeout.
const PING_AFTER_SILENCE: Duration = Duration::from_secs(5);

/// Listens for other replicas' appends and decisions (see the module docs).
pub struct Listener {
    /// One client per server (a cluster's seed nodes), tried in turn.
    clients: Vec<redis::Client>,
    wakes: Wakes,
    timeout: Duration,
}

impl Listener {
    /// A listener for `wakes` on the servers of `urls` (one server, or a cluster's seed nodes),
    /// each call bounded by `timeout`; `ca_pem` verifies `rediss://` servers as the store does.
    pub fn new(
        urls: &[String],
        ca_pem: Option<&[u8]>,
        wakes: Wakes,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let clients = urls
            .iter()
            .map(|url| connection::client(url, ca_pem))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            clients,
            wakes,
            timeout,
        })
    }

    /// Subscribes, listens, and subscribes again whenever the connection is lost, until
    /// `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        for client in self.clients.iter().cycle() {
            match self.subscribe(client).await {
                Ok(pubsub) => {
                    failures = 0;
                    self.wakes.set_live(true);
                    info!(channel = self.wakes.channel(), "wake-ups: subscribed");
                    self.listen(pubsub, &shutdown).await;
                    self.wakes.set_live(false);
                    if shutdown.is_cancelled() {
                        return;
                    }
                    warn!("wake-ups: subscription lost; polling until it is back");
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    // Said once per outage (a missing ACL right lasts until fixed), then quietly.
                    if failures == 1 {
                        warn!(%error, "wake-ups: cannot subscribe; replicas poll meanwhile");
                    } else {
                        debug!(%error, failures, "wake-ups: cannot subscribe");
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff(failures)) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    async fn subscribe(&self, client: &redis::Client) -> Result<redis::aio::PubSub, Error> {
        bounded(self.timeout, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(self.wakes.channel()).await?;
            Ok(pubsub)
        })
        .await
    }

    /// Wakes waiters for each message until the connection is lost (or `shutdown`).
    async fn listen(&self, pubsub: redis::aio::PubSub, shutdown: &CancellationToken) {
        let (mut sink, mut messages) = pubsub.split();
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => {
                        let payload = String::from_utf8_lossy(message.get_payload_bytes());
                        if !self.wakes.heard(&payload) {
                            debug!(%payload, "wake-ups: unknown message ignored");
                        }
                    }
                    None => return,
                },
                () = tokio::time::sleep(PING_AFTER_SILENCE) => {
                    if let Err(error) = bounded(self.timeout, sink.ping::<redis::Value>()).await {
                        debug!(%error, "wake-ups: subscription unanswered");
                        return;
                    }
                }
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// The wait before attempt `failures + 1`: doubling from [`RECONNECT_FIRST`], capped.
fn backoff(failures: u32) -> Duration {
    RECONNECT_FIRST
        .saturating_mul(1u32 << failures.min(16))
        .min(RECONNECT_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_to_a_cap() {
        assert_eq!(backoff(0), RECONNECT_FIRST);
        assert_eq!(backoff(1), RECONNECT_FIRST * 2);
        assert_eq!(backoff(10), RECONNECT_MAX);
        assert_eq!(backoff(u32::MAX), RECONNECT_MAX);
    }
}
