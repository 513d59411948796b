//! Spawns the sidecar in-process on 127.0.0.1:0 with a generated gRPC client.

use std::{collections::HashMap, net::SocketAddr};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;
use trustly_sidecar::{
    App, Listeners, RunError, config::Config, pb::payment_service_client::PaymentServiceClient, run,
};

use super::*;

/// A running sidecar; stops (and drains) when `stop` is called or it is dropped.
pub struct Sidecar {
    pub addr: SocketAddr,
    /// Where notification intake listens.
    pub intake_addr: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub ops_addr: SocketAddr,
    pub client: PaymentServiceClient<Channel>,
    pub channel: Channel,
    /// The sandbox simulator's console and admin API (`http://addr/admin`), in sandbox mode.
    pub simulator_admin: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RunError>>>,
    _files: Vec<tempfile::NamedTempFile>,
}

impl Sidecar {
    /// Sends the shutdown signal without waiting for the drain.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Graceful shutdown; returns what `run` returned.
    pub async fn stop(mut self) -> Result<(), RunError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("running").await.expect("run task")
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A file holding `content`, kept alive with the sidecar.
pub fn secret_file(content: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), content).expect("write");
    file
}

/// Spawns a sidecar from TRUSTLY_SIDECAR_* variables (as a Helm chart would set them).
pub async fn spawn(vars: HashMap<String, String>, files: Vec<tempfile::NamedTempFile>) -> Sidecar {
    let intake = TcpListener::bind("127.0.0.1:0").await.expect("bind intake");
    start(vars, files, intake, |_| {}).await
}

/// Like [`spawn`], with the default NotificationURL pointing at this sidecar's own intake, so the
/// simulator's notifications arrive here.
pub async fn spawn_with_intake(
    vars: HashMap<String, String>,
    files: Vec<tempfile::NamedTempFile>,
) -> Sidecar {
    spawn_adjusted(vars, files, |_| {}).await
}

/// Like [`spawn_with_intake`], with `adjust` applied to the configuration read from `vars` (for
/// what no variable sets, such as `store.test_poll_every`).
pub async fn spawn_adjusted(
    mut vars: HashMap<String, String>,
    files: Vec<tempfile::NamedTempFile>,
    adjust: impl FnOnce(&mut Config),
) -> Sidecar {
    let intake = TcpListener::bind("127.0.0.1:0").await.expect("bind intake");
    let url = format!(
        "http://{}/trustly/notifications",
        intake.local_addr().expect("addr")
    );
    vars.insert("TRUSTLY_SIDECAR_NOTIFICATION_URL".into(), url);
    start(vars, files, intake, adjust).await
}

async fn start(
    vars: HashMap<String, String>,
    files: Vec<tempfile::NamedTempFile>,
    intake: TcpListener,
    adjust: impl FnOnce(&mut Config),
) -> Sidecar {
    let mut vars = vars;
    // A sandbox's simulator on a free port, never the default one a developer may be using.
    vars.entry("TRUSTLY_SIDECAR_SANDBOX_SIMULATOR_LISTEN".to_owned())
        .or_insert_with(|| "127.0.0.1:0".to_owned());
    // No scheduled reconciliation (an AccountLedger call at the hour) unless a test asks for one.
    vars.entry("TRUSTLY_SIDECAR_RECONCILE_INTERVAL".to_owned())
        .or_insert_with(|| "off".to_owned());
    let mut config = Config::from_lookup(|var| vars.get(var).cloned()).expect("valid config");
    adjust(&mut config);
    let app = App::build(config).await.expect("app builds");
    let simulator_admin = app.simulator_admin_url();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let intake_addr = intake.local_addr().expect("addr");
    let ops = TcpListener::bind("127.0.0.1:0").await.expect("bind ops");
    let ops_addr = ops.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let listeners = Listeners {
        grpc: listener,
        intake,
        ops: Some(ops),
    };
    let task = tokio::spawn(run(app, listeners, async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    Sidecar {
        addr,
        intake_addr,
        ops_addr,
        client: PaymentServiceClient::new(channel.clone()),
        channel,
        simulator_admin,
        stop: Some(stop),
        task: Some(task),
        _files: files,
    }
}

/// Variables for a sidecar talking to `sim` as the merchant of the simulator harness.
pub fn vars_for(
    sim: &sim::SimHarness,
    extra: &[(&str, &str)],
) -> (HashMap<String, String>, Vec<tempfile::NamedTempFile>) {
    let password = secret_file(sim::PASSWORD);
    let mut vars: HashMap<String, String> = [
        (
            "TRUSTLY_SIDECAR_TRUSTLY_URL",
            sim.simulator
                .as_ref()
                .expect("running")
                .api_url()
                .to_string(),
        ),
        (
            "TRUSTLY_SIDECAR_TRUSTLY_PUBLIC_KEY_PATH",
            key_path(TRUSTLY_PUBLIC).display().to_string(),
        ),
        (
            "TRUSTLY_SIDECAR_PRIVATE_KEY_PATH",
            key_path(MERCHANT_PRIVATE).display().to_string(),
        ),
        ("TRUSTLY_SIDECAR_USERNAME", sim::USERNAME.to_owned()),
        (
            "TRUSTLY_SIDECAR_PASSWORD_PATH",
            password.path().display().to_string(),
        ),
        (
            "TRUSTLY_SIDECAR_NOTIFICATION_URL",
            "https://merchant.example/trustly/notifications".to_owned(),
        ),
        // Every listener on a free port unless the test names one: a developer's sandbox (or CI's)
        // holds the defaults while the suite runs.
        ("TRUSTLY_SIDECAR_GRPC_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "TRUSTLY_SIDECAR_NOTIFICATION_LISTEN",
            "127.0.0.1:0".to_owned(),
        ),
        ("TRUSTLY_SIDECAR_OPS_LISTEN", "127.0.0.1:0".to_owned()),
        // No scheduled reconciliation unless a test asks for one.
        ("TRUSTLY_SIDECAR_RECONCILE_INTERVAL", "off".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (key, value) in extra {
        vars.insert((*key).to_owned(), (*value).to_owned());
    }
    (vars, vec![password])
}

/// The `trustly-sidecar` binary as a child process on free loopback ports (its notification URL
/// is its own intake), with stderr captured in a file.
pub struct Process {
    /// `None` once it has been waited for (a `Process` dropped early is killed).
    child: Option<std::process::Child>,
    pub channel: Channel,
    pub intake_addr: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub ops_addr: SocketAddr,
    log: tempfile::NamedTempFile,
    _files: Vec<tempfile::NamedTempFile>,
}

/// Starts the binary with [`vars_for`]'s variables, free ports, then `extra` (which may pin the
/// listen addresses, e.g. to restart on the same ports), and waits until gRPC answers.
pub async fn spawn_process(sim: &sim::SimHarness, extra: &[(&str, &str)]) -> Process {
    let free = super::requests::free_port;
    let (grpc, intake, ops) = (free(), free(), free());
    let (mut vars, files) = vars_for(sim, &[]);
    for (name, value) in [
        ("TRUSTLY_SIDECAR_GRPC_LISTEN", format!("127.0.0.1:{grpc}")),
        (
            "TRUSTLY_SIDECAR_NOTIFICATION_LISTEN",
            format!("127.0.0.1:{intake}"),
        ),
        ("TRUSTLY_SIDECAR_OPS_LISTEN", format!("127.0.0.1:{ops}")),
        (
            "TRUSTLY_SIDECAR_NOTIFICATION_URL",
            format!("http://127.0.0.1:{intake}/trustly/notifications"),
        ),
    ] {
        vars.insert(name.to_owned(), value);
    }
    for (name, value) in extra {
        vars.insert((*name).to_owned(), (*value).to_owned());
    }
    let addr = |var: &str| -> SocketAddr { vars[var].parse().expect("a listen address") };
    let (grpc, intake, ops) = (
        addr("TRUSTLY_SIDECAR_GRPC_LISTEN"),
        addr("TRUSTLY_SIDECAR_NOTIFICATION_LISTEN"),
        addr("TRUSTLY_SIDECAR_OPS_LISTEN"),
    );
    let log = tempfile::NamedTempFile::new().expect("log file");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_trustly-sidecar"))
        .env_clear()
        .envs(&vars)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(log.reopen().expect("log file")))
        .spawn()
        .expect("the binary starts");
    let endpoint = Channel::from_shared(format!("http://{grpc}")).expect("uri");
    let mut channel = None;
    for _ in 0..200 {
        if let Ok(connected) = endpoint.connect().await {
            channel = Some(connected);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Process {
        child: Some(child),
        channel: channel.expect("the sidecar serves gRPC within 10 s"),
        intake_addr: intake,
        ops_addr: ops,
        log,
        _files: files,
    }
}

impl Process {
    /// Sends `signal` (a `kill` name: `HUP`, `TERM`) to the running sidecar.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("running");
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal}");
    }

    /// The logs written so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).expect("logs")
    }

    /// SIGKILL (a crash: nothing drains); returns the logs written until then.
    pub async fn kill(mut self) -> String {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        }
        std::fs::read_to_string(self.log.path()).expect("logs")
    }

    /// SIGTERM, then waits (at most 30 s) for the exit; returns the exit status and the logs.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        // Waited for off the runtime thread, which the test's own connections may still need.
        let status = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            tokio::task::spawn_blocking(move || child.wait()),
        )
        .await
        .expect("the sidecar exits within 30 s of SIGTERM")
        .expect("wait task")
        .expect("wait");
        (
            status,
            std::fs::read_to_string(self.log.path()).expect("logs"),
        )
    }
}

impl Drop for Process {
    /// A test that fails half-way must not leave sidecars running.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
