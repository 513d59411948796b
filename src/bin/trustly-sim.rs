//! `trustly-sim`: the Trustly simulator as a standalone server. Wiring only; see `sim`.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use rust_decimal::Decimal;
use tracing::{info, warn};
use trustly_sidecar::{
    config::LogFormat,
    secret::Secret,
    sim::{RetryPolicy, SimConfig, Simulator, keys as test_keys},
    telemetry,
    trustly::{keys, sign::Backend},
};

/// Exit code for invalid configuration (BSD `EX_USAGE`).
const EXIT_CONFIG: u8 = 64;

/// A faithful, stateful stand-in for Trustly's merchant API (JSON-RPC at /api/1, checkout pages at
/// /_/, console and admin API at /admin).
#[derive(Parser, Debug)]
#[command(version)]
struct Flags {
    /// Address to listen on.
    #[arg(long, env = "TRUSTLY_SIM_LISTEN", default_value = "127.0.0.1:8900")]
    listen: SocketAddr,
    /// Merchant public key (PEM) that verifies requests and notification answers.
    #[arg(long, env = "TRUSTLY_SIM_MERCHANT_PUBLIC_KEY_PATH")]
    merchant_public_key_path: Option<PathBuf>,
    /// The simulator's own private key (PEM) that signs responses and notifications.
    #[arg(long, env = "TRUSTLY_SIM_PRIVATE_KEY_PATH")]
    private_key_path: Option<PathBuf>,
    /// Merchant API username the simulator accepts.
    #[arg(long, env = "TRUSTLY_SIM_USERNAME", default_value = "sandbox")]
    username: String,
    /// Merchant API password the simulator accepts.
    #[arg(
        long,
        env = "TRUSTLY_SIM_PASSWORD",
        default_value = "sandbox",
        hide_env_values = true
    )]
    password: String,
    /// Starting merchant balance, CURRENCY=AMOUNT; repeatable.
    #[arg(long = "balance", env = "TRUSTLY_SIM_BALANCES", value_delimiter = ',', default_values = ["EUR=100000.00", "SEK=1000000.00"])]
    balances: Vec<String>,
    /// First notification resend interval in milliseconds (doubles up to 60 s).
    #[arg(long, env = "TRUSTLY_SIM_RETRY_INITIAL_MS", default_value_t = 1000)]
    retry_initial_ms: u64,
    /// Delivery attempts per notification before giving up.
    #[arg(long, env = "TRUSTLY_SIM_RETRY_MAX_ATTEMPTS", default_value_t = 15)]
    retry_max_attempts: u32,
    /// Signing backend: rustcrypto or openssl.
    #[arg(
        long,
        env = "TRUSTLY_SIM_SIGNING_BACKEND",
        default_value = "rustcrypto"
    )]
    signing_backend: String,
}

fn config(flags: Flags) -> Result<(SimConfig, bool), Vec<String>> {
    let mut problems = Vec::new();
    let using_fixtures =
        flags.merchant_public_key_path.is_none() && flags.private_key_path.is_none();
    let merchant_public_key = match &flags.merchant_public_key_path {
        Some(path) => keys::load_public_key(path)
            .map_err(|e| problems.push(e.to_string()))
            .ok(),
        None if using_fixtures => Some(rsa::RsaPublicKey::from(&test_keys::merchant_private_key())),
        None => {
            problems.push("--merchant-public-key-path is required with --private-key-path".into());
            None
        }
    };
    let private_key = match &flags.private_key_path {
        Some(path) => keys::load_private_key(path)
            .map_err(|e| problems.push(e.to_string()))
            .ok(),
        None if using_fixtures => Some(test_keys::simulator_private_key()),
        None => {
            problems.push("--private-key-path is required with --merchant-public-key-path".into());
            None
        }
    };
    let backend = flags
        .signing_backend
        .parse::<Backend>()
        .and_then(built_backend)
        .map_err(|e| problems.push(e))
        .ok();
    let mut initial_balances = Vec::new();
    for entry in &flags.balances {
        let parsed = entry.split_once('=').and_then(|(currency, amount)| {
            let currency = currency.parse::<trustly_sidecar::money::Currency>().ok()?;
            let amount = amount
                .parse::<Decimal>()
                .ok()
                .filter(|a| *a >= Decimal::ZERO)?;
            Some((currency.to_string(), amount))
        });
        match parsed {
            Some(balance) => initial_balances.push(balance),
            None => problems.push(format!(
                "--balance {entry:?}: expected CURRENCY=AMOUNT, e.g. EUR=1000.00"
            )),
        }
    }
    match (merchant_public_key, private_key, backend) {
        (Some(merchant_public_key), Some(private_key), Some(backend)) if problems.is_empty() => {
            Ok((
                SimConfig {
                    listen: flags.listen,
                    merchant_public_key,
                    private_key: Secret::new(private_key),
                    username: flags.username,
                    password: Secret::new(flags.password),
                    backend,
                    retry: RetryPolicy {
                        initial_interval: Duration::from_millis(flags.retry_initial_ms),
                        max_attempts: flags.retry_max_attempts,
                        ..RetryPolicy::default()
                    },
                    poll_window: trustly_sidecar::sim::DEFAULT_POLL_WINDOW,
                    initial_balances,
                },
                using_fixtures,
            ))
        }
        _ => Err(problems),
    }
}

/// Refuses a backend this binary was built without, naming the cargo feature that adds it.
fn built_backend(backend: Backend) -> Result<Backend, String> {
    if backend == Backend::Pkcs11 {
        return Err(
            "--signing-backend pkcs11: the simulator signs with a key file; pkcs11 is \
                    the sidecar's (rustcrypto or openssl here)"
                .to_owned(),
        );
    }
    if Backend::available().contains(&backend) {
        Ok(backend)
    } else {
        Err(format!(
            "--signing-backend {backend}: this binary was built without the `{backend}` cargo \
             feature (rebuild with `cargo build --features {backend}`)"
        ))
    }
}

/// An error and its causes, one line: `top: cause: cause`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::main]
async fn main() -> ExitCode {
    let (config, using_fixtures) = match config(Flags::parse()) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("trustly-sim: invalid configuration:");
            problems.iter().for_each(|p| eprintln!("  - {p}"));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init(LogFormat::Plain, None);
    let shutdown = trustly_sidecar::signal::shutdown();
    if using_fixtures {
        warn!("==================================================================");
        warn!("NO KEY FLAGS: using the PUBLICLY KNOWN test keys of src/trustly/keys/published/");
        warn!("(the same as a --sandbox sidecar and trustly-notify use).");
        warn!("merchant key = merchant-test-private.pem (its public half)");
        warn!("simulator key = python-client-test-private-1.pem");
        warn!("Anyone can forge these signatures. For local development only.");
        warn!("==================================================================");
    }
    let listen = config.listen;
    let simulator = match Simulator::start(config).await {
        Ok(simulator) => simulator,
        Err(error) => {
            eprintln!("trustly-sim: {}", chain(&error));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    info!(api = %simulator.api_url(), console = %simulator.admin_url(), "ready");
    info!(
        "checkout pages at /_/orderclient.php; the console and admin API at /admin are a \
         development tool: no auth"
    );
    if !listen.ip().is_loopback() {
        warn!(
            %listen,
            "not loopback: anyone who can reach this address can drive the console and admin API"
        );
    }
    shutdown.await;
    info!("shutting down");
    simulator.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_missing_from_the_build_names_its_cargo_feature() {
        for backend in [Backend::RustCrypto, Backend::OpenSsl] {
            match built_backend(backend) {
                Ok(_) => assert!(Backend::available().contains(&backend)),
                Err(problem) => {
                    assert!(!Backend::available().contains(&backend));
                    assert!(problem.contains("`openssl` cargo feature"), "{problem}");
                }
            }
        }
        // Whatever the build, a setup failure prints its cause, which names the feature.
        let error = trustly_sidecar::sim::Error::Crypto(
            trustly_sidecar::trustly::sign::SignError::BackendNotBuilt("openssl"),
        );
        assert_eq!(
            chain(&error),
            "cannot set up the signing backend: the openssl signing backend is not built into \
             this binary (cargo feature `openssl`)"
        );
    }
}
