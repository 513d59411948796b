//! `trustly-sim`: a faithful, stateful stand-in for Trustly's merchant API, used by every
//! integration test, benchmark and the sidecar's `--sandbox` mode.
//!
//! - `api`: the JSON-RPC endpoint `/api/1` (signature 636, credentials 616, UUID replay/688,
//!   MessageID 637, validation, every method of spec §5).
//! - `state`: orders, accounts, balances, withdrawals, ledger; `scenario`: what happens after the
//!   API call (complete, cancel, fail, D1, answers to `debit`/`kyc`).
//! - `notify`: signed notifications, resent with growing intervals until a valid signed answer,
//!   or held for release by hand (`HoldNotifications`).
//! - `checkout`: the end user's checkout page and its choices, with "Set order options".
//! - `http`: the server, fault injection, the console and the admin API (`admin`).
//! - `keys`: the PUBLICLY KNOWN test key pair of the sandbox, `trustly-sim` and `trustly-notify`.
//!
//! It uses the wire core (`trustly::`) for everything on the wire, and nothing of the sidecar.

pub mod admin;
pub mod api;
pub mod checkout;
pub mod clock;
mod http;
// The publicly known test pair lives with the other keys (config refuses it in live).
pub use crate::trustly::keys::published as keys;
pub mod notify;
pub mod scenario;
pub mod state;
pub mod validate;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use parking_lot::Mutex;
use rsa::{RsaPrivateKey, RsaPublicKey};
use rust_decimal::Decimal;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, error};

pub use http::{Fault, FaultKind};
pub use notify::RetryPolicy;

use crate::{
    secret::Secret,
    trustly::{
        sign::{Backend, CryptoPool, SignError, Signer, Verifier},
        wire::SignedPart,
    },
};

/// Everything the simulator needs to start.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Where to listen; `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// Verifies the merchant's requests and notification answers.
    pub merchant_public_key: RsaPublicKey,
    /// Signs the simulator's responses and notifications (Trustly's private key, simulated).
    pub private_key: Secret<RsaPrivateKey>,
    pub username: String,
    pub password: Secret<String>,
    pub backend: Backend,
    pub retry: RetryPolicy,
    /// Merchant balances at start, per currency.
    pub initial_balances: Vec<(String, Decimal)>,
    /// Balance, and GetWithdrawals per order, are answered at most once per this window, as
    /// Trustly allows (zero: no limit, for tests that poll state changes).
    pub poll_window: Duration,
}

/// Trustly's polling limit for Balance and GetWithdrawals per order (spec §5.13, §5.14).
pub const DEFAULT_POLL_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up the signing backend")]
    Crypto(#[from] SignError),
    #[error("cannot build the notification http client")]
    Http(#[from] reqwest::Error),
}

/// Shared by every request handler and delivery task.
pub struct Sim {
    pub(crate) config: SimConfig,
    pub(crate) state: Mutex<state::State>,
    pub(crate) signer: Arc<dyn Signer>,
    pub(crate) merchant: Arc<dyn Verifier>,
    pub(crate) crypto: CryptoPool,
    pub(crate) http: reqwest::Client,
    pub(crate) faults: Mutex<Vec<Fault>>,
    /// `http://host:port`, for the checkout URLs the API returns.
    pub(crate) base_url: String,
    pub(crate) tasks: TaskTracker,
    pub(crate) shutdown: CancellationToken,
}

impl Sim {
    /// Signs a plaintext with the simulator's key (inline only when cheap: `CryptoPool::run`).
    pub(crate) async fn sign(&self, plaintext: String) -> String {
        let signer = Arc::clone(&self.signer);
        match self
            .crypto
            .run(signer.inline(), move || signer.sign(plaintext.as_bytes()))
            .await
        {
            Ok(Ok(signature)) => signature,
            Ok(Err(e)) | Err(e) => {
                // An unverifiable answer is what a broken Trustly would send; never panic.
                error!(error = %e, "simulator could not sign");
                String::new()
            }
        }
    }

    /// Checks a request or an answer against the merchant's key (inline only when cheap).
    pub(crate) async fn verify_merchant(&self, part: SignedPart) -> bool {
        let merchant = Arc::clone(&self.merchant);
        self.crypto
            .run(merchant.inline(), move || part.verify(merchant.as_ref()))
            .await
            .unwrap_or(false)
    }
}

/// A running simulator. Dropping it does not stop it; call [`Simulator::shutdown`].
pub struct Simulator {
    addr: SocketAddr,
    sim: Arc<Sim>,
}

impl Simulator {
    /// Binds and starts serving in the background.
    pub async fn start(config: SimConfig) -> Result<Self, Error> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let sim = Arc::new(Sim {
            signer: config.backend.signer(config.private_key.expose().clone())?,
            merchant: config
                .backend
                .verifier(config.merchant_public_key.clone())?,
            crypto: CryptoPool::per_core(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            state: Mutex::new(state::State::new(&config.initial_balances)),
            faults: Mutex::new(Vec::new()),
            base_url: format!("http://{addr}"),
            tasks: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            config,
        });
        sim.tasks.spawn(http::serve(Arc::clone(&sim), listener));
        // Debug: its owner (trustly-sim, the sandbox) announces the URLs.
        debug!(%addr, "trustly simulator listening (api /api/1, admin /admin)");
        Ok(Self { addr, sim })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The JSON-RPC endpoint, `http://addr/api/1`.
    pub fn api_url(&self) -> url::Url {
        // invariant: built from a SocketAddr, always a valid URL.
        #[allow(clippy::expect_used)]
        url::Url::parse(&format!("{}/api/1", self.sim.base_url)).expect("valid url")
    }

    /// The admin API root, `http://addr/admin`.
    pub fn admin_url(&self) -> String {
        format!("{}/admin", self.sim.base_url)
    }

    /// Stops accepting, cancels deliveries and waits for every task to end.
    pub async fn shutdown(self) {
        self.sim.shutdown.cancel();
        self.sim.tasks.close();
        self.sim.tasks.wait().await;
    }
}
