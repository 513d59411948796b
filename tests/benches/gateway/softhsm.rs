//! The pkcs11 row: a fresh SoftHSM2 token holding the merchant key. SoftHSM2 reads
//! `SOFTHSM2_CONF` when loaded, so the benchmark makes the token and re-runs itself with it set.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::Context as _;
use trustly_sidecar::trustly::sign::pkcs11;

/// Set (to the token's directory) in the re-run that benchmarks the pkcs11 backend too.
pub const SOFTHSM_DIR: &str = "GATEWAY_BENCH_SOFTHSM_DIR";
/// Debian's SoftHSM2 module (package softhsm2).
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const SOFTHSM_PIN: &str = "5678";

/// A fresh token labelled `bench` holding the merchant key as `merchant`; `None` without SoftHSM2.
pub fn softhsm_token() -> anyhow::Result<Option<tempfile::TempDir>> {
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
pub fn rerun_with_token(dir: &Path) -> anyhow::Result<i32> {
    let status = Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"))
        .env(SOFTHSM_DIR, dir)
        .status()?;
    Ok(status.code().unwrap_or(1))
}

/// The token made by [`softhsm_token`], in the re-run.
pub fn token_settings() -> anyhow::Result<pkcs11::Settings> {
    let dir = PathBuf::from(std::env::var_os(SOFTHSM_DIR).context("no SoftHSM2 token")?);
    Ok(pkcs11::Settings {
        module: SOFTHSM_MODULE.into(),
        token_label: "bench".into(),
        key_label: "merchant".into(),
        pin_path: dir.join("pin"),
        sessions: None,
    })
}
