#!/usr/bin/env python3
"""A stock grpc.health.v1 Watch against trustly-sidecar: prints each status as it arrives.

Usage: python3 tests/polyglot/health_watch.py ADDRESS [SERVICE]   (SERVICE defaults to "")

With grpcio-health-checking's HealthStub, watches SERVICE and prints one line per message
(`status SERVING`, `status NOT_SERVING`), flushed at once so a test can follow the stream; when
the stream ends it prints `end OK` or `end <CODE> <details>` and exits 0. Exit 2 when a package
is missing. No deadline: the caller bounds the run.

Needs (versions verified): python3 -m pip install grpcio==1.85.1 grpcio-health-checking==1.85.1
"""

import sys


def main() -> int:
    if len(sys.argv) not in (2, 3) or sys.argv[1].startswith("-"):
        print(f"usage: {sys.argv[0]} ADDRESS [SERVICE]", file=sys.stderr)
        return 2
    try:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError as exc:
        print(f"cannot import grpcio / grpcio-health-checking: {exc}", file=sys.stderr)
        return 2
    address = sys.argv[1]
    service = sys.argv[2] if len(sys.argv) == 3 else ""
    names = health_pb2.HealthCheckResponse.ServingStatus.Name
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            for response in stub.Watch(health_pb2.HealthCheckRequest(service=service)):
                print(f"status {names(response.status)}", flush=True)
            print("end OK", flush=True)
        except grpc.RpcError as err:
            print(f"end {err.code().name} {err.details()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
