//! Every vector of `tests/fixtures/trustly-test-vectors.json` (copied from shared/spec): 12
//! serializer vectors and 29 signature vectors (12 genuine Trustly signatures, 2 tampered
//! negatives), on every signing backend built in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use serde_json::Value;
use support::*;
use trustly_sidecar::trustly::{
    Error, ErrorCode, canonical, client::interpret_response, sign::Backend, wire,
};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/trustly-test-vectors.json"
    );
    serde_json::from_slice(&std::fs::read(path).expect("vectors file")).expect("vectors parse")
}

fn list<'a>(vectors: &'a Value, key: &str) -> &'a Vec<Value> {
    vectors[key].as_array().expect("vector list")
}

fn text<'a>(vector: &'a Value, key: &str) -> &'a str {
    vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key}"))
}

/// The fixture key file named by a vector's `verify_key` ("test-fixtures/x.pem" or "x.pem").
fn verify_key_file(vector: &Value) -> &str {
    let name = text(vector, "verify_key");
    name.rsplit('/').next().expect("file name")
}

/// The private half of a client-signed vector's key, where the key pair is public.
fn private_key_file(public: &str) -> Option<&'static str> {
    match public {
        "merchant-test-public.pem" => Some("merchant-test-private.pem"),
        "python-client-test-public-1.pem" => Some("python-client-test-private-1.pem"),
        _ => None, // Trustly's own key: only Trustly can sign
    }
}

#[test]
fn the_vector_file_has_what_the_spec_promises() {
    let vectors = vectors();
    let signatures = list(&vectors, "signatures");
    assert_eq!(list(&vectors, "serializer").len(), 12);
    assert_eq!(signatures.len(), 29);
    let genuine_trustly = signatures
        .iter()
        .filter(|v| verify_key_file(v) == "trustly-test-public.pem" && v["expected_valid"] == true)
        .count();
    assert_eq!(genuine_trustly, 12);
    assert_eq!(
        signatures
            .iter()
            .filter(|v| v["expected_valid"] == false)
            .count(),
        2
    );
}

#[test]
fn every_serializer_vector() {
    for vector in list(&vectors(), "serializer") {
        assert_eq!(
            canonical::serialize(&vector["input"]),
            text(vector, "expected"),
            "{}",
            text(vector, "source")
        );
    }
}

#[test]
fn every_signature_vector_has_the_expected_plaintext() {
    for vector in list(&vectors(), "signatures") {
        let plaintext = canonical::plaintext(
            text(vector, "method"),
            text(vector, "uuid"),
            &vector["data"],
        );
        assert_eq!(
            plaintext,
            text(vector, "plaintext"),
            "{}",
            text(vector, "source")
        );
    }
}

#[test]
fn every_signature_vector_verifies_as_expected_on_every_backend() {
    for &backend in Backend::available() {
        for vector in list(&vectors(), "signatures") {
            let verifier = verifier(backend, verify_key_file(vector));
            let valid = verifier.verify(
                text(vector, "plaintext").as_bytes(),
                text(vector, "signature"),
            );
            assert_eq!(
                valid,
                vector["expected_valid"] == true,
                "[{backend}] {} {}",
                text(vector, "source"),
                text(vector, "uuid")
            );
        }
    }
}

#[test]
fn client_signed_vectors_re_sign_byte_for_byte_on_every_backend() {
    for &backend in Backend::available() {
        let mut re_signed = 0;
        for vector in list(&vectors(), "signatures") {
            let Some(private) = private_key_file(verify_key_file(vector)) else {
                continue;
            };
            let signature = signer(backend, private)
                .sign(text(vector, "plaintext").as_bytes())
                .expect("signs");
            assert_eq!(
                signature,
                text(vector, "signature"),
                "[{backend}] {}",
                text(vector, "source")
            );
            re_signed += 1;
        }
        assert_eq!(re_signed, 15, "spec §7: all 15 client-signed vectors");
    }
}

#[test]
fn trustly_signed_envelopes_are_accepted_and_tampered_ones_refused() {
    let trustly = verifier(Backend::RustCrypto, "trustly-test-public.pem");
    for vector in list(&vectors(), "signatures") {
        if verify_key_file(vector) != "trustly-test-public.pem" {
            continue;
        }
        let (method, uuid, expected) = (
            text(vector, "method"),
            text(vector, "uuid"),
            vector["expected_valid"] == true,
        );
        let signature = text(vector, "signature");
        match text(vector, "kind") {
            "response" => {
                let body = wire::success_response(method, uuid, signature, vector["data"].clone());
                let body = serde_json::to_vec(&body).expect("encode");
                let outcome = interpret_response(200, &body, method, uuid, trustly.as_ref());
                if expected {
                    assert_eq!(outcome.expect("genuine response accepted"), vector["data"]);
                } else {
                    assert!(
                        matches!(outcome, Err(Error::BadSignature)),
                        "tampered response refused"
                    );
                }
            }
            "notification" => {
                let body = wire::notification(method, uuid, signature, vector["data"].clone());
                let parsed = wire::parse_notification(&serde_json::to_vec(&body).expect("encode"))
                    .expect("notification parses");
                assert_eq!(parsed.verify(trustly.as_ref()), expected, "{uuid}");
            }
            "error-response" => {} // covered with its raw body below
            other => panic!("unexpected kind {other}"),
        }
    }
}

#[test]
fn the_recorded_616_error_body_is_a_verified_definitive_rejection() {
    let vectors = vectors();
    let vector = list(&vectors, "signatures")
        .iter()
        .find(|v| v["kind"] == "error-response")
        .expect("error vector");
    let raw = text(vector, "note").trim_start_matches("raw body: ");
    let trustly = verifier(Backend::RustCrypto, "trustly-test-public.pem");
    let outcome = interpret_response(
        200,
        raw.as_bytes(),
        "Deposit",
        text(vector, "uuid"),
        trustly.as_ref(),
    );
    match outcome {
        Err(error @ Error::Rejected { .. }) => {
            assert!(!error.is_ambiguous());
            let Error::Rejected { code, message } = error else {
                unreachable!()
            };
            assert_eq!(code, ErrorCode::InvalidCredentials);
            assert_eq!(message, "ERROR_INVALID_CREDENTIALS");
        }
        other => panic!("expected a verified 616, got {other:?}"),
    }
    // The same body verified with the live key must not be believed.
    let live = verifier(Backend::RustCrypto, "merchant-test-public.pem");
    let outcome = interpret_response(
        200,
        raw.as_bytes(),
        "Deposit",
        text(vector, "uuid"),
        live.as_ref(),
    );
    assert!(matches!(outcome, Err(Error::BadSignature)));
}

#[test]
fn a_notification_answer_for_notification1_has_the_spec_plaintext_and_verifies() {
    // Spec §7 (d): answer `notification1` with {"status":"OK"}.
    let vectors = vectors();
    let notification = list(&vectors, "signatures")
        .iter()
        .find(|v| {
            v["kind"] == "notification"
                && v["expected_valid"] == true
                && verify_key_file(v) == "trustly-test-public.pem"
        })
        .expect("notification1");
    let (method, uuid) = (text(notification, "method"), text(notification, "uuid"));
    let data = serde_json::json!({"status": "OK"});
    let plaintext = canonical::plaintext(method, uuid, &data);
    assert_eq!(
        plaintext,
        "creditf1b77aac-516d-4b89-a125-c005f4c020f0statusOK"
    );
    for &backend in Backend::available() {
        let signature = signer(backend, MERCHANT_PRIVATE)
            .sign(plaintext.as_bytes())
            .expect("signs");
        let body = wire::notification_response(method, uuid, &signature, data.clone());
        let answer = wire::parse_notification_response(&serde_json::to_vec(&body).expect("encode"))
            .expect("answer parses");
        assert_eq!(
            (answer.method.as_str(), answer.uuid.as_str()),
            (method, uuid)
        );
        assert!(answer.verify(verifier(backend, MERCHANT_PUBLIC).as_ref()));
    }
}

#[test]
fn signatures_from_one_backend_verify_on_the_other() {
    let plaintext = b"Depositad4f3dbe-6c1d-11e5-9d5e-0800279bcb52EndUserIDenduser02";
    for &signing in Backend::available() {
        let signature = signer(signing, MERCHANT_PRIVATE)
            .sign(plaintext)
            .expect("signs");
        for &verifying in Backend::available() {
            assert!(verifier(verifying, MERCHANT_PUBLIC).verify(plaintext, &signature));
            assert!(!verifier(verifying, TRUSTLY_PUBLIC).verify(plaintext, &signature));
        }
    }
}
