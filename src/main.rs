//! `trustly-sidecar`: wiring only. Parse the config (exit 64 on any problem), start logging,
//! build, run until SIGINT/SIGTERM.

use std::process::ExitCode;

use trustly_sidecar::{app, config, signal, telemetry};

/// Exit code for invalid configuration (BSD `EX_USAGE`), before any port is bound.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match config::from_args() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("trustly-sidecar: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let telemetry = telemetry::init(
        config.telemetry.log_format,
        config.telemetry.otlp_endpoint.as_ref(),
    );
    // Installed before anything slow, so an early SIGTERM still drains instead of killing.
    let shutdown = signal::shutdown();
    let Some(listeners) = app::bind(&config).await else {
        return ExitCode::FAILURE;
    };
    let outcome = match app::App::build(config).await {
        Ok(app) => app::run(app, listeners, shutdown).await,
        Err(error) => Err(error),
    };
    let code = match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error.chain(), "trustly-sidecar stopped");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown().await;
    code
}
