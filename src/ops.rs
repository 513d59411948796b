//! Operating the sidecar: the HTTP/1 accept loop shared by intake and the simulator, the ops
//! port (`/healthz`, `/readyz`, `/metrics`), the metrics registry and the `process_*` metrics
//! (read from `/proc`), key reloading, TLS for the listeners, process signals and logging/tracing
//! setup. Knows nothing of gRPC, Trustly's wire format or the payment flows.

pub mod health;
pub mod http_server;
pub mod metrics;
pub mod process;
pub mod reload;
pub mod signal;
pub mod telemetry;
pub mod tls;
