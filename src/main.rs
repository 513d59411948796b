//! `trustly-sidecar`: wiring only. Parse the config (exit 64 on any problem), start logging, bind,
//! build, run until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use trustly_sidecar::{App, Listeners, config, signal, telemetry};

/// Exit code for invalid configuration (BSD `EX_USAGE`), before any port is bound.
const EXIT_CONFIG: u8 = 64;

/// gRPC payment-gateway sidecar for Trustly. Every flag also reads its TRUSTLY_SIDECAR_* variable.
#[derive(Parser, Debug)]
#[command(version)]
struct Flags {
    /// Run on embedded defaults: ephemeral merchant key, sandbox credentials [env: TRUSTLY_SIDECAR_SANDBOX]
    #[arg(long)]
    sandbox: bool,
    /// Trustly environment: test or live [env: TRUSTLY_SIDECAR_ENVIRONMENT]
    #[arg(long)]
    environment: Option<String>,
    /// Override Trustly's endpoint URL [env: TRUSTLY_SIDECAR_TRUSTLY_URL]
    #[arg(long)]
    trustly_url: Option<String>,
    /// PEM file overriding Trustly's public key [env: TRUSTLY_SIDECAR_TRUSTLY_PUBLIC_KEY_PATH]
    #[arg(long)]
    trustly_public_key_path: Option<String>,
    /// Merchant private key, PEM [env: TRUSTLY_SIDECAR_PRIVATE_KEY_PATH]
    #[arg(long)]
    private_key_path: Option<String>,
    /// Trustly API username [env: TRUSTLY_SIDECAR_USERNAME]
    #[arg(long)]
    username: Option<String>,
    /// File holding the Trustly API password [env: TRUSTLY_SIDECAR_PASSWORD_PATH]
    #[arg(long)]
    password_path: Option<String>,
    /// rustcrypto or openssl [env: TRUSTLY_SIDECAR_SIGNING_BACKEND]
    #[arg(long)]
    signing_backend: Option<String>,
    /// plain or json [env: TRUSTLY_SIDECAR_LOG_FORMAT]
    #[arg(long)]
    log_format: Option<String>,
    /// gRPC listen address [env: TRUSTLY_SIDECAR_GRPC_LISTEN, default 127.0.0.1:50051]
    #[arg(long)]
    grpc_listen: Option<String>,
    /// Notification intake listen address [env: TRUSTLY_SIDECAR_NOTIFICATION_LISTEN, default 127.0.0.1:8480]
    #[arg(long)]
    notification_listen: Option<String>,
    /// Public https NotificationURL Trustly posts to [env: TRUSTLY_SIDECAR_NOTIFICATION_URL]
    #[arg(long)]
    notification_url: Option<String>,
    /// File holding the bearer token gRPC calls must carry [env: TRUSTLY_SIDECAR_GRPC_TOKEN_PATH]
    #[arg(long)]
    grpc_token_path: Option<String>,
    /// Connect timeout towards Trustly, e.g. 5s [env: TRUSTLY_SIDECAR_TRUSTLY_CONNECT_TIMEOUT]
    #[arg(long)]
    trustly_connect_timeout: Option<String>,
    /// /healthz, /readyz, /metrics listen address [env: TRUSTLY_SIDECAR_OPS_LISTEN, default 127.0.0.1:9464]
    #[arg(long)]
    ops_listen: Option<String>,
    /// Total time for one Trustly call, e.g. 30s [env: TRUSTLY_SIDECAR_TRUSTLY_TIMEOUT]
    #[arg(long)]
    trustly_timeout: Option<String>,
    /// Balance and GetWithdrawals (per order) at most once per this window, e.g. 15m; 0s: no limit [env: TRUSTLY_SIDECAR_POLL_WINDOW]
    #[arg(long)]
    poll_window: Option<String>,
}

impl Flags {
    /// A flag wins over its environment variable.
    fn lookup(&self, var: &str) -> Option<String> {
        let flag = match var {
            config::ENV_SANDBOX => self.sandbox.then(|| "true".to_owned()),
            config::ENV_ENVIRONMENT => self.environment.clone(),
            config::ENV_TRUSTLY_URL => self.trustly_url.clone(),
            config::ENV_TRUSTLY_PUBLIC_KEY_PATH => self.trustly_public_key_path.clone(),
            config::ENV_PRIVATE_KEY_PATH => self.private_key_path.clone(),
            config::ENV_USERNAME => self.username.clone(),
            config::ENV_PASSWORD_PATH => self.password_path.clone(),
            config::ENV_SIGNING_BACKEND => self.signing_backend.clone(),
            config::ENV_LOG_FORMAT => self.log_format.clone(),
            config::ENV_GRPC_LISTEN => self.grpc_listen.clone(),
            config::ENV_NOTIFICATION_LISTEN => self.notification_listen.clone(),
            config::ENV_NOTIFICATION_URL => self.notification_url.clone(),
            config::ENV_GRPC_TOKEN_PATH => self.grpc_token_path.clone(),
            config::ENV_TRUSTLY_CONNECT_TIMEOUT => self.trustly_connect_timeout.clone(),
            config::ENV_TRUSTLY_TIMEOUT => self.trustly_timeout.clone(),
            config::ENV_OPS_LISTEN => self.ops_listen.clone(),
            config::ENV_POLL_WINDOW => self.poll_window.clone(),
            _ => None,
        };
        flag.or_else(|| std::env::var(var).ok())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    let config = match config::Config::from_lookup(|var| flags.lookup(var)) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("trustly-sidecar: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let telemetry = telemetry::init(config.log_format, config.otlp_endpoint.as_ref());
    // Installed before anything slow, so an early SIGTERM still drains instead of killing.
    let shutdown = signal::shutdown();
    let (Some(grpc), Some(intake), Some(ops)) = (
        bind("gRPC", config.grpc_listen).await,
        bind("notification intake", config.notification_listen).await,
        bind("ops endpoints", config.ops_listen).await,
    ) else {
        return ExitCode::FAILURE;
    };
    let listeners = Listeners {
        grpc,
        intake,
        ops: Some(ops),
    };
    let outcome = match App::build(config).await {
        Ok(app) => trustly_sidecar::run(app, listeners, shutdown).await,
        Err(error) => Err(error),
    };
    let code = match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, source = ?std::error::Error::source(&error), "trustly-sidecar stopped");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown().await;
    code
}

/// Binds one listener, logging which one failed.
async fn bind(what: &str, addr: std::net::SocketAddr) -> Option<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::error!(%addr, %error, "cannot listen for {what}");
            None
        }
    }
}
