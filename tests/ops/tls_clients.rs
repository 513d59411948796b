//! TLS, continued: the binary logs an mTLS client's identity and nothing of its key; a
//! non-loopback plaintext gRPC bind is refused at start (exit 64) unless TLS or explicit
//! plaintext; stock clients (Python grpcio, grpcurl) connect with the CA, a client certificate and
//! key. Certificates and the in-process sidecar come from `tls`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use std::{collections::HashMap, process::Command, time::Duration};

use trustly_sidecar::config::Config;

use crate::{
    support::{
        app,
        replicas::signed,
        sim::{self, SimHarness},
    },
    tls::{Pki, start},
};

/// Upper bound for one stock-client run (stub generation included).
const CLIENT_RUN_LIMIT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn the_binary_logs_an_mtls_clients_identity_and_nothing_of_its_key() {
    let (h, pki) = (SimHarness::start().await, Pki::new());
    let path = |name: &str| pki.path(name).display().to_string();
    let (cert, key, ca) = (path("tls.crt"), path("tls.key"), path("ca.crt"));
    let sidecar = app::spawn_process(
        &h,
        &[
            ("TRUSTLY_SIDECAR_INTAKE_TLS_CERT_PATH", &cert),
            ("TRUSTLY_SIDECAR_INTAKE_TLS_KEY_PATH", &key),
            ("TRUSTLY_SIDECAR_INTAKE_TLS_CLIENT_CA_PATH", &ca),
        ],
    )
    .await;
    let identity = format!("{}{}", pki.client_pem, pki.client_key_pem);
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
        .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!(
        "https://localhost:{}/trustly/notifications",
        sidecar.intake_addr.port()
    );
    let response = client
        .post(url)
        .body(signed("credit", "9700000003"))
        .send()
        .await
        .expect("post over mTLS");
    assert_eq!(response.status().as_u16(), 200);
    let (status, logs) = sidecar.terminate().await;
    assert!(status.success(), "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("notification intake listening") && l.contains(r#"tls="mtls""#)),
        "{logs}"
    );
    let connected = logs
        .lines()
        .find(|l| l.contains("mTLS client connected"))
        .unwrap_or_else(|| panic!("no mTLS client line in:\n{logs}"));
    assert!(
        connected.contains("CN=payments, DNS:payments.shop.svc"),
        "{connected}"
    );
    // Nothing of the client's key (nor of the server's) reaches the logs.
    for pem in [&pki.client_key_pem, &std::fs::read_to_string(&key).unwrap()] {
        let body = pem.lines().nth(1).unwrap();
        assert!(!logs.contains(body), "key material in the logs");
    }
    assert!(!logs.contains("PRIVATE KEY"), "{logs}");
}

/// A configuration that is complete but for TLS, on a non-loopback gRPC address with a token.
fn non_loopback(extra: &[(&str, &str)]) -> (HashMap<String, String>, Vec<tempfile::NamedTempFile>) {
    let token = app::secret_file("s3cr3t-token");
    let mut vars = HashMap::from([
        (
            "TRUSTLY_SIDECAR_PRIVATE_KEY_PATH".to_owned(),
            crate::support::key_path(crate::support::MERCHANT_PRIVATE)
                .display()
                .to_string(),
        ),
        (
            "TRUSTLY_SIDECAR_USERNAME".to_owned(),
            sim::USERNAME.to_owned(),
        ),
        (
            "TRUSTLY_SIDECAR_NOTIFICATION_URL".to_owned(),
            "https://merchant.example/trustly/notifications".to_owned(),
        ),
        (
            "TRUSTLY_SIDECAR_GRPC_LISTEN".to_owned(),
            "0.0.0.0:0".to_owned(),
        ),
        (
            "TRUSTLY_SIDECAR_GRPC_TOKEN_PATH".to_owned(),
            token.path().display().to_string(),
        ),
    ]);
    let password = app::secret_file(sim::PASSWORD);
    vars.insert(
        "TRUSTLY_SIDECAR_PASSWORD_PATH".to_owned(),
        password.path().display().to_string(),
    );
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    (vars, vec![token, password])
}

#[test]
fn a_non_loopback_plaintext_grpc_bind_exits_64_naming_the_settings() {
    let (vars, _files) = non_loopback(&[]);
    let output = Command::new(env!("CARGO_BIN_EXE_trustly-sidecar"))
        .env_clear()
        .envs(&vars)
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    for named in [
        "--grpc-listen (TRUSTLY_SIDECAR_GRPC_LISTEN): 0.0.0.0:0 is not loopback",
        "--grpc-tls-cert-path (TRUSTLY_SIDECAR_GRPC_TLS_CERT_PATH)",
        "--grpc-allow-plaintext (TRUSTLY_SIDECAR_GRPC_ALLOW_PLAINTEXT)",
    ] {
        assert!(stderr.contains(named), "{named} not in:\n{stderr}");
    }
    assert_eq!(
        stderr.matches("\n  - ").count(),
        1,
        "one problem only:\n{stderr}"
    );
}

#[test]
fn a_non_loopback_bind_is_accepted_with_tls_or_explicit_plaintext() {
    let pki = Pki::new();
    let cert = pki.path("tls.crt").display().to_string();
    let key = pki.path("tls.key").display().to_string();
    for extra in [
        vec![("TRUSTLY_SIDECAR_GRPC_ALLOW_PLAINTEXT", "true")],
        vec![
            ("TRUSTLY_SIDECAR_GRPC_TLS_CERT_PATH", cert.as_str()),
            ("TRUSTLY_SIDECAR_GRPC_TLS_KEY_PATH", key.as_str()),
        ],
    ] {
        let (vars, _files) = non_loopback(&extra);
        let config = Config::from_lookup(|v| vars.get(v).cloned());
        assert!(config.is_ok(), "{extra:?}: {:?}", config.err());
    }
}

/// Runs `program args…`; its stdout, asserting it succeeded. A missing tool fails loudly.
async fn run_tool(program: &str, args: &[String], env: &[(&str, &str)]) -> String {
    let output = tokio::time::timeout(
        CLIENT_RUN_LIMIT,
        tokio::process::Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{program} did not finish within {CLIENT_RUN_LIMIT:?}"))
    .unwrap_or_else(|e| panic!("cannot run {program} ({e}); .ci/setup installs it"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

#[tokio::test]
async fn a_python_grpcio_client_deposits_over_mtls() {
    let (h, pki) = (SimHarness::start().await, Pki::new());
    let gateway = start(&h, pki.grpc_vars(true)).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let path = |name: &str| pki.path(name).display().to_string();
    let args = [
        format!("{root}/tests/polyglot/tls_client.py"),
        "--addr".into(),
        gateway.grpc.to_string(),
        "--ca".into(),
        path("ca.crt"),
        "--cert".into(),
        path("client.crt"),
        "--key".into(),
        path("client.key"),
    ];
    let stdout = run_tool("python3", &args, &[]).await;
    assert!(
        stdout.contains("python tls: Deposit ok order_id="),
        "{stdout}"
    );
}

#[tokio::test]
async fn grpcurl_lists_the_services_over_mtls() {
    let (h, pki) = (SimHarness::start().await, Pki::new());
    let gateway = start(&h, pki.grpc_vars(true)).await;
    let path = |name: &str| pki.path(name).display().to_string();
    let args = [
        "-cacert".into(),
        path("ca.crt"),
        "-cert".into(),
        path("client.crt"),
        "-key".into(),
        path("client.key"),
        gateway.grpc.to_string(),
        "list".into(),
    ];
    let stdout = run_tool("grpcurl", &args, &[]).await;
    for service in ["trustly.v1.PaymentService", "grpc.health.v1.Health"] {
        assert!(
            stdout.lines().any(|l| l == service),
            "{service} not in:\n{stdout}"
        );
    }
    // Without the client certificate the same call is refused.
    let anonymous = tokio::process::Command::new("grpcurl")
        .args([
            "-cacert",
            &path("ca.crt"),
            &gateway.grpc.to_string(),
            "list",
        ])
        .output()
        .await
        .expect("grpcurl runs");
    assert!(
        !anonymous.status.success(),
        "grpcurl without a client certificate listed"
    );
}
