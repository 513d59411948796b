//! The processes the benchmark runs: a private Redis on the load core and sidecars on theirs.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tonic::transport::Channel;
use trustly_sidecar::trustly::sign::Backend;

use crate::{LOAD_CORE, SIDECAR_CORE, USERNAME, quiet, rss::rss_kib, softhsm::token_settings};

// === Redis, on the load core ===

/// A private `redis-server` pinned to the load core, so core 0 is the sidecar's alone (the
/// machine's shared Redis floats over both cores). Configured like it: no persistence.
pub struct BenchRedis {
    child: Child,
    pub url: String,
}

impl BenchRedis {
    pub async fn start(dir: &Path) -> Self {
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
        quiet::child_started(child.id());
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
        quiet::child_reaped(self.child.id());
    }
}

// === the sidecar process ===

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Store {
    Memory,
    Redis,
}

pub struct Env {
    pub sim_api: String,
    pub sim_public_path: PathBuf,
    pub merchant_key_path: PathBuf,
    pub password_path: PathBuf,
    pub redis_url: String,
}

pub struct SidecarProcess {
    child: Child,
    grpc: SocketAddr,
    pub intake: SocketAddr,
    /// The Redis key prefix (`None`: the memory store).
    pub prefix: Option<String>,
}

pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// The sidecar binary measured: this build's, or `GATEWAY_BENCH_SIDECAR` (another build, to
/// compare two builds on the same machine within the hour).
fn sidecar_binary() -> std::ffi::OsString {
    std::env::var_os("GATEWAY_BENCH_SIDECAR")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_trustly-sidecar").into())
}

impl SidecarProcess {
    pub async fn start(env: &Env, backend: Backend, store: Store) -> Self {
        let prefix = (store == Store::Redis).then(|| format!("bench-{}", uuid::Uuid::new_v4()));
        Self::start_sharing(env, backend, prefix).await
    }

    /// A sidecar on Redis under `prefix` (another sidecar's: a second replica), or on memory.
    pub async fn start_sharing(env: &Env, backend: Backend, prefix: Option<String>) -> Self {
        let (grpc, intake, ops) = (free_addr(), free_addr(), free_addr());
        let mut command = Command::new("taskset");
        command
            .args(["-c", SIDECAR_CORE])
            .arg(sidecar_binary())
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
        quiet::child_started(child.id());
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

    pub async fn channel(&self) -> Channel {
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
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Samples RSS every 50 ms until stopped; returns the largest.
    pub fn sample_rss(&self) -> RssSampler {
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

    /// SIGTERM, and waits for the graceful shutdown.
    pub async fn stop(self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let _ = tokio::task::spawn_blocking(move || {
            let mut sidecar = self;
            sidecar.child.wait()
        })
        .await;
    }
}

/// A benchmark that fails (or refuses: a busy machine) leaves no sidecar pinned to a core.
impl Drop for SidecarProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        quiet::child_reaped(self.child.id());
    }
}

pub struct RssSampler {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub async fn stop(self) -> u64 {
        self.task.abort();
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}
