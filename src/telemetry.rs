//! Structured logging with `tracing`: plain text for people, JSON for log pipelines.

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

/// Default filter when `RUST_LOG` is unset: our own info logs, warnings from dependencies.
const DEFAULT_FILTER: &str = "warn,trustly_sidecar=info";

/// Installs the global subscriber. Safe to call once per process.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
