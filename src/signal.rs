//! Process signals: the future `main` hands to `run` as its shutdown trigger.

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (Kubernetes stopping the pod).
pub async fn shutdown() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
