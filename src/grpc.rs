//! The gRPC API: typed RPCs over the wire core. `payment` implements `PaymentService`, `convert`
//! validates requests and builds the wire core's typed methods (and back), `status` is the one
//! place errors become `tonic::Status`, `auth` checks the bearer token, `server` builds the one server every service is added to
//! (limits, auth, health).
//!
//! Only this module uses the generated `pb` types.

pub mod account;
mod auth;
pub mod convert;
pub mod notification;
pub mod payment;
pub mod requests;
pub mod responses;
pub mod server;
pub mod status;
pub mod validate;

pub use auth::BearerToken;
pub use payment::Payments;
pub use server::server;

use crate::trustly;

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
    /// The call to Trustly failed (definitively or ambiguously; see `trustly::Disposition`).
    #[error(transparent)]
    Trustly(#[from] trustly::Error),
    /// The store (idempotency records, notification log, account cache) could not be asked:
    /// nothing was done, and for a payment nothing was sent (fail closed).
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
    /// Another call with the same idempotency key is in flight.
    #[error("a request with this idempotency key is in progress")]
    RequestInProgress,
    /// A replay met 637: Trustly has the order (its UUID record is gone); the order id is known
    /// when a notification named it. The order is never re-issued.
    #[error("the order exists at Trustly")]
    OrderExists { order_id: Option<String> },
    /// The idempotency key was used before for a different request.
    #[error("the idempotency key was used for a different request")]
    IdempotencyKeyReused,
}
