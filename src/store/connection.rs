//! The Redis connection every store concept shares: one server (a reconnecting manager) or a
//! Redis Cluster (a slot-routing client), and the first connection's error in an operator's words.
//!
//! Knows nothing of what is stored: the concepts (`log`, `decisions`, `orders`, `lease`,
//! `idempotency`, `accounts`, `polls`) own their keys.

use std::time::Duration;

use redis::{Value, aio::ConnectionManager};

use super::{ConnectCause, Error};

/// Connects to one server, or to a Redis Cluster through its seed nodes (`cluster`), bounded by
/// `timeout`. `rediss://` URLs use TLS, verified against `ca_pem` when given (a private CA),
/// otherwise against the public web roots.
pub async fn connect(
    urls: &[String],
    cluster: bool,
    ca_pem: Option<&[u8]>,
    timeout: Duration,
) -> Result<Connection, Error> {
    let certificates = || {
        ca_pem.map(|ca| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca.to_vec()),
        })
    };
    Ok(if cluster {
        let mut builder = redis::cluster::ClusterClientBuilder::new(urls.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout);
        if let Some(certificates) = certificates() {
            builder = builder.certs(certificates);
        }
        let client = builder.build()?;
        let conn = tokio::time::timeout(timeout, client.get_async_connection())
            .await
            .map_err(|_| connect_error(urls, ConnectCause::TimedOut(timeout), None))?
            .map_err(|e| connect_error(urls, classify(&e, timeout), Some(e)))?;
        Connection::Cluster(conn)
    } else {
        let url = urls.first().map(String::as_str).unwrap_or_default();
        let client = match certificates() {
            Some(certificates) => redis::Client::build_with_tls(url, certificates)?,
            None => redis::Client::open(url)?,
        };
        // One plain attempt first: the connection manager retries a refused connection
        // until the timeout, which would hide *why* the server cannot be reached.
        let probe = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        tokio::time::timeout(
            timeout,
            client.get_multiplexed_async_connection_with_config(&probe),
        )
        .await
        .map_err(|_| connect_error(urls, ConnectCause::TimedOut(timeout), None))?
        .map_err(|e| connect_error(urls, classify(&e, timeout), Some(e)))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let conn =
            tokio::time::timeout(timeout, ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| connect_error(urls, ConnectCause::TimedOut(timeout), None))?
                .map_err(|e| connect_error(urls, classify(&e, timeout), Some(e)))?;
        Connection::Single(conn)
    })
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

/// A Redis connection: one server (reconnecting manager) or a Redis Cluster (slot-routing client).
#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Connection::Single(conn) => conn.req_packed_command(cmd),
            Connection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(conn) => conn.req_packed_commands(cmd, offset, count),
            Connection::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(conn) => conn.get_db(),
            Connection::Cluster(conn) => conn.get_db(),
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

/// Sorts a failed first connection into what an operator can act on.
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
