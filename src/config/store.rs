//! The store section: Redis (or memory when no URL is set) and how long records are kept.

use std::time::Duration;

use super::*;

/// Redis URL (`redis://` or `rediss://`, credentials allowed) for the shared notification log.
/// Unset: an in-memory log (not durable, not shared between replicas; said at start).
pub const ENV_REDIS_URL: &str = "TRUSTLY_SIDECAR_REDIS_URL";
/// `true`: Redis Cluster; `TRUSTLY_SIDECAR_REDIS_URL` then lists seed nodes, comma-separated.
pub const ENV_REDIS_CLUSTER: &str = "TRUSTLY_SIDECAR_REDIS_CLUSTER";
/// PEM file of the CA that signed a `rediss://` server's certificate (a private CA). Unset: the
/// public web roots.
pub const ENV_REDIS_CA_PATH: &str = "TRUSTLY_SIDECAR_REDIS_CA_PATH";
/// Prefix of every Redis key, so several sidecar deployments can share one Redis.
pub const ENV_REDIS_PREFIX: &str = "TRUSTLY_SIDECAR_REDIS_PREFIX";
pub const DEFAULT_REDIS_PREFIX: &str = "trustly-sidecar";
/// Timeout of every Redis call, e.g. `2s`. A Redis round trip is ~0.1 ms here; 2 s only trips when
/// Redis is really gone, and then intake answers 503 so Trustly resends.
pub const ENV_REDIS_TIMEOUT: &str = "TRUSTLY_SIDECAR_REDIS_TIMEOUT";
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long notifications and their dedupe records are kept, e.g. `7d`. Trustly resends a
/// notification until answered (over days, with growing intervals); a week covers that and a
/// weekend of subscriber downtime.
pub const ENV_NOTIFICATION_RETENTION: &str = "TRUSTLY_SIDECAR_NOTIFICATION_RETENTION";
pub const DEFAULT_NOTIFICATION_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long idempotency records are kept, e.g. `72h`: a retry with the same key within it never
/// acts twice. Covers a weekend of client retries and Trustly's own UUID replay window.
pub const ENV_IDEMPOTENCY_RETENTION: &str = "TRUSTLY_SIDECAR_IDEMPOTENCY_RETENTION";
pub const DEFAULT_IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(72 * 3600);

/// The store: the notification log, idempotency records and the account cache.
#[derive(Clone)]
pub struct Store {
    /// The Redis URL (a secret: it may carry a password); `None` means the in-memory store.
    pub redis_url: Option<Secret<String>>,
    /// Redis Cluster mode (the URL lists seed nodes).
    pub cluster: bool,
    /// The CA certificate (PEM) for `rediss://`, already read.
    pub ca_pem: Option<Vec<u8>>,
    pub prefix: String,
    pub timeout: Duration,
    pub notification_retention: Duration,
    pub idempotency_retention: Duration,
    /// Not a setting (always `None` when read): tests set it to make subscribers and decision
    /// waits poll only this often, proving that wake-ups reach them without polling.
    pub test_poll_every: Option<Duration>,
}

impl Store {
    pub(super) fn read(r: &mut Reader<'_>) -> Option<Self> {
        let redis_url = redis_url(r);
        let cluster = r.flag(ENV_REDIS_CLUSTER, false);
        if let Some(url) = &redis_url
            && !cluster
            && url.expose().contains(',')
        {
            let message = format!(
                "several URLs need {}=true",
                settings::named(ENV_REDIS_CLUSTER)
            );
            r.invalid(ENV_REDIS_URL, message);
        }
        let ca_pem = ca_pem(r);
        let prefix = r
            .get(ENV_REDIS_PREFIX)
            .unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_owned());
        if prefix.contains(['{', '}', ' ']) {
            r.invalid(ENV_REDIS_PREFIX, "must not contain braces or spaces".into());
        }
        let timeout = r.duration(ENV_REDIS_TIMEOUT, DEFAULT_REDIS_TIMEOUT);
        let notification_retention =
            r.duration(ENV_NOTIFICATION_RETENTION, DEFAULT_NOTIFICATION_RETENTION);
        let idempotency_retention =
            r.duration(ENV_IDEMPOTENCY_RETENTION, DEFAULT_IDEMPOTENCY_RETENTION);
        Some(Self {
            redis_url,
            cluster,
            ca_pem,
            prefix,
            timeout: timeout?,
            notification_retention: notification_retention?,
            idempotency_retention: idempotency_retention?,
            test_poll_every: None,
        })
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redis = self
            .redis_url
            .as_ref()
            .map_or("none (in-memory log)", |_| "[redacted url]");
        f.debug_struct("Store")
            .field("redis", &redis)
            .field("cluster", &self.cluster)
            .field("ca", &self.ca_pem.as_ref().map(|_| "PEM"))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("notification_retention", &self.notification_retention)
            .field("idempotency_retention", &self.idempotency_retention)
            .finish()
    }
}

/// The Redis URL, or a comma-separated list of them. Trimmed: a URL stored in a Secret with
/// `--from-file` often ends in a newline. Parsed here as the Redis client will parse it, so a
/// malformed URL stops the start (exit 64) instead of being retried as an unreachable server.
fn redis_url(r: &mut Reader<'_>) -> Option<Secret<String>> {
    r.optional(ENV_REDIS_URL, |url| {
        let url = url.trim();
        let redis = |u: &str| {
            matches!(
                u.trim().split_once("://").map(|(scheme, _)| scheme),
                Some("redis" | "rediss")
            )
        };
        if !url.split(',').all(redis) {
            return Err(
                "must be a redis:// or rediss:// URL (a comma-separated list for a cluster)".into(),
            );
        }
        // The client's own words ("Invalid port", "Missing hostname"), never the URL: it may
        // carry a password.
        match url
            .split(',')
            .find_map(|u| redis::IntoConnectionInfo::into_connection_info(u.trim()).err())
        {
            Some(error) => Err(format!("not a valid Redis URL: {error}")),
            None => Ok(Secret::new(url.to_owned())),
        }
    })
}

/// The private CA's certificate, read and checked to be PEM.
fn ca_pem(r: &mut Reader<'_>) -> Option<Vec<u8>> {
    let path = r.get(ENV_REDIS_CA_PATH)?;
    let pem = r.file(ENV_REDIS_CA_PATH, &path, std::fs::read(&path))?;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    if pem.starts_with(BEGIN.as_bytes()) || String::from_utf8_lossy(&pem).contains(BEGIN) {
        return Some(pem);
    }
    r.invalid(
        ENV_REDIS_CA_PATH,
        format!("{path} is not a PEM certificate"),
    );
    None
}
