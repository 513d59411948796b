//! The table of every setting: its environment variable, its command-line flag and the line
//! `--help` shows. The binary builds its flags from this table (clap, with `env`), so a setting
//! can never exist only as a variable, and error messages name both spellings.

use super::*;

/// One setting of the sidecar.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The environment variable, `TRUSTLY_SIDECAR_*`.
    pub var: &'static str,
    /// The long flag without its dashes: the variable's suffix in kebab case (tested).
    pub flag: &'static str,
    /// What `--help` says, with the default.
    pub help: &'static str,
}

macro_rules! settings {
    ($($var:ident, $flag:literal, $help:literal;)*) => {
        /// Every setting, in the order `--help` lists them.
        pub const SETTINGS: &[Setting] = &[$(Setting { var: $var, flag: $flag, help: $help }),*];
    };
}

settings! {
    ENV_SANDBOX, "sandbox",
        "Run on embedded defaults: the publicly known test keys (src/trustly/keys/published), sandbox credentials, in-memory store and an in-process Trustly simulator; refused with --environment live";
    ENV_SANDBOX_SIMULATOR_LISTEN, "sandbox-simulator-listen",
        "With --sandbox: the simulator's address (Trustly API /api/1, checkout, admin /admin) [default: 127.0.0.1:8900]";
    ENV_ENVIRONMENT, "environment", "Trustly environment: test or live [default: test]";
    ENV_TRUSTLY_URL, "trustly-url", "Override Trustly's endpoint URL [default: the environment's]";
    ENV_TRUSTLY_PUBLIC_KEY_PATH, "trustly-public-key-path",
        "PEM file overriding Trustly's public key [default: built in for the environment]";
    ENV_TRUSTLY_NEXT_PUBLIC_KEY_PATH, "trustly-next-public-key-path",
        "PEM file with Trustly's next public key, accepted too during a key rotation";
    ENV_PRIVATE_KEY_PATH, "private-key-path", "Merchant private key, PEM (PKCS#1 or PKCS#8) [required unless --sandbox]";
    ENV_USERNAME, "username", "Trustly API username [required unless --sandbox]";
    ENV_PASSWORD_PATH, "password-path", "File holding the Trustly API password [required unless --sandbox]";
    ENV_SIGNING_BACKEND, "signing-backend", "openssl, rustcrypto (pure Rust) or pkcs11 (key in a token) [default: openssl; rustcrypto in a build without the openssl feature]";
    ENV_PKCS11_MODULE, "pkcs11-module", "With --signing-backend pkcs11: the token's PKCS#11 module (.so)";
    ENV_PKCS11_TOKEN_LABEL, "pkcs11-token-label", "With --signing-backend pkcs11: the label of the token holding the merchant key";
    ENV_PKCS11_KEY_LABEL, "pkcs11-key-label", "With --signing-backend pkcs11: the label of the merchant's RSA private key in the token";
    ENV_PKCS11_PIN_PATH, "pkcs11-pin-path", "With --signing-backend pkcs11: file holding the token's user PIN";
    ENV_PKCS11_SESSIONS, "pkcs11-sessions", "With --signing-backend pkcs11: sessions kept logged in [default: min(token's maximum, 8)]";
    ENV_RELOAD_INTERVAL, "reload-interval", "How often key and password files are checked for changes [default: 10s]";
    ENV_GRPC_LISTEN, "grpc-listen", "gRPC listen address; non-loopback needs --grpc-token-path and TLS (or --grpc-allow-plaintext) [default: 127.0.0.1:50051]";
    ENV_GRPC_TOKEN_PATH, "grpc-token-path", "File holding the bearer token every gRPC call must carry";
    ENV_GRPC_TLS_CERT_PATH, "grpc-tls-cert-path",
        "PEM certificate chain for gRPC over TLS (with --grpc-tls-key-path); reloaded on change [default: plaintext]";
    ENV_GRPC_TLS_KEY_PATH, "grpc-tls-key-path", "PEM private key of the gRPC TLS certificate";
    ENV_GRPC_TLS_CLIENT_CA_PATH, "grpc-tls-client-ca-path",
        "PEM CA: gRPC clients must present a certificate it signed (mTLS) [default: no client certificates]";
    ENV_GRPC_ALLOW_PLAINTEXT, "grpc-allow-plaintext",
        "true: plaintext gRPC on a non-loopback address (behind an encrypting mesh) [default: false]";
    ENV_NOTIFICATION_LISTEN, "notification-listen", "Notification intake listen address [default: 127.0.0.1:8480]";
    ENV_NOTIFICATION_PATH, "notification-path", "Path Trustly posts notifications to [default: /trustly/notifications]";
    ENV_NOTIFICATION_URL, "notification-url",
        "Public https NotificationURL Trustly posts to [required unless --sandbox]";
    ENV_INTAKE_TLS_CERT_PATH, "intake-tls-cert-path",
        "PEM certificate chain for intake over TLS (with --intake-tls-key-path) [default: plaintext]";
    ENV_INTAKE_TLS_KEY_PATH, "intake-tls-key-path", "PEM private key of the intake TLS certificate";
    ENV_INTAKE_TLS_CLIENT_CA_PATH, "intake-tls-client-ca-path", "PEM CA intake clients must present a certificate from (mTLS)";
    ENV_OPS_LISTEN, "ops-listen", "/healthz, /readyz and /metrics listen address [default: 127.0.0.1:9464]";
    ENV_OPS_TLS_CERT_PATH, "ops-tls-cert-path",
        "PEM certificate chain for the ops endpoints over TLS (with --ops-tls-key-path) [default: plaintext]";
    ENV_OPS_TLS_KEY_PATH, "ops-tls-key-path", "PEM private key of the ops TLS certificate";
    ENV_OPS_TLS_CLIENT_CA_PATH, "ops-tls-client-ca-path", "PEM CA ops clients must present a certificate from (mTLS)";
    ENV_TRUSTLY_CONNECT_TIMEOUT, "trustly-connect-timeout", "Connect timeout towards Trustly [default: 5s]";
    ENV_TRUSTLY_TIMEOUT, "trustly-timeout", "Total time for one Trustly call [default: 30s]";
    ENV_REDIS_URL, "redis-url",
        "redis:// or rediss:// URL (comma-separated seeds with --redis-cluster) [default: in-memory store, not durable]";
    ENV_REDIS_CLUSTER, "redis-cluster", "true: Redis Cluster [default: false]";
    ENV_REDIS_CA_PATH, "redis-ca-path", "PEM CA certificate of a rediss:// server [default: public web roots]";
    ENV_REDIS_PREFIX, "redis-prefix", "Prefix of every Redis key [default: trustly-sidecar]";
    ENV_REDIS_TIMEOUT, "redis-timeout", "Timeout of every Redis call [default: 2s]";
    ENV_NOTIFICATION_RETENTION, "notification-retention", "How long notifications are kept [default: 7d]";
    ENV_IDEMPOTENCY_RETENTION, "idempotency-retention", "How long idempotency records are kept [default: 72h]";
    ENV_ACK_DEADLINE, "ack-deadline", "Time a subscriber has to acknowledge before redelivery [default: 30s]";
    ENV_MAX_DELIVERIES, "max-deliveries", "Deliveries before an event moves to the dead letters [default: 10]";
    ENV_HEARTBEAT_INTERVAL, "heartbeat-interval", "Heartbeat on an idle notification stream [default: 15s]";
    ENV_DECISION_DEADLINE, "decision-deadline",
        "How long intake waits for a subscriber's decision (Withdraw debit, kyc) [default: 10s]";
    ENV_DECISION_FALLBACK, "decision-fallback",
        "Without a decision in time: withhold (503, Trustly resends) or answer (OK/CONTINUE) [default: withhold]";
    ENV_REGISTER_ACCOUNT_FROM_CACHE, "register-account-from-cache",
        "RegisterAccount answers from the AccountID cache for known details [default: true]";
    ENV_POLL_WINDOW, "poll-window",
        "Balance and GetWithdrawals (per order) reach Trustly at most once per window, fleet-wide; 0s: off [default: 15m]";
    ENV_BALANCE_INTERVAL, "balance-interval", "Poll the Trustly balance this often, at least 15m [default: never]";
    ENV_LOW_BALANCE, "low-balance", "Low-balance thresholds, e.g. EUR=5000.00,SEK=50000";
    ENV_RECONCILE_INTERVAL, "reconcile-interval",
        "Reconcile yesterday and today against AccountLedger this often, one replica per interval fleet-wide; 0s or off: never [default: 1h]";
    ENV_LOG_FORMAT, "log-format", "plain or json [default: plain]";
    ENV_OTLP_ENDPOINT, "otlp-endpoint", "OpenTelemetry collector (OTLP/gRPC) for spans; needs --features otel";
}

/// The flag of a variable, for messages: `--redis-url`. A variable outside the table (never the
/// case for ours, see the test) is shown as it is.
pub fn flag_of(var: &str) -> Option<&'static str> {
    SETTINGS.iter().find(|s| s.var == var).map(|s| s.flag)
}

/// Both spellings of a setting, the way every configuration message names it:
/// `--redis-url (TRUSTLY_SIDECAR_REDIS_URL)`.
pub fn named(var: &str) -> String {
    match flag_of(var) {
        Some(flag) => format!("--{flag} ({var})"),
        None => var.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_flag_is_its_variable_in_kebab_case_and_every_variable_is_listed_once() {
        for setting in SETTINGS {
            let suffix = setting.var.strip_prefix("TRUSTLY_SIDECAR_").unwrap();
            assert_eq!(setting.flag, suffix.to_lowercase().replace('_', "-"));
            assert_eq!(SETTINGS.iter().filter(|s| s.var == setting.var).count(), 1);
        }
    }

    #[test]
    fn every_env_constant_of_the_config_module_is_a_setting() {
        // The config module's sources are the list of what exists: a new ENV_ constant that is not
        // in the table would be a variable without a flag. Each section's file holds its own.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/config");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.push(format!("{dir}.rs").into());
        let mut seen = 0;
        for file in files {
            let source = std::fs::read_to_string(&file).unwrap();
            for line in source.lines() {
                if let Some(rest) = line.trim().strip_prefix("pub const ENV_")
                    && let Some((_, value)) = rest.split_once('"')
                {
                    let var = value.trim_end_matches(['"', ';']);
                    assert!(flag_of(var).is_some(), "{var} in {file:?} has no flag");
                    seen += 1;
                }
            }
        }
        // The constants must be found where this test looks, or it would check nothing.
        assert_eq!(
            seen,
            SETTINGS.len(),
            "ENV_ constants in config/ vs settings"
        );
    }

    #[test]
    fn messages_name_the_flag_and_the_variable() {
        assert_eq!(
            named(ENV_REDIS_URL),
            "--redis-url (TRUSTLY_SIDECAR_REDIS_URL)"
        );
    }
}
