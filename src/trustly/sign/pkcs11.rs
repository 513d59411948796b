//! The PKCS#11 signing backend: the merchant private key stays in a token (an HSM, SoftHSM2) and
//! the token signs with `CKM_SHA1_RSA_PKCS` over the same bytes the file-key signers sign.
//!
//! [`Token`] is the loaded module and the slot holding the configured token; [`Token::signer`]
//! logs a bounded pool of sessions in with the PIN file's content, finds the private key by label,
//! reads its public half (`CKA_MODULUS`, `CKA_PUBLIC_EXPONENT`) and self-checks. A reload builds
//! a new signer from the same `Token`: the module is initialised once per process.

use std::{path::PathBuf, sync::Arc};

use rsa::RsaPublicKey;

use super::{SignError, Signer};

/// Sessions opened when `TRUSTLY_SIDECAR_PKCS11_SESSIONS` is unset (fewer if the token allows
/// fewer). Signing runs at most one per core (`CryptoPool`), so a few more than the cores of a
/// sidecar keeps every signer busy without holding many of a shared HSM's sessions.
pub const DEFAULT_SESSIONS: usize = 8;
/// Most sessions one sidecar may hold. Network HSMs license sessions per partition; more than this
/// is a typo, and each session is a logged-in handle on the device.
pub const MAX_SESSIONS: usize = 64;

/// Where the merchant key lives.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The PKCS#11 module (`.so`) to load.
    pub module: PathBuf,
    /// `CKA_LABEL` of the token (`softhsm2-util --init-token --label`).
    pub token_label: String,
    /// `CKA_LABEL` of the RSA private key in the token.
    pub key_label: String,
    /// File holding the user PIN (trailing newline ignored); read at every (re)load.
    pub pin_path: PathBuf,
    /// Session pool size; `None`: min(the token's maximum, [`DEFAULT_SESSIONS`]).
    pub sessions: Option<usize>,
}

/// Which part of the PKCS#11 settings a failure is about, so configuration names the setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The module could not be loaded or initialised.
    Module,
    /// No token with the label, or the token cannot be used.
    Token,
    /// The PIN file, or the login with it.
    Pin,
    /// The key: missing, not RSA, wrong size, or failing its self-check.
    Key,
    /// The session pool size.
    Sessions,
}

/// Without the `pkcs11` feature the backend can be named (configuration parses it) but not used.
#[cfg(not(feature = "pkcs11"))]
mod imp {
    use super::*;

    /// Stands in for the token of a build without the `pkcs11` feature.
    #[derive(Debug)]
    pub struct Token;

    impl Token {
        pub fn open(_: Settings) -> Result<Self, SignError> {
            Err(SignError::BackendNotBuilt("pkcs11"))
        }

        pub fn signer(&self) -> Result<(Arc<dyn Signer>, RsaPublicKey), SignError> {
            Err(SignError::BackendNotBuilt("pkcs11"))
        }

        pub fn settings(&self) -> Option<&Settings> {
            None
        }

        pub fn take_failed(&self) -> bool {
            false
        }
    }
}

#[cfg(feature = "pkcs11")]
mod imp {
    use base64::Engine as _;
    use cryptoki::{
        context::{CInitializeArgs, CInitializeFlags, Pkcs11},
        error::{Error as CkError, RvError},
        mechanism::Mechanism,
        object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle},
        session::{Session, UserType},
        slot::{Limit, Slot},
        types::AuthPin,
    };
    use parking_lot::{Condvar, Mutex};
    use rsa::BigUint;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::{super::BASE64, super::Backend, *};

    /// A loaded module and the slot of the configured token.
    pub struct Token {
        context: Pkcs11,
        slot: Slot,
        settings: Settings,
        sessions: usize,
        /// Set by a signer the token failed (it restarted, a network HSM reconnected, ...): the
        /// reloader then logs a fresh pool in at its next check.
        failed: Arc<AtomicBool>,
    }

    impl std::fmt::Debug for Token {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Token")
                .field("module", &self.settings.module)
                .field("token_label", &self.settings.token_label)
                .field("key_label", &self.settings.key_label)
                .field("sessions", &self.sessions)
                .finish()
        }
    }

    fn fail(part: Part, what: impl std::fmt::Display) -> SignError {
        SignError::Pkcs11 {
            part,
            message: what.to_string(),
        }
    }

    impl Token {
        /// Loads the module, initialises it (once per process) and finds the token by label.
        pub fn open(settings: Settings) -> Result<Self, SignError> {
            let context = Pkcs11::new(&settings.module).map_err(|e| fail(Part::Module, e))?;
            match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
                // Another `Token` of this process (a second configuration read) did it already.
                Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
                Err(e) => return Err(fail(Part::Module, e)),
            }
            let slot = find_slot(&context, &settings.token_label)?;
            let info = context
                .get_token_info(slot)
                .map_err(|e| fail(Part::Token, e))?;
            let allowed = match info.max_session_count() {
                Limit::Max(n) => usize::try_from(n).unwrap_or(MAX_SESSIONS).max(1),
                Limit::Unavailable | Limit::Infinite => MAX_SESSIONS,
            };
            let sessions = match settings.sessions {
                Some(n) if n > allowed => {
                    return Err(fail(
                        Part::Sessions,
                        format!("{n} sessions asked; the token allows at most {allowed}"),
                    ));
                }
                Some(n) => n,
                None => DEFAULT_SESSIONS.min(allowed),
            };
            Ok(Self {
                context,
                slot,
                settings,
                sessions,
                failed: Arc::new(AtomicBool::new(false)),
            })
        }

        /// Whether a signer of this token failed since the last call (and clears it).
        pub fn take_failed(&self) -> bool {
            self.failed.swap(false, Ordering::Relaxed)
        }

        /// The settings the token was opened with.
        pub fn settings(&self) -> Option<&Settings> {
            Some(&self.settings)
        }

        /// Logs a pool of sessions in with the PIN file's current content, finds the key, reads
        /// its public half and self-checks ([`super::super::self_check`]): at start and reload.
        pub fn signer(&self) -> Result<(Arc<dyn Signer>, RsaPublicKey), SignError> {
            let (signer, public) = self.unchecked_signer()?;
            let verifier = Backend::Pkcs11.verifier(public.clone())?;
            super::super::self_check(signer.as_ref(), verifier.as_ref()).map_err(|e| match e {
                SignError::SelfCheck => fail(
                    Part::Key,
                    "the token's signature does not verify with the key's own public half",
                ),
                // Mechanism refused (a FIPS partition and SHA-1), key not allowed to sign, ...
                SignError::Pkcs11 { message, .. } => fail(
                    Part::Key,
                    format!("the key does not sign with CKM_SHA1_RSA_PKCS: {message}"),
                ),
                other => other,
            })?;
            Ok((signer, public))
        }

        fn unchecked_signer(&self) -> Result<(Arc<dyn Signer>, RsaPublicKey), SignError> {
            let pin = read_pin(&self.settings.pin_path)?;
            let mut sessions = Vec::with_capacity(self.sessions);
            for _ in 0..self.sessions {
                let session = self
                    .context
                    .open_ro_session(self.slot)
                    .map_err(|e| fail(Part::Token, e))?;
                // The login state is the token's, shared by every session of this process.
                match session.login(UserType::User, Some(&pin)) {
                    Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                    Err(e) => return Err(fail(Part::Pin, e)),
                }
                sessions.push(session);
            }
            let first = sessions
                .first()
                .ok_or_else(|| fail(Part::Sessions, "no sessions"))?;
            let key = find_private_key(first, &self.settings.key_label)?;
            let public = public_key(first, key)?;
            let signer = Pkcs11Signer {
                key,
                idle: Mutex::new(sessions),
                freed: Condvar::new(),
                failed: Arc::clone(&self.failed),
            };
            Ok((Arc::new(signer), public))
        }
    }

    /// The slot whose token carries `label` (PKCS#11 pads labels with spaces to 32 bytes).
    fn find_slot(context: &Pkcs11, label: &str) -> Result<Slot, SignError> {
        let slots = context
            .get_slots_with_initialized_token()
            .map_err(|e| fail(Part::Token, e))?;
        for slot in slots {
            let info = context
                .get_token_info(slot)
                .map_err(|e| fail(Part::Token, e))?;
            if info.label().trim_end() == label {
                return Ok(slot);
            }
        }
        Err(fail(Part::Token, format!("no token labelled {label:?}")))
    }

    fn read_pin(path: &std::path::Path) -> Result<AuthPin, SignError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(Part::Pin, format!("file {}: {e}", path.display())))?;
        let pin = text.trim_end_matches(['\r', '\n']);
        if pin.is_empty() {
            return Err(fail(Part::Pin, format!("file {} is empty", path.display())));
        }
        Ok(AuthPin::from(pin.to_owned()))
    }

    /// The one RSA private key labelled `label`.
    fn find_private_key(session: &Session, label: &str) -> Result<ObjectHandle, SignError> {
        let template = [
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let found = session
            .find_objects(&template)
            .map_err(|e| fail(Part::Key, e))?;
        match found.as_slice() {
            [key] => Ok(*key),
            [] => Err(fail(
                Part::Key,
                format!("no RSA private key labelled {label:?} in the token"),
            )),
            _ => Err(fail(
                Part::Key,
                format!("{} RSA private keys are labelled {label:?}", found.len()),
            )),
        }
    }

    /// The key's public half from its own public attributes.
    fn public_key(session: &Session, key: ObjectHandle) -> Result<RsaPublicKey, SignError> {
        let attributes = session
            .get_attributes(
                key,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .map_err(|e| fail(Part::Key, e))?;
        let (mut n, mut e) = (None, None);
        for attribute in attributes {
            match attribute {
                Attribute::Modulus(bytes) => n = Some(BigUint::from_bytes_be(&bytes)),
                Attribute::PublicExponent(bytes) => e = Some(BigUint::from_bytes_be(&bytes)),
                _ => {}
            }
        }
        let (Some(n), Some(e)) = (n, e) else {
            return Err(fail(
                Part::Key,
                "the private key does not show CKA_MODULUS and CKA_PUBLIC_EXPONENT",
            ));
        };
        let public = RsaPublicKey::new_with_max_size(n, e, crate::trustly::keys::MAX_KEY_BITS)
            .map_err(|e| fail(Part::Key, e))?;
        crate::trustly::keys::check_public_key(&public).map_err(|e| fail(Part::Key, e))?;
        Ok(public)
    }

    /// Signs in the token, one logged-in session per signature in flight.
    pub struct Pkcs11Signer {
        key: ObjectHandle,
        /// Sessions not signing right now; with `freed`, a counting semaphore that hands the
        /// session itself out (a PKCS#11 session runs one operation at a time).
        idle: Mutex<Vec<Session>>,
        freed: Condvar,
        failed: Arc<AtomicBool>,
    }

    impl Pkcs11Signer {
        /// Runs `work` on an idle session, waiting (on the blocking pool) for one to be returned.
        fn with_session<T>(&self, work: impl FnOnce(&Session) -> T) -> T {
            let session = {
                let mut idle = self.idle.lock();
                loop {
                    if let Some(session) = idle.pop() {
                        break session;
                    }
                    self.freed.wait(&mut idle);
                }
            };
            let result = work(&session);
            self.idle.lock().push(session);
            self.freed.notify_one();
            result
        }
    }

    impl Signer for Pkcs11Signer {
        fn sign(&self, plaintext: &[u8]) -> Result<String, SignError> {
            let signature = self
                .with_session(|session| session.sign(&Mechanism::Sha1RsaPkcs, self.key, plaintext))
                .map_err(|e| {
                    // Which codes mean "log in again" varies by token (a reset SoftHSM2 answers
                    // CKR_GENERAL_ERROR): any failure asks the reloader to try a fresh pool, at
                    // most once per reload interval; a pool that fails its self-check is refused.
                    self.failed.store(true, Ordering::Relaxed);
                    tracing::warn!(error = %e, "the PKCS#11 token did not sign");
                    fail(Part::Token, e)
                })?;
            Ok(BASE64.encode(signature))
        }

        fn backend(&self) -> Backend {
            Backend::Pkcs11
        }
    }

    impl std::fmt::Debug for Pkcs11Signer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Pkcs11Signer([in the token])")
        }
    }
}

pub use imp::Token;
