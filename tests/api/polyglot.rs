//! Polyglot proof: a Python client (grpcio, stubs generated from `proto/` at run time) and a Node
//! client (`@grpc/grpc-js` + proto-loader) run Deposit, RegisterAccount and AccountPayout against a
//! sandbox sidecar and assert the typed results (see tests/polyglot/).
//!
//! `.ci/run` installs both toolchains' packages; a missing one fails this test loudly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::{collections::HashMap, time::Duration};

use support::app;

/// Upper bound for one client run: stub generation plus four calls with 30 s deadlines each.
const CLIENT_RUN_LIMIT: Duration = Duration::from_secs(180);

async fn sandbox() -> app::Sidecar {
    let vars = HashMap::from([("TRUSTLY_SIDECAR_SANDBOX".to_owned(), "1".to_owned())]);
    app::spawn(vars, Vec::new()).await
}

async fn run_client(program: &str, script: &str, addr: std::net::SocketAddr) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = tokio::time::timeout(
        CLIENT_RUN_LIMIT,
        tokio::process::Command::new(program)
            .arg(format!("{root}/tests/polyglot/{script}"))
            .args(["--addr", &addr.to_string()])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{script} did not finish within {CLIENT_RUN_LIMIT:?}"))
    .unwrap_or_else(|e| panic!("cannot run {program} {script}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

#[tokio::test]
async fn a_python_client_pays_in_registers_and_pays_out() {
    let sidecar = sandbox().await;
    let stdout = run_client("python3", "client.py", sidecar.addr).await;
    assert!(stdout.contains("python: 4 passed, 0 failed"), "{stdout}");
    assert!(
        stdout.contains("AccountPayout ok") && stdout.contains("accepted=True"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_node_client_pays_in_registers_and_pays_out() {
    let sidecar = sandbox().await;
    let stdout = run_client("node", "client.js", sidecar.addr).await;
    assert!(stdout.contains("node: 4 passed, 0 failed"), "{stdout}");
    assert!(
        stdout.contains("AccountPayout ok") && stdout.contains("accepted=true"),
        "{stdout}"
    );
}
