//! Sidecar configuration from flags and `TRUSTLY_SIDECAR_*` environment variables.
//!
//! [`Config::from_lookup`] is the only parser: the environment and the command line are both
//! just lookups, and tests pass a map (no `set_var`). Every variable is parsed, every problem is
//! reported, and `main` exits with code 64 before binding anything.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use rsa::RsaPublicKey;
use url::Url;

mod cli;
mod reader;
mod sections;
mod settings;
mod trustly;
pub use cli::{command, from_args};
use reader::Reader;
pub use reader::parse_duration;
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
/// merchant key of `src/trustly/keys/published/`, sandbox credentials. Never with environment `live`.
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
    "src/trustly/keys/published/merchant-test-private.pem (PUBLICLY KNOWN, sandbox)";

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

    /// Parses everything `lookup` provides, section by section, collecting every problem.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let mut r = Reader::new(&lookup);
        match Sections::read(&mut r) {
            Some(sections) if r.problems.is_empty() => Self::assemble(sections),
            _ => Err(Error::with_hint(r.problems, r.anything_set)),
        }
    }

    /// The configuration from sections read without a problem.
    fn assemble(sections: Sections) -> Result<Self, Error> {
        let Sections {
            sandbox,
            sandbox_simulator_listen,
            telemetry,
            grpc,
            intake,
            store,
            delivery,
            trustly,
            private_key_path,
            password_path,
            register_account_from_cache,
        } = sections;
        let trustly_url = trustly
            .url
            .or_else(|| Url::parse(trustly.environment.endpoint()).ok())
            .ok_or_else(|| {
                Error(vec![Problem::Missing {
                    var: ENV_TRUSTLY_URL,
                }])
            })?;
        Ok(Config {
            sandbox,
            sandbox_simulator_listen,
            grpc_listen: grpc.listen,
            notification_listen: intake.listen,
            ops_listen: grpc.ops_listen,
            notification_url: intake.url,
            grpc_token: grpc.token,
            trustly_connect_timeout: trustly.connect_timeout,
            trustly_timeout: trustly.timeout,
            merchant_public_key: trustly.merchant_public_key,
            private_key_path,
            password_path,
            reload_interval: trustly.reload_interval,
            redis_url: store.url,
            redis_cluster: store.cluster,
            redis_ca_pem: store.ca_pem,
            account_hash_secret: Secret::new(trustly.account_hash_secret),
            register_account_from_cache,
            redis_prefix: store.prefix,
            redis_timeout: store.timeout,
            notification_retention: store.notification_retention,
            idempotency_retention: store.idempotency_retention,
            notification_path: intake.path,
            ack_deadline: delivery.ack_deadline,
            max_deliveries: delivery.max_deliveries,
            heartbeat_interval: delivery.heartbeat_interval,
            decision_deadline: intake.decision_deadline,
            decision_fallback: intake.decision_fallback,
            environment: trustly.environment,
            trustly_url,
            username: trustly.username,
            password: trustly.password,
            signer: trustly.signer,
            trustly_verifier: trustly.verifier,
            private_key_source: trustly.private_key_source,
            trustly_key_source: trustly.trustly_key_source,
            log_format: telemetry.log_format,
            otlp_endpoint: telemetry.otlp_endpoint,
            balance_interval: trustly.balance_interval,
            poll_window: trustly.poll_window,
            low_balance: trustly.low_balance,
        })
    }
}

/// Every section, read.
struct Sections {
    sandbox: bool,
    sandbox_simulator_listen: SocketAddr,
    telemetry: sections::Telemetry,
    grpc: sections::Grpc,
    intake: sections::Intake,
    store: sections::Store,
    delivery: sections::Delivery,
    trustly: trustly::Trustly,
    private_key_path: Option<PathBuf>,
    password_path: Option<PathBuf>,
    register_account_from_cache: bool,
}

impl Sections {
    /// Reads every section (all of them, so every problem is recorded); `None` if one is missing
    /// a required value.
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        let (sandbox, sandbox_simulator_listen) = sections::sandbox(r);
        let telemetry = sections::telemetry(r);
        let grpc = sections::grpc(r);
        let intake = sections::intake(r, sandbox);
        let store = sections::store(r);
        let delivery = sections::delivery(r);
        let trustly = trustly::trustly(r, sandbox);
        let private_key_path = r.get(ENV_PRIVATE_KEY_PATH).map(PathBuf::from);
        let password_path = r.get(ENV_PASSWORD_PATH).map(PathBuf::from);
        let register_account_from_cache = r.flag(ENV_REGISTER_ACCOUNT_FROM_CACHE, true);
        Some(Self {
            sandbox,
            sandbox_simulator_listen: sandbox_simulator_listen?,
            telemetry: telemetry?,
            grpc: grpc?,
            intake: intake?,
            store: store?,
            delivery: delivery?,
            trustly: trustly?,
            private_key_path,
            password_path,
            register_account_from_cache,
        })
    }
}

#[cfg(test)]
mod tests;
