//! Key custody: reloads the merchant private key and the API password when their files change
//! (Kubernetes updates mounted Secrets in place) or on SIGHUP, without dropping calls in flight.
//! A new key is used only after it signs and verifies a test message; a bad one is refused loudly
//! and the old one kept. With a PKCS#11 token there is no key file: a changed PIN file or SIGHUP
//! logs a fresh session pool in (picking up a key replaced under the same label), self-checked
//! the same way.

use std::{path::PathBuf, sync::Arc, time::Duration};

use rsa::RsaPublicKey;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::{
    secret::Secret,
    trustly::{
        Client, keys,
        sign::{Backend, SwappableSigner, pkcs11},
    },
};

/// What to watch and what to update.
pub struct Reloader {
    pub private_key_path: Option<PathBuf>,
    /// With the pkcs11 backend: the token (its PIN file is watched instead of a key file).
    pub token: Option<Arc<pkcs11::Token>>,
    pub password_path: Option<PathBuf>,
    pub backend: Backend,
    pub signer: Arc<SwappableSigner>,
    pub client: Client,
    /// How often the files are compared with what is loaded.
    pub interval: Duration,
}

impl Reloader {
    /// Watches until `shutdown`; `hangup` (installed by the caller before serving, see
    /// `signal::hangup`) triggers an immediate check.
    pub async fn run(
        self,
        mut hangup: Option<tokio::signal::unix::Signal>,
        shutdown: CancellationToken,
    ) {
        let mut loaded_key = self
            .private_key_path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok());
        let mut loaded_password = self
            .password_path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok());
        let mut loaded_pin = self.pin_path().and_then(|p| std::fs::read(p).ok());
        loop {
            let hangup_received = tokio::select! {
                () = tokio::time::sleep(self.interval) => false,
                () = super::signal::received(&mut hangup) => {
                    info!("SIGHUP: checking the key and password files");
                    true
                }
                () = shutdown.cancelled() => return,
            };
            if let Some(token) = &self.token {
                self.check_token(token, &mut loaded_pin, hangup_received);
            }
            if let Some(path) = &self.private_key_path {
                self.check_key(path, &mut loaded_key);
            }
            if let Some(path) = &self.password_path {
                self.check_password(path, &mut loaded_password);
            }
        }
    }

    fn check_key(&self, path: &PathBuf, loaded: &mut Option<Vec<u8>>) {
        let Ok(current) = std::fs::read(path) else {
            // Mid-swap or gone: keep the loaded key.
            return warn!(path = %path.display(), "merchant key file unreadable; keeping the loaded key");
        };
        if loaded.as_deref() == Some(current.as_slice()) {
            return;
        }
        *loaded = Some(current.clone());
        match self.prepare_key(&current) {
            Ok(fingerprint) => info!(path = %path.display(), %fingerprint, "merchant key reloaded"),
            Err(problem) => {
                error!(path = %path.display(), %problem, "NEW MERCHANT KEY REFUSED; still signing with the previous key")
            }
        }
    }

    /// Validates a key file's content and swaps it in; returns the new public key's fingerprint.
    fn prepare_key(&self, pem: &[u8]) -> Result<String, String> {
        let text = std::str::from_utf8(pem).map_err(|_| "not a PEM file".to_owned())?;
        let key = keys::parse_private_key_pem(text).map_err(|e| e.to_string())?;
        let public = RsaPublicKey::from(&key);
        let signer = self.backend.signer(key).map_err(|e| e.to_string())?;
        let verifier = self
            .backend
            .verifier(public.clone())
            .map_err(|e| e.to_string())?;
        crate::trustly::sign::self_check(signer.as_ref(), verifier.as_ref())
            .map_err(|e| e.to_string())?;
        self.signer.replace(signer);
        Ok(fingerprint(&public))
    }

    fn pin_path(&self) -> Option<&PathBuf> {
        self.token
            .as_ref()
            .and_then(|t| t.settings())
            .map(|s| &s.pin_path)
    }

    /// Logs a new session pool in when the PIN file changed, on SIGHUP, or when the token dropped
    /// the current pool's sessions; [`pkcs11::Token::signer`] self-checks it before it replaces
    /// the current one (whose sessions close once idle).
    fn check_token(&self, token: &pkcs11::Token, loaded: &mut Option<Vec<u8>>, hangup: bool) {
        let current = self.pin_path().and_then(|p| std::fs::read(p).ok());
        let Some(current) = current else {
            return warn!("PKCS#11 PIN file unreadable; keeping the logged-in sessions");
        };
        let failed = token.take_failed();
        if loaded.as_deref() == Some(current.as_slice()) && !hangup && !failed {
            return;
        }
        if failed {
            warn!("the PKCS#11 token failed a signature; logging a fresh session pool in");
        }
        *loaded = Some(current);
        match token.signer() {
            Ok((signer, public)) => {
                self.signer.replace(signer);
                info!(fingerprint = %fingerprint(&public), "merchant key reloaded from the PKCS#11 token");
            }
            Err(problem) => {
                // Its own failed self-check is not a reason to try again at the next check.
                token.take_failed();
                error!(%problem, "NEW PKCS#11 SESSIONS REFUSED; still signing with the previous ones")
            }
        }
    }

    fn check_password(&self, path: &PathBuf, loaded: &mut Option<Vec<u8>>) {
        let Ok(current) = std::fs::read(path) else {
            return warn!(path = %path.display(), "password file unreadable; keeping the loaded password");
        };
        if loaded.as_deref() == Some(current.as_slice()) {
            return;
        }
        *loaded = Some(current.clone());
        let password = String::from_utf8_lossy(&current)
            .trim_end_matches(['\r', '\n'])
            .to_owned();
        if password.is_empty() {
            return error!(path = %path.display(), "NEW PASSWORD REFUSED (empty); keeping the previous one");
        }
        self.client.set_password(Secret::new(password));
        info!(path = %path.display(), "API password reloaded");
    }
}

/// A short, public identifier of a key: the first 16 hex digits of SHA-256 over its modulus.
fn fingerprint(public: &RsaPublicKey) -> String {
    use rsa::traits::PublicKeyParts;
    use sha2::{Digest, Sha256};
    Sha256::digest(public.n().to_bytes_be())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
