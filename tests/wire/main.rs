//! The wire core, without a sidecar: Trustly's test vectors, properties and bounded fuzzing of the
//! canonical serializer and the parsers, other clients' serializer variants, typed method data,
//! and the JSON-RPC client against an in-test fake Trustly. One binary for the area so the suite
//! links once; run one file with a name filter, e.g. `cargo test --all-features --test wire fuzz::`.

#[path = "../support/mod.rs"]
mod support;

mod client;
mod fuzz;
mod methods;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod properties;
mod serializer_variants;
mod vectors;
