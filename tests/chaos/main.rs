//! Seeded, bounded chaos over the full stack: the resilience run, the idempotency soak and a
//! Redis outage longer than the ack deadline. Run one file with a name filter, e.g.
//! `cargo test --all-features --test chaos resilience::`.

#[path = "../support/mod.rs"]
mod support;

mod idempotency_soak;
mod redis_outage;
mod resilience;
