//! Generated protobuf types for `trustly.v1`. Only `grpc/` uses them.

#![allow(clippy::all, missing_docs, unreachable_pub)]

tonic::include_proto!("trustly.v1");

/// The encoded descriptor set served by gRPC reflection: `trustly.v1`, the `google.rpc` error
/// details (`ErrorInfo`, `BadRequest`, `Status`) and every file they import (see `build.rs`).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/served_descriptor.bin"));
