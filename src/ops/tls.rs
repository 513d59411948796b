//! TLS for the sidecar's listeners (gRPC, notification intake, ops): a certificate and key from
//! PEM files, optionally a client CA (mTLS: every client must present a certificate it signed,
//! refused during the handshake otherwise). The files are re-read when they change (cert-manager
//! renews a mounted Secret in place): a new set is used only once it loads as a whole; a bad one
//! is refused loudly and the previous one kept. Each connection's handshake runs in its own task
//! with a timeout, so a slow client never holds up the others.
//!
//! Knows nothing of gRPC or HTTP beyond the ALPN protocol a listener speaks.

use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use parking_lot::RwLock;
use rustls::{
    RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::http_server::{ACCEPT_ERROR_BACKOFF, one_connection_failed};

/// Time a client has to complete the TLS handshake after connecting. A handshake is two round
/// trips and a signature; 10 s covers a congested link many times over and closes silent
/// connections that would otherwise hold a handshake slot.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// gRPC handshakes in progress at once. Each holds a socket and a few KiB until it completes or
/// [`HANDSHAKE_TIMEOUT`] ends it; at the cap the listener stops accepting (clients wait in the
/// kernel's backlog), which bounds descriptors and memory during a connection flood.
pub const MAX_PENDING_HANDSHAKES: usize = 1024;

/// Handshaken gRPC connections waiting for the server to take them. The server takes each at
/// once; 64 only smooths bursts, and a full queue pauses handshakes rather than growing.
const INCOMING_QUEUE: usize = 64;

/// The PEM files of one listener's TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first (`tls.crt` of a kubernetes.io/tls Secret).
    pub cert: PathBuf,
    /// Its private key: PKCS#8, PKCS#1 or SEC1 (`tls.key`).
    pub key: PathBuf,
    /// CA certificates client certificates must chain to (`ca.crt`); set: mTLS.
    pub client_ca: Option<PathBuf>,
}

/// What a listener speaks, announced with ALPN (gRPC clients such as grpc-go require `h2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http2,
    Http1,
}

impl Protocol {
    fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            Self::Http2 => vec![b"h2".to_vec()],
            Self::Http1 => vec![b"http/1.1".to_vec()],
        }
    }
}

/// Why a set of TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("file {path}: no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("file {path}: no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: PathBuf },
    #[error("client CA file {path}: {message}")]
    ClientCa { path: PathBuf, message: String },
    #[error("certificate and key: {0}")]
    Pair(#[source] rustls::Error),
}

/// Checks that `files` load as a whole (for the configuration, before anything is bound).
pub fn check(files: &TlsFiles, protocol: Protocol) -> Result<(), Error> {
    build(files, &Contents::read(files)?, protocol).map(drop)
}

/// The bytes of the files as last read, to notice a change.
#[derive(Clone, PartialEq, Eq)]
struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Contents {
    fn read(files: &TlsFiles) -> Result<Self, Error> {
        Ok(Self {
            cert: read(&files.cert)?,
            key: read(&files.key)?,
            client_ca: files.client_ca.as_deref().map(read).transpose()?,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.into(),
        source,
    })
}

/// The aws-lc-rs provider, named rather than taken from the process default (which is ambiguous
/// when several providers are compiled in).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server configuration of `contents`: the chain and key (which must match), the client
/// verifier when a client CA is given, and the ALPN protocol.
fn build(
    files: &TlsFiles,
    contents: &Contents,
    protocol: Protocol,
) -> Result<Arc<ServerConfig>, Error> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&contents.cert)
        .collect::<Result<_, _>>()
        .map_err(|_| Error::NoCertificate {
            path: files.cert.clone(),
        })?;
    if chain.is_empty() {
        return Err(Error::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&contents.key).map_err(|_| Error::NoKey {
        path: files.key.clone(),
    })?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(Error::Pair)?;
    let builder = match (&files.client_ca, &contents.client_ca) {
        (Some(path), Some(pem)) => {
            let verifier = client_verifier(pem).map_err(|message| Error::ClientCa {
                path: path.clone(),
                message,
            })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(Error::Pair)?;
    config.alpn_protocols = protocol.alpn();
    Ok(Arc::new(config))
}

/// Requires a client certificate chaining to one of the CAs in `pem`.
fn client_verifier(
    pem: &[u8],
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not PEM: {e}"))?;
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    if roots.is_empty() {
        return Err("no PEM certificate".into());
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| e.to_string())
}

/// One listener's TLS: the configuration in use, replaced when the files change.
#[derive(Clone)]
pub struct Acceptor {
    inner: Arc<Inner>,
}

struct Inner {
    /// The listener, for logs: "gRPC", "notification intake", "ops".
    listener: &'static str,
    files: TlsFiles,
    protocol: Protocol,
    config: RwLock<Arc<ServerConfig>>,
    /// What the files held at the last check (loaded or refused), so a change is seen once.
    seen: parking_lot::Mutex<Contents>,
}

impl Acceptor {
    /// Loads `files` for the listener named `listener`.
    pub fn load(
        listener: &'static str,
        files: TlsFiles,
        protocol: Protocol,
    ) -> Result<Self, Error> {
        let contents = Contents::read(&files)?;
        let config = build(&files, &contents, protocol)?;
        Ok(Self {
            inner: Arc::new(Inner {
                listener,
                files,
                protocol,
                config: RwLock::new(config),
                seen: parking_lot::Mutex::new(contents),
            }),
        })
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.inner.files.client_ca.is_some()
    }

    /// The TLS handshake on `stream`, within [`HANDSHAKE_TIMEOUT`]; `None` (logged at debug) if it
    /// fails. With mTLS the client's identity is logged, never anything else of its certificate.
    pub async fn handshake(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<TlsStream<TcpStream>> {
        let config = Arc::clone(&self.inner.config.read());
        let listener = self.inner.listener;
        let accepted =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(stream)).await;
        match accepted {
            Ok(Ok(tls)) => {
                if let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                    let client = client_identity(cert);
                    info!(listener, %peer, %client, "mTLS client connected");
                }
                Some(tls)
            }
            Ok(Err(error)) => {
                debug!(listener, %peer, %error, "TLS handshake failed");
                None
            }
            Err(_elapsed) => {
                debug!(listener, %peer, "TLS handshake timed out");
                None
            }
        }
    }

    /// Re-reads the files; a changed set that loads replaces the one in use, one that does not is
    /// refused (logged) and the previous one kept. Returns whether a new set was taken.
    pub fn reload(&self) -> bool {
        let (listener, cert) = (self.inner.listener, self.inner.files.cert.display());
        let contents = match Contents::read(&self.inner.files) {
            Ok(contents) => contents,
            Err(error) => {
                // Mid-swap or gone: keep what is loaded.
                warn!(listener, %error, "TLS files unreadable; keeping the loaded certificate");
                return false;
            }
        };
        {
            let mut seen = self.inner.seen.lock();
            if *seen == contents {
                return false;
            }
            *seen = contents.clone();
        }
        match build(&self.inner.files, &contents, self.inner.protocol) {
            Ok(config) => {
                *self.inner.config.write() = config;
                info!(listener, %cert, "TLS certificate reloaded");
                true
            }
            Err(error) => {
                error!(listener, %cert, %error, "NEW TLS CERTIFICATE REFUSED; still serving the previous one");
                false
            }
        }
    }

    /// Checks the files every `interval` until `shutdown`.
    pub async fn watch(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = shutdown.cancelled() => return,
            }
            self.reload();
        }
    }
}

/// The connections of `listener`, each after its handshake (run concurrently, at most
/// [`MAX_PENDING_HANDSHAKES`] at once); failed handshakes are dropped. Accepting stops when the
/// stream is dropped.
pub fn incoming(
    listener: TcpListener,
    acceptor: Acceptor,
) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
    tokio::spawn(accept_loop(listener, acceptor, tx));
    ReceiverStream::new(rx)
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Acceptor,
    tx: mpsc::Sender<io::Result<TlsStream<TcpStream>>>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&pending).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => return,
            },
            () = tx.closed() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = tx.closed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Some(tls) = acceptor.handshake(stream, peer).await {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    drop(permit);
                });
            }
            Err(error) if one_connection_failed(&error) => debug!(%error, "accept failed"),
            Err(error) => {
                debug!(%error, "accept failed; backing off");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}

/// A client certificate's identity for the logs: its subject CN and its DNS and URI SANs, e.g.
/// `CN=payments, DNS:payments.shop.svc`. Nothing else of the certificate.
pub fn client_identity(cert: &CertificateDer<'_>) -> String {
    let Ok(cert) = webpki::EndEntityCert::try_from(cert) else {
        return "(unparsable certificate)".into();
    };
    let mut parts = Vec::new();
    if let Some(cn) = common_name(cert.subject()) {
        parts.push(format!("CN={cn}"));
    }
    parts.extend(cert.valid_dns_names().map(|name| format!("DNS:{name}")));
    parts.extend(cert.valid_uri_names().map(|uri| format!("URI:{uri}")));
    if parts.is_empty() {
        return "(no CN or SAN)".into();
    }
    // Printable as one log field whatever the certificate holds.
    parts.join(", ").escape_debug().to_string()
}

/// The DER encoding of the commonName attribute type, 2.5.4.3.
const COMMON_NAME_OID: &[u8] = &[0x55, 0x04, 0x03];

/// The first commonName of a Name's content (a sequence of SETs of {type, value} SEQUENCEs).
fn common_name(mut name: &[u8]) -> Option<String> {
    while !name.is_empty() {
        let (rdn, rest) = der_value(name)?;
        name = rest;
        let mut attributes = rdn;
        while !attributes.is_empty() {
            let (attribute, rest) = der_value(attributes)?;
            attributes = rest;
            let (oid, value) = der_value(attribute)?;
            if oid == COMMON_NAME_OID {
                let (text, _) = der_value(value)?;
                return Some(String::from_utf8_lossy(text).into_owned());
            }
        }
    }
    None
}

/// The content of the DER element at the start of `input` (any tag) and what follows it; `None`
/// if it is truncated or longer than 64 KiB.
fn der_value(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81 => rest
            .split_first()
            .map(|(&b, rest)| (usize::from(b), rest))?,
        0x82 => {
            let (bytes, rest) = rest.split_at_checked(2)?;
            (usize::from(u16::from_be_bytes([bytes[0], bytes[1]])), rest)
        }
        _ => return None,
    };
    rest.split_at_checked(length)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn common_name_is_found_among_other_attributes_and_truncation_is_none() {
        // SET{SEQ{OID 2.5.4.6, PrintableString "SE"}}, SET{SEQ{OID 2.5.4.3, UTF8String "api"}}
        let name = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'S', b'E', 0x31,
            0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, b'a', b'p', b'i',
        ];
        assert_eq!(common_name(&name).as_deref(), Some("api"));
        assert_eq!(common_name(&name[..20]), None);
        assert_eq!(common_name(&name[..13]), None);
    }
}
