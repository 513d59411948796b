//! Running the binary: configuration errors and the sandbox, OpenTelemetry export, the Helm
//! chart, TLS on the listeners, and the metrics its alerts and dashboard read. (`operations` has
//! a binary of its own: it asserts exact values of process-wide metrics.)
//! Run one file with a name filter, e.g. `cargo test --all-features --test ops helm::`.

#[path = "../support/mod.rs"]
mod support;

mod config;
mod helm;
mod http_limits;
mod monitoring;
mod otel;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod tls;
mod tls_clients;
