//! A private `redis-server` a test may stop, kill and restart without disturbing the shared one.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

pub struct PrivateRedis {
    pub port: u16,
    /// Data directory (the append-only file of a durable server).
    dir: tempfile::TempDir,
    durable: bool,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Keeps nothing on disk: a restart starts empty.
    pub async fn start() -> Self {
        Self::launch(false).await
    }

    /// Append-only with `fsync always`: whatever it acknowledged survives a SIGKILL.
    pub async fn start_durable() -> Self {
        Self::launch(true).await
    }

    /// A free port and a data directory, nothing started yet: `resume` starts it (a sidecar may
    /// be told its URL first).
    pub fn unstarted() -> Self {
        PrivateRedis {
            port: super::requests::free_port(),
            dir: tempfile::tempdir().expect("redis data dir"),
            durable: false,
            child: None,
        }
    }

    async fn launch(durable: bool) -> Self {
        let mut redis = Self::unstarted();
        redis.durable = durable;
        redis.resume().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: connections drop, nothing is flushed beyond what `fsync always` already wrote.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts (again) on the same port and data directory; returns once it answers PING.
    pub async fn resume(&mut self) {
        self.stop();
        let appendonly = if self.durable { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                appendonly,
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("redis url");
        for _ in 0..200 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("private redis-server did not start on port {}", self.port);
    }

    /// Kill, stay down for `down_for`, start again.
    pub async fn restart(&mut self, down_for: Duration) {
        self.stop();
        tokio::time::sleep(down_for).await;
        self.resume().await;
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
