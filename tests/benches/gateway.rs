//! Gateway benchmark: the whole path, measured on 127.0.0.1 against the simulator.
//!
//! ```text
//! cargo bench --features openssl --bench gateway [-- SECONDS [JSON_PATH]]
//! ```
//!
//! The sidecar binary runs pinned to core 0 (`taskset -c 0`); this process (load generator and the
//! in-process simulator) pins itself to core 1 before starting any thread. The simulator signs with
//! a 1024-bit key so that it is never the bottleneck (the sidecar accepts such a Trustly key only
//! outside the live environment). For each signing backend it prints and writes (JSON, default
//! `target/bench/gateway.json`):
//!
//! - the raw signing ceiling of the backend on one core (AccountPayout plaintext, signs/s);
//! - a direct baseline: the wire-core client signing and POSTing the same AccountPayout straight to
//!   the simulator (and verifying the answer), concurrency 1;
//! - the same AccountPayout through the sidecar over gRPC, concurrency 1 and 64, with the
//!   in-memory store and with Redis (idempotency record per call);
//! - notification intake with Redis persistence and signed replies (closed loop, 32 connections),
//!   and intake → subscriber latency at a fixed 200 notifications/s, with the subscriber on the
//!   same sidecar and on a second sidecar process sharing the Redis (both on the sidecar core);
//! - the sidecar's RSS idle and its peak under the loads above.
//!
//! The `pkcs11` row signs in a fresh SoftHSM2 token holding the merchant key: SoftHSM2 reads
//! `SOFTHSM2_CONF` when loaded, so the benchmark creates the token and re-runs itself with the
//! variable set. Without SoftHSM2 the row is skipped with a note.
//!
//! Needs `taskset` (util-linux), `redis-server` (started privately, pinned to core 1) and 2 cores.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failed setup is a crash

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use parking_lot::Mutex;
use rsa::{RsaPrivateKey, RsaPublicKey, pkcs8::EncodePublicKey};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tonic::transport::Channel;
use trustly_sidecar::{
    pb::payment_service_client::PaymentServiceClient,
    pb::{self, notification_service_client::NotificationServiceClient},
    secret::Secret,
    sim::{RetryPolicy, SimConfig, Simulator},
    trustly::{
        Client, ClientConfig, canonical, keys,
        sign::{Backend, CryptoPool, Signer, pkcs11},
    },
};

const SIDECAR_CORE: &str = "0";
const LOAD_CORE: &str = "1";
const USERNAME: &str = "bench-merchant";
const PASSWORD: &str = "bench-password";
/// Concurrency of the saturating gRPC run (the issue's figure).
const HIGH_CONCURRENCY: usize = 64;
/// Connections posting notifications in the intake throughput run.
const INTAKE_CONNECTIONS: usize = 32;
/// Fixed notification rate of the latency run.
const NOTIFICATION_RATE: u32 = 200;
/// Warm-up before each measured run (connections, JIT-free but caches and allocator settle).
const WARM_UP: Duration = Duration::from_millis(500);

fn main() -> anyhow::Result<()> {
    if cfg!(feature = "pkcs11") && std::env::var_os(SOFTHSM_DIR).is_none() {
        return match softhsm_token()? {
            Some(dir) => {
                let code = rerun_with_token(dir.path())?;
                drop(dir); // the token's files
                std::process::exit(code)
            }
            None => {
                eprintln!(
                    "note: the pkcs11 row is skipped: SoftHSM2 is not installed \
                     ({SOFTHSM_MODULE}; `bash .ci/setup` installs it)"
                );
                bench()
            }
        };
    }
    bench()
}

fn bench() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let json_path = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench/gateway.json")
    });
    // Before any thread exists, so every thread of this process inherits core 1.
    let pinned = pin(std::process::id(), LOAD_CORE);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run(Duration::from_secs_f64(seconds), &json_path, pinned))
}

/// `taskset -cp CORE PID`; false (and a warning) when it cannot pin.
fn pin(pid: u32, core: &str) -> bool {
    let ok = Command::new("taskset")
        .args(["-cp", core, &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "warning: could not pin pid {pid} to core {core} (taskset missing?): figures are unpinned"
        );
    }
    ok
}

async fn run(window: Duration, json_path: &Path, pinned: bool) -> anyhow::Result<()> {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    let merchant_key_path = fixtures.join("merchant-test-private.pem");
    let merchant_key = keys::load_private_key(&merchant_key_path)?;
    // The simulator's ("Trustly's") 1024-bit key: cheap to sign with, so it never limits.
    let sim_key =
        tokio::task::spawn_blocking(|| RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024)).await??;
    let sim_public = RsaPublicKey::from(&sim_key);
    let workdir = tempfile::tempdir()?;
    let sim_public_path = workdir.path().join("sim-public.pem");
    std::fs::write(
        &sim_public_path,
        sim_public.to_public_key_pem(rsa::pkcs8::LineEnding::LF)?,
    )?;
    let password_path = workdir.path().join("password");
    std::fs::write(&password_path, PASSWORD)?;

    let redis = BenchRedis::start(workdir.path()).await;
    let fastest = fastest_backend();
    let simulator = Simulator::start(SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        merchant_public_key: RsaPublicKey::from(&merchant_key),
        private_key: Secret::new(sim_key.clone()),
        username: USERNAME.into(),
        password: Secret::new(PASSWORD.into()),
        backend: fastest,
        retry: RetryPolicy::default(),
        poll_window: std::time::Duration::ZERO,
        initial_balances: vec![("EUR".into(), Decimal::new(1_000_000_000_000, 2))],
    })
    .await?;
    let env = Env {
        sim_api: simulator.api_url().to_string(),
        sim_public_path,
        merchant_key_path,
        password_path,
        redis_url: redis.url.clone(),
    };

    let mut report = Vec::new();
    for backend in backends() {
        eprintln!("== {backend}");
        let signer = match backend {
            Backend::Pkcs11 => {
                token_settings().and_then(|t| Ok(pkcs11::Token::open(t)?.signer()?.0))?
            }
            _ => backend.signer(merchant_key.clone())?,
        };
        let direct = Client::new(
            ClientConfig::new(simulator.api_url(), USERNAME, Secret::new(PASSWORD.into())),
            Arc::clone(&signer),
            backend.verifier(sim_public.clone())?,
            CryptoPool::new(1),
        )?;
        let account_id = register_account(&direct).await;
        let ceiling = signing_ceiling(signer.as_ref(), &account_id, window);
        eprintln!("   ceiling {ceiling:.0} signs/s");

        let direct_c1 = {
            let (direct, account_id) = (direct.clone(), account_id.clone());
            measure(1, window, move |i| {
                let (direct, account_id) = (direct.clone(), account_id.clone());
                async move { direct_payout(&direct, &account_id, i).await }
            })
            .await
        };
        eprintln!("   direct c=1 {direct_c1}");

        let mut runs = Vec::new();
        let mut memory = MemoryFigures::default();
        for store in [Store::Memory, Store::Redis] {
            let sidecar = SidecarProcess::start(&env, backend, store).await;
            if store == Store::Memory {
                memory.idle_kib = sidecar.rss_kib();
            }
            let sampler = sidecar.sample_rss();
            for concurrency in [1, HIGH_CONCURRENCY] {
                let stats = grpc_payouts(&sidecar, &account_id, concurrency, window).await;
                eprintln!("   sidecar {store:?} c={concurrency} {stats}");
                runs.push(Run {
                    store,
                    concurrency,
                    stats,
                });
            }
            memory.peak_kib = memory.peak_kib.max(sampler.stop().await);
            sidecar.stop().await;
        }

        let notifications = notification_path(&env, backend, &sim_key, window, &mut memory).await;
        eprintln!("   notifications {notifications:?}");
        report.push(BackendReport {
            backend,
            ceiling,
            direct_c1,
            runs,
            notifications,
            memory,
        });
    }
    simulator.shutdown().await;
    print_table(&report, pinned, window);
    write_json(json_path, &report, pinned, window)?;
    eprintln!("wrote {}", json_path.display());
    Ok(())
}

/// What the simulator and the notification generator sign with: never the bottleneck.
fn fastest_backend() -> Backend {
    if cfg!(feature = "openssl") {
        Backend::OpenSsl
    } else {
        Backend::RustCrypto
    }
}

/// Every backend built in (pkcs11 when a token was made), or only `GATEWAY_BENCH_BACKEND`.
fn backends() -> Vec<Backend> {
    let only = std::env::var("GATEWAY_BENCH_BACKEND").ok();
    let token = std::env::var_os(SOFTHSM_DIR).is_some();
    [Backend::RustCrypto]
        .into_iter()
        .chain(cfg!(feature = "openssl").then_some(Backend::OpenSsl))
        .chain(token.then_some(Backend::Pkcs11))
        .filter(|backend| {
            only.as_deref()
                .is_none_or(|only| backend.to_string() == only)
        })
        .collect()
}

// === the pkcs11 row: a SoftHSM2 token ===

/// Set (to the token's directory) in the re-run that benchmarks the pkcs11 backend too.
const SOFTHSM_DIR: &str = "GATEWAY_BENCH_SOFTHSM_DIR";
/// Debian's SoftHSM2 module (package softhsm2).
const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const SOFTHSM_PIN: &str = "5678";

/// A fresh token labelled `bench` holding the merchant key as `merchant`; `None` without SoftHSM2.
fn softhsm_token() -> anyhow::Result<Option<tempfile::TempDir>> {
    let util = |dir: &Path, args: &[&str]| -> anyhow::Result<()> {
        let status = Command::new("softhsm2-util")
            .args(args)
            .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"))
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "softhsm2-util {} failed", args[0]);
        Ok(())
    };
    let util_runs = Command::new("softhsm2-util")
        .arg("--version")
        .output()
        .is_ok();
    if !Path::new(SOFTHSM_MODULE).exists() || !util_runs {
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("tokens"))?;
    std::fs::write(
        dir.path().join("softhsm2.conf"),
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.path().join("tokens").display()
        ),
    )?;
    std::fs::write(dir.path().join("pin"), SOFTHSM_PIN)?;
    let key = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys/merchant-test-private-pkcs8.pem");
    let key = key.display().to_string();
    util(
        dir.path(),
        &[
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--so-pin",
            "1234",
            "--pin",
            SOFTHSM_PIN,
        ],
    )?;
    util(
        dir.path(),
        &[
            "--import",
            &key,
            "--token",
            "bench",
            "--label",
            "merchant",
            "--id",
            "01",
            "--pin",
            SOFTHSM_PIN,
        ],
    )?;
    Ok(Some(dir))
}

/// Runs this benchmark again with the token's `SOFTHSM2_CONF`; its exit code.
fn rerun_with_token(dir: &Path) -> anyhow::Result<i32> {
    let status = Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"))
        .env(SOFTHSM_DIR, dir)
        .status()?;
    Ok(status.code().unwrap_or(1))
}

/// The token made by [`softhsm_token`], in the re-run.
fn token_settings() -> anyhow::Result<pkcs11::Settings> {
    let dir = PathBuf::from(std::env::var_os(SOFTHSM_DIR).context("no SoftHSM2 token")?);
    Ok(pkcs11::Settings {
        module: SOFTHSM_MODULE.into(),
        token_label: "bench".into(),
        key_label: "merchant".into(),
        pin_path: dir.join("pin"),
        sessions: None,
    })
}

// === the measured operations ===

/// The AccountPayout every path sends (only the MessageID differs).
fn payout_data(account_id: &str, message_id: &str) -> serde_json::Map<String, Value> {
    let Value::Object(data) = json!({
        "NotificationURL": "http://127.0.0.1:9/trustly/notifications",
        "AccountID": account_id,
        "EndUserID": "bench-user",
        "MessageID": message_id,
        "Amount": "1.00",
        "Currency": "EUR",
        "Attributes": {"ShopperStatement": "Bench payout"},
    }) else {
        unreachable!()
    };
    data
}

async fn register_account(client: &Client) -> String {
    let Value::Object(data) = json!({
        "EndUserID": "bench-user", "ClearingHouse": "SWEDEN", "BankNumber": "6112",
        "AccountNumber": "69706212", "Firstname": "Bench", "Lastname": "User", "Attributes": {},
    }) else {
        unreachable!()
    };
    let signed = client
        .sign_data("RegisterAccount", uuid::Uuid::new_v4(), data)
        .await
        .expect("sign");
    let answer = client.send(&signed).await.expect("RegisterAccount");
    answer["accountid"].as_str().expect("accountid").to_owned()
}

/// Signs the AccountPayout plaintext back to back on this (pinned) thread.
fn signing_ceiling(signer: &dyn Signer, account_id: &str, window: Duration) -> f64 {
    let data = Value::Object(payout_data(account_id, "ceiling"));
    let plaintext = canonical::plaintext("AccountPayout", "uuid", &data);
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < window {
        signer.sign(plaintext.as_bytes()).expect("sign");
        count += 1;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

static MESSAGE_SEQ: AtomicU64 = AtomicU64::new(0);

fn message_id(i: u64) -> String {
    format!("bench-{}-{i}", MESSAGE_SEQ.fetch_add(1, Ordering::Relaxed))
}

async fn direct_payout(client: &Client, account_id: &str, i: u64) -> Result<(), String> {
    let signed = client
        .sign_data(
            "AccountPayout",
            uuid::Uuid::new_v4(),
            payout_data(account_id, &message_id(i)),
        )
        .await
        .map_err(|e| e.to_string())?;
    client
        .send(&signed)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn grpc_payouts(
    sidecar: &SidecarProcess,
    account_id: &str,
    concurrency: usize,
    window: Duration,
) -> Stats {
    // A few HTTP/2 connections, as a pod's client library would keep.
    let channels: Vec<Channel> = {
        let mut channels = Vec::new();
        for _ in 0..concurrency.min(4) {
            channels.push(sidecar.channel().await);
        }
        channels
    };
    let account_id = account_id.to_owned();
    measure(concurrency, window, move |i| {
        let mut client = PaymentServiceClient::new(channels[i as usize % channels.len()].clone());
        let request = pb::AccountPayoutRequest {
            account_id: account_id.clone(),
            end_user_id: "bench-user".into(),
            message_id: message_id(i),
            amount: Some(pb::Money {
                amount: "1.00".into(),
                currency_code: "EUR".into(),
            }),
            shopper_statement: "Bench payout".into(),
            ..Default::default()
        };
        async move {
            client
                .account_payout(request)
                .await
                .map(|_| ())
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
        }
    })
    .await
}

// === closed-loop load ===

#[derive(Clone, Debug, Default, serde::Serialize)]
struct Stats {
    requests: u64,
    errors: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0}/s p50 {:.3} ms p99 {:.3} ms ({} requests, {} errors)",
            self.per_second, self.p50_ms, self.p99_ms, self.requests, self.errors
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

fn stats(mut latencies: Vec<Duration>, errors: u64, elapsed: Duration) -> Stats {
    latencies.sort();
    Stats {
        requests: latencies.len() as u64,
        errors,
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
    }
}

/// `concurrency` workers call `op` back to back: a warm-up, then `window` measured.
async fn measure<F, Fut>(concurrency: usize, window: Duration, op: F) -> Stats
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let _ = closed_loop(concurrency, WARM_UP, Arc::clone(&op)).await;
    let (latencies, errors, elapsed) = closed_loop(concurrency, window, op).await;
    stats(latencies, errors, elapsed)
}

async fn closed_loop<F, Fut>(
    concurrency: usize,
    window: Duration,
    op: Arc<F>,
) -> (Vec<Duration>, u64, Duration)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let start = Instant::now();
    let deadline = start + window;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, counter, errors, first_error) = (
                Arc::clone(&op),
                Arc::clone(&counter),
                Arc::clone(&errors),
                Arc::clone(&first_error),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let began = Instant::now();
                    match op(i).await {
                        Ok(()) => latencies.push(began.elapsed()),
                        Err(error) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error.lock().get_or_insert(error);
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    if let Some(error) = first_error.lock().take() {
        eprintln!("   first error: {error}");
    }
    (latencies, errors.load(Ordering::Relaxed), start.elapsed())
}

// === notification path ===

#[derive(Clone, Debug, Default, serde::Serialize)]
struct NotificationFigures {
    intake: Stats,
    /// Intake → subscriber on the same replica at NOTIFICATION_RATE per second.
    delivery: Stats,
    /// Intake on one replica → subscriber on another (two processes, one Redis), same rate.
    cross_replica: Stats,
}

/// Pre-signed notifications (each notificationid posted once) and where the next one is.
struct Bodies {
    bodies: Vec<(String, Vec<u8>)>,
    next: AtomicU64,
}

impl Bodies {
    fn take(&self) -> Option<&(String, Vec<u8>)> {
        self.bodies
            .get(self.next.fetch_add(1, Ordering::Relaxed) as usize)
    }
}

async fn notification_path(
    env: &Env,
    backend: Backend,
    trustly_key: &RsaPrivateKey,
    window: Duration,
    memory: &mut MemoryFigures,
) -> NotificationFigures {
    let sidecar = SidecarProcess::start(env, backend, Store::Redis).await;
    let sampler = sidecar.sample_rss();
    // Pre-signed with the simulator's ("Trustly's") key, so posting costs the generator nothing.
    let trustly = fastest_backend()
        .signer(trustly_key.clone())
        .expect("signer");
    // Enough for the warm-up and window at well over the fastest backend's ceiling, plus the two
    // fixed-rate runs.
    let budget = ((window + WARM_UP).as_secs_f64() * 8000.0) as usize
        + 2 * (window.as_secs_f64() * f64::from(NOTIFICATION_RATE)) as usize;
    let bodies = Arc::new(Bodies {
        bodies: tokio::task::spawn_blocking(move || {
            (0..budget)
                .map(|i| {
                    let id = format!("{}", 7_000_000_000u64 + i as u64);
                    (id.clone(), notification(&id, trustly.as_ref()))
                })
                .collect()
        })
        .await
        .expect("pre-sign"),
        next: AtomicU64::new(0),
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(INTAKE_CONNECTIONS)
        .build()
        .expect("http client");
    let url = format!("http://{}/trustly/notifications", sidecar.intake);

    // Throughput: closed loop over the pre-signed bodies.
    let intake = {
        let (http, url, bodies) = (http.clone(), url.clone(), Arc::clone(&bodies));
        measure(INTAKE_CONNECTIONS, window, move |_| {
            let post = bodies
                .take()
                .map(|(_, body)| http.post(url.clone()).body(body.clone()).send());
            async move {
                match post {
                    None => Err("out of pre-signed notifications".to_owned()),
                    Some(post) => match post.await {
                        Ok(response) if response.status() == 200 => response
                            .bytes()
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                        Ok(response) => Err(format!("status {}", response.status())),
                        Err(error) => Err(error.to_string()),
                    },
                }
            }
        })
        .await
    };

    let delivery = fixed_rate_delivery(&sidecar, &sidecar, &http, &bodies, window).await;
    // A second replica on the same Redis (and core): its subscriber hears the first's appends.
    let replica = SidecarProcess::start_sharing(env, backend, sidecar.prefix.clone()).await;
    let cross_replica = fixed_rate_delivery(&sidecar, &replica, &http, &bodies, window).await;
    replica.stop().await;
    memory.peak_kib = memory.peak_kib.max(sampler.stop().await);
    sidecar.stop().await;
    NotificationFigures {
        intake,
        delivery,
        cross_replica,
    }
}

/// Latency: a subscriber on `subscriber`, notifications posted to `intake` at a fixed rate
/// (open loop).
async fn fixed_rate_delivery(
    intake: &SidecarProcess,
    subscriber: &SidecarProcess,
    http: &reqwest::Client,
    bodies: &Bodies,
    window: Duration,
) -> Stats {
    let group = format!("bench-latency-{}", uuid::Uuid::new_v4());
    let mut stream = NotificationServiceClient::new(subscriber.channel().await)
        .stream_notifications(pb::StreamNotificationsRequest {
            consumer_group: group.clone(),
            start: pb::StartPosition::New as i32,
            ..Default::default()
        })
        .await
        .expect("subscribe")
        .into_inner();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let ack_channel = subscriber.channel().await;
    let receiver = {
        let (sent, latencies) = (Arc::clone(&sent), Arc::clone(&latencies));
        tokio::spawn(async move {
            while let Ok(Some(item)) = stream.message().await {
                let Some(pb::stream_notifications_response::Item::Notification(n)) = item.item
                else {
                    continue;
                };
                if let Some(began) = sent.lock().get(&n.notification_id) {
                    latencies.lock().push(began.elapsed());
                }
                let mut acks = NotificationServiceClient::new(ack_channel.clone());
                let group = group.clone();
                tokio::spawn(async move {
                    let _ = acks
                        .acknowledge_notification(pb::AcknowledgeNotificationRequest {
                            consumer_group: group,
                            event_id: n.event_id,
                            ..Default::default()
                        })
                        .await;
                });
            }
        })
    };
    let url = format!("http://{}/trustly/notifications", intake.intake);
    let count = (window.as_secs_f64() * f64::from(NOTIFICATION_RATE)) as usize;
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / NOTIFICATION_RATE);
    let began = Instant::now();
    let mut posts = Vec::new();
    for _ in 0..count {
        let Some((id, body)) = bodies.take() else {
            break;
        };
        ticks.tick().await;
        sent.lock().insert(id.clone(), Instant::now());
        posts.push(tokio::spawn(
            http.post(url.clone()).body(body.clone()).send(),
        ));
    }
    let posting = began.elapsed();
    let mut errors = 0;
    for post in posts {
        if !matches!(post.await, Ok(Ok(response)) if response.status() == 200) {
            errors += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // the last deliveries
    receiver.abort();
    let delivered = std::mem::take(&mut *latencies.lock());
    let delivered_count = delivered.len() as u64;
    let mut delivery = stats(delivered, errors, posting);
    delivery.errors += count as u64 - delivered_count.min(count as u64);
    delivery
}

/// A signed `credit` notification as Trustly would post it.
fn notification(notification_id: &str, trustly: &dyn Signer) -> Vec<u8> {
    let uuid = uuid::Uuid::new_v4().to_string();
    let data = json!({
        "orderid": "1234567890", "messageid": format!("bench-{notification_id}"),
        "notificationid": notification_id, "enduserid": "bench-user", "amount": "5.00",
        "currency": "EUR", "timestamp": "2026-11-21 10:00:00.123456+00", "attributes": {}
    });
    let signature = trustly
        .sign(canonical::plaintext("credit", &uuid, &data).as_bytes())
        .expect("sign");
    json!({
        "method": "credit",
        "params": {"signature": signature, "uuid": uuid, "data": data},
        "version": "1.1"
    })
    .to_string()
    .into_bytes()
}

// === Redis, on the load core ===

/// A private `redis-server` pinned to the load core, so core 0 is the sidecar's alone (the
/// machine's shared Redis floats over both cores). Configured like it: no persistence.
struct BenchRedis {
    child: Child,
    url: String,
}

impl BenchRedis {
    async fn start(dir: &Path) -> Self {
        let port = free_addr().port();
        let child = Command::new("taskset")
            .args(["-c", LOAD_CORE, "redis-server", "--bind", "127.0.0.1"])
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("taskset and redis-server are installed");
        // Owned at once, so every path below (even a panic) kills it.
        let redis = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let client = redis::Client::open(redis.url.as_str()).expect("url");
        for _ in 0..200 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start");
    }
}

impl Drop for BenchRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// === the sidecar process ===

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
enum Store {
    Memory,
    Redis,
}

struct Env {
    sim_api: String,
    sim_public_path: PathBuf,
    merchant_key_path: PathBuf,
    password_path: PathBuf,
    redis_url: String,
}

struct SidecarProcess {
    child: Child,
    grpc: SocketAddr,
    intake: SocketAddr,
    /// The Redis key prefix (`None`: the memory store).
    prefix: Option<String>,
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

impl SidecarProcess {
    async fn start(env: &Env, backend: Backend, store: Store) -> Self {
        let prefix = (store == Store::Redis).then(|| format!("bench-{}", uuid::Uuid::new_v4()));
        Self::start_sharing(env, backend, prefix).await
    }

    /// A sidecar on Redis under `prefix` (another sidecar's: a second replica), or on memory.
    async fn start_sharing(env: &Env, backend: Backend, prefix: Option<String>) -> Self {
        let (grpc, intake, ops) = (free_addr(), free_addr(), free_addr());
        let mut command = Command::new("taskset");
        command
            .args(["-c", SIDECAR_CORE, env!("CARGO_BIN_EXE_trustly-sidecar")])
            .env_clear()
            .env("TRUSTLY_SIDECAR_TRUSTLY_URL", &env.sim_api)
            .env(
                "TRUSTLY_SIDECAR_TRUSTLY_PUBLIC_KEY_PATH",
                &env.sim_public_path,
            )
            .env("TRUSTLY_SIDECAR_USERNAME", USERNAME)
            .env("TRUSTLY_SIDECAR_PASSWORD_PATH", &env.password_path)
            .env("TRUSTLY_SIDECAR_SIGNING_BACKEND", backend.to_string())
            .env("TRUSTLY_SIDECAR_GRPC_LISTEN", grpc.to_string())
            .env("TRUSTLY_SIDECAR_NOTIFICATION_LISTEN", intake.to_string())
            .env("TRUSTLY_SIDECAR_OPS_LISTEN", ops.to_string())
            .env(
                "TRUSTLY_SIDECAR_NOTIFICATION_URL",
                format!("http://{intake}/trustly/notifications"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match (backend, token_settings()) {
            (Backend::Pkcs11, Ok(token)) => {
                let conf = std::env::var_os("SOFTHSM2_CONF").expect("set by rerun_with_token");
                command
                    .env("SOFTHSM2_CONF", conf)
                    .env("TRUSTLY_SIDECAR_PKCS11_MODULE", token.module)
                    .env("TRUSTLY_SIDECAR_PKCS11_TOKEN_LABEL", token.token_label)
                    .env("TRUSTLY_SIDECAR_PKCS11_KEY_LABEL", token.key_label)
                    .env("TRUSTLY_SIDECAR_PKCS11_PIN_PATH", token.pin_path);
            }
            _ => {
                command.env("TRUSTLY_SIDECAR_PRIVATE_KEY_PATH", &env.merchant_key_path);
            }
        }
        if let Some(prefix) = &prefix {
            command
                .env("TRUSTLY_SIDECAR_REDIS_URL", &env.redis_url)
                .env("TRUSTLY_SIDECAR_REDIS_PREFIX", prefix);
        }
        let child = command.spawn().expect("taskset runs the sidecar");
        let sidecar = Self {
            child,
            grpc,
            intake,
            prefix,
        };
        let _ = sidecar.channel().await; // serving
        tokio::time::sleep(Duration::from_millis(500)).await; // settle before the idle RSS
        sidecar
    }

    async fn channel(&self) -> Channel {
        let endpoint = Channel::from_shared(format!("http://{}", self.grpc)).expect("uri");
        for _ in 0..400 {
            if let Ok(channel) = endpoint.connect().await {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the sidecar did not serve gRPC within 10 s");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB (`VmRSS`). `taskset` execs the sidecar, so the pid is the same.
    fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Samples RSS every 50 ms until stopped; returns the largest.
    fn sample_rss(&self) -> RssSampler {
        let pid = self.pid();
        let peak = Arc::new(AtomicU64::new(0));
        let task = {
            let peak = Arc::clone(&peak);
            tokio::spawn(async move {
                loop {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        RssSampler { peak, task }
    }

    async fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let _ = tokio::task::spawn_blocking(move || self.child.wait()).await;
    }
}

struct RssSampler {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    async fn stop(self) -> u64 {
        self.task.abort();
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

// === report ===

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
struct MemoryFigures {
    idle_kib: u64,
    peak_kib: u64,
}

#[derive(Debug, serde::Serialize)]
struct Run {
    store: Store,
    concurrency: usize,
    stats: Stats,
}

#[derive(Debug)]
struct BackendReport {
    backend: Backend,
    ceiling: f64,
    direct_c1: Stats,
    runs: Vec<Run>,
    notifications: NotificationFigures,
    memory: MemoryFigures,
}

impl BackendReport {
    fn run(&self, store: Store, concurrency: usize) -> &Stats {
        &self
            .runs
            .iter()
            .find(|r| r.store == store && r.concurrency == concurrency)
            .expect("measured")
            .stats
    }
}

/// Each target of the issue, as (name, measured, target, met).
fn targets(r: &BackendReport) -> Vec<(String, String, String, bool)> {
    let mut rows = Vec::new();
    for store in [Store::Memory, Store::Redis] {
        let c64 = r.run(store, HIGH_CONCURRENCY);
        let share = c64.per_second / r.ceiling;
        rows.push((
            format!("{store:?}: c={HIGH_CONCURRENCY} throughput / ceiling"),
            format!("{:.1}%", share * 100.0),
            ">= 90%".to_owned(),
            share >= 0.90,
        ));
        let c1 = r.run(store, 1);
        let added_p50 = c1.p50_ms - r.direct_c1.p50_ms;
        let added_p99 = c1.p99_ms - r.direct_c1.p99_ms;
        rows.push((
            format!("{store:?}: c=1 added latency p50"),
            format!("{added_p50:.3} ms"),
            "<= 0.3 ms".to_owned(),
            added_p50 <= 0.3,
        ));
        rows.push((
            format!("{store:?}: c=1 added latency p99"),
            format!("{added_p99:.3} ms"),
            "<= 1 ms".to_owned(),
            added_p99 <= 1.0,
        ));
    }
    let intake_share = r.notifications.intake.per_second / r.ceiling;
    rows.push((
        "intake throughput / ceiling".into(),
        format!("{:.1}%", intake_share * 100.0),
        ">= 80%".into(),
        intake_share >= 0.80,
    ));
    rows.push((
        format!("intake -> subscriber p99 at {NOTIFICATION_RATE}/s"),
        format!("{:.3} ms", r.notifications.delivery.p99_ms),
        "<= 5 ms".into(),
        r.notifications.delivery.p99_ms <= 5.0,
    ));
    rows.push((
        format!("intake -> other replica's subscriber p99 at {NOTIFICATION_RATE}/s"),
        format!("{:.3} ms", r.notifications.cross_replica.p99_ms),
        "<= 5 ms".into(),
        r.notifications.cross_replica.p99_ms <= 5.0,
    ));
    rows.push((
        "RSS idle".into(),
        format!("{:.1} MB", r.memory.idle_kib as f64 / 1024.0),
        "<= 30 MB".into(),
        r.memory.idle_kib <= 30 * 1024,
    ));
    rows.push((
        "RSS peak under load".into(),
        format!("{:.1} MB", r.memory.peak_kib as f64 / 1024.0),
        "<= 80 MB".into(),
        r.memory.peak_kib <= 80 * 1024,
    ));
    rows
}

fn print_table(report: &[BackendReport], pinned: bool, window: Duration) {
    println!();
    println!(
        "gateway benchmark: {:.0} s per run, sidecar on core {SIDECAR_CORE}, simulator + load on core {LOAD_CORE}{}",
        window.as_secs_f64(),
        if pinned { "" } else { " (NOT PINNED)" }
    );
    for r in report {
        println!();
        println!(
            "backend {} — one-core signing ceiling {:.0} signs/s",
            r.backend, r.ceiling
        );
        println!(
            "{:<34} {:>10} {:>10} {:>10} {:>9} {:>12} {:>12}",
            "path", "req/s", "p50 ms", "p99 ms", "ceiling", "+p50 ms", "+p99 ms"
        );
        let row = |name: &str, s: &Stats, added: bool| {
            let (p50, p99) = if added {
                (
                    format!("{:+.3}", s.p50_ms - r.direct_c1.p50_ms),
                    format!("{:+.3}", s.p99_ms - r.direct_c1.p99_ms),
                )
            } else {
                ("".into(), "".into())
            };
            println!(
                "{name:<34} {:>10.0} {:>10.3} {:>10.3} {:>8.1}% {p50:>12} {p99:>12}",
                s.per_second,
                s.p50_ms,
                s.p99_ms,
                s.per_second / r.ceiling * 100.0
            );
        };
        row("direct client -> simulator, c=1", &r.direct_c1, false);
        for run in &r.runs {
            row(
                &format!("sidecar gRPC ({:?}), c={}", run.store, run.concurrency),
                &run.stats,
                run.concurrency == 1,
            );
        }
        row(
            &format!("intake (Redis), {INTAKE_CONNECTIONS} connections"),
            &r.notifications.intake,
            false,
        );
        row(
            &format!("intake -> subscriber, {NOTIFICATION_RATE}/s"),
            &r.notifications.delivery,
            false,
        );
        row(
            &format!("intake A -> subscriber B, {NOTIFICATION_RATE}/s"),
            &r.notifications.cross_replica,
            false,
        );
        println!(
            "RSS idle {:.1} MB, peak under load {:.1} MB",
            r.memory.idle_kib as f64 / 1024.0,
            r.memory.peak_kib as f64 / 1024.0
        );
        println!("targets:");
        for (name, measured, target, met) in targets(r) {
            println!(
                "  {} {name:<44} {measured:>10}  (target {target})",
                if met { "met   " } else { "MISSED" }
            );
        }
    }
}

fn write_json(
    path: &Path,
    report: &[BackendReport],
    pinned: bool,
    window: Duration,
) -> anyhow::Result<()> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let backends: Vec<Value> = report
        .iter()
        .map(|r| {
            json!({
                "backend": r.backend.to_string(),
                "ceiling_signs_per_second": r.ceiling,
                "direct_c1": r.direct_c1,
                "sidecar": r.runs,
                "notifications": r.notifications,
                "memory_kib": r.memory,
                "targets": targets(r).into_iter().map(|(name, measured, target, met)| {
                    json!({"name": name, "measured": measured, "target": target, "met": met})
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let document = json!({
        "cpu": cpu,
        "pinned": pinned,
        "seconds_per_run": window.as_secs_f64(),
        "backends": backends,
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&document)?)?;
    Ok(())
}
