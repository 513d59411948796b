//! The sandbox boot: an in-process Trustly simulator with the publicly known test keys, and the
//! banner naming every endpoint. The only production-path module that knows the simulator; the
//! rest of `app` sees a [`Sandbox`] and a Trustly URL with a verifier.

use std::{net::SocketAddr, sync::Arc};

use rust_decimal::Decimal;
use tracing::{info, warn};
use url::Url;

use crate::{
    config::{self, Config},
    secret::Secret,
    sim::{self, RetryPolicy, SimConfig, Simulator},
    trustly::{self, sign::Verifier},
};

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sandbox simulator")]
    Simulator(#[from] sim::Error),
    #[error(
        "cannot listen for the sandbox simulator on {addr} (move it with --sandbox-simulator-listen or {})",
        config::ENV_SANDBOX_SIMULATOR_LISTEN
    )]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("trustly client")]
    Trustly(#[from] trustly::Error),
}

/// The running in-process simulator of `--sandbox`.
pub struct Sandbox {
    simulator: Simulator,
}

impl Sandbox {
    /// Starts the sandbox's simulator with the PUBLICLY KNOWN "Trustly" test key (the one
    /// `trustly-sim` and `trustly-notify` use), trusting our merchant key; returns it with a
    /// verifier for its answers.
    pub async fn start(config: &Config) -> Result<(Self, Arc<dyn Verifier>), Error> {
        let key = sim::keys::simulator_private_key();
        let public = rsa::RsaPublicKey::from(&key);
        let trustly = &config.trustly;
        let backend = trustly.signer.backend();
        let simulator = Simulator::start(SimConfig {
            listen: config.sandbox.simulator_listen,
            merchant_public_key: trustly.merchant_public_key.clone(),
            private_key: Secret::new(key),
            username: trustly.username.clone(),
            password: trustly.password.clone(),
            backend,
            retry: RetryPolicy::default(),
            poll_window: sim::DEFAULT_POLL_WINDOW,
            initial_balances: vec![
                ("EUR".into(), Decimal::new(10_000_000, 2)),
                ("SEK".into(), Decimal::new(100_000_000, 2)),
            ],
        })
        .await
        .map_err(|error| match error {
            sim::Error::Bind { addr, source } => Error::Listen { addr, source },
            other => Error::Simulator(other),
        })?;
        let verifier = backend
            .verifying()
            .verifier(public)
            .map_err(trustly::Error::Signing)?;
        Ok((Self { simulator }, verifier))
    }

    /// The simulator's Trustly API endpoint.
    pub fn api_url(&self) -> Url {
        self.simulator.api_url()
    }

    /// The simulator's admin API.
    pub fn admin_url(&self) -> String {
        self.simulator.admin_url()
    }

    pub async fn shutdown(self) {
        self.simulator.shutdown().await;
    }

    /// The sandbox's banner: every real endpoint, the keys, and commands to try. Ends with the
    /// "sandbox ready" marker (scripts and tests wait for it). Short lines: it must fit a screen.
    pub fn banner(
        &self,
        grpc: SocketAddr,
        intake: SocketAddr,
        path: &str,
        ops: Option<SocketAddr>,
    ) {
        let intake_url = format!("http://{intake}{path}");
        let admin = self.admin_url();
        info!(
            "sandbox: an in-process Trustly simulator; PUBLICLY KNOWN test keys (src/trustly/keys/published)"
        );
        info!("  gRPC              {grpc}");
        info!("  intake            {intake_url}");
        if let Some(ops) = ops {
            info!("  ops               http://{ops}/metrics (/healthz, /readyz)");
        }
        info!("  simulator API     {}", self.api_url());
        info!("  simulator admin   {admin} (console and admin API: a development tool, no auth)");
        info!("  try: grpcurl -plaintext {grpc} list");
        if intake_url == format!("http://{}{path}", config::DEFAULT_NOTIFICATION_LISTEN) {
            info!("  try: cargo run --release --bin trustly-notify   (posts a signed test credit)");
        } else {
            info!("  try: cargo run --release --bin trustly-notify -- --url {intake_url}");
        }
        info!("  try: curl {admin}/orders");
        if !self.simulator.addr().ip().is_loopback() {
            warn!(
                "the simulator's console and admin API are not on loopback: anyone who reaches them can drive it"
            );
        }
        info!("sandbox ready");
    }
}
