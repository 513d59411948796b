//! The gRPC section: where the API listens, the bearer token it asks for, and where the ops
//! endpoints listen beside it.

use std::net::SocketAddr;

use super::*;

/// Where the gRPC API listens. Unset: loopback only, because the application is in the same pod.
/// Any non-loopback address requires a bearer token (see `ENV_GRPC_TOKEN_PATH`).
pub const ENV_GRPC_LISTEN: &str = "TRUSTLY_SIDECAR_GRPC_LISTEN";
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:50051";
/// Where `/healthz`, `/readyz` and `/metrics` are served. Unset: loopback; Kubernetes probes and
/// Prometheus need `0.0.0.0:9464` (the Helm chart sets it).
pub const ENV_OPS_LISTEN: &str = "TRUSTLY_SIDECAR_OPS_LISTEN";
pub const DEFAULT_OPS_LISTEN: &str = "127.0.0.1:9464";
/// Path to a file holding the bearer token every gRPC call must carry (`authorization: Bearer
/// <token>`). Unset: no token, allowed only on a loopback gRPC address.
pub const ENV_GRPC_TOKEN_PATH: &str = "TRUSTLY_SIDECAR_GRPC_TOKEN_PATH";

/// The gRPC API and the ops endpoints.
#[derive(Clone, Debug)]
pub struct Grpc {
    pub listen: SocketAddr,
    pub ops_listen: SocketAddr,
    /// The bearer token gRPC callers must present, if any.
    pub token: Option<Secret<String>>,
}

impl Grpc {
    pub(super) fn read(r: &mut Reader<'_>) -> Option<Self> {
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
        Some(Self {
            listen: listen?,
            ops_listen: ops_listen?,
            token,
        })
    }
}
