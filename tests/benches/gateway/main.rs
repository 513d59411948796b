//! Gateway benchmark: the whole path, measured on 127.0.0.1 against the simulator.
//!
//! ```text
//! cargo bench --bench gateway [-- SECONDS [JSON_PATH]] [--runs N] [--force]
//! ```
//!
//! The sidecar binary runs pinned to core 0 (`taskset -c 0`); this process (load generator and the
//! in-process simulator) pins itself to core 1 before starting any thread. The simulator signs with
//! a 1024-bit key so that it is never the bottleneck (the sidecar accepts such a Trustly key only
//! outside the live environment). For each signing backend it measures:
//!
//! - the raw signing ceiling of the backend on the sidecar's core (AccountPayout plaintext,
//!   signs/s);
//! - a direct baseline: the wire-core client signing and POSTing the same AccountPayout straight to
//!   the simulator (and verifying the answer), concurrency 1;
//! - an in-process client: what an application embedding an official Trustly client does (build
//!   the JSON-RPC request, sign it inline, POST it, verify the answer), on core 0 like the sidecar,
//!   concurrency 1 and 64, and the ratios sidecar / in-process;
//! - the same AccountPayout through the sidecar over gRPC, concurrency 1 and 64, with the
//!   in-memory store and with Redis (idempotency record per call);
//! - notification intake with Redis persistence and signed replies (closed loop, 32 connections),
//!   and intake → subscriber latency at a fixed 200 notifications/s, with the subscriber on the
//!   same sidecar and on a second sidecar process sharing the Redis (both on the sidecar core);
//! - the sidecar's RSS idle and its peak under the loads above.
//!
//! Every figure is the median of `--runs` (default 3) windows, printed with its range. Before
//! measuring and after every window it checks that nothing else runs (load average, other
//! processes' CPU, steal: `quiet.rs`) and refuses to report otherwise (exit 1 naming the load);
//! `--force` measures anyway and marks the output UNRELIABLE (and its file names `-unreliable`).
//! It prints a table and writes `tests/benches/results/gateway-DATE.json` (or JSON_PATH) and a
//! PNG of the latency percentiles per path beside it (same name, `.png`).
//!
//! `GATEWAY_BENCH_BACKEND=openssl` measures one backend only; `GATEWAY_BENCH_SIDECAR=PATH` measures
//! another build of the sidecar binary (e.g. the previous commit's), so that two builds are
//! compared on the same machine within the hour: figures from different sessions' machines are not.
//!
//! The `pkcs11` row signs in a fresh SoftHSM2 token holding the merchant key (`softhsm.rs`).
//! Without SoftHSM2 the row is skipped with a note.
//!
//! Needs `taskset` (util-linux), `redis-server` (started privately, pinned to core 1), 2 cores,
//! and a TrueType font for the PNG (`plot.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failed setup is a crash

mod load;
mod notify;
mod ops;
mod plot;
mod procs;
mod quiet;
mod report;
#[path = "../shared/rss.rs"]
mod rss;
mod softhsm;

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rsa::{RsaPrivateKey, RsaPublicKey, pkcs8::EncodePublicKey};
use rust_decimal::Decimal;
use trustly_sidecar::{
    secret::Secret,
    sim::{RetryPolicy, SimConfig, Simulator},
    trustly::{
        Client, ClientConfig, keys,
        sign::{Backend, CryptoPool, pkcs11},
    },
};

use crate::{
    load::measure,
    ops::{InProcess, direct_payout, grpc_payouts, register_account, signing_ceiling},
    procs::{BenchRedis, Env, SidecarProcess, Store},
    report::{BackendReport, MemoryFigures, Meta, Run},
    softhsm::{SOFTHSM_DIR, SOFTHSM_MODULE, rerun_with_token, softhsm_token, token_settings},
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
/// Seconds per measured window when not given.
const DEFAULT_SECONDS: f64 = 5.0;
/// Measured windows per figure when `--runs` is not given.
const DEFAULT_RUNS: usize = 3;
/// The fewest windows with a meaningful median (and a spread); fewer only with `--force`, and
/// the output is then marked UNRELIABLE.
const MIN_RUNS: usize = 3;

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

/// The command line: `[SECONDS [JSON_PATH]] [--runs N] [--force]`.
struct Args {
    window: Duration,
    json_path: Option<PathBuf>,
    runs: usize,
    force: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut positional = Vec::new();
    let (mut runs, mut force) = (DEFAULT_RUNS, false);
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--force" => force = true,
            "--runs" => {
                let n = args.next().and_then(|n| n.parse().ok());
                runs = n
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| anyhow::anyhow!("--runs needs a number ({MIN_RUNS} or more)"))?;
            }
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let seconds = match positional.next() {
        Some(s) => s
            .parse()
            .map_err(|_| anyhow::anyhow!("SECONDS must be a number, not {s:?}"))?,
        None => DEFAULT_SECONDS,
    };
    Ok(Args {
        window: Duration::from_secs_f64(seconds),
        json_path: positional.next().map(PathBuf::from),
        runs,
        force,
    })
}

fn bench() -> anyhow::Result<()> {
    let args = args()?;
    quiet::init(args.runs, args.force);
    if args.runs < MIN_RUNS {
        let reason = format!(
            "--runs {} is below {MIN_RUNS}: no meaningful median",
            args.runs
        );
        anyhow::ensure!(
            args.force,
            "{reason}; pass --force to measure anyway (UNRELIABLE)"
        );
        quiet::mark_unreliable(reason);
    }
    // Before any thread exists, so every thread of this process inherits core 1.
    let pinned = pin(std::process::id(), LOAD_CORE);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run(&args, pinned))
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

/// Pins the calling thread alone (`/proc/thread-self` names its id).
fn pin_thread(core: &str) -> bool {
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| link.file_name()?.to_str()?.parse().ok());
    tid.is_some_and(|tid| pin(tid, core))
}

/// What every backend's measurement shares: the simulator, Redis, the sidecar's settings.
struct Setup {
    env: Env,
    simulator: Simulator,
    merchant_key: RsaPrivateKey,
    sim_key: RsaPrivateKey,
    _redis: BenchRedis,
    _workdir: tempfile::TempDir,
}

async fn setup() -> anyhow::Result<Setup> {
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
    let simulator = Simulator::start(SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        merchant_public_key: RsaPublicKey::from(&merchant_key),
        private_key: Secret::new(sim_key.clone()),
        username: USERNAME.into(),
        password: Secret::new(PASSWORD.into()),
        backend: fastest_backend(),
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
    Ok(Setup {
        env,
        simulator,
        merchant_key,
        sim_key,
        _redis: redis,
        _workdir: workdir,
    })
}

async fn run(args: &Args, pinned: bool) -> anyhow::Result<()> {
    let setup = setup().await?;
    quiet::check_start().await?;
    let mut report = Vec::new();
    for backend in backends() {
        eprintln!("== {backend}");
        report.push(measure_backend(&setup, backend, args.window).await?);
    }
    setup.simulator.shutdown().await;
    let meta = Meta {
        pinned,
        window: args.window,
        runs: quiet::runs(),
        commit: commit(),
        date: today(),
        unreliable: quiet::unreliable(),
    };
    report::print_table(&report, &meta);
    let json_path = args.json_path.clone().unwrap_or_else(|| {
        let suffix = if meta.unreliable.is_empty() {
            ""
        } else {
            "-unreliable"
        };
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
            "tests/benches/results/gateway-{}{suffix}.json",
            meta.date
        ))
    });
    report::write_json(&json_path, &report, &meta)?;
    eprintln!("wrote {}", json_path.display());
    let png_path = json_path.with_extension("png");
    plot::write_png(&png_path, &report, &meta)?;
    eprintln!("wrote {}", png_path.display());
    Ok(())
}

/// Every figure of one backend.
async fn measure_backend(
    setup: &Setup,
    backend: Backend,
    window: Duration,
) -> anyhow::Result<BackendReport> {
    let signer = match backend {
        Backend::Pkcs11 => {
            token_settings().and_then(|t| Ok(pkcs11::Token::open(t)?.signer()?.0))?
        }
        _ => backend.signer(setup.merchant_key.clone())?,
    };
    let sim_public = RsaPublicKey::from(&setup.sim_key);
    let api_url = setup.simulator.api_url();
    let direct = Client::new(
        ClientConfig::new(api_url.clone(), USERNAME, Secret::new(PASSWORD.into())),
        Arc::clone(&signer),
        backend.verifying().verifier(sim_public.clone())?,
        CryptoPool::new(1),
    )?;
    let account_id = register_account(&direct).await;
    let ceiling = signing_ceiling(Arc::clone(&signer), SIDECAR_CORE, &account_id, window).await?;
    eprintln!("   ceiling {} signs/s", ceiling.cell(0));

    let direct_c1 = {
        let (direct, account_id) = (direct.clone(), account_id.clone());
        measure(1, window, move |i| {
            let (direct, account_id) = (direct.clone(), account_id.clone());
            async move { direct_payout(&direct, &account_id, i).await }
        })
        .await?
    };
    eprintln!("   direct c=1 {direct_c1}");

    let app = InProcess {
        url: api_url.to_string(),
        username: USERNAME.into(),
        password: PASSWORD.into(),
        signer: Arc::clone(&signer),
        verifier: backend.verifying().verifier(sim_public)?,
    };
    let mut in_process = Vec::new();
    for concurrency in [1, HIGH_CONCURRENCY] {
        let figure = app
            .measure_on(SIDECAR_CORE, &account_id, concurrency, window)
            .await?;
        eprintln!("   in-process c={concurrency} {figure}");
        in_process.push((concurrency, figure));
    }

    let mut memory = MemoryFigures::default();
    let runs = sidecar_runs(setup, backend, &account_id, window, &mut memory).await?;

    let notifications = notify::notification_path(
        &setup.env,
        backend,
        &setup.sim_key,
        (window, ceiling.median),
        &mut memory,
    )
    .await?;
    eprintln!("   intake {}", notifications.intake);
    eprintln!("   delivery {}", notifications.delivery);
    eprintln!("   cross-replica delivery {}", notifications.cross_replica);
    Ok(BackendReport {
        backend,
        ceiling,
        direct_c1,
        in_process,
        runs,
        notifications,
        memory,
    })
}

/// The AccountPayout through the sidecar over gRPC: memory and Redis store, c=1 and
/// HIGH_CONCURRENCY; records the idle RSS (memory store) and the peak.
async fn sidecar_runs(
    setup: &Setup,
    backend: Backend,
    account_id: &str,
    window: Duration,
    memory: &mut MemoryFigures,
) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for store in [Store::Memory, Store::Redis] {
        let sidecar = SidecarProcess::start(&setup.env, backend, store).await;
        if store == Store::Memory {
            memory.idle_kib = sidecar.rss_kib();
        }
        let sampler = sidecar.sample_rss();
        for concurrency in [1, HIGH_CONCURRENCY] {
            let figure = grpc_payouts(&sidecar, account_id, concurrency, window).await?;
            eprintln!("   sidecar {store:?} c={concurrency} {figure}");
            runs.push(Run {
                store,
                concurrency,
                figure,
            });
        }
        memory.peak_kib = memory.peak_kib.max(sampler.stop().await);
        sidecar.stop().await;
    }
    Ok(runs)
}

/// `git rev-parse --short HEAD`, with `-dirty` when tracked files differ from it.
fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|changes| !changes.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}

/// Today's date (UTC) as YYYY-MM-DD.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
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
