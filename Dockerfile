# syntax=docker/dockerfile:1
# trustly-sidecar image: build with the pinned Rust toolchain, run on distroless as non-root.
#
#   docker build -t trustly-sidecar:0.1.0 .
#   docker build --build-arg CARGO_FEATURES=otel -t trustly-sidecar:0.1.0-otel .
#   docker build --build-arg TRUSTLY_SIDECAR_REVISION=$(git rev-parse --short HEAD) -t ... .
#
# helm/README.md has the run commands and how the chart uses the image.

# --- build -------------------------------------------------------------------------------------
# The exact toolchain rust-toolchain.toml pins (1.95.0), so rustup downloads no other one.
FROM rust:1.95.0-bookworm AS builder
# Extra cargo features beside the default ones: "otel" for TRUSTLY_SIDECAR_OTLP_ENDPOINT. The
# default features are `openssl` (the default signing backend; OpenSSL is built from source by
# openssl-src with the image's perl, make and gcc, and linked statically, so no libssl-dev) and
# `pkcs11` (a PKCS#11 token; the vendor's module .so is not in this image: mount it and point
# TRUSTLY_SIDECAR_PKCS11_MODULE at it). TRUSTLY_SIDECAR_SIGNING_BACKEND=rustcrypto selects the
# pure-Rust backend at run time.
ARG CARGO_FEATURES=""
# The git commit for the trustly_sidecar_build_info metric (.git is not in the build context);
# empty: "unknown".
ARG TRUSTLY_SIDECAR_REVISION=""
# No system packages: OpenSSL is vendored (above) and protoc is not needed (protox).
WORKDIR /src
# rust-toolchain.toml asks for rustfmt and clippy; add them in their own cached layer.
COPY rust-toolchain.toml ./
RUN rustup component add rustfmt clippy
COPY . .
# Cache mounts keep the registry and target dir between builds (BuildKit); the binaries are copied
# out of the cached target dir so the next stage can take them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked ${CARGO_FEATURES:+--features "$CARGO_FEATURES"} \
      --bin trustly-sidecar --bin trustly-sim --bin trustly-notify \
    && mkdir -p /out \
    && cp target/release/trustly-sidecar target/release/trustly-sim target/release/trustly-notify /out/

# --- run ---------------------------------------------------------------------------------------
# glibc, libgcc, ca-certificates and tzdata (and libssl3, unused: OpenSSL is linked in); no shell,
# no package manager. The :nonroot tag runs as uid/gid 65532, the user the Helm chart's
# securityContext expects.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="trustly-sidecar" \
      org.opencontainers.image.description="gRPC payment-gateway sidecar for Trustly's merchant API" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/trustly-sidecar /out/trustly-sim /out/trustly-notify /usr/local/bin/
# Inside a container the notification intake and ops endpoints must be reachable from outside the
# container's loopback; gRPC stays on loopback by default (a non-loopback gRPC address requires a
# token file, TRUSTLY_SIDECAR_GRPC_TOKEN_PATH). The Helm chart sets all three explicitly.
ENV TRUSTLY_SIDECAR_NOTIFICATION_LISTEN=0.0.0.0:8480 \
    TRUSTLY_SIDECAR_OPS_LISTEN=0.0.0.0:9464
USER 65532:65532
# 50051 gRPC, 8480 notification intake (HTTP), 9464 ops: /healthz, /readyz, /metrics.
EXPOSE 50051 8480 9464
ENTRYPOINT ["/usr/local/bin/trustly-sidecar"]
