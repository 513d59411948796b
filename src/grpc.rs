//! The gRPC API: typed RPCs over the wire core. `payment` implements `PaymentService`, `convert`
//! validates requests and builds the wire core's typed methods (and back), `status` is the one
//! place errors become `tonic::Status`, `auth` checks the bearer token, `server` builds the one
//! server every service is added to (limits, auth, health, and `rpc_metrics`: every call's
//! latency and status code), `health` reports readiness as `grpc.health.v1`, `orders` serves `OrderService`.
//!
//! Only this module uses the generated `pb` types.

pub mod account;
mod auth;
pub mod convert;
pub mod health;
pub mod notification;
pub mod orders;
pub mod payment;
pub mod requests;
pub mod responses;
pub mod rpc_metrics;
pub mod server;
pub mod status;
pub mod validate;

pub use auth::BearerToken;
pub use payment::Payments;
pub use server::server;

use crate::{payments, trustly};

/// One invalid request field: its path in the request message and why it is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field path, e.g. `amount.currency_code` or `user.locale`.
    pub field: String,
    pub description: String,
}

/// Everything an RPC can fail with; `status.rs` maps each variant to a gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is invalid; nothing was sent to Trustly.
    #[error("invalid request: {} field(s)", .0.len())]
    InvalidArgument(Vec<FieldViolation>),
    /// A payment use case failed: Trustly, the idempotency store or the idempotency protocol.
    #[error(transparent)]
    Payment(#[from] payments::Error),
    /// The store (notification log, account cache) could not be asked: nothing was done (a
    /// payment's idempotency store failing is a `Payment` error).
    #[error("store unavailable")]
    Store(#[from] crate::store::Error),
    /// What the call names does not exist (a dead letter, a cached account).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// A subscriber fell behind its bounded buffer; its stream is closed (it resumes from the group).
    #[error("subscriber too slow")]
    SubscriberTooSlow,
    /// The call carries no valid bearer token.
    #[error("no valid bearer token")]
    Unauthenticated,
    /// The sidecar is draining: a stream ends so its client reconnects to another replica.
    #[error("sidecar shutting down")]
    ShuttingDown,
}

impl Error {
    /// One invalid field.
    pub fn invalid(field: &str, description: &str) -> Self {
        Error::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }
}

/// A failed Trustly call is a failed payment use case: one variant, one mapping in `status.rs`.
impl From<trustly::Error> for Error {
    fn from(error: trustly::Error) -> Self {
        Error::Payment(error.into())
    }
}
