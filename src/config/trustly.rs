//! The Trustly section: environment and endpoint, the merchant's credentials and keys, Trustly's
//! keys, timeouts and key reloading. Keys are loaded and checked here (live never trusts a
//! publicly known test key).

use std::{path::PathBuf, sync::Arc, time::Duration};

use rsa::{RsaPrivateKey, RsaPublicKey};
use url::Url;

use super::{reader::parse_http_url, *};
use crate::trustly::{
    keys::{self, Environment},
    sign::{AnyKey, Backend, Signer, Verifier},
};

/// `test` or `live`: picks Trustly's endpoint and public key. Unset: `test`, so a half-configured
/// sidecar can never move real money.
pub const ENV_ENVIRONMENT: &str = "TRUSTLY_SIDECAR_ENVIRONMENT";
pub const DEFAULT_ENVIRONMENT: Environment = Environment::Test;
/// Overrides Trustly's endpoint URL (the simulator, a proxy). Unset: the environment's endpoint.
pub const ENV_TRUSTLY_URL: &str = "TRUSTLY_SIDECAR_TRUSTLY_URL";
/// Path to a PEM file overriding Trustly's built-in public key. Unset: the built-in key.
pub const ENV_TRUSTLY_PUBLIC_KEY_PATH: &str = "TRUSTLY_SIDECAR_TRUSTLY_PUBLIC_KEY_PATH";
/// Path to a PEM file with Trustly's *next* public key, accepted beside the current one while
/// Trustly rotates its key. Unset: only the current key.
pub const ENV_TRUSTLY_NEXT_PUBLIC_KEY_PATH: &str = "TRUSTLY_SIDECAR_TRUSTLY_NEXT_PUBLIC_KEY_PATH";
/// How often the key and password files are compared with what is loaded, e.g. `10s` (SIGHUP
/// checks at once). Kubernetes refreshes mounted Secrets within about a minute; 10 s adds little.
pub const ENV_RELOAD_INTERVAL: &str = "TRUSTLY_SIDECAR_RELOAD_INTERVAL";
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// Path to the merchant private key (PEM, PKCS#1 or PKCS#8). Required unless sandbox.
pub const ENV_PRIVATE_KEY_PATH: &str = "TRUSTLY_SIDECAR_PRIVATE_KEY_PATH";
/// Trustly API username. Required unless sandbox.
pub const ENV_USERNAME: &str = "TRUSTLY_SIDECAR_USERNAME";
/// Path to a file holding the Trustly API password (trailing newline ignored). Required unless
/// sandbox. A path, not a value, so the password comes from a mounted Secret.
pub const ENV_PASSWORD_PATH: &str = "TRUSTLY_SIDECAR_PASSWORD_PATH";
/// `rustcrypto` or `openssl` (if built with the `openssl` feature).
pub const ENV_SIGNING_BACKEND: &str = "TRUSTLY_SIDECAR_SIGNING_BACKEND";
pub const DEFAULT_SIGNING_BACKEND: Backend = Backend::RustCrypto;
/// Connect timeout towards Trustly, e.g. `5s`. Unset: 5 s (Trustly's PHP client's value).
pub const ENV_TRUSTLY_CONNECT_TIMEOUT: &str = "TRUSTLY_SIDECAR_TRUSTLY_CONNECT_TIMEOUT";
/// Total time for one Trustly call, e.g. `30s`. Unset: 30 s (Trustly's PHP client's value).
pub const ENV_TRUSTLY_TIMEOUT: &str = "TRUSTLY_SIDECAR_TRUSTLY_TIMEOUT";

/// Everything about talking to Trustly.
#[derive(Clone)]
pub struct Trustly {
    pub environment: Environment,
    /// The configured URL, or the environment's endpoint.
    pub url: Url,
    pub username: String,
    pub password: Secret<String>,
    pub signer: Arc<dyn Signer>,
    /// Verifies Trustly's answers and notifications (the next key too, during a rotation).
    pub verifier: Arc<dyn Verifier>,
    /// The public half of the merchant key (the sandbox hands it to its simulator).
    pub merchant_public_key: RsaPublicKey,
    /// Keys the hash of bank details in the account cache; derived from the merchant key, so every
    /// replica agrees and nothing extra needs mounting.
    pub account_hash_secret: Secret<[u8; 32]>,
    /// Where the merchant key came from, for the startup log (never the key itself).
    pub private_key_source: String,
    pub trustly_key_source: String,
    /// The files reloaded on change (none in the sandbox).
    pub private_key_path: Option<PathBuf>,
    pub password_path: Option<PathBuf>,
    pub reload_interval: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl std::fmt::Debug for Trustly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trustly")
            .field("environment", &self.environment)
            .field("url", &self.url.as_str())
            .field("username", &self.username)
            .field("password", &self.password)
            .field("signing_backend", &self.signer.backend().to_string())
            .field("private_key", &self.private_key_source)
            .field("trustly_public_key", &self.trustly_key_source)
            .field("reload_interval", &self.reload_interval)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Trustly {
    /// Reads the section; an invalid setting leaves the rest read, so every problem is recorded.
    pub(super) fn read(r: &mut Reader<'_>, sandbox: bool) -> Option<Self> {
        let environment = r.value(ENV_ENVIRONMENT, DEFAULT_ENVIRONMENT, |v| v.parse());
        let backend = r.value(ENV_SIGNING_BACKEND, DEFAULT_SIGNING_BACKEND, |v| v.parse());
        let url = r.optional(ENV_TRUSTLY_URL, parse_http_url);
        let connect_timeout = r.duration(
            ENV_TRUSTLY_CONNECT_TIMEOUT,
            crate::trustly::client::DEFAULT_CONNECT_TIMEOUT,
        );
        let timeout = r.duration(
            ENV_TRUSTLY_TIMEOUT,
            crate::trustly::client::DEFAULT_REQUEST_TIMEOUT,
        );
        let reload_interval = r.duration(ENV_RELOAD_INTERVAL, DEFAULT_RELOAD_INTERVAL);
        let (private_key, private_key_source) = private_key(r, sandbox, environment);
        let (trustly_key, trustly_key_source) = trustly_key(r, environment);
        let (username, password) = credentials(r, sandbox);
        // The files the reloader watches, when given (the sandbox's are built in).
        let private_key_path = r.get(ENV_PRIVATE_KEY_PATH).map(PathBuf::from);
        let password_path = r.get(ENV_PASSWORD_PATH).map(PathBuf::from);
        let merchant_public_key = private_key.as_ref().map(RsaPublicKey::from);
        let account_hash_secret = private_key.as_ref().map(derive_account_hash_secret);
        let signer = match (backend, private_key) {
            (Some(backend), Some(key)) => backend
                .signer(key)
                .map_err(|e| r.invalid(ENV_SIGNING_BACKEND, e.to_string()))
                .ok(),
            _ => None,
        };
        let next_trustly_key = next_trustly_key(r, environment);
        if sandbox && environment == Some(Environment::Live) {
            let message = format!(
                "the sandbox runs on PUBLICLY KNOWN test keys; it cannot run with {}=live",
                settings::named(ENV_ENVIRONMENT)
            );
            r.invalid(ENV_SANDBOX, message);
        }
        let verifier = verifier(r, backend, trustly_key, next_trustly_key);
        let environment = environment?;
        let url = match url {
            Some(url) => url,
            None => Url::parse(environment.endpoint())
                .map_err(|_| r.missing(ENV_TRUSTLY_URL))
                .ok()?,
        };
        Some(Self {
            environment,
            url,
            username,
            password: Secret::new(password),
            signer: signer?,
            verifier: verifier?,
            merchant_public_key: merchant_public_key?,
            account_hash_secret: Secret::new(account_hash_secret?),
            private_key_source,
            trustly_key_source,
            private_key_path,
            password_path,
            reload_interval: reload_interval?,
            connect_timeout: connect_timeout?,
            timeout: timeout?,
        })
    }
}

/// The verifier of Trustly's signatures: the current key, and the next one during a rotation.
fn verifier(
    r: &mut Reader<'_>,
    backend: Option<Backend>,
    current: Option<RsaPublicKey>,
    next: Option<RsaPublicKey>,
) -> Option<Arc<dyn Verifier>> {
    let (backend, current) = (backend?, current?);
    backend
        .verifier(current)
        .and_then(|current| match next {
            Some(next) => {
                Ok(Arc::new(AnyKey(vec![current, backend.verifier(next)?])) as Arc<dyn Verifier>)
            }
            None => Ok(current),
        })
        .map_err(|e| r.invalid(ENV_SIGNING_BACKEND, e.to_string()))
        .ok()
}

/// The merchant's private key and where it came from (the sandbox's is built in).
fn private_key(
    r: &mut Reader<'_>,
    sandbox: bool,
    environment: Option<Environment>,
) -> (Option<RsaPrivateKey>, String) {
    let Some(path) = r.get(ENV_PRIVATE_KEY_PATH) else {
        if sandbox {
            return (
                Some(crate::trustly::keys::published::merchant_private_key()),
                SANDBOX_KEY_SOURCE.to_owned(),
            );
        }
        r.missing(ENV_PRIVATE_KEY_PATH);
        return (None, String::new());
    };
    let path = PathBuf::from(path);
    match keys::load_private_key(&path) {
        Ok(key) => {
            let public = RsaPublicKey::from(&key);
            refuse_test_key_in_live(r, environment, ENV_PRIVATE_KEY_PATH, &public);
            (Some(key), path.display().to_string())
        }
        Err(source) => {
            r.problems.push(Problem::Key {
                var: ENV_PRIVATE_KEY_PATH,
                source,
            });
            (None, String::new())
        }
    }
}

/// Trustly's public key (the environment's built-in one unless a file is given).
fn trustly_key(
    r: &mut Reader<'_>,
    environment: Option<Environment>,
) -> (Option<RsaPublicKey>, String) {
    match (r.get(ENV_TRUSTLY_PUBLIC_KEY_PATH), environment) {
        (Some(path), _) => {
            let path = PathBuf::from(path);
            match keys::load_trustly_public_key(&path, environment) {
                Ok(key) => {
                    refuse_test_key_in_live(r, environment, ENV_TRUSTLY_PUBLIC_KEY_PATH, &key);
                    let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
                    (Some(key), format!("{} ({bits}-bit)", path.display()))
                }
                Err(source) => {
                    r.problems.push(Problem::Key {
                        var: ENV_TRUSTLY_PUBLIC_KEY_PATH,
                        source,
                    });
                    (None, String::new())
                }
            }
        }
        (None, Some(env)) => (Some(env.trustly_public_key()), format!("built-in {env}")),
        (None, None) => (None, String::new()),
    }
}

/// Trustly's next public key, trusted alongside the current one during a rotation.
fn next_trustly_key(r: &mut Reader<'_>, environment: Option<Environment>) -> Option<RsaPublicKey> {
    let path = r.get(ENV_TRUSTLY_NEXT_PUBLIC_KEY_PATH)?;
    let key = keys::load_trustly_public_key(std::path::Path::new(&path), environment)
        .map_err(|source| {
            r.problems.push(Problem::Key {
                var: ENV_TRUSTLY_NEXT_PUBLIC_KEY_PATH,
                source,
            })
        })
        .ok()?;
    refuse_test_key_in_live(r, environment, ENV_TRUSTLY_NEXT_PUBLIC_KEY_PATH, &key);
    Some(key)
}

/// The API username and password (the sandbox's are fixed).
fn credentials(r: &mut Reader<'_>, sandbox: bool) -> (String, String) {
    let username = match r.get(ENV_USERNAME) {
        Some(user) => user,
        None if sandbox => SANDBOX_USERNAME.to_owned(),
        None => {
            r.missing(ENV_USERNAME);
            String::new()
        }
    };
    let password = match r.get(ENV_PASSWORD_PATH) {
        Some(path) => r
            .file(ENV_PASSWORD_PATH, &path, std::fs::read_to_string(&path))
            .map(|text| text.trim_end_matches(['\r', '\n']).to_owned())
            .unwrap_or_default(),
        None if sandbox => SANDBOX_PASSWORD.to_owned(),
        None => {
            r.missing(ENV_PASSWORD_PATH);
            String::new()
        }
    };
    (username, password)
}

/// A 32-byte secret for the account cache's keyed hashes: SHA-256 over a fixed label and the
/// merchant key. Secret (it needs the private key) and identical on every replica.
fn derive_account_hash_secret(key: &RsaPrivateKey) -> [u8; 32] {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(b"trustly-sidecar account cache key v1\0");
    if let Ok(der) = key.to_pkcs1_der() {
        hasher.update(der.as_bytes());
    }
    hasher.finalize().into()
}

/// Live never trusts a publicly known test key (its private half is public): records a problem
/// naming the variable and the key.
fn refuse_test_key_in_live(
    r: &mut Reader<'_>,
    environment: Option<Environment>,
    var: &'static str,
    key: &RsaPublicKey,
) {
    if environment == Some(Environment::Live)
        && let Some(name) = crate::trustly::keys::published::publicly_known(key)
    {
        r.invalid(
            var,
            format!(
                "is the PUBLICLY KNOWN test key {name}; environment live never trusts a test key"
            ),
        );
    }
}
