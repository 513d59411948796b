//! The Trustly wire core: canonical serialization, RSA signatures, keys, JSON-RPC envelopes,
//! typed method data (`methods/`, by family), the calendar (`time`) and the HTTP client.
//!
//! It knows nothing of gRPC, Redis or the sidecar's configuration: it takes keys, credentials and
//! an endpoint, and gives back verified, classified outcomes.

pub mod canonical;
pub mod client;
pub mod codes;
mod error;
pub mod keys;
pub mod methods;
pub mod notification;
pub mod sign;
pub mod time;
pub mod wire;

pub use client::{Client, ClientConfig, SignedRequest};
pub use codes::{ErrorCode, RetryClass};
pub use error::{Disposition, Error};
