//! RSA PKCS#1 v1.5 SHA-1 signatures with standard base64 (spec §3.1), behind a small seam.
//!
//! Two backends implement [`Signer`] and [`Verifier`]:
//! - [`Backend::RustCrypto`]: the `rsa` crate, always signing with blinding (`sign_with_rng`).
//! - [`Backend::OpenSsl`] (cargo feature `openssl`): constant-time, ~3x faster to sign.
//!
//! A third, [`Backend::Pkcs11`] (cargo feature `pkcs11`, [`pkcs11`]), only signs: the key stays in
//! a token. Verifying needs no secret, so whatever signs, the sidecar verifies with the fastest
//! software backend built in ([`Backend::verifying`]).
//!
//! RSA can be milliseconds of CPU, so async code never calls these directly: it goes through
//! [`CryptoPool`], which runs an operation inline when its backend says it is cheap
//! ([`Signer::inline`], [`Verifier::inline`]) and on the blocking pool otherwise.

use std::{fmt, sync::Arc};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use rsa::{RsaPrivateKey, RsaPublicKey};
use tokio::sync::Semaphore;

pub mod pkcs11;

/// Signs plaintexts with the merchant private key.
pub trait Signer: Send + Sync + 'static {
    /// Returns the base64 signature of `plaintext` (the UTF-8 bytes of method + uuid + S(data)).
    fn sign(&self, plaintext: &[u8]) -> Result<String, SignError>;
    fn backend(&self) -> Backend;
    /// One signature costs under a millisecond of CPU and never waits on I/O, so it may run on
    /// the async worker (see [`INLINE_SIGNING_MAX_BITS`], [`CryptoPool::run`]).
    fn inline(&self) -> bool {
        false
    }
}

/// Verifies signatures made with a peer's private key.
pub trait Verifier: Send + Sync + 'static {
    /// True only if `signature` is valid base64 and a valid signature of `plaintext`.
    fn verify(&self, plaintext: &[u8], signature: &str) -> bool;
    fn backend(&self) -> Backend;
    /// One verification costs under a millisecond of CPU (see [`Signer::inline`]).
    fn inline(&self) -> bool {
        false
    }
}

/// Largest key an OpenSSL signature is made inline with, on the async worker: what another stream
/// on that worker may then wait is one RSA-2048 signature, 0.2-0.7 ms on these machines
/// (perf-baselines §1; 1 580-4 700 signs/s on the machines the gateway benchmark ran on), less
/// than a millisecond.
/// Every OpenSSL verification fits too (under 0.1 ms up to 4096 bits). An `rsa`-crate signature
/// (1.2-2.1 ms), a 3072-bit or larger OpenSSL signature and a PKCS#11 token (a device that may be
/// slow or remote) do not, and go to the blocking pool. The backends decide by kind and key size;
/// nothing times them at run time.
pub const INLINE_SIGNING_MAX_BITS: u32 = 2048;

/// The RSA implementation behind a [`Signer`]/[`Verifier`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The pure-Rust `rsa` crate (default; blinded, not constant-time: RUSTSEC-2023-0071).
    RustCrypto,
    /// OpenSSL (cargo feature `openssl`; constant-time and blinded).
    OpenSsl,
    /// A PKCS#11 token signs (cargo feature `pkcs11`); the private key never leaves it.
    Pkcs11,
}

impl Backend {
    /// The software backends compiled into this binary: those that sign with a key in memory
    /// ([`Backend::Pkcs11`] signs with a [`pkcs11::Token`] instead).
    pub fn available() -> &'static [Backend] {
        if cfg!(feature = "openssl") {
            &[Backend::RustCrypto, Backend::OpenSsl]
        } else {
            &[Backend::RustCrypto]
        }
    }

    /// The backend that verifies Trustly's signatures for a sidecar signing with this one: OpenSSL
    /// whenever it is built in, else the `rsa` crate. Verifying needs no secret, so who holds the
    /// private key (the signing backend's choice) does not bind it, and OpenSSL verifies ~10x
    /// faster: an `rsa`-crate verification costs a tenth of an `rsa`-crate signature (README
    /// "Signing backends"), on the core that signs.
    pub fn verifying(self) -> Backend {
        if cfg!(feature = "openssl") {
            Backend::OpenSsl
        } else {
            Backend::RustCrypto
        }
    }

    /// Builds a signer for `key` on this backend (a software one: a token signs with its own key).
    pub fn signer(self, key: RsaPrivateKey) -> Result<Arc<dyn Signer>, SignError> {
        match self {
            Backend::RustCrypto => Ok(Arc::new(RustCryptoSigner::new(key))),
            Backend::OpenSsl => openssl_backend::signer(&key),
            Backend::Pkcs11 => Err(SignError::KeyInToken),
        }
    }

    /// Builds a verifier for `key` on this backend ([`Backend::verifying`] for a token, which only
    /// signs). The sidecar verifies with `self.verifying().verifier(..)`.
    pub fn verifier(self, key: RsaPublicKey) -> Result<Arc<dyn Verifier>, SignError> {
        match self {
            Backend::OpenSsl => openssl_backend::verifier(&key),
            Backend::RustCrypto => Ok(Arc::new(RustCryptoVerifier::new(key))),
            Backend::Pkcs11 => self.verifying().verifier(key),
        }
    }
}

super::keys::setting_names! {
    Backend as "signing backend" {
        RustCrypto = "rustcrypto" | "rust",
        OpenSsl = "openssl",
        Pkcs11 = "pkcs11",
    }
}

/// Signing could not produce a signature.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("rsa signing failed")]
    Rsa(#[source] rsa::signature::Error),
    #[cfg(feature = "openssl")]
    #[error("openssl signing failed")]
    OpenSsl(#[source] openssl::error::ErrorStack),
    #[error("the {0} signing backend is not built into this binary (cargo feature `{0}`)")]
    BackendNotBuilt(&'static str),
    #[error("the pkcs11 backend signs with the key in its token, never with a key in memory")]
    KeyInToken,
    /// The token failed; the message never contains the PIN.
    #[error("pkcs11: {message}")]
    Pkcs11 { part: pkcs11::Part, message: String },
    #[error("the key failed its sign/verify self-check")]
    SelfCheck,
    #[error("the signing task did not complete")]
    TaskFailed,
}

// === impl RustCryptoSigner ===

/// Signs with the `rsa` crate, always blinded.
pub struct RustCryptoSigner {
    key: rsa::pkcs1v15::SigningKey<sha1::Sha1>,
}

impl RustCryptoSigner {
    pub fn new(key: RsaPrivateKey) -> Self {
        Self {
            key: rsa::pkcs1v15::SigningKey::new(key),
        }
    }
}

impl Signer for RustCryptoSigner {
    fn sign(&self, plaintext: &[u8]) -> Result<String, SignError> {
        use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
        // Blinded: the unblinded `Signer::sign` path leaks more timing (perf-baselines §2).
        let signature = self
            .key
            .try_sign_with_rng(&mut rand::rngs::OsRng, plaintext)
            .map_err(SignError::Rsa)?;
        Ok(BASE64.encode(signature.to_bytes()))
    }

    fn backend(&self) -> Backend {
        Backend::RustCrypto
    }
}

impl fmt::Debug for RustCryptoSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RustCryptoSigner([redacted])")
    }
}

// === impl RustCryptoVerifier ===

/// Verifies with the `rsa` crate.
#[derive(Debug)]
pub struct RustCryptoVerifier {
    key: rsa::pkcs1v15::VerifyingKey<sha1::Sha1>,
}

impl RustCryptoVerifier {
    pub fn new(key: RsaPublicKey) -> Self {
        Self {
            key: rsa::pkcs1v15::VerifyingKey::new(key),
        }
    }
}

impl Verifier for RustCryptoVerifier {
    fn verify(&self, plaintext: &[u8], signature: &str) -> bool {
        use rsa::signature::Verifier as _;
        let Some(bytes) = decode_signature(signature) else {
            return false;
        };
        let Ok(signature) = rsa::pkcs1v15::Signature::try_from(bytes.as_slice()) else {
            return false;
        };
        self.key.verify(plaintext, &signature).is_ok()
    }

    fn backend(&self) -> Backend {
        Backend::RustCrypto
    }
}

/// A signer whose key can be replaced while calls are in flight (key reload): each signature uses
/// the key current when it starts.
pub struct SwappableSigner {
    current: parking_lot::RwLock<Arc<dyn Signer>>,
}

impl SwappableSigner {
    pub fn new(initial: Arc<dyn Signer>) -> Self {
        Self {
            current: parking_lot::RwLock::new(initial),
        }
    }

    pub fn replace(&self, signer: Arc<dyn Signer>) {
        *self.current.write() = signer;
    }
}

impl Signer for SwappableSigner {
    fn sign(&self, plaintext: &[u8]) -> Result<String, SignError> {
        let signer = Arc::clone(&self.current.read());
        signer.sign(plaintext)
    }

    fn backend(&self) -> Backend {
        self.current.read().backend()
    }

    fn inline(&self) -> bool {
        self.current.read().inline()
    }
}

/// What [`self_check`] signs: fixed, so a token's signature of it is deterministic.
pub const SELF_CHECK_MESSAGE: &[u8] = b"trustly-sidecar key self-check";

/// Signs [`SELF_CHECK_MESSAGE`] and verifies it with the public key the signer claims: a key that
/// cannot sign, or whose public half is not the one we publish to Trustly, is refused before use.
/// Returns the signature.
pub fn self_check(signer: &dyn Signer, verifier: &dyn Verifier) -> Result<String, SignError> {
    let signature = signer.sign(SELF_CHECK_MESSAGE)?;
    if verifier.verify(SELF_CHECK_MESSAGE, &signature) {
        Ok(signature)
    } else {
        Err(SignError::SelfCheck)
    }
}

/// Accepts a signature made with any of its keys: Trustly's current key and, during a Trustly key
/// rotation, the next one.
pub struct AnyKey(pub Vec<Arc<dyn Verifier>>);

impl Verifier for AnyKey {
    fn verify(&self, plaintext: &[u8], signature: &str) -> bool {
        self.0
            .iter()
            .any(|verifier| verifier.verify(plaintext, signature))
    }

    fn backend(&self) -> Backend {
        self.0.first().map_or(Backend::RustCrypto, |v| v.backend())
    }

    /// Inline when each key is: a mismatch tries them all.
    fn inline(&self) -> bool {
        self.0.iter().all(|verifier| verifier.inline())
    }
}

/// Largest base64 signature we decode: a 4096-bit signature is 684 base64 characters. Anything
/// longer is rejected before decoding, so a hostile peer cannot make us decode megabytes.
const MAX_SIGNATURE_BASE64_LEN: usize = 1024;

fn decode_signature(signature: &str) -> Option<Vec<u8>> {
    if signature.len() > MAX_SIGNATURE_BASE64_LEN {
        return None;
    }
    BASE64.decode(signature).ok()
}

// === impl OpenSsl backend ===

#[cfg(feature = "openssl")]
mod openssl_backend {
    use std::sync::Arc;

    use super::{BASE64, Backend, SignError, Signer, Verifier, decode_signature};
    use base64::Engine as _;
    use openssl::{
        error::ErrorStack,
        hash::MessageDigest,
        pkey::{PKey, Private, Public},
        rsa::{Padding, Rsa},
    };
    use rsa::{
        RsaPrivateKey, RsaPublicKey,
        pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey},
    };

    /// An RSA key held by OpenSSL (constant-time, blinded): a private one signs, a public one
    /// verifies. Built from the key `keys` already validated, re-encoded as PKCS#1 DER, so both
    /// backends accept exactly the same key files.
    struct OpenSslKey<T>(PKey<T>);

    /// Builds a signer from the merchant key `keys` already validated.
    pub fn signer(key: &RsaPrivateKey) -> Result<Arc<dyn Signer>, SignError> {
        let der = key.to_pkcs1_der().map_err(|_| SignError::TaskFailed)?;
        Ok(Arc::new(load(der.as_bytes(), Rsa::private_key_from_der)?))
    }

    /// Builds a verifier from a public key `keys` already validated.
    pub fn verifier(key: &RsaPublicKey) -> Result<Arc<dyn Verifier>, SignError> {
        let der = key.to_pkcs1_der().map_err(|_| SignError::TaskFailed)?;
        Ok(Arc::new(load(
            der.as_bytes(),
            Rsa::public_key_from_der_pkcs1,
        )?))
    }

    /// Loads the PKCS#1 DER that the `rsa` crate encoded, with OpenSSL's matching reader.
    fn load<T>(
        der: &[u8],
        read: fn(&[u8]) -> Result<Rsa<T>, ErrorStack>,
    ) -> Result<OpenSslKey<T>, SignError> {
        let rsa = read(der).map_err(SignError::OpenSsl)?;
        PKey::from_rsa(rsa)
            .map(OpenSslKey)
            .map_err(SignError::OpenSsl)
    }

    impl Signer for OpenSslKey<Private> {
        fn sign(&self, plaintext: &[u8]) -> Result<String, SignError> {
            let mut signer = openssl::sign::Signer::new(MessageDigest::sha1(), &self.0)
                .map_err(SignError::OpenSsl)?;
            signer
                .set_rsa_padding(Padding::PKCS1)
                .map_err(SignError::OpenSsl)?;
            signer.update(plaintext).map_err(SignError::OpenSsl)?;
            let signature = signer.sign_to_vec().map_err(SignError::OpenSsl)?;
            Ok(BASE64.encode(signature))
        }

        fn backend(&self) -> Backend {
            Backend::OpenSsl
        }

        fn inline(&self) -> bool {
            self.0.bits() <= super::INLINE_SIGNING_MAX_BITS
        }
    }

    impl Verifier for OpenSslKey<Public> {
        fn verify(&self, plaintext: &[u8], signature: &str) -> bool {
            let Some(signature) = decode_signature(signature) else {
                return false;
            };
            let Ok(mut verifier) = openssl::sign::Verifier::new(MessageDigest::sha1(), &self.0)
            else {
                return false;
            };
            if verifier.set_rsa_padding(Padding::PKCS1).is_err() {
                return false;
            }
            verifier
                .verify_oneshot(&signature, plaintext)
                .unwrap_or(false)
        }

        fn backend(&self) -> Backend {
            Backend::OpenSsl
        }

        fn inline(&self) -> bool {
            true
        }
    }

    impl<T> std::fmt::Debug for OpenSslKey<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("OpenSslKey([redacted])")
        }
    }
}

/// Stands in for the OpenSSL backend in a binary built without the `openssl` feature: the backend
/// can be named (configuration parses it) but building a key on it is refused.
#[cfg(not(feature = "openssl"))]
mod openssl_backend {
    use std::sync::Arc;

    use rsa::{RsaPrivateKey, RsaPublicKey};

    use super::{SignError, Signer, Verifier};

    pub fn signer(_: &RsaPrivateKey) -> Result<Arc<dyn Signer>, SignError> {
        Err(SignError::BackendNotBuilt("openssl"))
    }

    pub fn verifier(_: &RsaPublicKey) -> Result<Arc<dyn Verifier>, SignError> {
        Err(SignError::BackendNotBuilt("openssl"))
    }
}

// === impl CryptoPool ===

/// Runs RSA work: inline when the backend says one operation is cheap ([`Signer::inline`]),
/// else on the blocking pool, at most `permits` operations at once.
///
/// An `rsa`-crate signature costs ~2 ms of CPU: run inline it would stall every connection on
/// that worker. The bound keeps a burst of calls from spawning hundreds of blocking threads that
/// would only fight over the same cores; waiting callers queue fairly on the semaphore instead.
/// A cheap operation skips both hops (to the blocking thread and back, two task switches per
/// operation); with OpenSSL inline, and the outcome written after the answer, the gateway
/// benchmark's memory-store c=64 went from 54.6% to 71.2% of the signing ceiling (README
/// "Benchmarks").
#[derive(Clone, Debug)]
pub struct CryptoPool {
    permits: Arc<Semaphore>,
}

impl CryptoPool {
    /// A pool allowing one RSA operation per available core.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores)
    }

    pub fn new(max_concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// Runs `work` here when `inline` (the backend's [`Signer::inline`] or [`Verifier::inline`]),
    /// else on the blocking pool once a permit is free.
    pub async fn run<T, F>(&self, inline: bool, work: F) -> Result<T, SignError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if inline {
            return Ok(work());
        }
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| SignError::TaskFailed)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| SignError::TaskFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rsa_that_costs_under_a_millisecond_runs_inline() {
        let key = crate::trustly::keys::published::merchant_private_key();
        assert_eq!(rsa::traits::PublicKeyParts::size(&key) * 8, 2048);
        let public = RsaPublicKey::from(&key);
        assert!(!Backend::RustCrypto.signer(key.clone()).unwrap().inline());
        assert!(
            !Backend::RustCrypto
                .verifier(public.clone())
                .unwrap()
                .inline()
        );
        if cfg!(feature = "openssl") {
            assert!(Backend::OpenSsl.signer(key.clone()).unwrap().inline());
            assert!(Backend::OpenSsl.verifier(public).unwrap().inline());
            let larger = RsaPrivateKey::new(&mut rand::rngs::OsRng, 3072).unwrap();
            let signer = Backend::OpenSsl.signer(larger).unwrap();
            assert!(!signer.inline(), "a 3072-bit signature goes to the pool");
            let swappable = SwappableSigner::new(signer);
            assert!(!swappable.inline());
            swappable.replace(Backend::OpenSsl.signer(key).unwrap());
            assert!(swappable.inline(), "decided by the key in use");
        }
    }
}
