//! Building and running the gateway: the Trustly client, the stores, the gRPC services, the
//! notification intake and the ops endpoints, wired from a `Config`; `run` serves them until
//! shutdown and then drains. The only module that knows every other one; nothing depends on it
//! but `main` and the tests. The simulator is known only to `app/sandbox.rs`.

mod listeners;
mod sandbox;
mod tls;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, info};
use url::Url;

use listeners::OpsServer;
pub use listeners::{Listeners, bind};
pub use sandbox::Sandbox;
use tls::ListenerTls;

use crate::{
    config::{self, Config},
    grpc::{
        self, BearerToken, Payments,
        account::Accounts,
        convert::Defaults,
        notification::Notifications,
        server::{RPC_TIMEOUT_MARGIN, Services},
    },
    notify::{Deliveries, Intake},
    ops::{health::Readiness, http_server, reload::Reloader, signal},
    orders::{self, OrderBook},
    payments::{self, AccountSettings, BalanceWatch, IdempotencySettings},
    store::{
        self, Store,
        accounts::{AccountCache, DetailsHasher},
        idempotency::Idempotency,
        wake::Listener,
    },
    trustly::{
        self, Client, ClientConfig,
        sign::{CryptoPool, SwappableSigner, Verifier},
    },
};

/// Longest wait at start for the wake-up subscription (one round trip when Redis answers): past
/// it the sidecar serves anyway, its subscribers polling until the listener gets through.
const WAKE_SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);

/// Why the sidecar stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("trustly client")]
    Trustly(#[from] trustly::Error),
    #[error(transparent)]
    Sandbox(#[from] sandbox::Error),
    #[error(transparent)]
    Grpc(#[from] grpc::server::Error),
    #[error("notification store")]
    Store(#[from] store::Error),
    #[error("TLS")]
    Tls(#[from] crate::ops::tls::Error),
}

impl RunError {
    /// The whole chain in one line: "notification store: cannot reach redis at …: …".
    pub fn chain(&self) -> String {
        let mut chain = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            // Some errors print their source in their own text; say each cause once.
            let text = cause.to_string();
            if !chain.contains(&text) {
                chain.push_str(&format!(": {text}"));
            }
            source = cause.source();
        }
        chain
    }
}

/// A built gateway, ready to serve.
pub struct App {
    /// Watches the key and password files; taken by `run`.
    reloader: Option<Reloader>,
    payments: Payments,
    accounts: Accounts,
    notifications: Notifications,
    orders: grpc::orders::Orders,
    intake: Arc<Intake>,
    log: Store,
    token: BearerToken,
    rpc_timeout: Duration,
    balance_interval: Option<Duration>,
    /// The scheduled reconciliation's interval; `None`: off.
    reconcile_interval: Option<Duration>,
    /// Hears other replicas' appends and decisions (Redis only); taken by `run`.
    wake_listener: Option<Listener>,
    /// The in-process simulator of `--sandbox`.
    sandbox: Option<Sandbox>,
    tls: ListenerTls,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// Where Trustly is and how its answers are verified: the configured endpoint, or the sandbox's
/// simulator.
struct Endpoint {
    url: Url,
    verifier: Arc<dyn Verifier>,
    sandbox: Option<Sandbox>,
}

/// The Trustly client with what intake and the reloader share with it.
struct Core {
    client: Client,
    signer: Arc<SwappableSigner>,
    verifier: Arc<dyn Verifier>,
    crypto: CryptoPool,
}

/// The stores: the notification log, idempotency records and the account cache; on Redis, the
/// listener that wakes the log's waiters for other replicas' writes.
struct Stores {
    log: Store,
    idempotency: Idempotency,
    accounts: AccountCache,
    wake_listener: Option<Listener>,
}

impl App {
    /// Builds the Trustly client (and, in sandbox mode, starts the simulator it talks to), the
    /// stores and the services.
    pub async fn build(config: Config) -> Result<Self, RunError> {
        // Everything (secrets redacted) for debugging; a short summary below at info.
        debug!(?config, "configuration loaded");
        let mut endpoint = endpoint(&config).await?;
        log_summary(&config, &endpoint.url);
        crate::metrics::global().set_build_info(&config.trustly.signer.backend().to_string());
        let sandbox = endpoint.sandbox.take();
        let core = core(&config, endpoint)?;
        let reloader = Reloader {
            private_key_path: config.trustly.private_key_path.clone(),
            token: config.trustly.token.clone(),
            password_path: config.trustly.password_path.clone(),
            backend: config.trustly.signer.backend(),
            signer: Arc::clone(&core.signer),
            client: core.client.clone(),
            interval: config.trustly.reload_interval,
        };
        let tls = ListenerTls::load(&config)?;
        let (tasks, shutdown) = (TaskTracker::new(), CancellationToken::new());
        let stores = stores(&config.store, &tasks, &shutdown).await?;
        let intake = Arc::new(intake(&config, &core, &stores));
        let book = OrderBook::new(stores.log.order_states.clone());
        let payments = payments(&config, core.client, &stores);
        let reconciler =
            orders::reconcile::Reconciler::new(book.clone(), payments.engine().clone());
        Ok(Self {
            reloader: Some(reloader),
            payments,
            accounts: Accounts::new(stores.accounts),
            notifications: Notifications::new(Deliveries::new(
                stores.log.clone(),
                config.delivery.clone(),
                tasks.clone(),
                shutdown.clone(),
            )),
            orders: grpc::orders::Orders::new(
                book.clone(),
                orders::Watches::new(
                    book,
                    stores.log.wakes.clone(),
                    config.delivery.heartbeat_interval,
                    tasks.clone(),
                    shutdown.clone(),
                ),
                reconciler,
            ),
            intake,
            log: stores.log,
            token: BearerToken::new(config.grpc.token.clone()),
            rpc_timeout: config.trustly.timeout + RPC_TIMEOUT_MARGIN,
            balance_interval: config.payments.balance_interval,
            reconcile_interval: config.payments.reconcile_interval,
            wake_listener: stores.wake_listener,
            sandbox,
            tls,
            tasks,
            shutdown,
        })
    }

    /// The sandbox simulator's admin API, if this is a sandbox.
    pub fn simulator_admin_url(&self) -> Option<String> {
        self.sandbox.as_ref().map(Sandbox::admin_url)
    }
}

/// The configured Trustly endpoint, or (sandbox) the simulator started for it.
async fn endpoint(config: &Config) -> Result<Endpoint, RunError> {
    if !config.sandbox.enabled {
        return Ok(Endpoint {
            url: config.trustly.url.clone(),
            verifier: config.trustly.verifier.clone(),
            sandbox: None,
        });
    }
    let (sandbox, verifier) = Sandbox::start(config).await?;
    Ok(Endpoint {
        url: sandbox.api_url(),
        verifier,
        sandbox: Some(sandbox),
    })
}

/// The startup summary at info: the endpoint actually used and where the keys came from.
fn log_summary(config: &Config, trustly_url: &Url) {
    info!(
        environment = %config.trustly.environment,
        url = %trustly_url,
        signing = %config.trustly.signer.backend(),
        "trustly"
    );
    if !config.sandbox.enabled {
        // The sandbox's keys are named in its banner.
        info!(merchant_key = %config.trustly.private_key_source, "keys");
        info!(trustly_key = %config.trustly.trustly_key_source, "keys");
    }
}

/// The Trustly client, with one signer for the client and intake, replaceable when the key file
/// changes.
fn core(config: &Config, endpoint: Endpoint) -> Result<Core, RunError> {
    let trustly = &config.trustly;
    let mut client_config = ClientConfig::new(
        endpoint.url,
        trustly.username.clone(),
        trustly.password.clone(),
    );
    client_config.connect_timeout = trustly.connect_timeout;
    client_config.request_timeout = trustly.timeout;
    let crypto = CryptoPool::per_core();
    let signer = Arc::new(SwappableSigner::new(trustly.signer.clone()));
    let client = Client::new(
        client_config,
        signer.clone(),
        endpoint.verifier.clone(),
        crypto.clone(),
    )?;
    Ok(Core {
        client,
        signer,
        verifier: endpoint.verifier,
        crypto,
    })
}

/// Redis when a URL is configured (durable, shared by replicas), memory otherwise. A Redis that
/// cannot be reached yet is connected to in the background (on `tasks`, until `shutdown`); until
/// then the stores answer "unavailable" and the sidecar is not ready.
async fn stores(
    settings: &config::Store,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<Stores, RunError> {
    let Some(url) = &settings.redis_url else {
        tracing::warn!(
            "store: IN MEMORY, not durable; set {} in production",
            config::ENV_REDIS_URL
        );
        return Ok(Stores {
            log: Store::memory_retaining(settings.notification_retention),
            idempotency: Idempotency::memory(),
            accounts: AccountCache::memory(),
            wake_listener: None,
        });
    };
    let urls: Vec<String> = url
        .expose()
        .split(',')
        .map(|u| u.trim().to_owned())
        .collect();
    let conn = store::connection::Connector::new(
        &urls,
        settings.cluster,
        settings.ca_pem.as_deref(),
        settings.timeout,
    )?
    .start(tasks, shutdown.clone())
    .await;
    info!(prefix = %settings.prefix, "store: Redis (durable, shared by replicas)");
    let (prefix, timeout) = (&settings.prefix, settings.timeout);
    let retention = settings.notification_retention;
    let log = Store::redis(conn.clone(), prefix, retention, timeout);
    if let Some(every) = settings.test_poll_every {
        log.wakes.poll_only_every(every);
    }
    let ca_pem = settings.ca_pem.as_deref();
    let wake_listener = Listener::new(&urls, ca_pem, log.wakes.clone(), timeout)?;
    Ok(Stores {
        idempotency: Idempotency::redis(conn.clone(), prefix, timeout),
        accounts: AccountCache::redis(conn, prefix, timeout, retention),
        log,
        wake_listener: Some(wake_listener),
    })
}

/// Notification intake: verifies with Trustly's key, answers with ours.
fn intake(config: &Config, core: &Core, stores: &Stores) -> Intake {
    Intake {
        path: config.intake.path.clone(),
        trustly: core.verifier.clone(),
        merchant: core.signer.clone(),
        crypto: core.crypto.clone(),
        store: stores.log.clone(),
        decision_deadline: config.intake.decision_deadline,
        decision_fallback: config.intake.decision_fallback,
        accounts: stores.accounts.clone(),
    }
}

/// The payment service over the client, with idempotency and the account cache.
fn payments(config: &Config, client: Client, stores: &Stores) -> Payments {
    let idempotency = IdempotencySettings {
        store: stores.idempotency.clone(),
        // An attempt holds its key at most as long as the RPC may run.
        lease: config.trustly.timeout + RPC_TIMEOUT_MARGIN,
        retention: config.store.idempotency_retention,
    };
    let accounts = AccountSettings {
        cache: stores.accounts.clone(),
        hasher: DetailsHasher::new(*config.trustly.account_hash_secret.expose()),
        from_cache: config.payments.register_account_from_cache,
    };
    Payments::new(
        payments::Payments::new(
            client,
            config.trustly.username.clone(),
            stores.log.clone(),
            idempotency,
            accounts,
            BalanceWatch::new(&config.payments.low_balance),
        )
        .with_poll_window(config.payments.poll_window),
        Defaults {
            notification_url: config.intake.url.clone(),
        },
    )
}

/// Serves gRPC, notification intake and the ops endpoints until `shutdown` resolves; then
/// readiness goes false, new calls are refused, and in-flight calls, streams and notifications
/// drain.
pub async fn run(
    mut app: App,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let Listeners { grpc, intake, ops } = listeners;
    let readiness = Arc::new(Readiness::new(app.log.clone()));
    let ops = OpsServer::start(ops, app.tls.ops.clone(), &readiness);
    let addr = grpc.local_addr().ok();
    let intake_addr = intake.local_addr().ok();
    if let Some(addr) = intake_addr {
        let (path, tls) = (&app.intake.path, tls::security(app.tls.intake.as_ref()));
        info!(%addr, %path, tls, "notification intake listening");
    }
    spawn_background(&mut app, intake);
    // Subscribers that start before the wake-up subscription would poll at first.
    let _ = tokio::time::timeout(WAKE_SUBSCRIBE_WAIT, app.log.wakes.until_live()).await;
    let server = grpc::server(
        Services {
            payments: app.payments.clone(),
            accounts: app.accounts.clone(),
            notifications: app.notifications.clone(),
            orders: app.orders.clone(),
        },
        &app.token,
        app.rpc_timeout,
        readiness.watch(),
    )?;
    // Keys loaded, client built: ready whenever the store answers, from the first call on when
    // it does now.
    readiness.probe().await;
    readiness.set_started();
    app.tasks
        .spawn(Arc::clone(&readiness).monitor(app.shutdown.clone()));
    if let Some(addr) = addr {
        let tls = tls::security(app.tls.grpc.as_ref());
        info!(%addr, tls, "gRPC API listening (trustly.v1, grpc.health.v1, reflection)");
    }
    if let (Some(sandbox), Some(grpc), Some(intake)) = (&app.sandbox, addr, intake_addr) {
        sandbox.banner(grpc, intake, &app.intake.path, ops.addr);
    }
    let (stop, draining) = (app.shutdown.clone(), Arc::clone(&readiness));
    let grpc_tls = app.tls.grpc.clone();
    let result = grpc::server::serve(server, grpc, grpc_tls, async move {
        shutdown.await;
        // Not ready (/readyz 503, gRPC health NOT_SERVING, health watches end) from the first
        // moment of shutdown, so load balancers stop sending.
        draining.drain();
        info!("shutting down: draining in-flight calls, streams and notifications");
        // Subscriber streams end and intake stops accepting, so the server can drain.
        stop.cancel();
    })
    .await;
    drain(app, ops).await;
    Ok(result?)
}

/// The wake-up listener, the key reloader, the balance poller and notification intake, all owned
/// by the app's tasks.
fn spawn_background(app: &mut App, intake: TcpListener) {
    if let Some(listener) = app.wake_listener.take() {
        app.tasks.spawn(listener.run(app.shutdown.clone()));
    }
    if let Some(reloader) = app.reloader.take() {
        app.tasks
            .spawn(reloader.run(signal::hangup(), app.shutdown.clone()));
    }
    if let Some(interval) = app.balance_interval {
        app.tasks.spawn(payments::poll_balances(
            app.payments.engine().clone(),
            app.log.clone(),
            interval,
            app.shutdown.clone(),
        ));
    }
    if let Some(interval) = app.reconcile_interval {
        let (reconciler, stop) = (app.reconciler(), app.shutdown.clone());
        let lease = (app.log.lease.clone(), app.log.is_durable());
        app.tasks
            .spawn(orders::schedule::run(reconciler, lease, interval, stop));
    }
    app.tasks.spawn(orders::follow::follow(
        app.log.log.clone(),
        OrderBook::new(app.log.order_states.clone()),
        app.shutdown.clone(),
    ));
    app.tls.watch(&app.tasks, &app.shutdown);
    let handler_intake = Arc::clone(&app.intake);
    app.tasks.spawn(http_server::serve_with_tls(
        intake,
        app.tls.intake.clone(),
        http_server::Limits::intake(),
        move |req| Arc::clone(&handler_intake).handle(req),
        app.shutdown.clone(),
        app.tasks.clone(),
    ));
}

impl App {
    /// Reconciliation over this app's order book and payment engine.
    fn reconciler(&self) -> orders::reconcile::Reconciler {
        orders::reconcile::Reconciler::new(
            OrderBook::new(self.log.order_states.clone()),
            self.payments.engine().clone(),
        )
    }
}

/// After the gRPC server stopped: the writes that follow answers, background work and intake
/// drain, then the ops endpoints and the sandbox stop.
async fn drain(app: App, ops: OpsServer) {
    app.log.write_behind.drain().await;
    app.shutdown.cancel();
    app.tasks.close();
    app.tasks.wait().await;
    ops.stop().await;
    if let Some(sandbox) = app.sandbox {
        sandbox.shutdown().await;
    }
    info!("stopped");
}
