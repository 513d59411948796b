//! The PUBLICLY KNOWN test key pair shared by `--sandbox`, `trustly-sim` and `trustly-notify`
//! (see `keys/README.md`), and the check that keeps every publicly known test key out of live.
//!
//! Anyone can sign with these keys: they are for local development only.

use rsa::{RsaPrivateKey, RsaPublicKey, traits::PublicKeyParts};
use sha2::{Digest, Sha256};

use crate::trustly::keys::parse_private_key_pem;

/// The merchant's private key (PUBLICLY KNOWN): the sandbox signs with it.
pub const MERCHANT_PRIVATE_PEM: &str = include_str!("published/merchant-test-private.pem");
/// What the sandbox names the merchant key in its logs.
pub const MERCHANT_KEY_NAME: &str = "merchant-test-private.pem";
/// "Trustly"'s private key (PUBLICLY KNOWN): the simulator signs with it.
pub const SIMULATOR_PRIVATE_PEM: &str = include_str!("published/python-client-test-private-1.pem");
/// What the simulator key is called in logs.
pub const SIMULATOR_KEY_NAME: &str = "python-client-test-private-1.pem";

/// SHA-256 of the big-endian modulus of every publicly known test key, with its name. A key with
/// one of these moduli must never be trusted in live: its private half is public (or, for
/// Trustly's TEST key, belongs to the other environment).
const PUBLICLY_KNOWN_MODULI: [(&str, &str); 4] = [
    (
        "merchant-test (src/trustly/keys/published, tests/fixtures/keys)",
        "0be65a2cb09289c6919821dd6919fba5a37f5eba698de7f2c9a075a10278a60d",
    ),
    (
        "python-client-test-1 (src/trustly/keys/published, tests/fixtures/keys)",
        "2bcf39bc1f126f2aa984aea674b40464b760fedc9402c6c37c7a63bc4ea31fc6",
    ),
    (
        "weak-1024 (tests/fixtures/keys)",
        "3b7afd4ebb3e09e39ac1af2020d2aaf4edcea880718a057a991d83a1228db36f",
    ),
    (
        "Trustly's TEST public key",
        "79d9c46d28c45b44f055ad8f8f0807724b8d677b0e8b3effc9073789fb9afe91",
    ),
];

/// The merchant test key, parsed.
pub fn merchant_private_key() -> RsaPrivateKey {
    // invariant: a compiled-in PEM, covered by `embedded_keys_parse_and_are_publicly_known`.
    #[allow(clippy::expect_used)]
    parse_private_key_pem(MERCHANT_PRIVATE_PEM).expect("embedded merchant test key parses")
}

/// The simulator's ("Trustly"'s) test key, parsed.
pub fn simulator_private_key() -> RsaPrivateKey {
    // invariant: a compiled-in PEM, covered by `embedded_keys_parse_and_are_publicly_known`.
    #[allow(clippy::expect_used)]
    parse_private_key_pem(SIMULATOR_PRIVATE_PEM).expect("embedded simulator test key parses")
}

/// The name of the publicly known test key with this modulus, if it is one.
pub fn publicly_known(key: &RsaPublicKey) -> Option<&'static str> {
    let digest = Sha256::digest(key.n().to_bytes_be());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    PUBLICLY_KNOWN_MODULI
        .iter()
        .find(|(_, fingerprint)| *fingerprint == hex)
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trustly::keys::{Environment, load_private_key, load_public_key};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");

    #[test]
    fn embedded_keys_parse_and_are_publicly_known() {
        let merchant = RsaPublicKey::from(&merchant_private_key());
        let simulator = RsaPublicKey::from(&simulator_private_key());
        assert_ne!(merchant, simulator);
        assert!(publicly_known(&merchant).is_some_and(|n| n.starts_with("merchant-test")));
        assert!(publicly_known(&simulator).is_some_and(|n| n.starts_with("python-client")));
    }

    #[test]
    fn every_fixture_key_is_publicly_known_and_a_fresh_key_is_not() {
        let path = |name: &str| std::path::PathBuf::from(FIXTURES).join(name);
        for name in [
            "merchant-test-private.pem",
            "merchant-test-private-pkcs8.pem",
            "python-client-test-private-1.pem",
        ] {
            let key = load_private_key(&path(name)).expect("fixture key");
            assert!(
                publicly_known(&RsaPublicKey::from(&key)).is_some(),
                "{name}"
            );
        }
        for name in [
            "merchant-test-public.pem",
            "python-client-test-public-1.pem",
            "trustly-test-public.pem",
        ] {
            let key = load_public_key(&path(name)).expect("fixture key");
            assert!(publicly_known(&key).is_some(), "{name}");
        }
        let weak = rsa::pkcs8::DecodePrivateKey::from_pkcs8_pem(
            &std::fs::read_to_string(path("weak-1024-private.pem")).expect("fixture"),
        )
        .map(|key: RsaPrivateKey| RsaPublicKey::from(&key))
        .expect("fixture key");
        assert!(publicly_known(&weak).is_some());
        assert!(publicly_known(&Environment::Test.trustly_public_key()).is_some());
        assert_eq!(
            publicly_known(&Environment::Live.trustly_public_key()),
            None
        );
        let fresh = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("keygen");
        assert_eq!(publicly_known(&RsaPublicKey::from(&fresh)), None);
    }

    #[test]
    fn the_embedded_copies_match_the_fixtures() {
        for name in [MERCHANT_KEY_NAME, SIMULATOR_KEY_NAME] {
            let fixture = std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture");
            let embedded = match name {
                MERCHANT_KEY_NAME => MERCHANT_PRIVATE_PEM,
                _ => SIMULATOR_PRIVATE_PEM,
            };
            assert_eq!(fixture, embedded, "{name}");
        }
    }
}
