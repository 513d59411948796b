//! Unit tests of the configuration reader.

use super::*;
use rsa::RsaPrivateKey;
use std::collections::HashMap;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");

fn config(vars: &[(&str, String)]) -> Result<Config, Error> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    Config::from_lookup(|var| vars.get(var).cloned())
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
    assert_eq!(config.trustly_timeout, Duration::from_secs(45));
    assert_eq!(config.grpc_listen.to_string(), DEFAULT_GRPC_LISTEN);
    assert_eq!(config.environment, Environment::Live);
    assert_eq!(config.trustly_url.as_str(), "https://api.trustly.com/1");
    assert_eq!(config.password.expose(), "s3cret");
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let error = config(&[
        (ENV_PRIVATE_KEY_PATH, "/nonexistent/key.pem".into()),
        (ENV_ENVIRONMENT, "prod".into()),
        (ENV_TRUSTLY_URL, "ftp://x".into()),
    ])
    .expect_err("invalid config");
    let text = error.to_string();
    for needle in [
        ENV_PRIVATE_KEY_PATH,
        "/nonexistent/key.pem",
        "does not exist",
        ENV_ENVIRONMENT,
        ENV_TRUSTLY_URL,
        ENV_USERNAME,
        ENV_PASSWORD_PATH,
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
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
        let error = config(&[
            (ENV_PRIVATE_KEY_PATH, format!("{FIXTURES}/{file}")),
            (ENV_USERNAME, "merchant".into()),
            (ENV_PASSWORD_PATH, password.path().display().to_string()),
        ])
        .expect_err("bad key refused");
        let text = error.to_string();
        assert!(
            text.contains(file) && text.contains(expected),
            "{file}: {text}"
        );
    }
}

#[test]
fn a_public_grpc_address_needs_a_token_and_urls_are_checked() {
    let error = config(&[
        (ENV_SANDBOX, "1".into()),
        (ENV_GRPC_LISTEN, "0.0.0.0:50051".into()),
        (ENV_NOTIFICATION_URL, "http://merchant.example/n?x=1".into()),
        (ENV_TRUSTLY_TIMEOUT, "soon".into()),
    ])
    .expect_err("refused");
    let text = error.to_string();
    for needle in [
        ENV_GRPC_LISTEN,
        ENV_GRPC_TOKEN_PATH,
        ENV_NOTIFICATION_URL,
        ENV_TRUSTLY_TIMEOUT,
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let token = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(token.path(), "t0ken\n").expect("write");
    let config = config(&[
        (ENV_SANDBOX, "1".into()),
        (ENV_GRPC_LISTEN, "0.0.0.0:50051".into()),
        (ENV_GRPC_TOKEN_PATH, token.path().display().to_string()),
    ])
    .expect("token makes a public address acceptable");
    assert_eq!(
        config.grpc_token.as_ref().map(|t| t.expose().as_str()),
        Some("t0ken")
    );
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
        let mut vars = vec![(ENV_SANDBOX, "1".to_owned())];
        vars.extend(value.map(|v| (ENV_POLL_WINDOW, v.to_owned())));
        config(&vars).map(|c| c.poll_window)
    };
    assert_eq!(window(None).expect("valid"), Duration::from_secs(15 * 60));
    assert_eq!(window(Some("0s")).expect("valid"), Duration::ZERO);
    assert_eq!(
        window(Some("30m")).expect("valid"),
        Duration::from_secs(1800)
    );
    let error = window(Some("soon")).expect_err("refused").to_string();
    assert!(error.contains("TRUSTLY_SIDECAR_POLL_WINDOW"), "{error}");
}

#[test]
fn the_balance_poll_respects_trustlys_limit_and_thresholds_are_exact() {
    let error = config(&[
        (ENV_SANDBOX, "1".into()),
        (ENV_BALANCE_INTERVAL, "5m".into()),
        (ENV_LOW_BALANCE, "EUR=100.001,sek=5,SEK".into()),
    ])
    .expect_err("refused");
    let text = error.to_string();
    for needle in [
        "(TRUSTLY_SIDECAR_BALANCE_INTERVAL): \"5m\" is shorter than Trustly's limit",
        "(TRUSTLY_SIDECAR_LOW_BALANCE): \"EUR=100.001\": amount must have at most 2 decimals",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let config = config(&[
        (ENV_SANDBOX, "1".into()),
        (ENV_BALANCE_INTERVAL, "15m".into()),
        (ENV_LOW_BALANCE, "EUR=5000.00, SEK=250".into()),
    ])
    .expect("valid");
    assert_eq!(config.balance_interval, Some(MIN_BALANCE_INTERVAL));
    let thresholds: Vec<String> = config
        .low_balance
        .iter()
        .map(|(currency, amount)| format!("{currency}={amount}"))
        .collect();
    assert_eq!(thresholds, ["EUR=5000.00", "SEK=250.00"]);
}

#[test]
fn sandbox_needs_no_secrets() {
    let config = config(&[(ENV_SANDBOX, "1".into())]).expect("sandbox config");
    assert!(config.sandbox);
    assert_eq!(config.username, SANDBOX_USERNAME);
    assert_eq!(config.private_key_source, SANDBOX_KEY_SOURCE);
    // The same publicly known merchant key as trustly-sim and trustly-notify expect.
    assert_eq!(
        config.merchant_public_key,
        RsaPublicKey::from(&crate::trustly::keys::published::merchant_private_key())
    );
    assert_eq!(
        config.sandbox_simulator_listen.to_string(),
        DEFAULT_SANDBOX_SIMULATOR_LISTEN
    );
}

#[test]
fn the_sandbox_simulator_address_is_a_setting() {
    let moved = config(&[
        (ENV_SANDBOX, "1".into()),
        (ENV_SANDBOX_SIMULATOR_LISTEN, "127.0.0.1:0".into()),
    ])
    .expect("valid");
    assert_eq!(moved.sandbox_simulator_listen.to_string(), "127.0.0.1:0");
    let text = config(&[
        (ENV_SANDBOX, "1".into()),
        (ENV_SANDBOX_SIMULATOR_LISTEN, "localhost".into()),
    ])
    .expect_err("refused")
    .to_string();
    assert!(
        text.contains("(TRUSTLY_SIDECAR_SANDBOX_SIMULATOR_LISTEN): not a socket address"),
        "{text}"
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
        let text = live(&vars).expect_err("refused").to_string();
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
    let text = config(&[(ENV_SANDBOX, "1".into()), (ENV_ENVIRONMENT, "live".into())])
        .expect_err("refused")
        .to_string();
    assert!(
        text.contains("(TRUSTLY_SIDECAR_SANDBOX): the sandbox runs on PUBLICLY KNOWN test keys"),
        "{text}"
    );
}
