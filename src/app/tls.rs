//! The TLS of each listener that has it (gRPC, intake, ops), loaded from the configuration, and
//! the watchers that reload a listener's files when they change.

use std::time::Duration;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::Config,
    ops::tls::{Acceptor, Error, Protocol, TlsFiles},
};

/// Each listener's TLS; `None`: plaintext.
#[derive(Clone)]
pub(super) struct ListenerTls {
    pub grpc: Option<Acceptor>,
    pub intake: Option<Acceptor>,
    pub ops: Option<Acceptor>,
    /// How often the files are checked for changes (as the merchant key's are).
    interval: Duration,
}

impl ListenerTls {
    pub fn load(config: &Config) -> Result<Self, Error> {
        let load = |name, files: &Option<TlsFiles>, protocol| {
            files
                .clone()
                .map(|files| Acceptor::load(name, files, protocol))
                .transpose()
        };
        Ok(Self {
            grpc: load("gRPC", &config.grpc.tls, Protocol::Http2)?,
            intake: load("notification intake", &config.intake.tls, Protocol::Http1)?,
            ops: load("ops", &config.grpc.ops_tls, Protocol::Http1)?,
            interval: config.trustly.reload_interval,
        })
    }

    /// Watches each listener's files, on `tasks` until `shutdown`.
    pub fn watch(&self, tasks: &TaskTracker, shutdown: &CancellationToken) {
        for acceptor in [&self.grpc, &self.intake, &self.ops].into_iter().flatten() {
            tasks.spawn(acceptor.clone().watch(self.interval, shutdown.clone()));
        }
    }
}

/// How a listener is secured, for its "listening" log line: `off`, `tls` or `mtls`.
pub(super) fn security(tls: Option<&Acceptor>) -> &'static str {
    match tls {
        None => "off",
        Some(acceptor) if acceptor.mutual() => "mtls",
        Some(_) => "tls",
    }
}
