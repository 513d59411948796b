#!/usr/bin/env python3
"""A stock Python gRPC client of trustly-sidecar over TLS (optionally mTLS).

Usage: python3 tests/polyglot/tls_client.py --addr 127.0.0.1:50051 --ca ca.crt \
           [--cert client.crt --key client.key]

Builds the stubs from proto/ at run time (client.py's generate_stubs), opens a
grpc.secure_channel with grpc.ssl_channel_credentials(root_certificates, private_key,
certificate_chain) and calls Deposit (EUR 100.00); the order id must be all digits. Prints
`python tls: Deposit ok order_id=...`. Exit 0 on success, 1 when the call fails (including a
refused handshake), 2 on a usage or setup error.

If TRUSTLY_SIDECAR_GRPC_TOKEN is set (non-empty), the call carries
`authorization: Bearer <token>` (it travels encrypted).

Needs: pip install grpcio grpcio-tools
"""

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import client  # noqa: E402  (the stub generator of the plaintext polyglot client)

DEADLINE_SECONDS = 30.0
LABEL = "python tls"


def read(path):
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        print(f"{LABEL}: FAIL: cannot read {path}: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True, help="the sidecar's gRPC address, host:port")
    parser.add_argument("--ca", required=True, help="PEM CA certificate the server's chains to")
    parser.add_argument("--cert", help="PEM client certificate chain (mTLS)")
    parser.add_argument("--key", help="PEM private key of --cert")
    opts = parser.parse_args()
    if (opts.cert is None) != (opts.key is None):
        parser.error("--cert and --key go together")

    try:
        import grpc
    except ImportError as exc:
        client.die(f"cannot import grpc ({exc}); run: python3 -m pip install grpcio grpcio-tools")

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(opts.ca),
        private_key=read(opts.key),
        certificate_chain=read(opts.cert),
    )
    token = os.environ.get("TRUSTLY_SIDECAR_GRPC_TOKEN", "")
    metadata = (("authorization", f"Bearer {token}"),) if token else ()

    with tempfile.TemporaryDirectory(prefix="trustly-polyglot-tls-") as tmp:
        pb2, pb2_grpc, types_pb2 = client.generate_stubs(Path(tmp))
        request = pb2.DepositRequest(
            message_id=str(uuid.uuid4()),
            end_user_id="py-tls-user",
            currency_code="EUR",
            amount="100.00",
            shopper_statement="Polyglot TLS",
            user=types_pb2.CheckoutUser(
                first_name="Åsa",
                last_name="Öberg",
                country="SE",
                locale="sv_SE",
                success_url="https://merchant.example/ok",
                fail_url="https://merchant.example/fail",
                email="asa@example.com",
            ),
        )
        with grpc.secure_channel(opts.addr, credentials) as channel:
            stub = pb2_grpc.PaymentServiceStub(channel)
            try:
                answer = stub.Deposit(request, timeout=DEADLINE_SECONDS, metadata=metadata)
            except grpc.RpcError as err:
                print(f"{LABEL}: FAIL: Deposit: {err.code().name}: {err.details()}", flush=True)
                return 1
    if not client.digits(answer.order_id):
        print(f"{LABEL}: FAIL: Deposit order_id {answer.order_id!r} is not all digits", flush=True)
        return 1
    print(f"{LABEL}: Deposit ok order_id={answer.order_id}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
