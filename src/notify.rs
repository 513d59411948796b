//! The notification use cases, between the transports (intake HTTP, gRPC) and the core (trustly,
//! store): [`intake`] verifies, dedupes, persists and answers Trustly's notifications;
//! [`decisions`] is the wait for a subscriber's decision (which notifications need one, decided
//! once at intake); [`delivery`] is the subscriber engine handing out typed notifications.
//!
//! Knows nothing of gRPC or `pb`: the gRPC adapter maps these domain values to its messages.

pub mod decisions;
pub mod delivery;
pub mod intake;

pub use decisions::{Decision, DecisionFallback};
pub use delivery::{Deliveries, Delivery};
pub use intake::{Intake, MAX_NOTIFICATION_BYTES};
