//! The PKCS#11 backend against a fresh SoftHSM2 token: the two fixture key pairs whose private
//! halves are public, imported into the token, re-sign every client-signed vector byte for byte
//! (RSA PKCS#1 v1.5 is deterministic). The token is used by this binary re-run on one test with
//! `SOFTHSM2_CONF` set (see `support::softhsm`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use std::process::Command;

use serde_json::Value;
use trustly_sidecar::trustly::sign::{Backend, pkcs11};

use crate::support::softhsm::{self, SoftHsm};

/// Set (to the PIN file) only in the child process that signs in the token.
const CHILD_PIN_PATH: &str = "TRUSTLY_SIDECAR_TEST_PKCS11_PIN_PATH";
/// What the child prints when every vector matched.
const DONE: &str = "pkcs11 vectors re-signed:";

/// The token label of each client key pair's private half, by the vectors' `verify_key` file.
fn key_label(verify_key: &str) -> Option<&'static str> {
    match verify_key.rsplit('/').next()? {
        "merchant-test-public.pem" => Some("merchant"),
        "python-client-test-public-1.pem" => Some("python"),
        _ => None, // Trustly's own key: only Trustly can sign
    }
}

#[test]
fn every_client_signed_vector_re_signs_byte_for_byte_in_a_softhsm_token() {
    let hsm = SoftHsm::with_keys(&[
        ("merchant", "merchant-test-private.pem"),
        ("python", "python-client-test-private-1.pem"),
    ]);
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "pkcs11::signs_in_the_token_when_run_by_the_test_above",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env(CHILD_PIN_PATH, &hsm.pin_path)
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{DONE} 15")),
        "spec §7: all 15 client-signed vectors\n{stdout}"
    );
}

/// Run by the test above in a process of its own (a no-op in the ordinary suite).
#[test]
fn signs_in_the_token_when_run_by_the_test_above() {
    let Ok(pin_path) = std::env::var(CHILD_PIN_PATH) else {
        return;
    };
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/trustly-test-vectors.json"
    );
    let vectors: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut re_signed = 0;
    for label in ["merchant", "python"] {
        // Two tokens of one module: the second finds it initialised already.
        let token = pkcs11::Token::open(pkcs11::Settings {
            module: softhsm::MODULE.into(),
            token_label: softhsm::TOKEN_LABEL.to_owned(),
            key_label: label.to_owned(),
            pin_path: pin_path.clone().into(),
            sessions: Some(2),
        })
        .expect("the token opens");
        let (signer, _public) = token.signer().expect("logs in, finds the key, self-checks");
        assert_eq!(signer.backend(), Backend::Pkcs11);
        for vector in vectors["signatures"].as_array().unwrap() {
            if key_label(vector["verify_key"].as_str().unwrap()) != Some(label) {
                continue;
            }
            let signature = signer
                .sign(vector["plaintext"].as_str().unwrap().as_bytes())
                .expect("the token signs");
            assert_eq!(
                signature,
                vector["signature"].as_str().unwrap(),
                "{}",
                vector["source"]
            );
            re_signed += 1;
        }
    }
    println!("{DONE} {re_signed}");
}
