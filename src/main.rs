//! `trustly-sidecar`: wiring only. Parse the config (exit 64 on any problem), start logging, bind,
//! build, run until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};
use trustly_sidecar::{App, Listeners, config, signal, telemetry};

/// Exit code for invalid configuration (BSD `EX_USAGE`), before any port is bound.
const EXIT_CONFIG: u8 = 64;

/// The command line: one `--flag` per setting of [`config::SETTINGS`], each also read from its
/// `TRUSTLY_SIDECAR_*` variable (a flag wins), so `--help` lists every setting with its variable.
fn command() -> Command {
    let mut command = Command::new("trustly-sidecar")
        .version(env!("CARGO_PKG_VERSION"))
        .about("gRPC payment-gateway sidecar for Trustly's merchant API")
        .after_help(
            "Durations are written like 250ms, 10s, 15m, 72h, 7d. Secrets are always file paths.",
        );
    for setting in config::SETTINGS {
        let mut arg = Arg::new(setting.var)
            .long(setting.flag)
            .env(setting.var)
            .help(setting.help)
            .value_name(value_name(setting.flag))
            .action(ArgAction::Set);
        if setting.var == config::ENV_SANDBOX {
            // `--sandbox` alone means true; `--sandbox=false` and the variable's 0/1 still work.
            arg = arg
                .num_args(0..=1)
                .default_missing_value("true")
                .value_name("BOOL");
        }
        command = command.arg(arg);
    }
    command
}

/// What `--help` shows as the flag's value.
fn value_name(flag: &str) -> &'static str {
    match flag.rsplit('-').next() {
        Some("path") => "FILE",
        Some("listen") => "ADDR",
        Some("url" | "endpoint") => "URL",
        Some("timeout" | "interval" | "retention" | "deadline") => "DURATION",
        _ => "VALUE",
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = command().get_matches();
    let config = match config::Config::from_lookup(|var| flags.get_one::<String>(var).cloned()) {
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
            // The whole chain in one line: "notification store: cannot reach redis at …: …".
            let mut chain = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                // Some errors print their source in their own text; say each cause once.
                let text = cause.to_string();
                if !chain.contains(&text) {
                    chain.push_str(&format!(": {text}"));
                }
                source = cause.source();
            }
            tracing::error!(error = %chain, "trustly-sidecar stopped");
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
