//! Notifications: the log's semantics on both backends, intake to subscriber end to end, what
//! happens when Redis or a sidecar fails, and the `trustly-notify` binary. Run one file with a
//! name filter, e.g. `cargo test --all-features --test notifications store::`.

#[path = "../support/mod.rs"]
mod support;

mod notification_resilience;
mod notifications;
mod notify_cli;
mod order_kinds;
mod order_permutations;
mod order_reconcile;
mod order_state;
mod order_watch;
mod store;
mod wakeups;
