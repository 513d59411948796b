//! trustly-sidecar: a gRPC payment gateway for Trustly's merchant API.
//!
//! Component map. The floors are transports (`grpc`, intake HTTP) → use cases (`payments`,
//! `notify`) → core (`trustly`, `store`); dependencies point inward, and `trustly` and `store`
//! know nothing of gRPC, config or the global metrics.
//!
//! ```text
//!   app/       builds the gateway from a Config and runs it until shutdown (drain);
//!              app/sandbox.rs boots the in-process simulator (the only production-path sim user)
//!   config/    flags + environment (clap env) → validated Config; one reader collects every
//!              problem (exit 64), read section by section
//!   grpc/      thin tonic adapters: pb <-> domain, validation, the one error → Status map
//!              (status.rs), bearer-token auth, server.rs (the one server builder: limits, auth,
//!              health, reflection for every service), health (grpc.health.v1 = readiness)
//!   payments/  payment use cases: execute with idempotency, 637 recovery, the polling window,
//!              balances, accounts; no pb, no tonic
//!   orders/    order state: one state machine per kind, folded from the facts (RPC answers,
//!              notifications) in store::order_states; no pb, no tonic
//!   notify/    notifications: intake (verify → dedupe → persist → signed answer), decisions,
//!              delivery (the subscriber engine); typed events
//!   store/     log/{redis,memory}, decisions, orders, lease, idempotency, accounts, polls,
//!              write_behind (the writes that follow a call's answer)
//!   trustly/   wire core: canonical serialization, RSA sign/verify, keys, envelopes,
//!              methods/ by family, notification kinds, time (the one calendar), JSON-RPC client
//!   ops/       http_server (HTTP/1 accept loop), health (readiness monitor, /healthz, /readyz),
//!              metrics, reload (keys, password), tls (listener TLS/mTLS, reloaded), signal,
//!              telemetry (logs, OTLP spans)
//!   monitor    consumer-lag gauges, read from the store at each scrape
//!   sim/       trustly-sim: a stateful Trustly stand-in (tests, benchmarks, sandbox); a dev tool
//!   money      exact Amount / Currency (rust_decimal, never floats)
//!   secret     Secret<T>: never printed
//!   pb         generated protobuf types (used only by grpc/)
//! ```

pub mod app;
pub mod config;
pub mod grpc;
pub mod money;
pub mod monitor;
pub mod notify;
pub mod ops;
pub mod orders;
pub mod payments;
pub mod pb;
pub mod secret;
pub mod sim;
pub mod store;
pub mod trustly;
pub use app::{App, Listeners, RunError, run};
// Kept at the root for the modules that still name them there (`crate::metrics`, …).
pub use ops::{http_server, metrics, signal, telemetry};
