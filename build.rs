//! Compiles `proto/` with protox (pure Rust: no system `protoc` needed anywhere) and writes the
//! encoded descriptor set to `OUT_DIR` for gRPC server reflection.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let proto_root = "proto";
    let files = [
        "proto/trustly/v1/types.proto",
        "proto/trustly/v1/payment_service.proto",
        "proto/trustly/v1/notification_service.proto",
        "proto/trustly/v1/account_service.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, [proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("trustly_v1_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
