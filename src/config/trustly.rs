//! The Trustly section: environment and endpoint, the merchant's credentials and keys, Trustly's
//! keys, timeouts and key reloading. Keys are loaded and checked here (live never trusts a
//! publicly known test key).

use std::{path::PathBuf, sync::Arc, time::Duration};

use rsa::{RsaPrivateKey, RsaPublicKey};
use url::Url;

use super::{reader::parse_http_url, *};
use crate::trustly::{
    keys::{self, Environment},
    sign::{AnyKey, Backend, SignError, Signer, Verifier, pkcs11},
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
/// `openssl` (the `openssl` feature, on by default), `rustcrypto` (always built) or `pkcs11` (the
/// key stays in a token; the `pkcs11` feature, on by default).
pub const ENV_SIGNING_BACKEND: &str = "TRUSTLY_SIDECAR_SIGNING_BACKEND";
/// `openssl` when built in (a default feature): constant-time, blinded and the fastest; else
/// `rustcrypto`, the pure-Rust `rsa` crate.
pub const DEFAULT_SIGNING_BACKEND: Backend = if cfg!(feature = "openssl") {
    Backend::OpenSsl
} else {
    Backend::RustCrypto
};
/// With `pkcs11`: path to the token's PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
pub const ENV_PKCS11_MODULE: &str = "TRUSTLY_SIDECAR_PKCS11_MODULE";
/// With `pkcs11`: the label of the token holding the merchant key.
pub const ENV_PKCS11_TOKEN_LABEL: &str = "TRUSTLY_SIDECAR_PKCS11_TOKEN_LABEL";
/// With `pkcs11`: the label of the merchant's RSA private key in the token.
pub const ENV_PKCS11_KEY_LABEL: &str = "TRUSTLY_SIDECAR_PKCS11_KEY_LABEL";
/// With `pkcs11`: path to a file holding the token's user PIN (trailing newline ignored; re-read
/// when it changes and on SIGHUP, never logged).
pub const ENV_PKCS11_PIN_PATH: &str = "TRUSTLY_SIDECAR_PKCS11_PIN_PATH";
/// With `pkcs11`: sessions kept logged in (signatures in flight at once). Unset: the token's
/// maximum or `pkcs11::DEFAULT_SESSIONS`, whichever is smaller.
pub const ENV_PKCS11_SESSIONS: &str = "TRUSTLY_SIDECAR_PKCS11_SESSIONS";
/// Every `pkcs11` setting, refused when another backend is chosen (it would be silently ignored).
const PKCS11_SETTINGS: [&str; 5] = [
    ENV_PKCS11_MODULE,
    ENV_PKCS11_TOKEN_LABEL,
    ENV_PKCS11_KEY_LABEL,
    ENV_PKCS11_PIN_PATH,
    ENV_PKCS11_SESSIONS,
];
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
    /// The files reloaded on change (none in the sandbox; no key file with `pkcs11`).
    pub private_key_path: Option<PathBuf>,
    /// With `pkcs11`: the token the reloader logs in again when the PIN file changes or on SIGHUP.
    pub token: Option<Arc<pkcs11::Token>>,
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
        let merchant = merchant_key(r, sandbox, environment, backend);
        let (trustly_key, trustly_key_source) = trustly_key(r, environment);
        let (username, password) = credentials(r, sandbox);
        // The files the reloader watches, when given (the sandbox's are built in).
        let private_key_path = r.get(ENV_PRIVATE_KEY_PATH).map(PathBuf::from);
        let password_path = r.get(ENV_PASSWORD_PATH).map(PathBuf::from);
        let next_trustly_key = next_trustly_key(r, environment);
        if sandbox && environment == Some(Environment::Live) {
            let message = format!(
                "the sandbox runs on PUBLICLY KNOWN test keys; it cannot run with {}=live",
                settings::named(ENV_ENVIRONMENT)
            );
            r.invalid(ENV_SANDBOX, message);
        }
        let verifier = verifier(r, backend, trustly_key, next_trustly_key);
        let (environment, merchant) = (environment?, merchant?);
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
            signer: merchant.signer,
            verifier: verifier?,
            merchant_public_key: merchant.public,
            account_hash_secret: Secret::new(merchant.account_hash_secret),
            private_key_source: merchant.source,
            trustly_key_source,
            private_key_path,
            token: merchant.token,
            password_path,
            reload_interval: reload_interval?,
            connect_timeout: connect_timeout?,
            timeout: timeout?,
        })
    }
}

/// The verifier of Trustly's signatures: the current key, and the next one during a rotation, on
/// the signing backend's [`Backend::verifying`] backend.
fn verifier(
    r: &mut Reader<'_>,
    backend: Option<Backend>,
    current: Option<RsaPublicKey>,
    next: Option<RsaPublicKey>,
) -> Option<Arc<dyn Verifier>> {
    let (backend, current) = (backend?.verifying(), current?);
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

/// The merchant key, wherever it is kept.
struct MerchantKey {
    signer: Arc<dyn Signer>,
    public: RsaPublicKey,
    account_hash_secret: [u8; 32],
    /// Where it came from, for the startup log.
    source: String,
    token: Option<Arc<pkcs11::Token>>,
}

/// The merchant key: from its file (or the sandbox's) for a software backend, from the token for
/// `pkcs11`. An invalid backend still reads the key file, to report its problems too.
fn merchant_key(
    r: &mut Reader<'_>,
    sandbox: bool,
    environment: Option<Environment>,
    backend: Option<Backend>,
) -> Option<MerchantKey> {
    if backend == Some(Backend::Pkcs11) {
        return token_key(r, sandbox, environment);
    }
    for var in PKCS11_SETTINGS {
        // (Not after an invalid backend: that may be a misspelt `pkcs11`.)
        if backend.is_some() && r.get(var).is_some() {
            r.invalid(
                var,
                format!(
                    "is only read with {}=pkcs11",
                    settings::named(ENV_SIGNING_BACKEND)
                ),
            );
        }
    }
    let (key, source) = private_key(r, sandbox, environment);
    let (backend, key) = (backend?, key?);
    let public = RsaPublicKey::from(&key);
    let account_hash_secret = derive_account_hash_secret(&key);
    let signer = backend
        .signer(key)
        .map_err(|e| r.invalid(ENV_SIGNING_BACKEND, e.to_string()))
        .ok()?;
    Some(MerchantKey {
        signer,
        public,
        account_hash_secret,
        source,
        token: None,
    })
}

/// The merchant key in a PKCS#11 token: opened, logged in and self-checked here, so a wrong PIN or
/// label stops the start (exit 64) naming its setting.
fn token_key(
    r: &mut Reader<'_>,
    sandbox: bool,
    environment: Option<Environment>,
) -> Option<MerchantKey> {
    if r.get(ENV_PRIVATE_KEY_PATH).is_some() {
        let message = "must be unset with the pkcs11 signing backend: the key stays in the token";
        r.invalid(ENV_PRIVATE_KEY_PATH, message.to_owned());
    }
    if sandbox {
        let message =
            "pkcs11 is for a real merchant key; the sandbox signs with its built-in test key";
        r.invalid(ENV_SIGNING_BACKEND, message.to_owned());
    }
    let settings = pkcs11_settings(r)?;
    let source = format!(
        "pkcs11 token {:?}, key {:?} ({})",
        settings.token_label,
        settings.key_label,
        settings.module.display()
    );
    let token = pkcs11::Token::open(settings)
        .map_err(|e| token_problem(r, e))
        .ok()?;
    let (signer, public) = token.signer().map_err(|e| token_problem(r, e)).ok()?;
    refuse_test_key_in_live(r, environment, ENV_PKCS11_KEY_LABEL, &public);
    let account_hash_secret = derive_token_hash_secret(signer.as_ref())
        .map_err(|e| token_problem(r, e))
        .ok()?;
    Some(MerchantKey {
        signer,
        public,
        account_hash_secret,
        source,
        token: Some(Arc::new(token)),
    })
}

/// The `pkcs11` settings; every missing one is recorded.
fn pkcs11_settings(r: &mut Reader<'_>) -> Option<pkcs11::Settings> {
    let mut required = |var| {
        let value = r.get(var);
        if value.is_none() {
            r.missing(var);
        }
        value
    };
    let module = required(ENV_PKCS11_MODULE);
    let token_label = required(ENV_PKCS11_TOKEN_LABEL);
    let key_label = required(ENV_PKCS11_KEY_LABEL);
    let pin_path = required(ENV_PKCS11_PIN_PATH);
    let sessions = r.value(ENV_PKCS11_SESSIONS, None, |v| parse_sessions(v).map(Some));
    Some(pkcs11::Settings {
        module: module?.into(),
        token_label: token_label?,
        key_label: key_label?,
        pin_path: pin_path?.into(),
        sessions: sessions?,
    })
}

/// A session count: 1 to [`pkcs11::MAX_SESSIONS`].
fn parse_sessions(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=pkcs11::MAX_SESSIONS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a session count from 1 to {}",
            pkcs11::MAX_SESSIONS
        )),
    }
}

/// Records a token failure against the setting it is about.
fn token_problem(r: &mut Reader<'_>, error: SignError) {
    let var = match &error {
        SignError::Pkcs11 { part, .. } => match part {
            pkcs11::Part::Module => ENV_PKCS11_MODULE,
            pkcs11::Part::Token => ENV_PKCS11_TOKEN_LABEL,
            pkcs11::Part::Pin => ENV_PKCS11_PIN_PATH,
            pkcs11::Part::Key => ENV_PKCS11_KEY_LABEL,
            pkcs11::Part::Sessions => ENV_PKCS11_SESSIONS,
        },
        _ => ENV_SIGNING_BACKEND,
    };
    r.invalid(var, error.to_string());
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

/// The account cache's secret with a key in a token: SHA-256 over a fixed label and the token's
/// signature of it. RSA PKCS#1 v1.5 is deterministic, so every replica derives the same secret,
/// and only the key's holder can. (It differs from a file key's secret: switching a deployment
/// between the two starts the AccountID cache afresh.)
fn derive_token_hash_secret(signer: &dyn Signer) -> Result<[u8; 32], SignError> {
    use sha2::{Digest, Sha256};
    const LABEL: &[u8] = b"trustly-sidecar account cache key v1 (pkcs11)";
    let signature = signer.sign(LABEL)?;
    let mut hasher = Sha256::new();
    hasher.update(LABEL);
    hasher.update([0]);
    hasher.update(signature.as_bytes());
    Ok(hasher.finalize().into())
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
