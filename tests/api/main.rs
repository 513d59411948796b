//! The gRPC API of an in-process sidecar against the simulator: every RPC, outcome classes,
//! idempotency, the account cache, the bad input catalogue and the Python and Node clients. Run
//! one file with a name filter, e.g. `cargo test --all-features --test api bad_input::`.

#[path = "../support/mod.rs"]
mod support;

mod accounts;
mod bad_input;
mod grpc;
mod grpc_methods;
mod idempotency;
mod polyglot;
