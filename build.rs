//! Compiles `proto/` with protox (pure Rust: no system `protoc` needed anywhere) and writes the
//! encoded descriptor set to `OUT_DIR` for gRPC server reflection.
//!
//! Rust types are generated for `trustly.v1` only. The served descriptor set also holds the
//! vendored `google.rpc` error details (the Rust side of those is `tonic-types`), so a stock
//! reflection client can decode the `ErrorInfo` and `BadRequest` every error carries. protox adds
//! every transitive import (`google/protobuf/{timestamp,duration,any}.proto`) to both sets.
//!
//! Also sets `TRUSTLY_SIDECAR_REVISION` (the `build_info` metric's `revision`): the variable when
//! the build sets it (a Docker build has no `.git`), else `git rev-parse --short HEAD`, else
//! `unknown`.

use std::{path::PathBuf, process::Command};

const REVISION_VAR: &str = "TRUSTLY_SIDECAR_REVISION";

fn main() -> anyhow::Result<()> {
    println!("cargo:rustc-env={REVISION_VAR}={}", revision());
    let proto_root = "proto";
    let trustly = [
        "proto/trustly/v1/types.proto",
        "proto/trustly/v1/payment_service.proto",
        "proto/trustly/v1/notification_service.proto",
        "proto/trustly/v1/account_service.proto",
        "proto/trustly/v1/order_service.proto",
    ];
    // Vendored from googleapis (Apache-2.0), the same files `tonic-types` is generated from.
    let error_details = [
        "proto/google/rpc/status.proto",
        "proto/google/rpc/error_details.proto",
    ];
    for file in trustly.iter().chain(&error_details) {
        println!("cargo:rerun-if-changed={file}");
    }
    let served = protox::compile(trustly.iter().chain(&error_details), [proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("served_descriptor.bin"),
        prost::Message::encode_to_vec(&served),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(protox::compile(trustly, [proto_root])?)?;
    Ok(())
}

/// The commit being built, for `build_info`. Re-run when the checkout moves to another commit
/// (HEAD, the branch it names, or packed refs changes); only existing files are watched, since
/// cargo re-runs the script on every build for a path that does not exist.
fn revision() -> String {
    println!("cargo:rerun-if-env-changed={REVISION_VAR}");
    if let Ok(revision) = std::env::var(REVISION_VAR)
        && !revision.trim().is_empty()
    {
        return revision.trim().to_owned();
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    let Some(revision) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_owned();
    };
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for name in ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref()) {
        if let Some(path) = git(&["rev-parse", "--git-path", name])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    revision
}
