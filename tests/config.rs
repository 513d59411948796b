//! The `trustly-sidecar` binary: bad configuration names the problem and exits 64 before doing
//! anything; the sandbox starts on embedded defaults.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

mod support;

use std::process::{Command, Output};

use support::*;
use trustly_sidecar::trustly::{keys, sign::Backend};

fn sidecar(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trustly-sidecar"));
    command.args(args).env_clear().env("RUST_LOG", "info");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("binary runs")
}

#[test]
fn a_missing_key_file_is_named_and_exits_64() {
    let output = sidecar(
        &[
            "--private-key-path",
            "/nonexistent/merchant.pem",
            "--username",
            "m",
        ],
        &[("TRUSTLY_SIDECAR_PASSWORD_PATH", "/nonexistent/password")],
    );
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent/merchant.pem") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(stderr.contains("/nonexistent/password"), "{stderr}");
}

#[test]
fn an_encrypted_key_and_a_bad_environment_are_both_reported() {
    let key = key_path("merchant-test-private-encrypted.pem");
    let output = sidecar(
        &[
            "--private-key-path",
            key.to_str().unwrap(),
            "--environment",
            "production",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "merchant-test-private-encrypted.pem",
        "encrypted",
        "--environment (TRUSTLY_SIDECAR_ENVIRONMENT)",
        "--username (TRUSTLY_SIDECAR_USERNAME) is required",
        "--private-key-path (TRUSTLY_SIDECAR_PRIVATE_KEY_PATH)",
    ] {
        assert!(stderr.contains(needle), "{needle} not in: {stderr}");
    }
}

#[test]
fn an_empty_configuration_points_at_the_sandbox() {
    let output = sidecar(&[], &[]);
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nothing is configured"), "{stderr}");
    assert!(stderr.contains("--sandbox"), "{stderr}");
    // Once anything is set, it is a deployment to fix, not a first run.
    let output = sidecar(&["--username", "m"], &[]);
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("nothing is configured"), "{stderr}");
}

#[test]
fn every_setting_is_a_flag_with_its_variable_in_help() {
    let output = sidecar(&["--help"], &[]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for setting in trustly_sidecar::config::SETTINGS {
        assert!(
            help.contains(&format!("--{} ", setting.flag)),
            "--{} not in help",
            setting.flag
        );
        assert!(
            help.contains(&format!("[env: {}=", setting.var)),
            "{} not in help",
            setting.var
        );
    }
}

#[test]
fn a_flag_and_its_variable_are_the_same_setting_and_the_flag_wins() {
    // The variable alone is read ...
    let output = sidecar(&[], &[("TRUSTLY_SIDECAR_ENVIRONMENT", "production")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"production\""), "{stderr}");
    // ... and the flag overrides it.
    let output = sidecar(
        &["--environment", "staging"],
        &[("TRUSTLY_SIDECAR_ENVIRONMENT", "production")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"staging\"") && !stderr.contains("\"production\""),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_redis_is_named_by_address_and_cause_without_its_password() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://app:hunter2-secret@127.0.0.1:{port}");
    let output = sidecar(
        &[
            "--sandbox",
            "--redis-url",
            &url,
            "--grpc-listen",
            "127.0.0.1:0",
            "--notification-listen",
            "127.0.0.1:0",
            "--ops-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot reach redis at 127.0.0.1:{port}: connection refused"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}

#[test]
fn the_sandbox_serves_until_sigterm_and_then_exits_cleanly() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_trustly-sidecar"))
        .args([
            "--sandbox",
            "--grpc-listen",
            "127.0.0.1:0",
            "--notification-listen",
            "127.0.0.1:0",
        ])
        .env_clear()
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stderr = child.stderr.take().expect("stderr");
    // Read the log on a thread so a hung sidecar fails the test instead of blocking it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !log.contains("sandbox ready") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => log.push_str(&(line + "\n")),
            Err(_) => {
                let _ = child.kill();
                panic!("sandbox did not become ready:\n{log}");
            }
        }
    }
    assert!(
        log.contains("password: [redacted]") && !log.contains("password: \"sandbox\""),
        "{log}"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("exits");
    assert_eq!(exit.code(), Some(0), "graceful shutdown exits 0");
}

#[test]
fn pkcs1_and_pkcs8_encodings_load_the_same_key() {
    let pkcs1 = keys::load_private_key(&key_path("merchant-test-private.pem")).unwrap();
    let pkcs8 = keys::load_private_key(&key_path("merchant-test-private-pkcs8.pem")).unwrap();
    assert_eq!(pkcs1, pkcs8);
    let plaintext = b"Balance";
    let signature = Backend::RustCrypto
        .signer(pkcs8)
        .unwrap()
        .sign(plaintext)
        .unwrap();
    assert!(verifier(Backend::RustCrypto, MERCHANT_PUBLIC).verify(plaintext, &signature));
}

#[test]
fn a_public_key_file_is_not_accepted_as_a_private_key_and_vice_versa() {
    let error = keys::load_private_key(&key_path(MERCHANT_PUBLIC)).unwrap_err();
    assert!(error.to_string().contains(MERCHANT_PUBLIC), "{error}");
    let error = keys::load_public_key(&key_path(MERCHANT_PRIVATE)).unwrap_err();
    assert!(error.to_string().contains(MERCHANT_PRIVATE), "{error}");
}

#[test]
fn trustly_sim_names_a_bad_key_file_and_exits_64() {
    let output = Command::new(env!("CARGO_BIN_EXE_trustly-sim"))
        .args([
            "--merchant-public-key-path",
            "/nonexistent/merchant-public.pem",
        ])
        .args([
            "--private-key-path",
            key_path("weak-1024-private.pem").to_str().unwrap(),
        ])
        .args(["--balance", "EUR=-5"])
        .env_clear()
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "/nonexistent/merchant-public.pem",
        "does not exist",
        "weak-1024-private.pem",
        "1024-bit",
        "EUR=-5",
    ] {
        assert!(stderr.contains(needle), "{needle} not in: {stderr}");
    }
}
