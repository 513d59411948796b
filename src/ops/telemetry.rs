//! Structured logging with `tracing`: plain text for people, JSON for log pipelines, and (cargo
//! feature `otel`) the same spans exported over OTLP/gRPC to an OpenTelemetry collector.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};
use url::Url;

/// Default filter when `RUST_LOG` is unset: our own info logs (the library's and the
/// `trustly-sim` binary's, which announces its URLs), warnings from dependencies.
const DEFAULT_FILTER: &str = "warn,trustly_sidecar=info,trustly_sim=info";

/// Output format of the logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Plain,
    Json,
}

/// The installed telemetry; [`Telemetry::shutdown`] flushes spans not yet exported.
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

/// Installs the global subscriber (once per process; later calls change nothing). With an OTLP
/// endpoint, spans are exported too (refused by config when the `otel` feature is not built).
pub fn init(format: LogFormat, otlp_endpoint: Option<&Url>) -> Telemetry {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colour codes only for a person at a terminal: never into files, pipes or log collectors.
    let ansi = std::io::stderr().is_terminal();
    let logs = match format {
        LogFormat::Plain => fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(logs.with_filter(filter));
    #[cfg(feature = "otel")]
    {
        let (layer, provider) = match otlp_endpoint.map(otel::layer) {
            Some(Ok((layer, provider))) => (Some(layer), Some(provider)),
            Some(Err(error)) => {
                eprintln!("trustly-sidecar: OpenTelemetry export disabled: {error}");
                (None, None)
            }
            None => (None, None),
        };
        let _ = registry.with(layer).try_init();
        Telemetry { provider }
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = otlp_endpoint; // config refuses an endpoint in builds without `otel`
        let _ = registry.try_init();
        Telemetry {}
    }
}

impl Telemetry {
    /// Exports what is still buffered (bounded by the exporter timeout); call before exiting.
    pub async fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider {
            // Blocks until the batch is sent: off the async workers.
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

#[cfg(feature = "otel")]
mod otel {
    use std::time::Duration;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
    use tracing::Subscriber;
    use tracing_subscriber::{Layer, filter::Targets, registry::LookupSpan};
    use url::Url;

    /// Bound of one export call: a slow collector delays only the exporter's own thread, never a
    /// payment; 10 s is the OTLP default.
    const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

    /// The OTLP layer. Only this crate's spans are exported: the exporter's own tonic/hyper
    /// events would otherwise feed back into it.
    pub fn layer<S>(
        endpoint: &Url,
    ) -> Result<
        (
            Box<dyn Layer<S> + Send + Sync>,
            opentelemetry_sdk::trace::SdkTracerProvider,
        ),
        opentelemetry_otlp::ExporterBuildError,
    >
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.as_str())
            .with_timeout(EXPORT_TIMEOUT)
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(env!("CARGO_PKG_NAME"))
                    .build(),
            )
            .build();
        let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(Targets::new().with_target("trustly_sidecar", tracing::Level::INFO));
        Ok((Box::new(layer), provider))
    }
}
