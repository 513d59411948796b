//! Redis deployments beyond the single local server: TLS with a password, a real cluster, and
//! health while Redis is missing at start or stops under a running sidecar.
//! Run one file with a name filter, e.g. `cargo test --all-features --test redis redis_tls::`.

#[path = "../support/mod.rs"]
mod support;

mod redis_cluster;
mod redis_health;
mod redis_tls;
