//! The gRPC section: where the API listens, the bearer token it asks for, its TLS, and where the
//! ops endpoints listen beside it (with their own optional TLS).

use std::net::SocketAddr;

use super::{tls::Vars, *};
use crate::ops::tls::{Protocol, TlsFiles};

/// Where the gRPC API listens. Unset: loopback only, because the application is in the same pod.
/// Any non-loopback address requires a bearer token (see `ENV_GRPC_TOKEN_PATH`) and TLS (or
/// `ENV_GRPC_ALLOW_PLAINTEXT`; not in sandbox mode).
pub const ENV_GRPC_LISTEN: &str = "TRUSTLY_SIDECAR_GRPC_LISTEN";
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:50051";
/// Where `/healthz`, `/readyz` and `/metrics` are served. Unset: loopback; Kubernetes probes and
/// Prometheus need `0.0.0.0:9464` (the Helm chart sets it).
pub const ENV_OPS_LISTEN: &str = "TRUSTLY_SIDECAR_OPS_LISTEN";
pub const DEFAULT_OPS_LISTEN: &str = "127.0.0.1:9464";
/// Path to a file holding the bearer token every gRPC call must carry (`authorization: Bearer
/// <token>`). Unset: no token, allowed only on a loopback gRPC address.
pub const ENV_GRPC_TOKEN_PATH: &str = "TRUSTLY_SIDECAR_GRPC_TOKEN_PATH";
/// PEM certificate chain (leaf first) the gRPC API serves TLS with; reloaded when it changes.
/// Set with `ENV_GRPC_TLS_KEY_PATH`. Unset: plaintext, refused on a non-loopback address unless
/// `ENV_GRPC_ALLOW_PLAINTEXT`.
pub const ENV_GRPC_TLS_CERT_PATH: &str = "TRUSTLY_SIDECAR_GRPC_TLS_CERT_PATH";
/// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
pub const ENV_GRPC_TLS_KEY_PATH: &str = "TRUSTLY_SIDECAR_GRPC_TLS_KEY_PATH";
/// PEM CA certificate(s): set, every gRPC client must present a certificate they signed (mTLS).
pub const ENV_GRPC_TLS_CLIENT_CA_PATH: &str = "TRUSTLY_SIDECAR_GRPC_TLS_CLIENT_CA_PATH";
/// `true`: serve plaintext gRPC on a non-loopback address (behind a mesh that encrypts, e.g.
/// with mTLS). Default `false`.
pub const ENV_GRPC_ALLOW_PLAINTEXT: &str = "TRUSTLY_SIDECAR_GRPC_ALLOW_PLAINTEXT";
/// TLS certificate chain of the ops endpoints (optional; with `ENV_OPS_TLS_KEY_PATH`).
pub const ENV_OPS_TLS_CERT_PATH: &str = "TRUSTLY_SIDECAR_OPS_TLS_CERT_PATH";
/// Private key of the ops endpoints' certificate.
pub const ENV_OPS_TLS_KEY_PATH: &str = "TRUSTLY_SIDECAR_OPS_TLS_KEY_PATH";
/// CA certificate(s) ops clients (Prometheus) must present a certificate from (mTLS).
pub const ENV_OPS_TLS_CLIENT_CA_PATH: &str = "TRUSTLY_SIDECAR_OPS_TLS_CLIENT_CA_PATH";

const GRPC_TLS: Vars = Vars {
    cert: ENV_GRPC_TLS_CERT_PATH,
    key: ENV_GRPC_TLS_KEY_PATH,
    client_ca: ENV_GRPC_TLS_CLIENT_CA_PATH,
};
const OPS_TLS: Vars = Vars {
    cert: ENV_OPS_TLS_CERT_PATH,
    key: ENV_OPS_TLS_KEY_PATH,
    client_ca: ENV_OPS_TLS_CLIENT_CA_PATH,
};

/// The gRPC API and the ops endpoints.
#[derive(Clone, Debug)]
pub struct Grpc {
    pub listen: SocketAddr,
    pub ops_listen: SocketAddr,
    /// The bearer token gRPC callers must present, if any.
    pub token: Option<Secret<String>>,
    /// The gRPC API's TLS files; none: plaintext.
    pub tls: Option<TlsFiles>,
    /// The ops endpoints' TLS files; none: plaintext.
    pub ops_tls: Option<TlsFiles>,
}

impl Grpc {
    pub(super) fn read(r: &mut Reader<'_>, sandbox: bool) -> Option<Self> {
        let listen = r.socket_addr(ENV_GRPC_LISTEN, DEFAULT_GRPC_LISTEN);
        let ops_listen = r.socket_addr(ENV_OPS_LISTEN, DEFAULT_OPS_LISTEN);
        let token = r.get(ENV_GRPC_TOKEN_PATH).and_then(|path| {
            let token = r.file(ENV_GRPC_TOKEN_PATH, &path, std::fs::read_to_string(&path))?;
            if token.trim().is_empty() {
                r.invalid(ENV_GRPC_TOKEN_PATH, format!("token file {path} is empty"));
                return None;
            }
            Some(Secret::new(token.trim().to_owned()))
        });
        if let Some(addr) = listen
            && !addr.ip().is_loopback()
            && token.is_none()
        {
            r.invalid(
                ENV_GRPC_LISTEN,
                format!(
                    "{addr} is not loopback: set {} so every call must carry a bearer token",
                    settings::named(ENV_GRPC_TOKEN_PATH)
                ),
            );
        }
        let tls = tls::read(r, &GRPC_TLS, Protocol::Http2);
        let allow_plaintext = r.flag(ENV_GRPC_ALLOW_PLAINTEXT, false);
        if let Some(addr) = listen
            && !addr.ip().is_loopback()
            && !tls.requested
            && !allow_plaintext
            && !sandbox
        {
            r.invalid(
                ENV_GRPC_LISTEN,
                format!(
                    "{addr} is not loopback: set {} and {} so the token travels encrypted, or \
                     {}=true behind a mesh that encrypts",
                    settings::named(ENV_GRPC_TLS_CERT_PATH),
                    settings::named(ENV_GRPC_TLS_KEY_PATH),
                    settings::named(ENV_GRPC_ALLOW_PLAINTEXT)
                ),
            );
        }
        let ops_tls = tls::read(r, &OPS_TLS, Protocol::Http1);
        Some(Self {
            listen: listen?,
            ops_listen: ops_listen?,
            token,
            tls: tls.files,
            ops_tls: ops_tls.files,
        })
    }
}
