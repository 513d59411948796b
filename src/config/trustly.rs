//! The Trustly section: environment and endpoint, the merchant's credentials and keys, Trustly's
//! keys, timeouts, key reloading and balance polling. Keys are loaded and checked here (live
//! never trusts a publicly known test key).

use std::{path::PathBuf, sync::Arc, time::Duration};

use rsa::{RsaPrivateKey, RsaPublicKey};
use url::Url;

use super::{reader::parse_http_url, *};
use crate::trustly::sign::AnyKey;

/// Everything about talking to Trustly.
pub struct Trustly {
    pub environment: Environment,
    /// Set only when the URL is configured; otherwise the environment's endpoint.
    pub url: Option<Url>,
    pub username: String,
    pub password: Secret<String>,
    pub signer: Arc<dyn Signer>,
    pub verifier: Arc<dyn Verifier>,
    pub merchant_public_key: RsaPublicKey,
    pub account_hash_secret: [u8; 32],
    pub private_key_source: String,
    pub trustly_key_source: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub reload_interval: Duration,
    pub balance_interval: Option<Duration>,
    pub poll_window: Duration,
    pub low_balance: Vec<(Currency, Amount)>,
}

pub fn trustly(r: &mut Reader<'_>, sandbox: bool) -> Option<Trustly> {
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
    let (balance_interval, poll_window, low_balance) = polling(r);
    let (private_key, private_key_source) = private_key(r, sandbox, environment);
    let (trustly_key, trustly_key_source) = trustly_key(r, environment);
    let (username, password) = credentials(r, sandbox);
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
    let verifier =
        match (backend, trustly_key) {
            (Some(backend), Some(key)) => backend
                .verifier(key)
                .and_then(|current| match next_trustly_key {
                    Some(next) => Ok(Arc::new(AnyKey(vec![current, backend.verifier(next)?]))
                        as Arc<dyn Verifier>),
                    None => Ok(current),
                })
                .map_err(|e| r.invalid(ENV_SIGNING_BACKEND, e.to_string()))
                .ok(),
            _ => None,
        };
    Some(Trustly {
        environment: environment?,
        url,
        username,
        password: Secret::new(password),
        signer: signer?,
        verifier: verifier?,
        merchant_public_key: merchant_public_key?,
        account_hash_secret: account_hash_secret?,
        private_key_source,
        trustly_key_source,
        connect_timeout: connect_timeout?,
        timeout: timeout?,
        reload_interval: reload_interval?,
        balance_interval,
        poll_window,
        low_balance,
    })
}

/// The balance poll interval, the poll window and the low-balance thresholds.
fn polling(r: &mut Reader<'_>) -> (Option<Duration>, Duration, Vec<(Currency, Amount)>) {
    let balance_interval = r.optional(ENV_BALANCE_INTERVAL, |v| {
        parse_duration(v).and_then(|interval| {
            if interval >= MIN_BALANCE_INTERVAL {
                Ok(interval)
            } else {
                Err(format!(
                    "{v:?} is shorter than Trustly's limit of one Balance call per 15 minutes"
                ))
            }
        })
    });
    // `0s` is allowed here (no limit), unlike the other durations.
    let poll_window = match r.get(ENV_POLL_WINDOW).as_deref() {
        None => DEFAULT_POLL_WINDOW,
        Some("0" | "0s") => Duration::ZERO,
        Some(v) => r
            .parsed(ENV_POLL_WINDOW, parse_duration(v))
            .unwrap_or(DEFAULT_POLL_WINDOW),
    };
    let low_balance = r
        .optional(ENV_LOW_BALANCE, parse_thresholds)
        .unwrap_or_default();
    (balance_interval, poll_window, low_balance)
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

/// `EUR=5000.00,SEK=50000`: one decimal threshold per ISO 4217 currency.
fn parse_thresholds(text: &str) -> Result<Vec<(Currency, Amount)>, String> {
    text.split(',')
        .map(|pair| {
            let (currency, amount) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not CURRENCY=AMOUNT"))?;
            let currency = currency
                .trim()
                .parse::<Currency>()
                .map_err(|e| format!("{pair:?}: {e}"))?;
            let amount = amount
                .trim()
                .parse::<Amount>()
                .map_err(|e| format!("{pair:?}: {e}"))?;
            Ok((currency, amount))
        })
        .collect()
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
