//! Sidecar configuration from flags and `TRUSTLY_SIDECAR_*` environment variables.
//!
//! [`Config::from_lookup`] is the only parser: the environment and the command line are both
//! just lookups, and tests pass a map (no `set_var`). Every variable is parsed, every problem is
//! reported, and `main` exits with code 64 before binding anything.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use rsa::{RsaPrivateKey, RsaPublicKey};
use url::Url;

mod cli;
mod settings;
pub use cli::{command, from_args};
pub use settings::{SETTINGS, Setting, named};

use crate::money::{Amount, Currency};
pub use crate::secret::Secret;
// The types of settings live with the module that uses them; config only reads them.
use crate::trustly::{
    keys::{self, Environment, KeyError},
    sign::{Backend, Signer, Verifier},
};
pub use crate::{notify::DecisionFallback, ops::telemetry::LogFormat};

/// `test` or `live`: picks Trustly's endpoint and public key. Unset: `test`, so a half-configured
/// sidecar can never move real money.
pub const ENV_ENVIRONMENT: &str = "TRUSTLY_SIDECAR_ENVIRONMENT";
pub const DEFAULT_ENVIRONMENT: Environment = Environment::Test;
/// Overrides Trustly's endpoint URL (the simulator, a proxy). Unset: the environment's endpoint.
pub const ENV_TRUSTLY_URL: &str = "TRUSTLY_SIDECAR_TRUSTLY_URL";
/// Path to a PEM file overriding Trustly's built-in public key. Unset: the built-in key.
pub const ENV_TRUSTLY_PUBLIC_KEY_PATH: &str = "TRUSTLY_SIDECAR_TRUSTLY_PUBLIC_KEY_PATH";
/// Path to a PEM file with Trustly's *next* public key, accepted beside the current one while
/// Trustly rotates its key. Unset: only the current key.
pub const ENV_TRUSTLY_NEXT_PUBLIC_KEY_PATH: &str = "TRUSTLY_SIDECAR_TRUSTLY_NEXT_PUBLIC_KEY_PATH";
/// How often the key and password files are compared with what is loaded, e.g. `10s` (SIGHUP
/// checks at once). Kubernetes refreshes mounted Secrets within about a minute; 10 s adds little.
pub const ENV_RELOAD_INTERVAL: &str = "TRUSTLY_SIDECAR_RELOAD_INTERVAL";
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// Path to the merchant private key (PEM, PKCS#1 or PKCS#8). Required unless sandbox.
pub const ENV_PRIVATE_KEY_PATH: &str = "TRUSTLY_SIDECAR_PRIVATE_KEY_PATH";
/// Trustly API username. Required unless sandbox.
pub const ENV_USERNAME: &str = "TRUSTLY_SIDECAR_USERNAME";
/// Path to a file holding the Trustly API password (trailing newline ignored). Required unless
/// sandbox. A path, not a value, so the password comes from a mounted Secret.
pub const ENV_PASSWORD_PATH: &str = "TRUSTLY_SIDECAR_PASSWORD_PATH";
/// `rustcrypto` or `openssl` (if built with the `openssl` feature).
pub const ENV_SIGNING_BACKEND: &str = "TRUSTLY_SIDECAR_SIGNING_BACKEND";
pub const DEFAULT_SIGNING_BACKEND: Backend = Backend::RustCrypto;
/// `1`/`true`: run on embedded defaults against an in-process simulator: the PUBLICLY KNOWN test
/// merchant key of `src/sim/keys/`, sandbox credentials. Never with environment `live`.
pub const ENV_SANDBOX: &str = "TRUSTLY_SIDECAR_SANDBOX";
/// Where the sandbox's in-process Trustly simulator listens (its JSON-RPC API and admin API); used
/// only with `--sandbox`. Unset: `127.0.0.1:8900`, the same fixed address as a standalone
/// `trustly-sim`, so documented admin commands work; `127.0.0.1:0` picks a free port.
pub const ENV_SANDBOX_SIMULATOR_LISTEN: &str = "TRUSTLY_SIDECAR_SANDBOX_SIMULATOR_LISTEN";
pub const DEFAULT_SANDBOX_SIMULATOR_LISTEN: &str = "127.0.0.1:8900";
/// Log output: `plain` or `json`. Unset: `plain`.
pub const ENV_LOG_FORMAT: &str = "TRUSTLY_SIDECAR_LOG_FORMAT";

/// OTLP/gRPC endpoint of an OpenTelemetry collector, e.g. `http://otel-collector:4317`: the
/// tracing spans are exported there too. Needs a build with the `otel` feature. Unset: no export.
pub const ENV_OTLP_ENDPOINT: &str = "TRUSTLY_SIDECAR_OTLP_ENDPOINT";

/// Where the gRPC API listens. Unset: loopback only, because the application is in the same pod.
/// Any non-loopback address requires a bearer token (see `ENV_GRPC_TOKEN_PATH`).
pub const ENV_GRPC_LISTEN: &str = "TRUSTLY_SIDECAR_GRPC_LISTEN";
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:50051";
/// Where the notification intake listens (the port exposed to Trustly through the Ingress).
pub const ENV_NOTIFICATION_LISTEN: &str = "TRUSTLY_SIDECAR_NOTIFICATION_LISTEN";
pub const DEFAULT_NOTIFICATION_LISTEN: &str = "127.0.0.1:8480";
/// Where `/healthz`, `/readyz` and `/metrics` are served. Unset: loopback; Kubernetes probes and
/// Prometheus need `0.0.0.0:9464` (the Helm chart sets it).
pub const ENV_OPS_LISTEN: &str = "TRUSTLY_SIDECAR_OPS_LISTEN";
pub const DEFAULT_OPS_LISTEN: &str = "127.0.0.1:9464";
/// The public NotificationURL Trustly posts to (https, no `?`). Required unless sandbox; a request
/// may override it per order.
pub const ENV_NOTIFICATION_URL: &str = "TRUSTLY_SIDECAR_NOTIFICATION_URL";
/// Path to a file holding the bearer token every gRPC call must carry (`authorization: Bearer
/// <token>`). Unset: no token, allowed only on a loopback gRPC address.
pub const ENV_GRPC_TOKEN_PATH: &str = "TRUSTLY_SIDECAR_GRPC_TOKEN_PATH";
/// Connect timeout towards Trustly, e.g. `5s`. Unset: 5 s (Trustly's PHP client's value).
pub const ENV_TRUSTLY_CONNECT_TIMEOUT: &str = "TRUSTLY_SIDECAR_TRUSTLY_CONNECT_TIMEOUT";
/// Total time for one Trustly call, e.g. `30s`. Unset: 30 s (Trustly's PHP client's value).
pub const ENV_TRUSTLY_TIMEOUT: &str = "TRUSTLY_SIDECAR_TRUSTLY_TIMEOUT";

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
/// The path Trustly posts notifications to (the path of the NotificationURL).
pub const ENV_NOTIFICATION_PATH: &str = "TRUSTLY_SIDECAR_NOTIFICATION_PATH";
pub const DEFAULT_NOTIFICATION_PATH: &str = "/trustly/notifications";
/// How long a subscriber has to acknowledge an event before it is delivered again, e.g. `30s`.
pub const ENV_ACK_DEADLINE: &str = "TRUSTLY_SIDECAR_ACK_DEADLINE";
pub const DEFAULT_ACK_DEADLINE: Duration = Duration::from_secs(30);
/// Deliveries of an event to a group before it moves to the group's dead letters.
pub const ENV_MAX_DELIVERIES: &str = "TRUSTLY_SIDECAR_MAX_DELIVERIES";
pub const DEFAULT_MAX_DELIVERIES: u64 = 10;
/// How often an idle notification stream gets a heartbeat, e.g. `15s`: under the common 30–60 s
/// idle timeouts of proxies and load balancers.
pub const ENV_HEARTBEAT_INTERVAL: &str = "TRUSTLY_SIDECAR_HEARTBEAT_INTERVAL";
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// How long intake waits for a subscriber's decision on a Withdraw `debit` or a `kyc`, e.g. `10s`.
/// Trustly waits for the HTTP answer meanwhile, so this stays well under its request timeout.
pub const ENV_DECISION_DEADLINE: &str = "TRUSTLY_SIDECAR_DECISION_DEADLINE";
pub const DEFAULT_DECISION_DEADLINE: Duration = Duration::from_secs(10);
/// Without a decision in time: `withhold` (answer 503 so Trustly resends and asks again; no money
/// decision is ever made by default) or `answer` (debit OK, kyc CONTINUE).
pub const ENV_DECISION_FALLBACK: &str = "TRUSTLY_SIDECAR_DECISION_FALLBACK";

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
/// Low-balance thresholds per currency, e.g. `EUR=5000.00,SEK=50000`: the balance gauge of a
/// currency under its threshold sets `trustly_balance_low` and logs a warning (payouts need funds).
pub const ENV_LOW_BALANCE: &str = "TRUSTLY_SIDECAR_LOW_BALANCE";

/// Where the sandbox's merchant key comes from, as the startup log says it.
pub const SANDBOX_KEY_SOURCE: &str =
    "src/sim/keys/merchant-test-private.pem (PUBLICLY KNOWN, sandbox)";

/// Username and password the sandbox uses with the built-in simulator.
pub const SANDBOX_USERNAME: &str = "sandbox";
pub const SANDBOX_PASSWORD: &str = "sandbox";

/// Every problem found in the configuration, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct Error(pub Vec<Problem>);

impl Error {
    /// The problems, led by a pointer to `--sandbox` when nothing at all was configured: that is
    /// a first run, not a broken deployment.
    fn with_hint(mut problems: Vec<Problem>, anything_set: bool) -> Self {
        if !anything_set {
            problems.insert(0, Problem::NothingConfigured);
        }
        Error(problems)
    }
}

/// One configuration problem, naming the setting (flag and variable) or file.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error(
        "nothing is configured; to try the gateway on embedded defaults (test keys, in-memory store, \
         built-in Trustly simulator) run it with --sandbox (from a clone: cargo run --release -- --sandbox)"
    )]
    NothingConfigured,
    #[error("{}: {message}", settings::named(.var))]
    Invalid { var: &'static str, message: String },
    #[error("{} is required", settings::named(.var))]
    Missing { var: &'static str },
    #[error("{}: {source}", settings::named(.var))]
    Key {
        var: &'static str,
        #[source]
        source: KeyError,
    },
    #[error("{}: file {path}: {source}", settings::named(.var))]
    SecretFile {
        var: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The validated configuration. Keys are already loaded and checked.
#[derive(Clone)]
pub struct Config {
    pub sandbox: bool,
    /// Where the sandbox's simulator listens (unused outside the sandbox).
    pub sandbox_simulator_listen: SocketAddr,
    pub grpc_listen: SocketAddr,
    pub notification_listen: SocketAddr,
    pub ops_listen: SocketAddr,
    /// The default NotificationURL for orders.
    pub notification_url: Url,
    /// The bearer token gRPC callers must present, if any.
    pub grpc_token: Option<Secret<String>>,
    pub trustly_connect_timeout: Duration,
    pub trustly_timeout: Duration,
    /// The public half of the merchant key (the sandbox hands it to its simulator).
    pub merchant_public_key: RsaPublicKey,
    /// The files reloaded on change (none in the sandbox).
    pub private_key_path: Option<PathBuf>,
    pub password_path: Option<PathBuf>,
    pub reload_interval: Duration,
    /// The Redis URL (a secret: it may carry a password); `None` means the in-memory log.
    pub redis_url: Option<Secret<String>>,
    /// Redis Cluster mode (the URL lists seed nodes).
    pub redis_cluster: bool,
    /// The CA certificate (PEM) for `rediss://`, already read.
    pub redis_ca_pem: Option<Vec<u8>>,
    /// Keys the hash of bank details in the account cache; derived from the merchant key, so every
    /// replica agrees and nothing extra needs mounting.
    pub account_hash_secret: Secret<[u8; 32]>,
    pub register_account_from_cache: bool,
    pub redis_prefix: String,
    pub redis_timeout: Duration,
    pub notification_retention: Duration,
    pub idempotency_retention: Duration,
    pub notification_path: String,
    pub ack_deadline: Duration,
    pub max_deliveries: u64,
    pub heartbeat_interval: Duration,
    pub decision_deadline: Duration,
    pub decision_fallback: DecisionFallback,
    pub environment: Environment,
    pub trustly_url: Url,
    pub username: String,
    pub password: Secret<String>,
    pub signer: Arc<dyn Signer>,
    pub trustly_verifier: Arc<dyn Verifier>,
    /// Where the merchant key came from, for the startup log (never the key itself).
    pub private_key_source: String,
    pub trustly_key_source: String,
    pub log_format: LogFormat,
    /// Where spans are exported (OpenTelemetry), if anywhere.
    pub otlp_endpoint: Option<Url>,
    /// How often the balance is polled; `None`: only when the Balance RPC is called.
    pub balance_interval: Option<Duration>,
    /// Balance and GetWithdrawals (per order) at most once per this window; zero: no limit.
    pub poll_window: Duration,
    /// Per-currency low-balance thresholds.
    pub low_balance: Vec<(Currency, Amount)>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("sandbox", &self.sandbox)
            .field("sandbox_simulator_listen", &self.sandbox_simulator_listen)
            .field("grpc_listen", &self.grpc_listen)
            .field("notification_listen", &self.notification_listen)
            .field("ops_listen", &self.ops_listen)
            .field("notification_url", &self.notification_url.as_str())
            .field(
                "grpc_token",
                &self.grpc_token.as_ref().map(|_| "[redacted]"),
            )
            .field("trustly_connect_timeout", &self.trustly_connect_timeout)
            .field("trustly_timeout", &self.trustly_timeout)
            .field(
                "redis",
                &self
                    .redis_url
                    .as_ref()
                    .map_or("none (in-memory log)", |_| "[redacted url]"),
            )
            .field("redis_cluster", &self.redis_cluster)
            .field("redis_prefix", &self.redis_prefix)
            .field(
                "register_account_from_cache",
                &self.register_account_from_cache,
            )
            .field("notification_retention", &self.notification_retention)
            .field("idempotency_retention", &self.idempotency_retention)
            .field("notification_path", &self.notification_path)
            .field("ack_deadline", &self.ack_deadline)
            .field("max_deliveries", &self.max_deliveries)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("decision_deadline", &self.decision_deadline)
            .field("decision_fallback", &self.decision_fallback)
            .field("environment", &self.environment)
            .field("trustly_url", &self.trustly_url.as_str())
            .field("username", &self.username)
            .field("password", &self.password)
            .field("signing_backend", &self.signer.backend().to_string())
            .field("private_key", &self.private_key_source)
            .field("trustly_public_key", &self.trustly_key_source)
            .field("log_format", &self.log_format)
            .field(
                "otlp_endpoint",
                &self.otlp_endpoint.as_ref().map(Url::as_str),
            )
            .field("balance_interval", &self.balance_interval)
            .field("poll_window", &self.poll_window)
            .field("low_balance", &self.low_balance)
            .finish()
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Parses everything `lookup` provides, collecting every problem.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let mut problems = Vec::new();
        // Whether anything at all was set, to point a first-time user at --sandbox.
        let anything_set = std::cell::Cell::new(false);
        let get = |var: &str| {
            let value = lookup(var).filter(|v| !v.trim().is_empty());
            anything_set.set(anything_set.get() || value.is_some());
            value
        };

        let sandbox = parsed(
            &mut problems,
            ENV_SANDBOX,
            get(ENV_SANDBOX).map_or(Ok(false), |v| parse_bool(&v)),
        )
        .unwrap_or(false);
        let environment = parsed(
            &mut problems,
            ENV_ENVIRONMENT,
            get(ENV_ENVIRONMENT).map_or(Ok(DEFAULT_ENVIRONMENT), |v| v.parse()),
        );
        let backend = parsed(
            &mut problems,
            ENV_SIGNING_BACKEND,
            get(ENV_SIGNING_BACKEND).map_or(Ok(DEFAULT_SIGNING_BACKEND), |v| v.parse()),
        );
        let log_format = parsed(
            &mut problems,
            ENV_LOG_FORMAT,
            match get(ENV_LOG_FORMAT).as_deref() {
                None | Some("plain") => Ok(LogFormat::Plain),
                Some("json") => Ok(LogFormat::Json),
                Some(other) => Err(format!(
                    "unknown log format {other:?} (expected plain or json)"
                )),
            },
        );
        let otlp_endpoint = get(ENV_OTLP_ENDPOINT).and_then(|v| {
            parsed(
                &mut problems,
                ENV_OTLP_ENDPOINT,
                if cfg!(feature = "otel") {
                    Url::parse(&v)
                        .map_err(|e| format!("not a URL: {e}"))
                        .and_then(|url| match url.scheme() {
                            "http" | "https" => Ok(url),
                            other => Err(format!("scheme {other:?} is not http(s)")),
                        })
                } else {
                    Err(
                        "this build has no OpenTelemetry export (build with --features otel)"
                            .into(),
                    )
                },
            )
        });
        let url_override = get(ENV_TRUSTLY_URL).and_then(|v| {
            parsed(
                &mut problems,
                ENV_TRUSTLY_URL,
                Url::parse(&v)
                    .map_err(|e| format!("not a URL: {e}"))
                    .and_then(|url| match url.scheme() {
                        "https" | "http" => Ok(url),
                        other => Err(format!("scheme {other:?} is not http(s)")),
                    }),
            )
        });

        let grpc_listen = parsed(
            &mut problems,
            ENV_GRPC_LISTEN,
            get(ENV_GRPC_LISTEN)
                .as_deref()
                .unwrap_or(DEFAULT_GRPC_LISTEN)
                .parse::<SocketAddr>()
                .map_err(|e| format!("not a socket address: {e}")),
        );
        let notification_listen = parsed(
            &mut problems,
            ENV_NOTIFICATION_LISTEN,
            get(ENV_NOTIFICATION_LISTEN)
                .as_deref()
                .unwrap_or(DEFAULT_NOTIFICATION_LISTEN)
                .parse::<SocketAddr>()
                .map_err(|e| format!("not a socket address: {e}")),
        );
        let ops_listen = parsed(
            &mut problems,
            ENV_OPS_LISTEN,
            get(ENV_OPS_LISTEN)
                .as_deref()
                .unwrap_or(DEFAULT_OPS_LISTEN)
                .parse::<SocketAddr>()
                .map_err(|e| format!("not a socket address: {e}")),
        );
        let sandbox_simulator_listen = parsed(
            &mut problems,
            ENV_SANDBOX_SIMULATOR_LISTEN,
            get(ENV_SANDBOX_SIMULATOR_LISTEN)
                .as_deref()
                .unwrap_or(DEFAULT_SANDBOX_SIMULATOR_LISTEN)
                .parse::<SocketAddr>()
                .map_err(|e| format!("not a socket address: {e}")),
        );
        let notification_url = match get(ENV_NOTIFICATION_URL) {
            Some(text) => parsed(
                &mut problems,
                ENV_NOTIFICATION_URL,
                parse_notification_url(&text),
            ),
            // The sandbox's simulator posts to the local intake over plain http.
            None if sandbox => notification_listen
                .and_then(|addr| Url::parse(&format!("http://{addr}/trustly/notifications")).ok()),
            None => {
                problems.push(Problem::Missing {
                    var: ENV_NOTIFICATION_URL,
                });
                None
            }
        };
        let grpc_token = match get(ENV_GRPC_TOKEN_PATH) {
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(token) if !token.trim().is_empty() => Some(Secret::new(token.trim().to_owned())),
                Ok(_) => {
                    problems.push(Problem::Invalid {
                        var: ENV_GRPC_TOKEN_PATH,
                        message: format!("token file {path} is empty"),
                    });
                    None
                }
                Err(source) => {
                    problems.push(Problem::SecretFile {
                        var: ENV_GRPC_TOKEN_PATH,
                        path: path.into(),
                        source,
                    });
                    None
                }
            },
            None => None,
        };
        if let Some(addr) = grpc_listen
            && !addr.ip().is_loopback()
            && grpc_token.is_none()
        {
            problems.push(Problem::Invalid {
                var: ENV_GRPC_LISTEN,
                message: format!(
                    "{addr} is not loopback: set {} so every call must carry a bearer token",
                    settings::named(ENV_GRPC_TOKEN_PATH)
                ),
            });
        }
        let trustly_connect_timeout = parsed(
            &mut problems,
            ENV_TRUSTLY_CONNECT_TIMEOUT,
            get(ENV_TRUSTLY_CONNECT_TIMEOUT)
                .map_or(Ok(crate::trustly::client::DEFAULT_CONNECT_TIMEOUT), |v| {
                    parse_duration(&v)
                }),
        );
        let trustly_timeout = parsed(
            &mut problems,
            ENV_TRUSTLY_TIMEOUT,
            get(ENV_TRUSTLY_TIMEOUT)
                .map_or(Ok(crate::trustly::client::DEFAULT_REQUEST_TIMEOUT), |v| {
                    parse_duration(&v)
                }),
        );

        // Trimmed: a URL stored in a Secret with `--from-file` often ends in a newline.
        let redis_url = get(ENV_REDIS_URL).map(|url| url.trim().to_owned()).and_then(|url| {
            parsed(
                &mut problems,
                ENV_REDIS_URL,
                if url.split(',').all(|u| matches!(u.trim().split_once("://").map(|(scheme, _)| scheme), Some("redis" | "rediss"))) {
                    Ok(Secret::new(url))
                } else {
                    Err("must be a redis:// or rediss:// URL (a comma-separated list for a cluster)".to_owned())
                },
            )
        });
        let redis_cluster = parsed(
            &mut problems,
            ENV_REDIS_CLUSTER,
            get(ENV_REDIS_CLUSTER).map_or(Ok(false), |v| parse_bool(&v)),
        )
        .unwrap_or(false);
        if let Some(url) = &redis_url
            && !redis_cluster
            && url.expose().contains(',')
        {
            problems.push(Problem::Invalid {
                var: ENV_REDIS_URL,
                message: format!(
                    "several URLs need {}=true",
                    settings::named(ENV_REDIS_CLUSTER)
                ),
            });
        }
        let redis_ca_pem = get(ENV_REDIS_CA_PATH).and_then(|path| match std::fs::read(&path) {
            Ok(pem)
                if pem.starts_with(b"-----BEGIN CERTIFICATE-----")
                    || String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") =>
            {
                Some(pem)
            }
            Ok(_) => {
                problems.push(Problem::Invalid {
                    var: ENV_REDIS_CA_PATH,
                    message: format!("{path} is not a PEM certificate"),
                });
                None
            }
            Err(source) => {
                problems.push(Problem::SecretFile {
                    var: ENV_REDIS_CA_PATH,
                    path: path.into(),
                    source,
                });
                None
            }
        });
        let redis_prefix = get(ENV_REDIS_PREFIX).unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_owned());
        if redis_prefix.contains(['{', '}', ' ']) {
            problems.push(Problem::Invalid {
                var: ENV_REDIS_PREFIX,
                message: "must not contain braces or spaces".into(),
            });
        }
        let duration = |problems: &mut Vec<Problem>, var: &'static str, default: Duration| {
            parsed(
                problems,
                var,
                get(var).map_or(Ok(default), |v| parse_duration(&v)),
            )
        };
        let redis_timeout = duration(&mut problems, ENV_REDIS_TIMEOUT, DEFAULT_REDIS_TIMEOUT);
        let notification_retention = duration(
            &mut problems,
            ENV_NOTIFICATION_RETENTION,
            DEFAULT_NOTIFICATION_RETENTION,
        );
        let ack_deadline = duration(&mut problems, ENV_ACK_DEADLINE, DEFAULT_ACK_DEADLINE);
        let decision_deadline = duration(
            &mut problems,
            ENV_DECISION_DEADLINE,
            DEFAULT_DECISION_DEADLINE,
        );
        let idempotency_retention = duration(
            &mut problems,
            ENV_IDEMPOTENCY_RETENTION,
            DEFAULT_IDEMPOTENCY_RETENTION,
        );
        let reload_interval = duration(&mut problems, ENV_RELOAD_INTERVAL, DEFAULT_RELOAD_INTERVAL);
        let heartbeat_interval = duration(
            &mut problems,
            ENV_HEARTBEAT_INTERVAL,
            DEFAULT_HEARTBEAT_INTERVAL,
        );
        let balance_interval = get(ENV_BALANCE_INTERVAL).and_then(|v| {
            parsed(
                &mut problems,
                ENV_BALANCE_INTERVAL,
                parse_duration(&v).and_then(|interval| {
                    if interval >= MIN_BALANCE_INTERVAL {
                        Ok(interval)
                    } else {
                        Err(format!("{v:?} is shorter than Trustly's limit of one Balance call per 15 minutes"))
                    }
                }),
            )
        });
        // `0s` is allowed here (no limit), unlike the other durations.
        let poll_window = match get(ENV_POLL_WINDOW).as_deref() {
            None => DEFAULT_POLL_WINDOW,
            Some("0" | "0s") => Duration::ZERO,
            Some(v) => parsed(&mut problems, ENV_POLL_WINDOW, parse_duration(v))
                .unwrap_or(DEFAULT_POLL_WINDOW),
        };
        let low_balance = get(ENV_LOW_BALANCE)
            .and_then(|v| parsed(&mut problems, ENV_LOW_BALANCE, parse_thresholds(&v)))
            .unwrap_or_default();
        let notification_path =
            get(ENV_NOTIFICATION_PATH).unwrap_or_else(|| DEFAULT_NOTIFICATION_PATH.to_owned());
        if !notification_path.starts_with('/') || notification_path.contains('?') {
            problems.push(Problem::Invalid {
                var: ENV_NOTIFICATION_PATH,
                message: "must start with / and contain no ?".into(),
            });
        }
        let max_deliveries = parsed(
            &mut problems,
            ENV_MAX_DELIVERIES,
            get(ENV_MAX_DELIVERIES).map_or(Ok(DEFAULT_MAX_DELIVERIES), |v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("{v:?} is not a whole number >= 1"))
            }),
        );
        let decision_fallback = parsed(
            &mut problems,
            ENV_DECISION_FALLBACK,
            match get(ENV_DECISION_FALLBACK).as_deref() {
                None | Some("withhold") => Ok(DecisionFallback::Withhold),
                Some("answer") => Ok(DecisionFallback::Answer),
                Some(other) => Err(format!(
                    "unknown fallback {other:?} (expected withhold or answer)"
                )),
            },
        );

        let (private_key, private_key_source) = if let Some(path) = get(ENV_PRIVATE_KEY_PATH) {
            let path = PathBuf::from(path);
            match keys::load_private_key(&path) {
                Ok(key) => {
                    refuse_test_key_in_live(
                        &mut problems,
                        environment,
                        ENV_PRIVATE_KEY_PATH,
                        &RsaPublicKey::from(&key),
                    );
                    (Some(key), path.display().to_string())
                }
                Err(source) => {
                    problems.push(Problem::Key {
                        var: ENV_PRIVATE_KEY_PATH,
                        source,
                    });
                    (None, String::new())
                }
            }
        } else if sandbox {
            (
                Some(crate::sim::keys::merchant_private_key()),
                SANDBOX_KEY_SOURCE.to_owned(),
            )
        } else {
            problems.push(Problem::Missing {
                var: ENV_PRIVATE_KEY_PATH,
            });
            (None, String::new())
        };

        let (trustly_key, trustly_key_source) =
            match (get(ENV_TRUSTLY_PUBLIC_KEY_PATH), environment) {
                (Some(path), _) => {
                    let path = PathBuf::from(path);
                    match keys::load_trustly_public_key(&path, environment) {
                        Ok(key) => {
                            refuse_test_key_in_live(
                                &mut problems,
                                environment,
                                ENV_TRUSTLY_PUBLIC_KEY_PATH,
                                &key,
                            );
                            let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
                            (Some(key), format!("{} ({bits}-bit)", path.display()))
                        }
                        Err(source) => {
                            problems.push(Problem::Key {
                                var: ENV_TRUSTLY_PUBLIC_KEY_PATH,
                                source,
                            });
                            (None, String::new())
                        }
                    }
                }
                (None, Some(env)) => (Some(env.trustly_public_key()), format!("built-in {env}")),
                (None, None) => (None, String::new()),
            };

        let username = match get(ENV_USERNAME) {
            Some(user) => user,
            None if sandbox => SANDBOX_USERNAME.to_owned(),
            None => {
                problems.push(Problem::Missing { var: ENV_USERNAME });
                String::new()
            }
        };
        let password = match get(ENV_PASSWORD_PATH) {
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(text) => text.trim_end_matches(['\r', '\n']).to_owned(),
                Err(source) => {
                    problems.push(Problem::SecretFile {
                        var: ENV_PASSWORD_PATH,
                        path: path.into(),
                        source,
                    });
                    String::new()
                }
            },
            None if sandbox => SANDBOX_PASSWORD.to_owned(),
            None => {
                problems.push(Problem::Missing {
                    var: ENV_PASSWORD_PATH,
                });
                String::new()
            }
        };

        let merchant_public_key = private_key.as_ref().map(RsaPublicKey::from);
        let account_hash_secret = private_key.as_ref().map(derive_account_hash_secret);
        let register_account_from_cache = parsed(
            &mut problems,
            ENV_REGISTER_ACCOUNT_FROM_CACHE,
            get(ENV_REGISTER_ACCOUNT_FROM_CACHE).map_or(Ok(true), |v| parse_bool(&v)),
        )
        .unwrap_or(true);
        let signer = match (backend, private_key) {
            (Some(backend), Some(key)) => backend
                .signer(key)
                .map_err(|e| {
                    problems.push(Problem::Invalid {
                        var: ENV_SIGNING_BACKEND,
                        message: e.to_string(),
                    })
                })
                .ok(),
            _ => None,
        };
        let next_trustly_key = get(ENV_TRUSTLY_NEXT_PUBLIC_KEY_PATH).and_then(|path| {
            keys::load_trustly_public_key(std::path::Path::new(&path), environment)
                .map_err(|source| {
                    problems.push(Problem::Key {
                        var: ENV_TRUSTLY_NEXT_PUBLIC_KEY_PATH,
                        source,
                    })
                })
                .ok()
        });
        if let Some(key) = &next_trustly_key {
            refuse_test_key_in_live(
                &mut problems,
                environment,
                ENV_TRUSTLY_NEXT_PUBLIC_KEY_PATH,
                key,
            );
        }
        if sandbox && environment == Some(Environment::Live) {
            problems.push(Problem::Invalid {
                var: ENV_SANDBOX,
                message: format!(
                    "the sandbox runs on PUBLICLY KNOWN test keys; it cannot run with {}=live",
                    settings::named(ENV_ENVIRONMENT)
                ),
            });
        }
        let verifier = match (backend, trustly_key) {
            (Some(backend), Some(key)) => backend
                .verifier(key)
                .and_then(|current| match next_trustly_key {
                    Some(next) => Ok(Arc::new(crate::trustly::sign::AnyKey(vec![
                        current,
                        backend.verifier(next)?,
                    ])) as Arc<dyn Verifier>),
                    None => Ok(current),
                })
                .map_err(|e| {
                    problems.push(Problem::Invalid {
                        var: ENV_SIGNING_BACKEND,
                        message: e.to_string(),
                    })
                })
                .ok(),
            _ => None,
        };

        let (
            Some(environment),
            Some(signer),
            Some(trustly_verifier),
            Some(log_format),
            Some(grpc_listen),
            Some(notification_listen),
            Some(notification_url),
            Some(trustly_connect_timeout),
            Some(trustly_timeout),
            Some(merchant_public_key),
            Some(redis_timeout),
            Some(notification_retention),
            Some(ack_deadline),
            Some(decision_deadline),
            Some(max_deliveries),
            Some(decision_fallback),
            Some(heartbeat_interval),
            Some(idempotency_retention),
            Some(account_hash_secret),
            Some(ops_listen),
            Some(reload_interval),
            Some(sandbox_simulator_listen),
        ) = (
            environment,
            signer,
            verifier,
            log_format,
            grpc_listen,
            notification_listen,
            notification_url,
            trustly_connect_timeout,
            trustly_timeout,
            merchant_public_key,
            redis_timeout,
            notification_retention,
            ack_deadline,
            decision_deadline,
            max_deliveries,
            decision_fallback,
            heartbeat_interval,
            idempotency_retention,
            account_hash_secret,
            ops_listen,
            reload_interval,
            sandbox_simulator_listen,
        )
        else {
            return Err(Error::with_hint(problems, anything_set.get()));
        };
        if !problems.is_empty() {
            return Err(Error::with_hint(problems, anything_set.get()));
        }
        let trustly_url = url_override
            .or_else(|| Url::parse(environment.endpoint()).ok())
            .ok_or_else(|| {
                Error(vec![Problem::Missing {
                    var: ENV_TRUSTLY_URL,
                }])
            })?;
        Ok(Config {
            sandbox,
            sandbox_simulator_listen,
            grpc_listen,
            notification_listen,
            ops_listen,
            notification_url,
            grpc_token,
            trustly_connect_timeout,
            trustly_timeout,
            merchant_public_key,
            private_key_path: get(ENV_PRIVATE_KEY_PATH).map(PathBuf::from),
            password_path: get(ENV_PASSWORD_PATH).map(PathBuf::from),
            reload_interval,
            redis_url,
            redis_cluster,
            redis_ca_pem,
            account_hash_secret: Secret::new(account_hash_secret),
            register_account_from_cache,
            redis_prefix,
            redis_timeout,
            notification_retention,
            idempotency_retention,
            notification_path,
            ack_deadline,
            max_deliveries,
            heartbeat_interval,
            decision_deadline,
            decision_fallback,
            environment,
            trustly_url,
            username,
            password: Secret::new(password),
            signer,
            trustly_verifier,
            private_key_source,
            trustly_key_source,
            log_format,
            otlp_endpoint,
            balance_interval,
            poll_window,
            low_balance,
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

/// Keeps a parsed value, or records why it could not be parsed.
fn parsed<T>(
    problems: &mut Vec<Problem>,
    var: &'static str,
    result: Result<T, String>,
) -> Option<T> {
    result
        .map_err(|message| problems.push(Problem::Invalid { var, message }))
        .ok()
}

/// A 32-byte secret for the account cache's keyed hashes: SHA-256 over a fixed label and the
/// merchant key. Secret (it needs the private key) and identical on every replica.
fn derive_account_hash_secret(key: &RsaPrivateKey) -> [u8; 32] {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(b"trustly-sidecar account cache key v1\0");
    if let Ok(der) = key.to_pkcs1_der() {
        hasher.update(der.as_bytes());
    }
    hasher.finalize().into()
}

/// Live never trusts a publicly known test key (its private half is public): records a problem
/// naming the variable and the key.
fn refuse_test_key_in_live(
    problems: &mut Vec<Problem>,
    environment: Option<Environment>,
    var: &'static str,
    key: &RsaPublicKey,
) {
    if environment == Some(Environment::Live)
        && let Some(name) = crate::sim::keys::publicly_known(key)
    {
        problems.push(Problem::Invalid {
            var,
            message: format!(
                "is the PUBLICLY KNOWN test key {name}; environment live never trusts a test key"
            ),
        });
    }
}

/// The public NotificationURL: https (Trustly refuses plain http, 734) and no `?` (705); plain
/// http only on loopback, for local development against the simulator.
fn parse_notification_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
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

/// Parses `250ms`, `10s`, `2m`, `1h` or `7d` (a whole number and a unit), greater than zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 250ms, 10s or 2m"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        "d" => Duration::from_secs(number.saturating_mul(86_400)),
        _ => {
            return Err(format!(
                "{text:?} is not a duration such as 250ms, 10s or 2m"
            ));
        }
    };
    if duration.is_zero() {
        return Err(format!("{text:?} must be greater than zero"));
    }
    Ok(duration)
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(format!("expected true/false or 1/0, got {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");

    fn config(vars: &[(&str, String)]) -> Result<Config, Error> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        Config::from_lookup(|var| vars.get(var).cloned())
    }

    fn password_file() -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), "s3cret\n").expect("write");
        file
    }

    /// A freshly generated merchant key in a PEM file: live refuses the published test keys.
    fn fresh_key_file() -> tempfile::NamedTempFile {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, keys::MIN_KEY_BITS).expect("keygen");
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("encodes");
        std::fs::write(file.path(), pem.as_bytes()).expect("write");
        file
    }

    #[test]
    fn full_config_loads_keys_and_password() {
        let password = password_file();
        let key = fresh_key_file();
        let config = config(&[
            (ENV_PRIVATE_KEY_PATH, key.path().display().to_string()),
            (ENV_USERNAME, "merchant".into()),
            (ENV_PASSWORD_PATH, password.path().display().to_string()),
            (ENV_ENVIRONMENT, "live".into()),
            (
                ENV_NOTIFICATION_URL,
                "https://merchant.example/trustly/n".into(),
            ),
            (ENV_TRUSTLY_TIMEOUT, "45s".into()),
        ])
        .expect("valid config");
        assert_eq!(config.trustly_timeout, Duration::from_secs(45));
        assert_eq!(config.grpc_listen.to_string(), DEFAULT_GRPC_LISTEN);
        assert_eq!(config.environment, Environment::Live);
        assert_eq!(config.trustly_url.as_str(), "https://api.trustly.com/1");
        assert_eq!(config.password.expose(), "s3cret");
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let error = config(&[
            (ENV_PRIVATE_KEY_PATH, "/nonexistent/key.pem".into()),
            (ENV_ENVIRONMENT, "prod".into()),
            (ENV_TRUSTLY_URL, "ftp://x".into()),
        ])
        .expect_err("invalid config");
        let text = error.to_string();
        for needle in [
            ENV_PRIVATE_KEY_PATH,
            "/nonexistent/key.pem",
            "does not exist",
            ENV_ENVIRONMENT,
            ENV_TRUSTLY_URL,
            ENV_USERNAME,
            ENV_PASSWORD_PATH,
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }

    #[test]
    fn key_problems_name_the_file() {
        for (file, expected) in [
            ("merchant-test-private-encrypted.pem", "encrypted"),
            ("merchant-test-private-encrypted-pkcs1.pem", "encrypted"),
            ("weak-1024-private.pem", "1024-bit"),
            ("merchant-test-public.pem", "not a PEM RSA private key"),
            ("README.md", "not a PEM"),
        ] {
            let password = password_file();
            let error = config(&[
                (ENV_PRIVATE_KEY_PATH, format!("{FIXTURES}/{file}")),
                (ENV_USERNAME, "merchant".into()),
                (ENV_PASSWORD_PATH, password.path().display().to_string()),
            ])
            .expect_err("bad key refused");
            let text = error.to_string();
            assert!(
                text.contains(file) && text.contains(expected),
                "{file}: {text}"
            );
        }
    }

    #[test]
    fn a_public_grpc_address_needs_a_token_and_urls_are_checked() {
        let error = config(&[
            (ENV_SANDBOX, "1".into()),
            (ENV_GRPC_LISTEN, "0.0.0.0:50051".into()),
            (ENV_NOTIFICATION_URL, "http://merchant.example/n?x=1".into()),
            (ENV_TRUSTLY_TIMEOUT, "soon".into()),
        ])
        .expect_err("refused");
        let text = error.to_string();
        for needle in [
            ENV_GRPC_LISTEN,
            ENV_GRPC_TOKEN_PATH,
            ENV_NOTIFICATION_URL,
            ENV_TRUSTLY_TIMEOUT,
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        let token = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(token.path(), "t0ken\n").expect("write");
        let config = config(&[
            (ENV_SANDBOX, "1".into()),
            (ENV_GRPC_LISTEN, "0.0.0.0:50051".into()),
            (ENV_GRPC_TOKEN_PATH, token.path().display().to_string()),
        ])
        .expect("token makes a public address acceptable");
        assert_eq!(
            config.grpc_token.as_ref().map(|t| t.expose().as_str()),
            Some("t0ken")
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "10", "s", "0s", "1.5s", "-1s", "10y"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_poll_window_defaults_to_trustlys_limit_and_can_be_turned_off() {
        let window = |value: Option<&str>| {
            let mut vars = vec![(ENV_SANDBOX, "1".to_owned())];
            vars.extend(value.map(|v| (ENV_POLL_WINDOW, v.to_owned())));
            config(&vars).map(|c| c.poll_window)
        };
        assert_eq!(window(None).expect("valid"), Duration::from_secs(15 * 60));
        assert_eq!(window(Some("0s")).expect("valid"), Duration::ZERO);
        assert_eq!(
            window(Some("30m")).expect("valid"),
            Duration::from_secs(1800)
        );
        let error = window(Some("soon")).expect_err("refused").to_string();
        assert!(error.contains("TRUSTLY_SIDECAR_POLL_WINDOW"), "{error}");
    }

    #[test]
    fn the_balance_poll_respects_trustlys_limit_and_thresholds_are_exact() {
        let error = config(&[
            (ENV_SANDBOX, "1".into()),
            (ENV_BALANCE_INTERVAL, "5m".into()),
            (ENV_LOW_BALANCE, "EUR=100.001,sek=5,SEK".into()),
        ])
        .expect_err("refused");
        let text = error.to_string();
        for needle in [
            "(TRUSTLY_SIDECAR_BALANCE_INTERVAL): \"5m\" is shorter than Trustly's limit",
            "(TRUSTLY_SIDECAR_LOW_BALANCE): \"EUR=100.001\": amount must have at most 2 decimals",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        let config = config(&[
            (ENV_SANDBOX, "1".into()),
            (ENV_BALANCE_INTERVAL, "15m".into()),
            (ENV_LOW_BALANCE, "EUR=5000.00, SEK=250".into()),
        ])
        .expect("valid");
        assert_eq!(config.balance_interval, Some(MIN_BALANCE_INTERVAL));
        let thresholds: Vec<String> = config
            .low_balance
            .iter()
            .map(|(currency, amount)| format!("{currency}={amount}"))
            .collect();
        assert_eq!(thresholds, ["EUR=5000.00", "SEK=250.00"]);
    }

    #[test]
    fn sandbox_needs_no_secrets() {
        let config = config(&[(ENV_SANDBOX, "1".into())]).expect("sandbox config");
        assert!(config.sandbox);
        assert_eq!(config.username, SANDBOX_USERNAME);
        assert_eq!(config.private_key_source, SANDBOX_KEY_SOURCE);
        // The same publicly known merchant key as trustly-sim and trustly-notify expect.
        assert_eq!(
            config.merchant_public_key,
            RsaPublicKey::from(&crate::sim::keys::merchant_private_key())
        );
        assert_eq!(
            config.sandbox_simulator_listen.to_string(),
            DEFAULT_SANDBOX_SIMULATOR_LISTEN
        );
    }

    #[test]
    fn the_sandbox_simulator_address_is_a_setting() {
        let moved = config(&[
            (ENV_SANDBOX, "1".into()),
            (ENV_SANDBOX_SIMULATOR_LISTEN, "127.0.0.1:0".into()),
        ])
        .expect("valid");
        assert_eq!(moved.sandbox_simulator_listen.to_string(), "127.0.0.1:0");
        let text = config(&[
            (ENV_SANDBOX, "1".into()),
            (ENV_SANDBOX_SIMULATOR_LISTEN, "localhost".into()),
        ])
        .expect_err("refused")
        .to_string();
        assert!(
            text.contains("(TRUSTLY_SIDECAR_SANDBOX_SIMULATOR_LISTEN): not a socket address"),
            "{text}"
        );
    }

    #[test]
    fn live_never_trusts_a_publicly_known_test_key() {
        let password = password_file();
        let fresh = fresh_key_file();
        let live = |extra: &[(&str, String)]| {
            let mut vars = vec![
                (ENV_USERNAME, "merchant".to_owned()),
                (ENV_PASSWORD_PATH, password.path().display().to_string()),
                (ENV_ENVIRONMENT, "live".to_owned()),
                (
                    ENV_NOTIFICATION_URL,
                    "https://merchant.example/trustly/n".to_owned(),
                ),
            ];
            vars.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
            config(&vars)
        };
        let fresh_path = fresh.path().display().to_string();
        for (var, file) in [
            (ENV_PRIVATE_KEY_PATH, "merchant-test-private.pem"),
            (ENV_PRIVATE_KEY_PATH, "merchant-test-private-pkcs8.pem"),
            (ENV_PRIVATE_KEY_PATH, "python-client-test-private-1.pem"),
            (
                ENV_TRUSTLY_PUBLIC_KEY_PATH,
                "python-client-test-public-1.pem",
            ),
            (ENV_TRUSTLY_PUBLIC_KEY_PATH, "merchant-test-public.pem"),
            (ENV_TRUSTLY_PUBLIC_KEY_PATH, "trustly-test-public.pem"),
            (
                ENV_TRUSTLY_NEXT_PUBLIC_KEY_PATH,
                "python-client-test-public-1.pem",
            ),
        ] {
            let mut vars = vec![(var, format!("{FIXTURES}/{file}"))];
            if var != ENV_PRIVATE_KEY_PATH {
                vars.push((ENV_PRIVATE_KEY_PATH, fresh_path.clone()));
            }
            let text = live(&vars).expect_err("refused").to_string();
            assert!(
                text.contains(&format!("({var}): is the PUBLICLY KNOWN test key")),
                "{var}={file}: {text}"
            );
            assert_eq!(text.matches("PUBLICLY KNOWN").count(), 1, "{text}");
            // The same keys are fine in the test environment.
            vars.push((ENV_ENVIRONMENT, "test".to_owned()));
            assert!(live(&vars).is_ok(), "{var}={file} in test");
        }
        assert!(live(&[(ENV_PRIVATE_KEY_PATH, fresh_path)]).is_ok());
        let text = config(&[(ENV_SANDBOX, "1".into()), (ENV_ENVIRONMENT, "live".into())])
            .expect_err("refused")
            .to_string();
        assert!(
            text.contains(
                "(TRUSTLY_SIDECAR_SANDBOX): the sandbox runs on PUBLICLY KNOWN test keys"
            ),
            "{text}"
        );
    }
}
