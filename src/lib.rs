//! trustly-sidecar: a gRPC payment gateway for Trustly's merchant API.
//!
//! Component map (dependencies point inward; `trustly` knows nothing of gRPC or Redis):
//!
//! ```text
//!   config    flags + environment → validated Config (exit 64 on any error)
//!   grpc/     PaymentService, NotificationService: validation, conversion, the one
//!             error → Status map, auth
//!   notify    notification intake over HTTP: verify → dedupe → store → signed answer
//!   store/    the notification log: Redis Streams (shared, durable) or memory
//!   trustly/  wire core: canonical serialization, RSA sign/verify, keys, envelopes,
//!             typed methods, JSON-RPC client with outcome classification
//!   sim/      trustly-sim: a stateful Trustly stand-in (tests, benchmarks, sandbox)
//!   money     exact Amount / Currency (rust_decimal, never floats)
//!   secret    Secret<T>: never printed
//!   pb        generated protobuf types (used only by the gRPC layer)
//! ```

pub mod app;
pub mod config;
pub mod grpc;
pub mod money;
pub mod monitor;
pub mod notify;
pub mod ops;
pub mod pb;
pub mod secret;
pub mod sim;
pub mod store;
pub mod trustly;
pub use app::{App, Listeners, RunError, run};
// Kept at the root for the modules that still name them there (`crate::metrics`, …).
pub use ops::{http_server, metrics, signal, telemetry};
