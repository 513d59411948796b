//! The configuration sections other than Trustly's: gRPC, intake, delivery, the store (Redis) and
//! telemetry, each read by its own function through the one [`Reader`].

use std::{net::SocketAddr, time::Duration};

use url::Url;

use super::{reader::parse_http_url, reader::parse_url, *};

/// The gRPC API: where it listens and the bearer token it asks for.
pub struct Grpc {
    pub listen: SocketAddr,
    pub ops_listen: SocketAddr,
    pub token: Option<Secret<String>>,
}

pub fn grpc(r: &mut Reader<'_>) -> Option<Grpc> {
    let listen = r.socket_addr(ENV_GRPC_LISTEN, DEFAULT_GRPC_LISTEN);
    let ops_listen = r.socket_addr(ENV_OPS_LISTEN, DEFAULT_OPS_LISTEN);
    let token = r.get(ENV_GRPC_TOKEN_PATH).and_then(|path| {
        let token = r.file(ENV_GRPC_TOKEN_PATH, &path, std::fs::read_to_string(&path))?;
        if token.trim().is_empty() {
            r.invalid(ENV_GRPC_TOKEN_PATH, format!("token file {path} is empty"));
            return None;
        }
        Some(Secret::new(token.trim().to_owned()))
    });
    if let Some(addr) = listen
        && !addr.ip().is_loopback()
        && token.is_none()
    {
        r.invalid(
            ENV_GRPC_LISTEN,
            format!(
                "{addr} is not loopback: set {} so every call must carry a bearer token",
                settings::named(ENV_GRPC_TOKEN_PATH)
            ),
        );
    }
    Some(Grpc {
        listen: listen?,
        ops_listen: ops_listen?,
        token,
    })
}

/// Notification intake: where Trustly posts, and what it answers without a decision.
pub struct Intake {
    pub listen: SocketAddr,
    pub url: Url,
    pub path: String,
    pub decision_deadline: Duration,
    pub decision_fallback: DecisionFallback,
}

pub fn intake(r: &mut Reader<'_>, sandbox: bool) -> Option<Intake> {
    let listen = r.socket_addr(ENV_NOTIFICATION_LISTEN, DEFAULT_NOTIFICATION_LISTEN);
    let url = match r.get(ENV_NOTIFICATION_URL) {
        Some(text) => r.parsed(ENV_NOTIFICATION_URL, parse_notification_url(&text)),
        // The sandbox's simulator posts to the local intake over plain http.
        None if sandbox => {
            listen.and_then(|addr| Url::parse(&format!("http://{addr}/trustly/notifications")).ok())
        }
        None => {
            r.missing(ENV_NOTIFICATION_URL);
            None
        }
    };
    let path = r
        .get(ENV_NOTIFICATION_PATH)
        .unwrap_or_else(|| DEFAULT_NOTIFICATION_PATH.to_owned());
    if !path.starts_with('/') || path.contains('?') {
        r.invalid(
            ENV_NOTIFICATION_PATH,
            "must start with / and contain no ?".into(),
        );
    }
    let decision_deadline = r.duration(ENV_DECISION_DEADLINE, DEFAULT_DECISION_DEADLINE);
    let decision_fallback = r.value(
        ENV_DECISION_FALLBACK,
        DecisionFallback::Withhold,
        |v| match v {
            "withhold" => Ok(DecisionFallback::Withhold),
            "answer" => Ok(DecisionFallback::Answer),
            other => Err(format!(
                "unknown fallback {other:?} (expected withhold or answer)"
            )),
        },
    );
    Some(Intake {
        listen: listen?,
        url: url?,
        path,
        decision_deadline: decision_deadline?,
        decision_fallback: decision_fallback?,
    })
}

/// The public NotificationURL: https (Trustly refuses plain http, 734) and no `?` (705); plain
/// http only on loopback, for local development against the simulator.
fn parse_notification_url(text: &str) -> Result<Url, String> {
    let url = parse_url(text)?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(host)) => host == "localhost",
        None => false,
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err("must be https (Trustly refuses plain http; http only on loopback)".into());
    }
    if url.query().is_some() || text.contains('?') {
        return Err("must not contain '?' (Trustly refuses query strings)".into());
    }
    Ok(url)
}

/// Delivery to subscribers.
pub struct Delivery {
    pub ack_deadline: Duration,
    pub max_deliveries: u64,
    pub heartbeat_interval: Duration,
}

pub fn delivery(r: &mut Reader<'_>) -> Option<Delivery> {
    let ack_deadline = r.duration(ENV_ACK_DEADLINE, DEFAULT_ACK_DEADLINE);
    let heartbeat_interval = r.duration(ENV_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_INTERVAL);
    let max_deliveries = r.value(ENV_MAX_DELIVERIES, DEFAULT_MAX_DELIVERIES, |v| {
        v.parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{v:?} is not a whole number >= 1"))
    });
    Some(Delivery {
        ack_deadline: ack_deadline?,
        max_deliveries: max_deliveries?,
        heartbeat_interval: heartbeat_interval?,
    })
}

/// The store: Redis (or memory when no URL is set) and how long records are kept.
pub struct Store {
    pub url: Option<Secret<String>>,
    pub cluster: bool,
    pub ca_pem: Option<Vec<u8>>,
    pub prefix: String,
    pub timeout: Duration,
    pub notification_retention: Duration,
    pub idempotency_retention: Duration,
}

pub fn store(r: &mut Reader<'_>) -> Option<Store> {
    // Trimmed: a URL stored in a Secret with `--from-file` often ends in a newline.
    let url = r.optional(ENV_REDIS_URL, |url| {
        let url = url.trim();
        let redis = |u: &str| {
            matches!(
                u.trim().split_once("://").map(|(scheme, _)| scheme),
                Some("redis" | "rediss")
            )
        };
        if url.split(',').all(redis) {
            Ok(Secret::new(url.to_owned()))
        } else {
            Err("must be a redis:// or rediss:// URL (a comma-separated list for a cluster)".into())
        }
    });
    let cluster = r.flag(ENV_REDIS_CLUSTER, false);
    if let Some(url) = &url
        && !cluster
        && url.expose().contains(',')
    {
        let message = format!(
            "several URLs need {}=true",
            settings::named(ENV_REDIS_CLUSTER)
        );
        r.invalid(ENV_REDIS_URL, message);
    }
    let ca_pem = r.get(ENV_REDIS_CA_PATH).and_then(|path| {
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
    });
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
    Some(Store {
        url,
        cluster,
        ca_pem,
        prefix,
        timeout: timeout?,
        notification_retention: notification_retention?,
        idempotency_retention: idempotency_retention?,
    })
}

/// Logs and span export.
pub struct Telemetry {
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<Url>,
}

pub fn telemetry(r: &mut Reader<'_>) -> Option<Telemetry> {
    let log_format = r.value(ENV_LOG_FORMAT, LogFormat::Plain, |v| match v {
        "plain" => Ok(LogFormat::Plain),
        "json" => Ok(LogFormat::Json),
        other => Err(format!(
            "unknown log format {other:?} (expected plain or json)"
        )),
    });
    let otlp_endpoint = r.optional(ENV_OTLP_ENDPOINT, |v| {
        if cfg!(feature = "otel") {
            parse_http_url(v)
        } else {
            Err("this build has no OpenTelemetry export (build with --features otel)".into())
        }
    });
    Some(Telemetry {
        log_format: log_format?,
        otlp_endpoint,
    })
}

/// The sandbox: on or off, and where its simulator listens.
pub fn sandbox(r: &mut Reader<'_>) -> (bool, Option<SocketAddr>) {
    let on = r.flag(ENV_SANDBOX, false);
    let listen = r.socket_addr(
        ENV_SANDBOX_SIMULATOR_LISTEN,
        DEFAULT_SANDBOX_SIMULATOR_LISTEN,
    );
    (on, listen)
}
