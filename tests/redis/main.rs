//! Redis deployments beyond the single local server: TLS with a password, and a real cluster.
//! Run one file with a name filter, e.g. `cargo test --all-features --test redis redis_tls::`.

#[path = "../support/mod.rs"]
mod support;

mod redis_cluster;
mod redis_tls;
