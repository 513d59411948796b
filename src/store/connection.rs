//! The Redis connection every store concept shares: one server (a reconnecting manager) or a
//! Redis Cluster (a slot-routing client), and a failed connection's cause in an operator's words.
//!
//! A [`Connector`] checks the settings at once (a bad URL is an error at start) and hands out the
//! [`Connection`] before Redis answers: the concepts are built immediately, every call fails fast
//! as store-unavailable until the connection is made, and a Redis that cannot be reached at start
//! is retried in the background ([`Connector::start`]).
//!
//! Knows nothing of what is stored: the concepts (`log`, `decisions`, `orders`, `lease`,
//! `idempotency`, `accounts`, `polls`) own their keys.

mod retry;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use redis::{Value, aio::ConnectionManager};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{ConnectCause, Error};

pub use retry::{CONNECT_BACKOFF_CAP, CONNECT_BACKOFF_INITIAL, CONNECT_LOG_WINDOW};

/// Connects to one server, or to a Redis Cluster through its seed nodes (`cluster`), bounded by
/// `timeout`: one attempt, an error when Redis cannot be reached.
pub async fn connect(
    urls: &[String],
    cluster: bool,
    ca_pem: Option<&[u8]>,
    timeout: Duration,
) -> Result<Connection, Error> {
    let connector = Connector::new(urls, cluster, ca_pem, timeout)?;
    connector.attempt().await?;
    Ok(connector.connection())
}

/// The configured client, before it is connected.
#[expect(
    clippy::large_enum_variant,
    reason = "one per process, built once: its size does not matter"
)]
enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

/// Makes the one connection a [`Connection`] is waiting for.
pub struct Connector {
    client: Client,
    urls: Vec<String>,
    timeout: Duration,
    link: Arc<OnceLock<Link>>,
}

impl Connector {
    /// Checks the settings without connecting: `rediss://` URLs use TLS, verified against
    /// `ca_pem` when given (a private CA), otherwise against the public web roots. Every attempt
    /// and every call is bounded by `timeout`.
    pub fn new(
        urls: &[String],
        cluster: bool,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let certificates = || {
            ca_pem.map(|ca| redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.to_vec()),
            })
        };
        let client = if cluster {
            let mut builder = redis::cluster::ClusterClientBuilder::new(urls.to_vec())
                .connection_timeout(timeout)
                .response_timeout(timeout);
            if let Some(certificates) = certificates() {
                builder = builder.certs(certificates);
            }
            Client::Cluster(builder.build()?)
        } else {
            let url = urls.first().map(String::as_str).unwrap_or_default();
            Client::Single(match certificates() {
                Some(certificates) => redis::Client::build_with_tls(url, certificates)?,
                None => redis::Client::open(url)?,
            })
        };
        Ok(Self {
            client,
            urls: urls.to_vec(),
            timeout,
            link: Arc::default(),
        })
    }

    /// The connection, usable at once: its calls fail fast until it is connected.
    pub fn connection(&self) -> Connection {
        Connection {
            link: Arc::clone(&self.link),
        }
    }

    /// Connects now when Redis answers; otherwise keeps trying on `tasks` (capped exponential
    /// backoff, a log line per window) until it does or `stop` is cancelled. An authentication
    /// or TLS failure is retried too, and logged as an error: it is as often fixed on the server
    /// side (an ACL user created by the same rollout, a certificate renewed) as in our settings,
    /// and exiting would only crash-loop the pod while readiness already keeps traffic away.
    pub async fn start(self, tasks: &TaskTracker, stop: CancellationToken) -> Connection {
        let connection = self.connection();
        if let Err(error) = self.attempt().await {
            tasks.spawn(retry::until_connected(self, error, stop));
        }
        connection
    }

    /// One attempt; the connection is usable once it succeeded.
    pub async fn attempt(&self) -> Result<(), Error> {
        if self.link.get().is_some() {
            return Ok(());
        }
        let link = match &self.client {
            Client::Cluster(client) => {
                Link::Cluster(self.within(client.get_async_connection()).await?)
            }
            Client::Single(client) => {
                // One plain attempt first: the connection manager retries a refused connection
                // until the timeout, which would hide *why* the server cannot be reached.
                let probe = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout));
                self.within(client.get_multiplexed_async_connection_with_config(&probe))
                    .await?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout));
                Link::Single(
                    self.within(ConnectionManager::new_with_config(client.clone(), config))
                        .await?,
                )
            }
        };
        // Two attempts cannot race (one task makes them): the first link set is the one used.
        let _ = self.link.set(link);
        Ok(())
    }

    /// One connection step within the timeout, its failure classified.
    async fn within<T>(
        &self,
        step: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.timeout, step)
            .await
            .map_err(|_| connect_error(&self.urls, ConnectCause::TimedOut(self.timeout), None))?
            .map_err(|e| connect_error(&self.urls, classify(&e, self.timeout), Some(e)))
    }

    /// The servers, as an error or a log line may show them (see [`endpoints`]).
    fn endpoints(&self) -> String {
        endpoints(&self.urls)
    }
}

/// A client for one server of `urls` (for connections of their own, such as the wake-up
/// subscription), verifying a `rediss://` server against `ca_pem` like [`connect`].
pub(crate) fn client(url: &str, ca_pem: Option<&[u8]>) -> Result<redis::Client, Error> {
    Ok(match ca_pem {
        Some(ca) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.to_vec()),
            },
        )?,
        None => redis::Client::open(url)?,
    })
}

/// Runs one Redis call within `timeout`.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, Error> {
    Ok(tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| Error::Timeout(timeout))??)
}

/// A connected link: one server (reconnecting manager) or a Redis Cluster (slot-routing client).
/// Both are handles (an `Arc` or a channel inside): a clone per call is cheap.
#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

/// The shared Redis connection. Cloning shares it; until its [`Connector`] connected, every
/// call fails at once (the store is unavailable) instead of waiting for a timeout.
#[derive(Clone)]
pub struct Connection {
    link: Arc<OnceLock<Link>>,
}

fn not_connected() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Io,
        "not connected to redis yet (retrying in the background)",
    ))
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        let link = self.link.get().cloned();
        Box::pin(async move {
            match link.ok_or_else(not_connected)? {
                Link::Single(mut conn) => conn.req_packed_command(cmd).await,
                Link::Cluster(mut conn) => conn.req_packed_command(cmd).await,
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        let link = self.link.get().cloned();
        Box::pin(async move {
            match link.ok_or_else(not_connected)? {
                Link::Single(mut conn) => conn.req_packed_commands(cmd, offset, count).await,
                Link::Cluster(mut conn) => conn.req_packed_commands(cmd, offset, count).await,
            }
        })
    }

    fn get_db(&self) -> i64 {
        match self.link.get() {
            Some(Link::Single(conn)) => conn.get_db(),
            Some(Link::Cluster(conn)) => conn.get_db(),
            None => 0,
        }
    }
}

/// The servers of `urls` as `host:port` (comma-separated for a cluster), without user or
/// password: what a connection error may show.
pub fn endpoints(urls: &[String]) -> String {
    urls.iter()
        .map(|raw| match url::Url::parse(raw.trim()) {
            Ok(url) => format!(
                "{}:{}",
                url.host_str().unwrap_or("?"),
                url.port().unwrap_or(DEFAULT_REDIS_PORT)
            ),
            Err(_) => "an unparsable URL".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Redis's port when a URL names none.
const DEFAULT_REDIS_PORT: u16 = 6379;

fn connect_error(urls: &[String], cause: ConnectCause, source: Option<redis::RedisError>) -> Error {
    Error::Connect {
        endpoint: endpoints(urls),
        cause,
        source,
    }
}

/// Sorts a failed connection attempt into what an operator can act on.
fn classify(error: &redis::RedisError, timeout: Duration) -> ConnectCause {
    if error.kind() == redis::ErrorKind::AuthenticationFailed {
        return ConnectCause::Auth;
    }
    if error.is_connection_refusal() {
        return ConnectCause::Refused;
    }
    // The client surfaces TLS and resolver failures as I/O errors; their text is all it keeps.
    let text = format!("{error:?}").to_ascii_lowercase();
    if ["tls", "certificate", "handshake", "unknownissuer"]
        .iter()
        .any(|word| text.contains(word))
    {
        ConnectCause::Tls
    } else if text.contains("failed to lookup address")
        || text.contains("name or service not known")
    {
        ConnectCause::UnknownHost
    } else if error.is_timeout() {
        ConnectCause::TimedOut(timeout)
    } else if text.contains("noauth") || text.contains("wrongpass") {
        ConnectCause::Auth
    } else {
        ConnectCause::Other
    }
}
