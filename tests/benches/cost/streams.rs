//! The sidecar's RSS with many open StreamNotifications streams.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use tonic::transport::Channel;
use trustly_sidecar::pb::{self, notification_service_client::NotificationServiceClient};

/// Open streams, spread evenly over [`GROUPS`] consumer groups (issue 17: 1 000 over 100).
pub const STREAMS: usize = 1000;
pub const GROUPS: usize = 100;
/// HTTP/2 connections the streams share: 100 streams each, under the server's concurrent-stream
/// limit.
pub const CHANNELS: usize = 10;
/// How often an idle stream gets a heartbeat: its first one says the stream is established.
const HEARTBEAT: &str = "1s";
/// How long the sidecar (and every stream's first heartbeat) may take.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// Pause after start before the idle RSS is read (start-up allocations settle).
const SETTLE: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Memory,
    Redis,
}

#[derive(Debug)]
pub struct Rss {
    pub store: Store,
    pub idle_kib: u64,
    pub streams_kib: u64,
    /// The sidecar's own count of open streams (`stream_subscribers`).
    pub subscribers: u64,
}

/// Starts the sidecar on `store`, opens [`STREAMS`] streams, reads its RSS, stops it.
pub async fn measure(store: Store, redis_url: &str, prefix: &str) -> anyhow::Result<Rss> {
    let sidecar = Sidecar::start(store, redis_url, prefix)?;
    let result = async {
        let channels = sidecar.channels().await?;
        tokio::time::sleep(SETTLE).await;
        let idle_kib = crate::rss::rss_kib(sidecar.child.id());
        let mut streams = Vec::with_capacity(STREAMS);
        for i in 0..STREAMS {
            let mut client = NotificationServiceClient::new(channels[i % CHANNELS].clone());
            let request = pb::StreamNotificationsRequest {
                consumer_group: format!("group-{:03}", i % GROUPS),
                start: pb::StartPosition::New as i32,
                ..Default::default()
            };
            streams.push(client.stream_notifications(request).await?.into_inner());
        }
        // Established: each stream has had its first heartbeat.
        for stream in &mut streams {
            tokio::time::timeout(READY_WITHIN, stream.message())
                .await??
                .ok_or_else(|| anyhow::anyhow!("a stream ended"))?;
        }
        let subscribers = sidecar.subscribers().await?;
        let streams_kib = crate::rss::rss_kib(sidecar.child.id());
        drop(streams);
        Ok(Rss {
            store,
            idle_kib,
            streams_kib,
            subscribers,
        })
    }
    .await;
    sidecar.stop();
    result
}

struct Sidecar {
    child: Child,
    grpc: SocketAddr,
    ops: SocketAddr,
    _workdir: tempfile::TempDir,
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

impl Sidecar {
    /// The release binary; Trustly's URL points nowhere (nothing is sent).
    fn start(store: Store, redis_url: &str, prefix: &str) -> anyhow::Result<Self> {
        let workdir = tempfile::tempdir()?;
        let password_path = workdir.path().join("password");
        std::fs::write(&password_path, "bench-password")?;
        let keys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
        let (grpc, intake, ops) = (free_addr(), free_addr(), free_addr());
        let mut command = Command::new(env!("CARGO_BIN_EXE_trustly-sidecar"));
        command
            .env_clear()
            .env("TRUSTLY_SIDECAR_TRUSTLY_URL", "http://127.0.0.1:9/api/1")
            .env(
                "TRUSTLY_SIDECAR_TRUSTLY_PUBLIC_KEY_PATH",
                keys.join("trustly-test-public.pem"),
            )
            .env(
                "TRUSTLY_SIDECAR_PRIVATE_KEY_PATH",
                keys.join("merchant-test-private.pem"),
            )
            .env("TRUSTLY_SIDECAR_USERNAME", "bench-merchant")
            .env("TRUSTLY_SIDECAR_PASSWORD_PATH", &password_path)
            .env("TRUSTLY_SIDECAR_GRPC_LISTEN", grpc.to_string())
            .env("TRUSTLY_SIDECAR_NOTIFICATION_LISTEN", intake.to_string())
            .env("TRUSTLY_SIDECAR_OPS_LISTEN", ops.to_string())
            .env(
                "TRUSTLY_SIDECAR_NOTIFICATION_URL",
                format!("http://{intake}/trustly/notifications"),
            )
            .env("TRUSTLY_SIDECAR_HEARTBEAT_INTERVAL", HEARTBEAT)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if store == Store::Redis {
            command
                .env("TRUSTLY_SIDECAR_REDIS_URL", redis_url)
                .env("TRUSTLY_SIDECAR_REDIS_PREFIX", prefix);
        }
        Ok(Self {
            child: command.spawn()?,
            grpc,
            ops,
            _workdir: workdir,
        })
    }

    /// [`CHANNELS`] connections, once the sidecar serves gRPC.
    async fn channels(&self) -> anyhow::Result<Vec<Channel>> {
        let endpoint = Channel::from_shared(format!("http://{}", self.grpc))?;
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        let mut channels = Vec::with_capacity(CHANNELS);
        while channels.len() < CHANNELS {
            match endpoint.connect().await {
                Ok(channel) => channels.push(channel),
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => anyhow::bail!("the sidecar did not serve gRPC: {error}"),
            }
        }
        Ok(channels)
    }

    /// The `stream_subscribers` gauge from the ops listener's metrics.
    async fn subscribers(&self) -> anyhow::Result<u64> {
        let text = reqwest::get(format!("http://{}/metrics", self.ops))
            .await?
            .text()
            .await?;
        text.lines()
            .find(|line| !line.starts_with('#') && line.contains("stream_subscribers"))
            .and_then(|line| line.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no stream_subscribers gauge"))
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
