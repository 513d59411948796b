//! Redis over TLS with a password: `rediss://` verified against a private CA works end to end; a
//! server signed by another CA is refused (a TLS failure), and the sidecar stays up but not ready.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use support::{app, sim::*};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_types::StatusExt;
use trustly_sidecar::{
    grpc::status::reason,
    pb,
    store::{ConnectCause, Error, connection},
};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as `<name>-ca.crt`, `<name>.crt/.key`.
fn certificates(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}-ca.key"),
            "-out",
            &format!("{name}-ca.crt"),
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{name}-ca.crt"),
            "-CAkey",
            &format!("{name}-ca.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

struct TlsRedis {
    child: Child,
    port: u16,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_redis(dir: &Path) -> TlsRedis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "server-ca.crt",
            "--tls-auth-clients",
            "no",
        ])
        .args([
            "--requirepass",
            "s3cret",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    // Guarded first: a failed start still kills and reaps the process.
    let redis = TlsRedis { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return redis;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("TLS redis did not start");
}

#[tokio::test]
async fn rediss_with_a_private_ca_and_a_password_works_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path(), "server");
    let redis = tls_redis(dir.path());
    let h = SimHarness::start().await;
    let url = format!("rediss://default:s3cret@127.0.0.1:{}", redis.port);
    let ca = dir.path().join("server-ca.crt").display().to_string();
    let (vars, files) = app::vars_for(
        &h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", &url),
            ("TRUSTLY_SIDECAR_REDIS_CA_PATH", &ca),
        ],
    );
    let mut sidecar = app::spawn(vars, files).await;
    let account_id = sidecar
        .client
        .register_account(pb::RegisterAccountRequest {
            end_user_id: "user-1".into(),
            account: Some(pb::BankAccount {
                clearing_house: "SWEDEN".into(),
                bank_number: "6112".into(),
                account_number: "69706212".into(),
                first_name: "A".into(),
                last_name: "B".into(),
            }),
            ..Default::default()
        })
        .await
        .expect("register")
        .into_inner()
        .account_id;
    let payout = pb::AccountPayoutRequest {
        account_id,
        end_user_id: "user-1".into(),
        message_id: "tls-payout".into(),
        amount: Some(pb::Money {
            amount: "10.00".into(),
            currency_code: "EUR".into(),
        }),
        shopper_statement: "Payout".into(),
        ..Default::default()
    };
    sidecar
        .client
        .account_payout(payout.clone())
        .await
        .expect("payout");
    let again = sidecar
        .client
        .account_payout(payout)
        .await
        .expect("replayed from the TLS store");
    assert_eq!(
        again
            .metadata()
            .get("trustly-idempotent-replay")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    // The wake-up subscription is made over TLS too, with the same CA and password.
    let ca_pem = std::fs::read(&ca).unwrap();
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(ca_pem),
    };
    let client = redis::Client::build_with_tls(url.as_str(), certificates).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let subscribers: Vec<(String, u64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("trustly-sidecar:wake")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(subscribers[0].1, 1, "{subscribers:?}");
}

#[tokio::test]
async fn a_server_signed_by_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path(), "server");
    certificates(dir.path(), "other");
    let redis = tls_redis(dir.path());
    let h = SimHarness::start().await;
    let url = format!("rediss://default:s3cret@127.0.0.1:{}", redis.port);
    let wrong_ca = dir.path().join("other-ca.crt");
    let pem = std::fs::read(&wrong_ca).unwrap();
    let error = connection::connect(
        std::slice::from_ref(&url),
        false,
        Some(&pem),
        Duration::from_secs(2),
    )
    .await
    .err()
    .expect("an untrusted certificate must not connect");
    assert!(
        matches!(
            error,
            Error::Connect {
                cause: ConnectCause::Tls,
                ..
            }
        ),
        "{error:?}"
    );
    // The sidecar does not exit: it keeps retrying (the certificate may be fixed on the server)
    // and, until it connects, is not ready and refuses what needs the store.
    let wrong_ca = wrong_ca.display().to_string();
    let (vars, files) = app::vars_for(
        &h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", &url),
            ("TRUSTLY_SIDECAR_REDIS_CA_PATH", &wrong_ca),
            ("TRUSTLY_SIDECAR_REDIS_TIMEOUT", "2s"),
        ],
    );
    let sidecar = app::spawn(vars, files).await;
    let readyz = reqwest::get(format!("http://{}/readyz", sidecar.ops_addr))
        .await
        .unwrap();
    assert_eq!(readyz.status().as_u16(), 503);
    let health = HealthClient::new(sidecar.channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::NotServing);
    let status = pb::account_service_client::AccountServiceClient::new(sidecar.channel.clone())
        .list_accounts(pb::ListAccountsRequest {
            end_user_id: "user-1".into(),
        })
        .await
        .expect_err("no store, no answer");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        reason::STORE_UNAVAILABLE
    );
}
