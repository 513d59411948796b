//! The simulator (`trustly-sim`) driven by the wire-core client: the protocol, every method and
//! its notifications. Run one file with a name filter, e.g. `cargo test --all-features --test sim
//! sim_methods::`.

#[path = "../support/mod.rs"]
mod support;

mod browser;
mod sim_checkout;
mod sim_methods;
mod sim_notifications;
mod sim_protocol;
