//! Process signals. Handlers are installed when these functions are *called*, not when their
//! futures are first polled: a SIGTERM or SIGHUP that arrives while the gateway is still starting
//! must not hit the default action (terminate) and skip the graceful drain.

use std::future::Future;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Installs the SIGINT (Ctrl-C) and SIGTERM (Kubernetes stopping the pod) handlers now; the
/// returned future resolves on the first of them.
pub fn shutdown() -> impl Future<Output = ()> + Send {
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            () = received(&mut terminate) => {}
            () = received(&mut interrupt) => {}
        }
    }
}

/// Installs the SIGHUP handler now (the key reloader listens to it); `None` if it cannot be.
pub fn hangup() -> Option<Signal> {
    signal(SignalKind::hangup()).ok()
}

/// The next delivery of `signal`; never, if its handler could not be installed.
pub async fn received(signal: &mut Option<Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
