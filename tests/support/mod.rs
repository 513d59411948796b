//! Shared test support: fixture keys, backends, and an in-test fake Trustly server.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod app;
pub mod fake_trustly;
pub mod redis;
pub mod replicas;
pub mod requests;
pub mod sim;
pub mod softhsm;
pub mod test_server;

use std::{path::PathBuf, sync::Arc};

use rsa::{RsaPrivateKey, RsaPublicKey};
use trustly_sidecar::trustly::{
    keys,
    sign::{Backend, Signer, Verifier},
};

/// `tests/fixtures/keys/<name>` (TEST-ONLY, publicly known keys).
pub fn key_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

pub fn private_key(name: &str) -> RsaPrivateKey {
    keys::load_private_key(&key_path(name)).expect("fixture private key loads")
}

pub fn public_key(name: &str) -> RsaPublicKey {
    keys::load_public_key(&key_path(name)).expect("fixture public key loads")
}

pub fn signer(backend: Backend, name: &str) -> Arc<dyn Signer> {
    backend.signer(private_key(name)).expect("signer builds")
}

pub fn verifier(backend: Backend, name: &str) -> Arc<dyn Verifier> {
    backend.verifier(public_key(name)).expect("verifier builds")
}

/// In tests the merchant signs with the Java/JS/.NET merchant test key...
pub const MERCHANT_PRIVATE: &str = "merchant-test-private.pem";
pub const MERCHANT_PUBLIC: &str = "merchant-test-public.pem";
/// ...and "Trustly" signs with the Python client's test key, so a mix-up of the two fails.
pub const TRUSTLY_PRIVATE: &str = "python-client-test-private-1.pem";
pub const TRUSTLY_PUBLIC: &str = "python-client-test-public-1.pem";
