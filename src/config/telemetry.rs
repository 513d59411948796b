//! The telemetry section: log format and span export.

use url::Url;

use super::{reader::parse_http_url, *};

/// Log output: `plain` or `json`. Unset: `plain`.
pub const ENV_LOG_FORMAT: &str = "TRUSTLY_SIDECAR_LOG_FORMAT";
/// OTLP/gRPC endpoint of an OpenTelemetry collector, e.g. `http://otel-collector:4317`: the
/// tracing spans are exported there too. Needs a build with the `otel` feature. Unset: no export.
pub const ENV_OTLP_ENDPOINT: &str = "TRUSTLY_SIDECAR_OTLP_ENDPOINT";

/// Logs and span export.
#[derive(Clone)]
pub struct Telemetry {
    pub log_format: LogFormat,
    /// Where spans are exported (OpenTelemetry), if anywhere.
    pub otlp_endpoint: Option<Url>,
}

impl Telemetry {
    pub(super) fn read(r: &mut Reader<'_>) -> Option<Self> {
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
        Some(Self {
            log_format: log_format?,
            otlp_endpoint,
        })
    }
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("log_format", &self.log_format)
            .field(
                "otlp_endpoint",
                &self.otlp_endpoint.as_ref().map(Url::as_str),
            )
            .finish()
    }
}
