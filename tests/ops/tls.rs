//! TLS on the listeners, with certificates generated here (rcgen): a CA, a server certificate for
//! 127.0.0.1/localhost and a client certificate. gRPC over TLS answers a client trusting the CA
//! and refuses a plaintext one; with mTLS a client without a certificate is refused; a renewed
//! certificate is served to new connections without a restart and a bad one is refused; the
//! intake over TLS takes a notification; the ops port takes mTLS. The binary, the refusal at start
//! and the stock clients are in `tls_clients`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SerialNumber,
};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use trustly_sidecar::{
    App, Listeners, RunError,
    config::Config,
    ops::tls::{Acceptor, Protocol, TlsFiles, client_identity},
    run,
};

use crate::support::{app, replicas::signed, sim::SimHarness};

/// A hang guard for one connection attempt or call (none of them waits on anything slow).
const CALL_LIMIT: Duration = Duration::from_secs(20);
/// How often the test sidecars check their certificate files (the default is 10 s).
const RELOAD_INTERVAL: &str = "100ms";
/// Checks of the served certificate before the reload test gives up (at 100 ms apart: 30 s).
const RELOAD_CHECKS: usize = 300;

/// A CA, its server and client certificates, as PEM files in a temporary directory.
pub(crate) struct Pki {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) issuer: CertifiedIssuer<'static, KeyPair>,
    pub(crate) ca_pem: String,
    pub(crate) server_pem: String,
    pub(crate) client_pem: String,
    pub(crate) client_key_pem: String,
}

impl Pki {
    pub(crate) fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "trustly-sidecar test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca_pem = issuer.as_ref().pem();
        let dir = tempfile::tempdir().unwrap();
        let (client_pem, client_key_pem) = leaf(&issuer, 7, false);
        let pki = Self {
            dir,
            ca_pem,
            server_pem: String::new(),
            client_pem,
            client_key_pem,
            issuer,
        };
        std::fs::write(pki.path("ca.crt"), &pki.ca_pem).unwrap();
        std::fs::write(pki.path("client.crt"), &pki.client_pem).unwrap();
        std::fs::write(pki.path("client.key"), &pki.client_key_pem).unwrap();
        let mut pki = pki;
        pki.server_pem = pki.renew_server(1);
        pki
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a new server certificate and key (serial `serial`) the way Kubernetes updates a
    /// mounted Secret: complete files moved into place. Returns the certificate's PEM.
    fn renew_server(&self, serial: u64) -> String {
        let (cert, key) = leaf(&self.issuer, serial, true);
        replace(&self.path("tls.key"), &key);
        replace(&self.path("tls.crt"), &cert);
        cert
    }

    fn files(&self, mutual: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path("tls.crt"),
            key: self.path("tls.key"),
            client_ca: mutual.then(|| self.path("ca.crt")),
        }
    }

    /// The gRPC TLS variables; with `mutual`, the client CA too.
    pub(crate) fn grpc_vars(&self, mutual: bool) -> Vec<(String, String)> {
        let mut vars = vec![
            var("GRPC_TLS_CERT_PATH", &self.path("tls.crt")),
            var("GRPC_TLS_KEY_PATH", &self.path("tls.key")),
        ];
        if mutual {
            vars.push(var("GRPC_TLS_CLIENT_CA_PATH", &self.path("ca.crt")));
        }
        vars
    }
}

fn var(suffix: &str, path: &Path) -> (String, String) {
    (
        format!("TRUSTLY_SIDECAR_{suffix}"),
        path.display().to_string(),
    )
}

/// A certificate signed by `issuer`: the server's (127.0.0.1, localhost) or a client's
/// (CN payments, DNS payments.shop.svc). Returns (certificate PEM, key PEM).
fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, serial: u64, server: bool) -> (String, String) {
    let names = if server {
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
    } else {
        vec!["payments.shop.svc".to_owned()]
    };
    let mut params = CertificateParams::new(names).unwrap();
    params.serial_number = Some(SerialNumber::from(serial));
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let cn = if server {
        "trustly-sidecar"
    } else {
        "payments"
    };
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn replace(path: &Path, content: &str) {
    let staged = path.with_extension("new");
    std::fs::write(&staged, content).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// An in-process sidecar talking to `h`'s simulator, every listener on a free loopback port.
pub(crate) struct Gateway {
    pub(crate) grpc: SocketAddr,
    intake: SocketAddr,
    ops: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RunError>>>,
    _files: Vec<tempfile::NamedTempFile>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub(crate) async fn start(h: &SimHarness, extra: Vec<(String, String)>) -> Gateway {
    let (mut vars, files) = app::vars_for(h, &[]);
    vars.insert(
        "TRUSTLY_SIDECAR_RELOAD_INTERVAL".into(),
        RELOAD_INTERVAL.into(),
    );
    vars.extend(extra);
    let config = Config::from_lookup(|v| vars.get(v).cloned()).expect("valid config");
    let app = App::build(config).await.expect("app builds");
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let intake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ops = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (grpc_addr, intake_addr) = (grpc.local_addr().unwrap(), intake.local_addr().unwrap());
    let ops_addr = ops.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let listeners = Listeners {
        grpc,
        intake,
        ops: Some(ops),
    };
    let task = tokio::spawn(run(app, listeners, async {
        let _ = stopped.await;
    }));
    Gateway {
        grpc: grpc_addr,
        intake: intake_addr,
        ops: ops_addr,
        stop: Some(stop),
        task: Some(task),
        _files: files,
    }
}

/// `grpc.health.v1.Health/Check` over TLS trusting the test CA, with the client certificate
/// when `client_cert`; the status, or why the connection or call failed.
async fn health_over_tls(addr: SocketAddr, pki: &Pki, client_cert: bool) -> Result<i32, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if client_cert {
        tls = tls.identity(Identity::from_pem(&pki.client_pem, &pki.client_key_pem));
    }
    let endpoint = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?;
    check(endpoint).await
}

async fn check(endpoint: tonic::transport::Endpoint) -> Result<i32, String> {
    let call = async {
        let channel = endpoint.connect().await.map_err(|e| format!("{e:?}"))?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(answer.into_inner().status)
    };
    tokio::time::timeout(CALL_LIMIT, call)
        .await
        .expect("the call neither answered nor failed")
}

/// The certificate a new TLS connection to `addr` is served.
async fn served_certificate(addr: SocketAddr, pki: &Pki) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der(&pki.ca_pem)).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio::time::timeout(CALL_LIMIT, connector.connect(name, tcp))
        .await
        .expect("handshake hangs")
        .expect("handshake");
    let (_, session) = tls.get_ref();
    assert_eq!(
        session.alpn_protocol(),
        Some(&b"h2"[..]),
        "gRPC needs ALPN h2"
    );
    session.peer_certificates().unwrap()[0].clone()
}

#[tokio::test]
async fn grpc_over_tls_answers_a_client_trusting_the_ca_and_refuses_plaintext() {
    let (h, pki) = (SimHarness::start().await, Pki::new());
    let gateway = start(&h, pki.grpc_vars(false)).await;
    assert_eq!(
        health_over_tls(gateway.grpc, &pki, false).await,
        Ok(ServingStatus::Serving as i32)
    );
    let plaintext = Channel::from_shared(format!("http://{}", gateway.grpc)).unwrap();
    let refused = check(plaintext).await;
    assert!(refused.is_err(), "plaintext answered: {refused:?}");
}

#[tokio::test]
async fn mtls_refuses_a_client_without_a_certificate_and_serves_one_with() {
    let (h, pki) = (SimHarness::start().await, Pki::new());
    let gateway = start(&h, pki.grpc_vars(true)).await;
    let anonymous = health_over_tls(gateway.grpc, &pki, false).await;
    assert!(
        anonymous.is_err(),
        "no client certificate, answered: {anonymous:?}"
    );
    assert_eq!(
        health_over_tls(gateway.grpc, &pki, true).await,
        Ok(ServingStatus::Serving as i32)
    );
}

#[test]
fn the_logged_client_identity_is_its_common_name_and_names() {
    let pki = Pki::new();
    assert_eq!(
        client_identity(&der(&pki.client_pem)),
        "CN=payments, DNS:payments.shop.svc"
    );
}

#[tokio::test]
async fn a_renewed_certificate_is_served_to_new_connections_without_a_restart() {
    let (h, pki) = (SimHarness::start().await, Pki::new());
    let gateway = start(&h, pki.grpc_vars(false)).await;
    assert_eq!(
        served_certificate(gateway.grpc, &pki).await,
        der(&pki.server_pem)
    );
    let renewed = der(&pki.renew_server(2));
    let mut served = None;
    for _ in 0..RELOAD_CHECKS {
        let now = served_certificate(gateway.grpc, &pki).await;
        if now == renewed {
            served = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served.is_some(), "the renewed certificate was never served");
    assert_eq!(
        health_over_tls(gateway.grpc, &pki, false).await,
        Ok(ServingStatus::Serving as i32)
    );
}

#[tokio::test]
async fn a_bad_new_certificate_is_refused_and_the_loaded_one_kept() {
    let pki = Pki::new();
    let acceptor = Acceptor::load("test", pki.files(false), Protocol::Http2).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = acceptor.clone();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let serving = serving.clone();
            // Hold the connection until the client has read the handshake.
            tokio::spawn(async move {
                let _held = serving.handshake(stream, peer).await;
                tokio::time::sleep(CALL_LIMIT).await;
            });
        }
    });
    // A key that does not belong to the certificate, then a file that is no certificate.
    let (_, other_key) = leaf(&pki.issuer, 3, true);
    replace(&pki.path("tls.key"), &other_key);
    assert!(!acceptor.reload(), "a mismatched key was taken");
    replace(&pki.path("tls.crt"), "not a certificate");
    assert!(!acceptor.reload(), "a non-certificate was taken");
    assert_eq!(served_certificate(addr, &pki).await, der(&pki.server_pem));
    let renewed = pki.renew_server(4);
    assert!(acceptor.reload(), "a good pair was refused");
    assert!(!acceptor.reload(), "an unchanged pair counts as new");
    assert_eq!(served_certificate(addr, &pki).await, der(&renewed));
}

#[tokio::test]
async fn intake_over_tls_takes_a_notification() {
    let (h, pki) = (SimHarness::start().await, Pki::new());
    let gateway = start(
        &h,
        vec![
            var("INTAKE_TLS_CERT_PATH", &pki.path("tls.crt")),
            var("INTAKE_TLS_KEY_PATH", &pki.path("tls.key")),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let url = format!(
        "https://localhost:{}/trustly/notifications",
        gateway.intake.port()
    );
    let response = client
        .post(url)
        .body(signed("credit", "9700000001"))
        .send()
        .await
        .expect("post over TLS");
    assert_eq!(response.status().as_u16(), 200);
    let answer = response.text().await.unwrap();
    assert!(answer.contains(r#""status":"OK""#), "{answer}");
    let plaintext = reqwest::Client::new()
        .post(format!("http://{}/trustly/notifications", gateway.intake))
        .body(signed("credit", "9700000002"))
        .send()
        .await;
    assert!(
        plaintext.is_err(),
        "plaintext intake answered: {plaintext:?}"
    );
}

#[tokio::test]
async fn the_ops_port_over_mtls_answers_a_client_with_a_certificate_only() {
    let (h, pki) = (SimHarness::start().await, Pki::new());
    let gateway = start(
        &h,
        vec![
            var("OPS_TLS_CERT_PATH", &pki.path("tls.crt")),
            var("OPS_TLS_KEY_PATH", &pki.path("tls.key")),
            var("OPS_TLS_CLIENT_CA_PATH", &pki.path("ca.crt")),
        ],
    )
    .await;
    let url = format!("https://localhost:{}/healthz", gateway.ops.port());
    let ca = || reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
    let identity = format!("{}{}", pki.client_pem, pki.client_key_pem);
    let with_cert = reqwest::Client::builder()
        .tls_certs_only([ca()])
        .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer = with_cert.get(&url).send().await.expect("healthz over mTLS");
    assert_eq!(answer.status().as_u16(), 200);
    let anonymous = reqwest::Client::builder()
        .tls_certs_only([ca()])
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await;
    assert!(
        anonymous.is_err(),
        "no client certificate, answered: {anonymous:?}"
    );
}
