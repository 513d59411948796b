//! Seeded, bounded chaos over the full stack: the resilience run and the idempotency soak. Run
//! one file with a name filter, e.g. `cargo test --all-features --test chaos resilience::`.

#[path = "../support/mod.rs"]
mod support;

mod idempotency_soak;
mod resilience;
