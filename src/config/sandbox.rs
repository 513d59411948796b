//! The sandbox section: on or off, and where its in-process simulator listens. The sandbox's
//! fixed credentials live here too; the Trustly section uses them when nothing else is set.

use std::net::SocketAddr;

use super::*;

/// `1`/`true`: run on embedded defaults against an in-process simulator: the PUBLICLY KNOWN test
/// merchant key of `src/trustly/keys/published/`, sandbox credentials. Never with environment `live`.
pub const ENV_SANDBOX: &str = "TRUSTLY_SIDECAR_SANDBOX";
/// Where the sandbox's in-process Trustly simulator listens (its JSON-RPC API and admin API); used
/// only with `--sandbox`. Unset: `127.0.0.1:8900`, the same fixed address as a standalone
/// `trustly-sim`, so documented admin commands work; `127.0.0.1:0` picks a free port.
pub const ENV_SANDBOX_SIMULATOR_LISTEN: &str = "TRUSTLY_SIDECAR_SANDBOX_SIMULATOR_LISTEN";
pub const DEFAULT_SANDBOX_SIMULATOR_LISTEN: &str = "127.0.0.1:8900";

/// Where the sandbox's merchant key comes from, as the startup log says it.
pub const SANDBOX_KEY_SOURCE: &str =
    "src/trustly/keys/published/merchant-test-private.pem (PUBLICLY KNOWN, sandbox)";

/// Username and password the sandbox uses with the built-in simulator.
pub const SANDBOX_USERNAME: &str = "sandbox";
pub const SANDBOX_PASSWORD: &str = "sandbox";

/// The sandbox.
#[derive(Clone, Debug)]
pub struct Sandbox {
    pub enabled: bool,
    /// Where the sandbox's simulator listens (unused outside the sandbox).
    pub simulator_listen: SocketAddr,
}

impl Sandbox {
    /// Whether the sandbox is on (the other sections need that even when the simulator's address
    /// is invalid), and the section.
    pub(super) fn read(r: &mut Reader<'_>) -> (bool, Option<Self>) {
        let enabled = r.flag(ENV_SANDBOX, false);
        let simulator_listen = r.socket_addr(
            ENV_SANDBOX_SIMULATOR_LISTEN,
            DEFAULT_SANDBOX_SIMULATOR_LISTEN,
        );
        let section = simulator_listen.map(|simulator_listen| Self {
            enabled,
            simulator_listen,
        });
        (enabled, section)
    }
}
