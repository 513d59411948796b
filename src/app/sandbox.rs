//! The sandbox boot: an in-process Trustly simulator with the publicly known test keys, and the
//! banner naming every endpoint. The only production-path module that knows the simulator.

use std::net::SocketAddr;

use rust_decimal::Decimal;
use tracing::info;

use super::RunError;
use crate::{
    config::{self, Config},
    secret::Secret,
    sim::{self, RetryPolicy, SimConfig, Simulator},
    trustly,
};

/// Starts the sandbox's simulator with the PUBLICLY KNOWN "Trustly" test key (the one
/// `trustly-sim` and `trustly-notify` use), trusting our merchant key; returns it with a verifier
/// for its answers.
pub(super) async fn start_sandbox_simulator(
    config: &Config,
) -> Result<(Simulator, std::sync::Arc<dyn trustly::sign::Verifier>), RunError> {
    let key = sim::keys::simulator_private_key();
    let public = rsa::RsaPublicKey::from(&key);
    let backend = config.signer.backend();
    let simulator = Simulator::start(SimConfig {
        listen: config.sandbox_simulator_listen,
        merchant_public_key: config.merchant_public_key.clone(),
        private_key: Secret::new(key),
        username: config.username.clone(),
        password: config.password.clone(),
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
        sim::Error::Bind { addr, source } => RunError::SimulatorListen { addr, source },
        other => RunError::Simulator(other),
    })?;
    let verifier = backend.verifier(public).map_err(trustly::Error::Signing)?;
    Ok((simulator, verifier))
}

/// The sandbox's banner: every real endpoint, the keys, and commands to try. Ends with the
/// "sandbox ready" marker (scripts and tests wait for it). Short lines: it must fit a screen.
pub(super) fn sandbox_banner(
    simulator: &Simulator,
    grpc: SocketAddr,
    intake: SocketAddr,
    path: &str,
    ops: Option<SocketAddr>,
) {
    let intake_url = format!("http://{intake}{path}");
    let admin = simulator.admin_url();
    info!("sandbox: an in-process Trustly simulator; PUBLICLY KNOWN test keys (src/sim/keys)");
    info!("  gRPC              {grpc}");
    info!("  intake            {intake_url}");
    if let Some(ops) = ops {
        info!("  ops               http://{ops}/metrics (/healthz, /readyz)");
    }
    info!("  simulator API     {}", simulator.api_url());
    info!("  simulator admin   {admin} (a development tool: no auth)");
    info!("  try: grpcurl -plaintext {grpc} list");
    if intake_url == format!("http://{}{path}", config::DEFAULT_NOTIFICATION_LISTEN) {
        info!("  try: cargo run --release --bin trustly-notify   (posts a signed test credit)");
    } else {
        info!("  try: cargo run --release --bin trustly-notify -- --url {intake_url}");
    }
    info!("  try: curl {admin}/orders");
    info!("sandbox ready");
}
