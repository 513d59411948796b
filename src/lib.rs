//! trustly-sidecar: a gRPC payment gateway for Trustly's merchant API.
//!
//! Component map (dependencies point inward; `trustly` knows nothing of gRPC or Redis):
//!
//! ```text
//!   config    flags + environment → validated Config (exit 64 on any error)
//!   grpc/     PaymentService, NotificationService: validation, conversion, the one
//!             error → Status map, auth
//!   notify    notification intake over HTTP: verify → dedupe → store → signed answer
//!   store/    the notification log: Redis Streams (shared, durable) or memory
//!   trustly/  wire core: canonical serialization, RSA sign/verify, keys, envelopes,
//!             typed methods, JSON-RPC client with outcome classification
//!   sim/      trustly-sim: a stateful Trustly stand-in (tests, benchmarks, sandbox)
//!   money     exact Amount / Currency (rust_decimal, never floats)
//!   secret    Secret<T>: never printed
//!   pb        generated protobuf types (used only by the gRPC layer)
//! ```

pub mod config;
pub mod grpc;
pub mod http_server;
pub mod metrics;
pub mod money;
pub mod monitor;
pub mod notify;
pub mod ops;
pub mod pb;
pub mod reload;
pub mod secret;
pub mod signal;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod trustly;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use rust_decimal::Decimal;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::{service::interceptor::InterceptedService, transport::Server};
use tracing::{debug, info};

use crate::{
    config::Config,
    grpc::{
        BearerToken, Payments,
        account::Accounts,
        convert::Defaults,
        notification::Notifications,
        payment::{AccountSettings, IdempotencySettings},
    },
    monitor::BalanceWatch,
    notify::{Deliveries, Delivery, Intake},
    pb::{
        account_service_server::AccountServiceServer,
        notification_service_server::NotificationServiceServer,
        payment_service_server::PaymentServiceServer,
    },
    reload::Reloader,
    secret::Secret,
    sim::{RetryPolicy, SimConfig, Simulator},
    store::{
        Store,
        accounts::{AccountCache, DetailsHasher},
        idempotency::Idempotency,
    },
    trustly::{
        Client, ClientConfig,
        sign::{CryptoPool, SwappableSigner},
    },
};

/// Largest gRPC request accepted. The biggest request (a Deposit with every attribute) is a few
/// KiB; 1 MiB is generous and bounds memory per call.
pub const MAX_GRPC_REQUEST_BYTES: usize = 1024 * 1024;
/// Largest gRPC response sent: ledgers and settlement reports follow the Trustly body limit.
pub const MAX_GRPC_RESPONSE_BYTES: usize =
    trustly::client::DEFAULT_MAX_RESPONSE_BYTES + 1024 * 1024;
/// Concurrent RPCs per HTTP/2 connection. Each RPC holds at most one RSA operation at a time and
/// waits on Trustly; 256 keeps one misbehaving client from monopolising the signer queue.
pub const MAX_CONCURRENT_RPCS_PER_CONNECTION: usize = 256;
/// Time an RPC may take beyond the Trustly timeout (signing and verifying, queueing for a core).
pub const RPC_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

/// Why the sidecar stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("trustly client")]
    Trustly(#[from] trustly::Error),
    #[error("sandbox simulator")]
    Simulator(#[from] sim::Error),
    #[error(
        "cannot listen for the sandbox simulator on {addr} (move it with --sandbox-simulator-listen or {})",
        config::ENV_SANDBOX_SIMULATOR_LISTEN
    )]
    SimulatorListen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("grpc reflection")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("grpc server")]
    Transport(#[from] tonic::transport::Error),
    #[error("notification store")]
    Store(#[from] store::Error),
}

/// A built gateway, ready to serve.
pub struct App {
    /// Watches the key and password files; taken by `run`.
    reloader: Option<Reloader>,
    payments: Payments,
    accounts: Accounts,
    notifications: Notifications,
    intake: Arc<Intake>,
    log: Store,
    token: BearerToken,
    rpc_timeout: Duration,
    balance_interval: Option<Duration>,
    /// The in-process simulator of `--sandbox`.
    simulator: Option<Simulator>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl App {
    /// Builds the Trustly client (and, in sandbox mode, starts the simulator it talks to).
    pub async fn build(config: Config) -> Result<Self, RunError> {
        // Everything (secrets redacted) for debugging; a short summary below at info.
        debug!(?config, "configuration loaded");
        let (mut trustly_url, mut verifier, mut simulator) = (
            config.trustly_url.clone(),
            config.trustly_verifier.clone(),
            None,
        );
        if config.sandbox {
            let (started, sim_verifier) = start_sandbox_simulator(&config).await?;
            trustly_url = started.api_url();
            verifier = sim_verifier;
            simulator = Some(started);
        }
        // The endpoint actually used: the simulator's in the sandbox.
        info!(
            environment = %config.environment,
            url = %trustly_url,
            signing = %config.signer.backend(),
            "trustly"
        );
        if !config.sandbox {
            // The sandbox's keys are named in its banner.
            info!(merchant_key = %config.private_key_source, "keys");
            info!(trustly_key = %config.trustly_key_source, "keys");
        }
        let mut client_config = ClientConfig::new(
            trustly_url,
            config.username.clone(),
            config.password.clone(),
        );
        client_config.connect_timeout = config.trustly_connect_timeout;
        client_config.request_timeout = config.trustly_timeout;
        let crypto = CryptoPool::per_core();
        // One signer for the client and intake, replaceable when the key file changes.
        let signer = Arc::new(SwappableSigner::new(config.signer.clone()));
        let client = Client::new(
            client_config,
            signer.clone(),
            verifier.clone(),
            crypto.clone(),
        )?;
        let reloader = Reloader {
            private_key_path: config.private_key_path.clone(),
            password_path: config.password_path.clone(),
            backend: config.signer.backend(),
            signer: Arc::clone(&signer),
            client: client.clone(),
            interval: config.reload_interval,
        };
        let (log, idempotency, account_cache) = match &config.redis_url {
            Some(url) => {
                let urls: Vec<String> = url
                    .expose()
                    .split(',')
                    .map(|u| u.trim().to_owned())
                    .collect();
                let conn = store::connection::connect(
                    &urls,
                    config.redis_cluster,
                    config.redis_ca_pem.as_deref(),
                    config.redis_timeout,
                )
                .await?;
                let log = Store::redis(
                    conn.clone(),
                    &config.redis_prefix,
                    config.notification_retention,
                    config.redis_timeout,
                );
                info!(prefix = %config.redis_prefix, "store: Redis (durable, shared by replicas)");
                let idempotency =
                    Idempotency::redis(conn.clone(), &config.redis_prefix, config.redis_timeout);
                let accounts = AccountCache::redis(
                    conn.clone(),
                    &config.redis_prefix,
                    config.redis_timeout,
                    config.notification_retention,
                );
                (log, idempotency, accounts)
            }
            None => {
                // The notification log, idempotency records and account cache.
                tracing::warn!(
                    "store: IN MEMORY, not durable; set {} in production",
                    config::ENV_REDIS_URL
                );
                (
                    Store::memory(),
                    Idempotency::memory(),
                    AccountCache::memory(),
                )
            }
        };
        let idempotency = IdempotencySettings {
            store: idempotency,
            // An attempt holds its key at most as long as the RPC may run.
            lease: config.trustly_timeout + RPC_TIMEOUT_MARGIN,
            retention: config.idempotency_retention,
        };
        let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
        let intake = Arc::new(Intake {
            path: config.notification_path.clone(),
            trustly: verifier,
            merchant: signer,
            crypto,
            store: log.clone(),
            decision_deadline: config.decision_deadline,
            decision_fallback: config.decision_fallback,
            accounts: account_cache.clone(),
        });
        let accounts = AccountSettings {
            cache: account_cache.clone(),
            hasher: DetailsHasher::new(*config.account_hash_secret.expose()),
            from_cache: config.register_account_from_cache,
        };
        let delivery = Delivery {
            ack_deadline: config.ack_deadline,
            max_deliveries: config.max_deliveries,
            heartbeat_interval: config.heartbeat_interval,
        };
        Ok(Self {
            reloader: Some(reloader),
            payments: Payments::new(
                client,
                config.username.clone(),
                Defaults {
                    notification_url: config.notification_url.clone(),
                },
                log.clone(),
                idempotency,
                accounts,
                BalanceWatch::new(&config.low_balance),
            )
            .with_poll_window(config.poll_window),
            accounts: Accounts::new(account_cache),
            notifications: Notifications::new(Deliveries::new(
                log.clone(),
                delivery,
                tasks.clone(),
                shutdown.clone(),
            )),
            intake,
            log,
            token: BearerToken::new(config.grpc_token.clone()),
            rpc_timeout: config.trustly_timeout + RPC_TIMEOUT_MARGIN,
            balance_interval: config.balance_interval,
            simulator,
            tasks,
            shutdown,
        })
    }

    /// The sandbox simulator's admin API, if this is a sandbox.
    pub fn simulator_admin_url(&self) -> Option<String> {
        self.simulator.as_ref().map(Simulator::admin_url)
    }
}

/// Starts the sandbox's simulator with the PUBLICLY KNOWN "Trustly" test key (the one
/// `trustly-sim` and `trustly-notify` use), trusting our merchant key; returns it with a verifier
/// for its answers.
async fn start_sandbox_simulator(
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
fn sandbox_banner(
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

/// The span of one gRPC call: every log line of the call carries the RPC and, once known, the
/// order's identifiers (recorded by the handlers). Never request fields beyond identifiers.
fn rpc_span(request: &http::Request<()>) -> tracing::Span {
    tracing::info_span!(
        "rpc",
        rpc = %request.uri().path(),
        orderid = tracing::field::Empty,
        messageid = tracing::field::Empty,
        notificationid = tracing::field::Empty,
        event_id = tracing::field::Empty,
    )
}

/// gRPC reflection over everything served: `trustly.v1`, the `google.rpc` error details its
/// errors carry, `grpc.health.v1` and reflection itself, each file with its imports. Served as
/// v1 and as v1alpha (which older stock tools, such as grpcurl 1.8 and grpcio-reflection, ask
/// for); both list the same services.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

/// The sockets the sidecar serves, bound before `run` (so tests can bind port 0).
pub struct Listeners {
    pub grpc: TcpListener,
    pub intake: TcpListener,
    /// `/healthz`, `/readyz`, `/metrics`; none in tests that do not need it.
    pub ops: Option<TcpListener>,
}

/// Serves gRPC, notification intake and the ops endpoints until `shutdown` resolves; then
/// readiness goes false, new calls are refused, and in-flight calls, streams and notifications
/// drain.
pub async fn run(
    app: App,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let Listeners { grpc, intake, ops } = listeners;
    let readiness = Arc::new(ops::Readiness::new(app.log.clone()));
    // The ops endpoints stop last, so /readyz answers 503 (not "connection refused") while the
    // rest drains.
    let (ops_stop, ops_tasks) = (CancellationToken::new(), TaskTracker::new());
    let mut ops_addr = None;
    if let Some(ops_listener) = ops {
        ops_addr = ops_listener.local_addr().ok();
        if let Some(addr) = ops_addr {
            info!(%addr, "ops endpoints listening (/healthz, /readyz, /metrics)");
        }
        let handler_readiness = Arc::clone(&readiness);
        ops_tasks.spawn(http_server::serve(
            ops_listener,
            move |req| ops::handle(Arc::clone(&handler_readiness), req),
            ops_stop.clone(),
            ops_tasks.clone(),
        ));
    }
    let addr = grpc.local_addr().ok();
    // The store must answer before anything reports SERVING.
    app.log.ping().await?;
    let intake_addr = intake.local_addr().ok();
    if let Some(addr) = intake_addr {
        info!(%addr, path = %app.intake.path, "notification intake listening");
    }
    let mut app = app;
    if let Some(reloader) = app.reloader.take() {
        app.tasks
            .spawn(reloader.run(signal::hangup(), app.shutdown.clone()));
    }
    if let Some(interval) = app.balance_interval {
        app.tasks.spawn(monitor::poll_balances(
            app.payments.clone(),
            app.log.clone(),
            interval,
            app.shutdown.clone(),
        ));
    }
    let handler_intake = Arc::clone(&app.intake);
    app.tasks.spawn(http_server::serve(
        intake,
        move |req| Arc::clone(&handler_intake).handle(req),
        app.shutdown.clone(),
        app.tasks.clone(),
    ));
    let (health_reporter, health) = tonic_health::server::health_reporter();
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let payments = PaymentServiceServer::new(app.payments.clone())
        .max_decoding_message_size(MAX_GRPC_REQUEST_BYTES)
        .max_encoding_message_size(MAX_GRPC_RESPONSE_BYTES);
    let accounts = AccountServiceServer::new(app.accounts.clone());
    let notifications = NotificationServiceServer::new(app.notifications.clone())
        .max_decoding_message_size(MAX_GRPC_REQUEST_BYTES)
        .max_encoding_message_size(MAX_GRPC_RESPONSE_BYTES);
    // Keys loaded, client built, store answering: serving.
    health_reporter
        .set_serving::<PaymentServiceServer<Payments>>()
        .await;
    health_reporter
        .set_serving::<NotificationServiceServer<Notifications>>()
        .await;
    health_reporter
        .set_serving::<AccountServiceServer<Accounts>>()
        .await;
    if let Some(addr) = addr {
        info!(%addr, "gRPC API listening (trustly.v1, grpc.health.v1, reflection)");
    }
    if let (Some(simulator), Some(grpc), Some(intake)) = (&app.simulator, addr, intake_addr) {
        sandbox_banner(simulator, grpc, intake, &app.intake.path, ops_addr);
    }
    readiness.set_serving(true);
    let stop = app.shutdown.clone();
    let draining = Arc::clone(&readiness);
    let result = Server::builder()
        .trace_fn(rpc_span)
        .timeout(app.rpc_timeout)
        .concurrency_limit_per_connection(MAX_CONCURRENT_RPCS_PER_CONNECTION)
        .add_service(health)
        .add_service(InterceptedService::new(reflection_v1, app.token.clone()))
        .add_service(InterceptedService::new(
            reflection_v1alpha,
            app.token.clone(),
        ))
        .add_service(InterceptedService::new(payments, app.token.clone()))
        .add_service(InterceptedService::new(notifications, app.token.clone()))
        .add_service(InterceptedService::new(accounts, app.token.clone()))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc),
            async move {
                shutdown.await;
                // Not ready from the first moment of shutdown, so load balancers stop sending.
                draining.set_serving(false);
                info!("shutting down: draining in-flight calls, streams and notifications");
                // Subscriber streams end and intake stops accepting, so the server can drain.
                stop.cancel();
            },
        )
        .await;
    health_reporter
        .set_not_serving::<PaymentServiceServer<Payments>>()
        .await;
    health_reporter
        .set_not_serving::<NotificationServiceServer<Notifications>>()
        .await;
    app.shutdown.cancel();
    app.tasks.close();
    app.tasks.wait().await;
    ops_stop.cancel();
    ops_tasks.close();
    ops_tasks.wait().await;
    if let Some(simulator) = app.simulator {
        simulator.shutdown().await;
    }
    info!("stopped");
    Ok(result?)
}
