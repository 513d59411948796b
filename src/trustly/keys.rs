//! Loading RSA keys: the merchant private key (PKCS#1 or PKCS#8 PEM) and Trustly's public key
//! (SPKI PEM), built in per environment and overridable by file.
//!
//! Every failure names the file, so a bad mount is diagnosed from the first log line.

pub mod published;

use std::{path::Path, path::PathBuf};

use rsa::{
    RsaPrivateKey, RsaPublicKey,
    pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey},
    pkcs8::{DecodePrivateKey, DecodePublicKey},
    traits::PublicKeyParts,
};

/// Smallest modulus accepted. Trustly issues and expects 2048-bit keys; anything smaller is
/// unsafe and would be refused by Trustly anyway.
pub const MIN_KEY_BITS: usize = 2048;
/// Smallest Trustly public key accepted outside the live environment: benchmarks run the simulator
/// with a 1024-bit key so that its signing is never the bottleneck. Live always needs
/// [`MIN_KEY_BITS`]; test money is not real money.
pub const MIN_TEST_TRUSTLY_KEY_BITS: usize = 1024;
/// Largest modulus accepted. 4096 bits signs ~7x slower than 2048 (perf-baselines §1); larger keys
/// are almost certainly a mistake, and would make a key file a cheap denial of service.
pub const MAX_KEY_BITS: usize = 4096;

/// Trustly's TEST public key (verifies test.trustly.com), from `trustly-keys/`.
const TRUSTLY_TEST_PUBLIC_PEM: &str = include_str!("keys/trustly-test-public.pem");
/// Trustly's LIVE public key (verifies api.trustly.com).
const TRUSTLY_LIVE_PUBLIC_PEM: &str = include_str!("keys/trustly-live-public.pem");

/// Implements `FromStr` and `Display` for a setting's enum from one table: each variant prints as
/// its name and parses from it or an alias; anything else is refused, naming the setting (`as`)
/// and the names accepted.
macro_rules! setting_names {
    ($ty:ident as $what:literal { $($variant:ident = $name:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl std::str::FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name $(| $alias)* => Ok(Self::$variant),)+
                    other => Err(format!(
                        concat!("unknown ", $what, " {:?} (expected {})"),
                        other,
                        [$($name),+].join(" or "),
                    )),
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self {
                    $(Self::$variant => $name,)+
                })
            }
        }
    };
}
pub(crate) use setting_names;

/// Which Trustly environment we talk to. It selects the endpoint and the public key: a key must
/// never verify messages from the other environment (spec §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Test,
    Live,
}

impl Environment {
    /// Trustly's JSON-RPC endpoint for this environment. Live has no `/api` segment (spec §1).
    pub fn endpoint(self) -> &'static str {
        match self {
            Environment::Test => "https://test.trustly.com/api/1",
            Environment::Live => "https://api.trustly.com/1",
        }
    }

    /// Trustly's built-in public key for this environment.
    pub fn trustly_public_key(self) -> RsaPublicKey {
        let pem = match self {
            Environment::Test => TRUSTLY_TEST_PUBLIC_PEM,
            Environment::Live => TRUSTLY_LIVE_PUBLIC_PEM,
        };
        // invariant: both PEMs are compiled in and covered by `builtin_keys_parse`.
        #[allow(clippy::expect_used)]
        parse_public_key_pem(pem).expect("built-in Trustly public key parses")
    }
}

setting_names! {
    Environment as "Trustly environment" {
        Test = "test",
        Live = "live",
    }
}

/// A key file that could not be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("key file {}: {problem}", path.display())]
pub struct KeyError {
    pub path: PathBuf,
    #[source]
    pub problem: KeyProblem,
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyProblem {
    #[error("does not exist")]
    Missing,
    #[error("cannot be read")]
    Unreadable(#[source] std::io::Error),
    #[error("is encrypted; mount an unencrypted PEM key (the Secret protects it at rest)")]
    Encrypted,
    #[error("is not a PEM {expected}")]
    NotPem { expected: &'static str },
    #[error("is a {bits}-bit RSA key; only {min} to {MAX_KEY_BITS} bits are accepted")]
    WrongSize { bits: usize, min: usize },
    #[error("is not a consistent RSA private key")]
    Inconsistent,
}

/// Loads the merchant private key from a PEM file (PKCS#1 `RSA PRIVATE KEY` or PKCS#8
/// `PRIVATE KEY`).
pub fn load_private_key(path: &Path) -> Result<RsaPrivateKey, KeyError> {
    load(path, parse_private_key_pem)
}

/// Loads a public key from a PEM file (SPKI `PUBLIC KEY`, or PKCS#1 `RSA PUBLIC KEY`).
pub fn load_public_key(path: &Path) -> Result<RsaPublicKey, KeyError> {
    load(path, parse_public_key_pem)
}

/// Parses a PEM private key and checks its size and consistency.
pub fn parse_private_key_pem(pem: &str) -> Result<RsaPrivateKey, KeyProblem> {
    if pem.contains("ENCRYPTED") {
        return Err(KeyProblem::Encrypted);
    }
    let key = RsaPrivateKey::from_pkcs1_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs8_pem(pem))
        .map_err(|_| KeyProblem::NotPem {
            expected: "RSA private key (PKCS#1 or PKCS#8)",
        })?;
    check_size(key.size() * 8)?;
    key.validate().map_err(|_| KeyProblem::Inconsistent)?;
    Ok(key)
}

/// Parses a PEM public key and checks its size.
pub fn parse_public_key_pem(pem: &str) -> Result<RsaPublicKey, KeyProblem> {
    parse_public_key_pem_min(pem, MIN_KEY_BITS)
}

fn parse_public_key_pem_min(pem: &str, min_bits: usize) -> Result<RsaPublicKey, KeyProblem> {
    let key = RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
        .map_err(|_| KeyProblem::NotPem {
            expected: "RSA public key (SPKI or PKCS#1)",
        })?;
    check_size_min(key.size() * 8, min_bits)?;
    Ok(key)
}

/// Checks the size of a merchant public key that came from elsewhere than a file (a PKCS#11
/// token), by the rules a key file follows.
pub fn check_public_key(key: &RsaPublicKey) -> Result<(), KeyProblem> {
    check_size(key.size() * 8)
}

/// Loads a Trustly public key override: [`MIN_KEY_BITS`] for live, down to
/// [`MIN_TEST_TRUSTLY_KEY_BITS`] otherwise (a simulator's benchmark key).
pub fn load_trustly_public_key(
    path: &Path,
    environment: Option<Environment>,
) -> Result<RsaPublicKey, KeyError> {
    let min_bits = match environment {
        Some(Environment::Live) => MIN_KEY_BITS,
        _ => MIN_TEST_TRUSTLY_KEY_BITS,
    };
    load(path, |pem| parse_public_key_pem_min(pem, min_bits))
}

/// Reads the PEM file at `path` and parses it, naming the file in any failure.
fn load<K>(path: &Path, parse: impl FnOnce(&str) -> Result<K, KeyProblem>) -> Result<K, KeyError> {
    read_pem(path)
        .and_then(|pem| parse(&pem))
        .map_err(|problem| KeyError {
            path: path.to_owned(),
            problem,
        })
}

fn read_pem(path: &Path) -> Result<String, KeyProblem> {
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => KeyProblem::Missing,
        std::io::ErrorKind::InvalidData => KeyProblem::NotPem {
            expected: "key (file is not text)",
        },
        _ => KeyProblem::Unreadable(e),
    })
}

fn check_size(bits: usize) -> Result<(), KeyProblem> {
    check_size_min(bits, MIN_KEY_BITS)
}

fn check_size_min(bits: usize, min: usize) -> Result<(), KeyProblem> {
    if (min..=MAX_KEY_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(KeyProblem::WrongSize { bits, min })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_keys_parse() {
        for env in [Environment::Test, Environment::Live] {
            assert_eq!(env.trustly_public_key().size() * 8, 2048);
        }
        assert_ne!(
            Environment::Test.trustly_public_key(),
            Environment::Live.trustly_public_key()
        );
    }

    #[test]
    fn a_1024_bit_trustly_key_is_for_the_test_environment_only() {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        let weak = RsaPrivateKey::from_pkcs8_pem(include_str!(
            "../../tests/fixtures/keys/weak-1024-private.pem"
        ))
        .expect("fixture key");
        let pem = RsaPublicKey::from(&weak)
            .to_public_key_pem(LineEnding::LF)
            .expect("encodes");
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), pem).expect("write");
        assert!(load_trustly_public_key(file.path(), Some(Environment::Test)).is_ok());
        assert!(load_trustly_public_key(file.path(), None).is_ok());
        let refused = load_trustly_public_key(file.path(), Some(Environment::Live))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("1024-bit RSA key; only 2048"), "{refused}");
        assert!(
            load_public_key(file.path()).is_err(),
            "other public keys stay >= 2048"
        );
    }

    #[test]
    fn setting_names_print_and_parse_both_ways() {
        use crate::trustly::sign::Backend;
        for env in [Environment::Test, Environment::Live] {
            assert_eq!(env.to_string().parse(), Ok(env));
        }
        assert_eq!(
            "prod".parse::<Environment>(),
            Err("unknown Trustly environment \"prod\" (expected test or live)".to_owned())
        );
        for backend in [Backend::RustCrypto, Backend::OpenSsl, Backend::Pkcs11] {
            assert_eq!(backend.to_string().parse(), Ok(backend));
        }
        assert_eq!("rust".parse(), Ok(Backend::RustCrypto));
        assert_eq!(
            "ring".parse::<Backend>(),
            Err(
                "unknown signing backend \"ring\" (expected rustcrypto or openssl or pkcs11)"
                    .to_owned()
            )
        );
    }
}
