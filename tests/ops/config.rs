//! The `trustly-sidecar` binary: bad configuration names the problem and exits 64 before doing
//! anything; the sandbox starts on embedded defaults.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

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

/// Every listener of a sandbox on a free port: tests never take the default ports, which a
/// developer's real sandbox may be using.
const FREE_PORTS: [&str; 8] = [
    "--grpc-listen",
    "127.0.0.1:0",
    "--notification-listen",
    "127.0.0.1:0",
    "--ops-listen",
    "127.0.0.1:0",
    "--sandbox-simulator-listen",
    "127.0.0.1:0",
];

/// Upper bound for a sandbox to log "sandbox ready" (no key generation; a debug build on a busy
/// machine starts in well under a second).
const READY_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A `--sandbox` sidecar with its stderr on a pipe; killed when dropped.
struct Sandbox {
    child: std::process::Child,
    /// Every stderr line up to and including "sandbox ready".
    log: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Sandbox {
    /// Starts `trustly-sidecar --sandbox` with every listener on a free port, then `args`, and
    /// waits for "sandbox ready".
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_trustly-sidecar"))
            .arg("--sandbox")
            .args(FREE_PORTS)
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("binary starts");
        let stderr = child.stderr.take().expect("stderr");
        // Read the log on a thread so a hung sidecar fails the test instead of blocking it.
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut sandbox = Self {
            child,
            log: String::new(),
            lines,
        };
        let deadline = std::time::Instant::now() + READY_LIMIT;
        while !sandbox.log.contains("sandbox ready") {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match sandbox.lines.recv_timeout(left) {
                Ok(line) => sandbox.log.push_str(&(line + "\n")),
                Err(_) => panic!("sandbox did not become ready:\n{}", sandbox.log),
            }
        }
        sandbox
    }

    /// The first `http://` URL or `host:port` after `label` on the line that has it.
    fn endpoint(&self, label: &str) -> String {
        let line = self
            .log
            .lines()
            .find(|line| line.contains(label))
            .unwrap_or_else(|| panic!("no {label:?} line in:\n{}", self.log));
        let rest = &line[line.find(label).unwrap() + label.len()..];
        rest.split_whitespace()
            .map(|token| token.trim_start_matches("url="))
            .find(|token| token.starts_with("http://") || token.starts_with("127.0.0.1:"))
            .unwrap_or_else(|| panic!("no address after {label:?}: {line}"))
            .to_owned()
    }

    /// SIGTERM; returns the exit code.
    fn terminate(mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        self.child.wait().expect("exits").code()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_sandbox_serves_until_sigterm_and_then_exits_cleanly() {
    // The full configuration is at debug level, with its secrets redacted.
    let sandbox = Sandbox::start(&[], &[("RUST_LOG", "warn,trustly_sidecar=debug")]);
    let log = sandbox.log.clone();
    assert!(
        log.contains("configuration loaded")
            && log.contains("password: [redacted]")
            && !log.contains("password: \"sandbox\""),
        "{log}"
    );
    assert_eq!(sandbox.terminate(), Some(0), "graceful shutdown exits 0");
}

#[tokio::test]
async fn the_sandbox_log_fits_a_screen_has_no_colour_on_a_pipe_and_names_the_real_endpoints() {
    // The default filter, as a developer runs it.
    let sandbox = Sandbox::start(&[], &[]);
    let log = &sandbox.log;
    assert!(!log.contains("\x1b["), "colour codes on a pipe:\n{log}");
    assert!(
        !log.contains("configuration loaded"),
        "the full dump is debug:\n{log}"
    );
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() <= 15, "{} lines:\n{log}", lines.len());
    for line in &lines {
        assert!(line.chars().count() <= 200, "{} chars: {line}", line.len());
    }
    // The Trustly URL logged is the simulator's real (bound) address, as the banner says.
    let api = sandbox.endpoint("simulator API");
    assert_eq!(sandbox.endpoint("trustly environment=test"), api, "{log}");
    assert!(
        !api.contains(":0/") && !log.contains("test.trustly.com"),
        "{log}"
    );
    let admin = sandbox.endpoint("simulator admin");
    assert_eq!(admin, api.replace("/api/1", "/admin"));
    assert!(log.contains("development tool"), "{log}");
    let grpc = sandbox.endpoint("gRPC  ");
    assert!(
        log.contains(&format!("grpcurl -plaintext {grpc} list")),
        "{log}"
    );
    let intake = sandbox.endpoint("intake  ");
    assert!(
        log.contains(&format!("trustly-notify -- --url {intake}")),
        "{log}"
    );
    assert!(sandbox.endpoint("ops  ").ends_with("/metrics"), "{log}");

    // A Deposit through the logged gRPC address lands in the simulator at the logged address.
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let order_id = trustly_sidecar::pb::payment_service_client::PaymentServiceClient::new(channel)
        .deposit(requests::deposit("log-check-1"))
        .await
        .expect("the sandbox deposits")
        .into_inner()
        .order_id;
    let orders = reqwest::get(format!("{admin}/orders"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(orders.contains(&order_id), "{order_id} not in {orders}");
}

#[test]
fn trustly_notify_posts_to_a_default_sandbox_with_no_key_flags() {
    let sandbox = Sandbox::start(&[], &[]);
    let intake = sandbox.endpoint("intake  ");
    let output = Command::new(env!("CARGO_BIN_EXE_trustly-notify"))
        .args(["--url", &intake])
        .env_clear()
        .output()
        .expect("trustly-notify runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("HTTP 200"), "{stdout}");
    assert!(
        stdout.contains("answer: status=OK signature=valid"),
        "{stdout}"
    );
    assert!(stderr.contains("PUBLICLY KNOWN"), "{stderr}");
}

#[test]
fn a_taken_simulator_port_names_the_address_and_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut args = FREE_PORTS.to_vec();
    args[7] = &addr;
    let output = sidecar(&[&["--sandbox"], args.as_slice()].concat(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        addr.as_str(),
        "--sandbox-simulator-listen",
        "TRUSTLY_SIDECAR_SANDBOX_SIMULATOR_LISTEN",
    ] {
        assert!(stderr.contains(needle), "{needle} not in: {stderr}");
    }
}

#[test]
fn live_refuses_a_publicly_known_test_key_and_exits_64() {
    let password = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(password.path(), "s3cret\n").unwrap();
    // A merchant key nobody else has, so only the key under test is refused.
    let fresh = tempfile::NamedTempFile::new().unwrap();
    let pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(
        &rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap(),
        rsa::pkcs8::LineEnding::LF,
    )
    .unwrap();
    std::fs::write(fresh.path(), pem.as_bytes()).unwrap();
    let fresh_path = fresh.path().display().to_string();
    for (flag, var, file) in [
        (
            "--private-key-path",
            "TRUSTLY_SIDECAR_PRIVATE_KEY_PATH",
            MERCHANT_PRIVATE,
        ),
        (
            "--trustly-public-key-path",
            "TRUSTLY_SIDECAR_TRUSTLY_PUBLIC_KEY_PATH",
            "python-client-test-public-1.pem",
        ),
    ] {
        let key = key_path(file);
        let mut args = vec![
            "--environment",
            "live",
            "--username",
            "merchant",
            "--notification-url",
            "https://merchant.example/trustly/notifications",
            flag,
            key.to_str().unwrap(),
        ];
        args.extend(FREE_PORTS);
        if flag != "--private-key-path" {
            args.extend(["--private-key-path", fresh_path.as_str()]);
        }
        let output = sidecar(
            &args,
            &[(
                "TRUSTLY_SIDECAR_PASSWORD_PATH",
                password.path().to_str().unwrap(),
            )],
        );
        assert_eq!(output.status.code(), Some(64), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("{flag} ({var}): is the PUBLICLY KNOWN test key")),
            "{var} not refused: {stderr}"
        );
        assert_eq!(stderr.matches("PUBLICLY KNOWN").count(), 1, "{stderr}");
    }
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
fn a_malformed_redis_url_exits_64_without_its_password() {
    let mut args = vec![
        "--sandbox",
        "--redis-url",
        "redis://app:hunter2-secret@127.0.0.1:99999",
    ];
    args.extend(FREE_PORTS);
    let output = sidecar(&args, &[]);
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a valid Redis URL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}

/// Redis down at start is not a configuration error: the sidecar serves (not ready), says why in
/// its logs, and stops cleanly.
#[tokio::test]
async fn an_unreachable_redis_is_named_by_address_and_cause_without_its_password() {
    // A port nobody listens on: bound, then released.
    let port = support::requests::free_port();
    let url = format!("redis://app:hunter2-secret@127.0.0.1:{port}");
    let h = sim::SimHarness::start().await;
    let process = app::spawn_process(&h, &[("TRUSTLY_SIDECAR_REDIS_URL", &url)]).await;
    let expected = format!("cannot reach redis at 127.0.0.1:{port}: connection refused");
    let logs = h
        .eventually("the cause is logged", || {
            let logs = process.logs();
            let found = logs.contains(&expected);
            async move { found.then_some(logs) }
        })
        .await;
    let get = |path: &str| {
        let url = format!("http://{}{path}", process.ops_addr);
        async move { reqwest::get(url).await.expect("ops port").status().as_u16() }
    };
    assert_eq!(get("/healthz").await, 200, "alive");
    assert_eq!(get("/readyz").await, 503, "not ready");
    let (status, logs_at_exit) = process.terminate().await;
    assert!(status.success(), "a clean stop: {status:?}\n{logs_at_exit}");
    assert!(!logs.contains("hunter2") && !logs_at_exit.contains("hunter2"));
}

#[test]
fn the_readme_configuration_table_lists_every_setting() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    for setting in trustly_sidecar::config::SETTINGS {
        let row = format!("| `--{}` | `{}` |", setting.flag, setting.var);
        assert!(
            readme.contains(&row),
            "README's configuration table lacks {row}"
        );
    }
}

#[test]
fn the_default_signing_backend_is_openssl_when_built_and_rustcrypto_stays_selectable() {
    use trustly_sidecar::config::{self, Config};
    let backend_of = |backend: Option<&str>| {
        let config = Config::from_lookup(|var| match var {
            config::ENV_SANDBOX => Some("true".to_owned()),
            config::ENV_SIGNING_BACKEND => backend.map(str::to_owned),
            _ => None,
        })
        .expect("valid config");
        config.trustly.signer.backend()
    };
    let default = if cfg!(feature = "openssl") {
        Backend::OpenSsl
    } else {
        Backend::RustCrypto
    };
    assert_eq!(backend_of(None), default);
    assert_eq!(backend_of(Some("rustcrypto")), Backend::RustCrypto);
    assert_eq!(config::DEFAULT_SIGNING_BACKEND, default);
}
