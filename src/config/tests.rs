//! Unit tests of the configuration reader.

use super::*;
use crate::trustly::{
    keys::{self, Environment},
    sign::Backend,
};
use rsa::{RsaPrivateKey, RsaPublicKey};
use std::{collections::HashMap, time::Duration};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");

fn config(vars: &[(&str, String)]) -> Result<Config, Error> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    Config::from_lookup(|var| vars.get(var).cloned())
}

/// A sandbox configuration with `vars` added.
fn sandbox(vars: &[(&str, &str)]) -> Result<Config, Error> {
    let mut all = vec![(ENV_SANDBOX, "1".to_owned())];
    all.extend(vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
    config(&all)
}

/// The message of a configuration that must be refused.
fn refused<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    result.expect_err("refused").to_string()
}

/// Asserts that `text` names every one of `needles`.
fn assert_names(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

fn password_file() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), "s3cret\n").expect("write");
    file
}

/// A freshly generated merchant key in a PEM file: live refuses the published test keys.
fn fresh_key_file() -> tempfile::NamedTempFile {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, keys::MIN_KEY_BITS).expect("keygen");
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("encodes");
    std::fs::write(file.path(), pem.as_bytes()).expect("write");
    file
}

#[test]
fn full_config_loads_keys_and_password() {
    let password = password_file();
    let key = fresh_key_file();
    let config = config(&[
        (ENV_PRIVATE_KEY_PATH, key.path().display().to_string()),
        (ENV_USERNAME, "merchant".into()),
        (ENV_PASSWORD_PATH, password.path().display().to_string()),
        (ENV_ENVIRONMENT, "live".into()),
        (
            ENV_NOTIFICATION_URL,
            "https://merchant.example/trustly/n".into(),
        ),
        (ENV_TRUSTLY_TIMEOUT, "45s".into()),
    ])
    .expect("valid config");
    assert_eq!(config.trustly.timeout, Duration::from_secs(45));
    assert_eq!(config.grpc.listen.to_string(), DEFAULT_GRPC_LISTEN);
    assert_eq!(config.trustly.environment, Environment::Live);
    assert_eq!(config.trustly.url.as_str(), "https://api.trustly.com/1");
    assert_eq!(config.trustly.password.expose(), "s3cret");
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = refused(config(&[
        (ENV_PRIVATE_KEY_PATH, "/nonexistent/key.pem".into()),
        (ENV_ENVIRONMENT, "prod".into()),
        (ENV_TRUSTLY_URL, "ftp://x".into()),
    ]));
    assert_names(
        &text,
        &[
            ENV_PRIVATE_KEY_PATH,
            "/nonexistent/key.pem",
            "does not exist",
            ENV_ENVIRONMENT,
            ENV_TRUSTLY_URL,
            ENV_USERNAME,
            ENV_PASSWORD_PATH,
        ],
    );
}

#[test]
fn key_problems_name_the_file() {
    for (file, expected) in [
        ("merchant-test-private-encrypted.pem", "encrypted"),
        ("merchant-test-private-encrypted-pkcs1.pem", "encrypted"),
        ("weak-1024-private.pem", "1024-bit"),
        ("merchant-test-public.pem", "not a PEM RSA private key"),
        ("README.md", "not a PEM"),
    ] {
        let password = password_file();
        let text = refused(config(&[
            (ENV_PRIVATE_KEY_PATH, format!("{FIXTURES}/{file}")),
            (ENV_USERNAME, "merchant".into()),
            (ENV_PASSWORD_PATH, password.path().display().to_string()),
        ]));
        assert!(
            text.contains(file) && text.contains(expected),
            "{file}: {text}"
        );
    }
}

#[test]
fn a_public_grpc_address_needs_a_token_and_urls_are_checked() {
    let text = refused(sandbox(&[
        (ENV_GRPC_LISTEN, "0.0.0.0:50051"),
        (ENV_NOTIFICATION_URL, "http://merchant.example/n?x=1"),
        (ENV_TRUSTLY_TIMEOUT, "soon"),
    ]));
    assert_names(
        &text,
        &[
            ENV_GRPC_LISTEN,
            ENV_GRPC_TOKEN_PATH,
            ENV_NOTIFICATION_URL,
            ENV_TRUSTLY_TIMEOUT,
        ],
    );
    let token = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(token.path(), "t0ken\n").expect("write");
    let token_path = token.path().display().to_string();
    let config = sandbox(&[
        (ENV_GRPC_LISTEN, "0.0.0.0:50051"),
        (ENV_GRPC_TOKEN_PATH, &token_path),
    ])
    .expect("token makes a public address acceptable");
    assert_eq!(
        config.grpc.token.as_ref().map(|t| t.expose().as_str()),
        Some("t0ken")
    );
}

#[test]
fn a_malformed_redis_url_is_a_configuration_error_without_its_password() {
    for bad in [
        "redis://app:hunter2@127.0.0.1:99999",
        "redis://app:hunter2@127.0.0.1/not-a-db",
        "redis://127.0.0.1:6379,redis://app:hunter2@:6380",
    ] {
        let cluster = if bad.contains(',') { "true" } else { "false" };
        let text = refused(sandbox(&[
            (ENV_REDIS_URL, bad),
            (ENV_REDIS_CLUSTER, cluster),
        ]));
        assert_names(&text, &[ENV_REDIS_URL, "not a valid Redis URL"]);
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
    for bad in ["", "10", "s", "0s", "1.5s", "-1s", "10y"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_poll_window_defaults_to_trustlys_limit_and_can_be_turned_off() {
    let window = |value: Option<&str>| {
        let vars: Vec<_> = value.map(|v| (ENV_POLL_WINDOW, v)).into_iter().collect();
        sandbox(&vars).map(|c| c.payments.poll_window)
    };
    assert_eq!(window(None).expect("valid"), Duration::from_secs(15 * 60));
    assert_eq!(window(Some("0s")).expect("valid"), Duration::ZERO);
    assert_eq!(
        window(Some("30m")).expect("valid"),
        Duration::from_secs(1800)
    );
    assert_names(&refused(window(Some("soon"))), &[ENV_POLL_WINDOW]);
}

#[test]
fn the_balance_poll_respects_trustlys_limit_and_thresholds_are_exact() {
    let text = refused(sandbox(&[
        (ENV_BALANCE_INTERVAL, "5m"),
        (ENV_LOW_BALANCE, "EUR=100.001,sek=5,SEK"),
    ]));
    assert_names(
        &text,
        &[
            "(TRUSTLY_SIDECAR_BALANCE_INTERVAL): \"5m\" is shorter than Trustly's limit",
            "(TRUSTLY_SIDECAR_LOW_BALANCE): \"EUR=100.001\": amount must have at most 2 decimals",
        ],
    );
    let config = sandbox(&[
        (ENV_BALANCE_INTERVAL, "15m"),
        (ENV_LOW_BALANCE, "EUR=5000.00, SEK=250"),
    ])
    .expect("valid");
    assert_eq!(config.payments.balance_interval, Some(MIN_BALANCE_INTERVAL));
    let thresholds: Vec<String> = config
        .payments
        .low_balance
        .iter()
        .map(|(currency, amount)| format!("{currency}={amount}"))
        .collect();
    assert_eq!(thresholds, ["EUR=5000.00", "SEK=250.00"]);
}

#[test]
fn sandbox_needs_no_secrets() {
    let config = sandbox(&[]).expect("sandbox config");
    assert!(config.sandbox.enabled);
    assert_eq!(config.trustly.username, SANDBOX_USERNAME);
    assert_eq!(config.trustly.private_key_source, SANDBOX_KEY_SOURCE);
    // The same publicly known merchant key as trustly-sim and trustly-notify expect.
    assert_eq!(
        config.trustly.merchant_public_key,
        RsaPublicKey::from(&crate::trustly::keys::published::merchant_private_key())
    );
    assert_eq!(
        config.sandbox.simulator_listen.to_string(),
        DEFAULT_SANDBOX_SIMULATOR_LISTEN
    );
}

#[test]
fn the_sandbox_simulator_address_is_a_setting() {
    let moved = sandbox(&[(ENV_SANDBOX_SIMULATOR_LISTEN, "127.0.0.1:0")]).expect("valid");
    assert_eq!(moved.sandbox.simulator_listen.to_string(), "127.0.0.1:0");
    let text = refused(sandbox(&[(ENV_SANDBOX_SIMULATOR_LISTEN, "localhost")]));
    assert_names(
        &text,
        &["(TRUSTLY_SIDECAR_SANDBOX_SIMULATOR_LISTEN): not a socket address"],
    );
}

#[test]
fn live_never_trusts_a_publicly_known_test_key() {
    let password = password_file();
    let fresh = fresh_key_file();
    let live = |extra: &[(&str, String)]| {
        let mut vars = vec![
            (ENV_USERNAME, "merchant".to_owned()),
            (ENV_PASSWORD_PATH, password.path().display().to_string()),
            (ENV_ENVIRONMENT, "live".to_owned()),
            (
                ENV_NOTIFICATION_URL,
                "https://merchant.example/trustly/n".to_owned(),
            ),
        ];
        vars.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        config(&vars)
    };
    let fresh_path = fresh.path().display().to_string();
    for (var, file) in [
        (ENV_PRIVATE_KEY_PATH, "merchant-test-private.pem"),
        (ENV_PRIVATE_KEY_PATH, "merchant-test-private-pkcs8.pem"),
        (ENV_PRIVATE_KEY_PATH, "python-client-test-private-1.pem"),
        (
            ENV_TRUSTLY_PUBLIC_KEY_PATH,
            "python-client-test-public-1.pem",
        ),
        (ENV_TRUSTLY_PUBLIC_KEY_PATH, "merchant-test-public.pem"),
        (ENV_TRUSTLY_PUBLIC_KEY_PATH, "trustly-test-public.pem"),
        (
            ENV_TRUSTLY_NEXT_PUBLIC_KEY_PATH,
            "python-client-test-public-1.pem",
        ),
    ] {
        let mut vars = vec![(var, format!("{FIXTURES}/{file}"))];
        if var != ENV_PRIVATE_KEY_PATH {
            vars.push((ENV_PRIVATE_KEY_PATH, fresh_path.clone()));
        }
        let text = refused(live(&vars));
        assert!(
            text.contains(&format!("({var}): is the PUBLICLY KNOWN test key")),
            "{var}={file}: {text}"
        );
        assert_eq!(text.matches("PUBLICLY KNOWN").count(), 1, "{text}");
        // The same keys are fine in the test environment.
        vars.push((ENV_ENVIRONMENT, "test".to_owned()));
        assert!(live(&vars).is_ok(), "{var}={file} in test");
    }
    assert!(live(&[(ENV_PRIVATE_KEY_PATH, fresh_path)]).is_ok());
    let text = refused(sandbox(&[(ENV_ENVIRONMENT, "live")]));
    assert_names(
        &text,
        &["(TRUSTLY_SIDECAR_SANDBOX): the sandbox runs on PUBLICLY KNOWN test keys"],
    );
}

#[test]
fn pkcs11_needs_its_four_settings_and_no_key_file() {
    let password = password_file();
    let key = fresh_key_file();
    let text = refused(config(&[
        (ENV_SIGNING_BACKEND, "pkcs11".into()),
        (ENV_PRIVATE_KEY_PATH, key.path().display().to_string()),
        (ENV_USERNAME, "merchant".into()),
        (ENV_PASSWORD_PATH, password.path().display().to_string()),
        (ENV_NOTIFICATION_URL, "https://merchant.example/n".into()),
        (ENV_PKCS11_SESSIONS, "0".into()),
    ]));
    assert_names(
        &text,
        &[
            "--private-key-path (TRUSTLY_SIDECAR_PRIVATE_KEY_PATH): must be unset with the pkcs11",
            "--pkcs11-module (TRUSTLY_SIDECAR_PKCS11_MODULE) is required",
            "--pkcs11-token-label (TRUSTLY_SIDECAR_PKCS11_TOKEN_LABEL) is required",
            "--pkcs11-key-label (TRUSTLY_SIDECAR_PKCS11_KEY_LABEL) is required",
            "--pkcs11-pin-path (TRUSTLY_SIDECAR_PKCS11_PIN_PATH) is required",
            "--pkcs11-sessions (TRUSTLY_SIDECAR_PKCS11_SESSIONS): \"0\" is not a session count from 1 to 64",
        ],
    );
}

#[test]
fn pkcs11_settings_with_another_backend_are_refused_not_ignored() {
    let text = refused(sandbox(&[
        (ENV_PKCS11_KEY_LABEL, "merchant"),
        (ENV_PKCS11_SESSIONS, "4"),
    ]));
    assert_names(
        &text,
        &[
            "--pkcs11-key-label (TRUSTLY_SIDECAR_PKCS11_KEY_LABEL): is only read with --signing-backend",
            "--pkcs11-sessions (TRUSTLY_SIDECAR_PKCS11_SESSIONS): is only read with",
        ],
    );
    let text = refused(sandbox(&[(ENV_SIGNING_BACKEND, "pkcs11")]));
    assert_names(&text, &["the sandbox signs with its built-in test key"]);
}

#[test]
fn a_missing_pkcs11_module_is_named() {
    let text = refused(config(&[
        (ENV_SIGNING_BACKEND, "pkcs11".into()),
        (ENV_PKCS11_MODULE, "/nonexistent/libpkcs11.so".into()),
        (ENV_PKCS11_TOKEN_LABEL, "T".into()),
        (ENV_PKCS11_KEY_LABEL, "K".into()),
        (ENV_PKCS11_PIN_PATH, "/nonexistent/pin".into()),
    ]));
    let expected = if cfg!(feature = "pkcs11") {
        "--pkcs11-module (TRUSTLY_SIDECAR_PKCS11_MODULE): pkcs11: libloading error"
    } else {
        "the pkcs11 signing backend is not built into this binary (cargo feature `pkcs11`)"
    };
    assert_names(&text, &[expected]);
}

#[test]
fn tls_needs_a_cert_and_a_key_and_refuses_files_that_are_not_pem() {
    let text = refused(sandbox(&[(ENV_GRPC_TLS_CERT_PATH, "/nonexistent/tls.crt")]));
    assert_names(&text, &[ENV_GRPC_TLS_CERT_PATH, ENV_GRPC_TLS_KEY_PATH]);
    let text = refused(sandbox(&[(ENV_INTAKE_TLS_CLIENT_CA_PATH, "/x/ca.crt")]));
    assert_names(&text, &[ENV_INTAKE_TLS_CERT_PATH, ENV_INTAKE_TLS_KEY_PATH]);
    let junk = password_file();
    let junk = junk.path().display().to_string();
    let text = refused(sandbox(&[
        (ENV_OPS_TLS_CERT_PATH, &junk),
        (ENV_OPS_TLS_KEY_PATH, &junk),
    ]));
    assert_names(&text, &[ENV_OPS_TLS_CERT_PATH, "no PEM certificate", &junk]);
    let text = refused(sandbox(&[
        (ENV_GRPC_TLS_CERT_PATH, "/nonexistent/tls.crt"),
        (ENV_GRPC_TLS_KEY_PATH, "/nonexistent/tls.key"),
    ]));
    assert_names(&text, &[ENV_GRPC_TLS_CERT_PATH, "/nonexistent/tls.crt"]);
}

#[test]
fn a_public_grpc_address_outside_the_sandbox_needs_tls_or_explicit_plaintext() {
    let (password, key) = (password_file(), fresh_key_file());
    let token = password_file();
    let base = vec![
        (ENV_PRIVATE_KEY_PATH, key.path().display().to_string()),
        (ENV_USERNAME, "merchant".to_owned()),
        (ENV_PASSWORD_PATH, password.path().display().to_string()),
        (ENV_NOTIFICATION_URL, "https://m.example/n".to_owned()),
        (ENV_GRPC_LISTEN, "0.0.0.0:50051".to_owned()),
        (ENV_GRPC_TOKEN_PATH, token.path().display().to_string()),
    ];
    let text = refused(config(&base));
    assert_names(
        &text,
        &[
            ENV_GRPC_LISTEN,
            ENV_GRPC_TLS_CERT_PATH,
            ENV_GRPC_TLS_KEY_PATH,
            ENV_GRPC_ALLOW_PLAINTEXT,
        ],
    );
    let mut plaintext = base.clone();
    plaintext.push((ENV_GRPC_ALLOW_PLAINTEXT, "true".to_owned()));
    let config = config(&plaintext).expect("explicit plaintext is allowed");
    assert!(config.grpc.tls.is_none());
    let mut loopback = base;
    loopback.retain(|(var, _)| *var != ENV_GRPC_LISTEN);
    assert!(
        super::Config::from_lookup(|var| loopback
            .iter()
            .find(|(v, _)| *v == var)
            .map(|(_, value)| value.clone()))
        .is_ok()
    );
}

#[test]
fn the_reconciliation_runs_hourly_by_default_and_can_be_turned_off() {
    let interval = |value: Option<&str>| {
        let vars: Vec<(&str, &str)> = value
            .map(|v| (ENV_RECONCILE_INTERVAL, v))
            .into_iter()
            .collect();
        sandbox(&vars).map(|c| c.payments.reconcile_interval)
    };
    assert_eq!(
        interval(None).expect("default"),
        Some(DEFAULT_RECONCILE_INTERVAL)
    );
    assert_eq!(
        interval(Some("10m")).expect("10m"),
        Some(Duration::from_secs(600))
    );
    for off in ["0", "0s", "off"] {
        assert_eq!(interval(Some(off)).expect(off), None);
    }
    assert_names(
        &refused(interval(Some("hourly"))),
        &[ENV_RECONCILE_INTERVAL],
    );
}

#[test]
fn trustlys_signatures_are_verified_by_the_fastest_backend_whatever_signs() {
    let verifying = if cfg!(feature = "openssl") {
        Backend::OpenSsl
    } else {
        Backend::RustCrypto
    };
    for &signing in Backend::available() {
        let name = signing.to_string();
        let config = sandbox(&[(ENV_SIGNING_BACKEND, name.as_str())]).expect("valid");
        assert_eq!(config.trustly.signer.backend(), signing);
        assert_eq!(
            config.trustly.verifier.backend(),
            verifying,
            "signing with {name}"
        );
    }
}
