//! Generated protobuf types for `trustly.v1`. Only `grpc/` uses them.

#![allow(clippy::all, missing_docs, unreachable_pub)]

tonic::include_proto!("trustly.v1");

/// The encoded descriptor set of `proto/`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/trustly_v1_descriptor.bin"));
