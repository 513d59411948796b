//! Compiles `proto/` with protox (pure Rust: no system `protoc` needed anywhere) and writes the
//! encoded descriptor set to `OUT_DIR` for gRPC server reflection.
//!
//! Rust types are generated for `trustly.v1` only. The served descriptor set also holds the
//! vendored `google.rpc` error details (the Rust side of those is `tonic-types`), so a stock
//! reflection client can decode the `ErrorInfo` and `BadRequest` every error carries. protox adds
//! every transitive import (`google/protobuf/{timestamp,duration,any}.proto`) to both sets.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let proto_root = "proto";
    let trustly = [
        "proto/trustly/v1/types.proto",
        "proto/trustly/v1/payment_service.proto",
        "proto/trustly/v1/notification_service.proto",
        "proto/trustly/v1/account_service.proto",
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
