#!/usr/bin/env python3
"""Stock gRPC tools against trustly-sidecar, with no proto files: reflection and health.

Usage: python3 tests/polyglot/stock_tools.py ADDRESS      (e.g. 127.0.0.1:50051)

With grpcio-reflection's v1alpha ProtoReflectionDescriptorDatabase (what older stock tools such as
grpcurl 1.8 speak) it lists the services and checks that trustly.v1.PaymentService,
NotificationService, AccountService, OrderService and grpc.health.v1.Health are there, and that the error
details every error carries (google.rpc.BadRequest, google.rpc.ErrorInfo) resolve, with every
file they import. A Deposit built from those reflected types, with amount "10.001", must be
refused with INVALID_ARGUMENT whose message lists `amount: ...` and whose google.rpc.BadRequest
(read with grpcio-status and the reflected type) names `amount`; it never reaches Trustly. With
grpcio-health-checking it reads SERVING for "" and for each trustly.v1 service. Prints one line
per check and a closing `stock tools: N passed, N failed` line.

Exit 0 when every check passes, 1 when one fails (including no server at the address), 2 on a
usage or setup error (a package missing). Every call has a 30 s deadline.

If TRUSTLY_SIDECAR_GRPC_TOKEN is set (non-empty), every call carries the metadata
`authorization: Bearer <token>` (reflection requires it when the sidecar has a token).

Needs (versions verified): python3 -m pip install grpcio==1.85.1 grpcio-reflection==1.85.1
grpcio-health-checking==1.85.1 grpcio-status==1.85.1 protobuf==7.36.2
"""

import os
import sys

DEADLINE_SECONDS = 30.0
LABEL = "stock tools"
TRUSTLY_SERVICES = (
    "trustly.v1.PaymentService",
    "trustly.v1.NotificationService",
    "trustly.v1.AccountService",
    "trustly.v1.OrderService",
)
HEALTH_SERVICE = "grpc.health.v1.Health"
# Message types a client needs to read an error's details, and the file each must come from.
ERROR_DETAILS = {
    "google.rpc.BadRequest": "google/rpc/error_details.proto",
    "google.rpc.ErrorInfo": "google/rpc/error_details.proto",
}
# Valid but for the amount (three decimals): must be refused with one violation, of `amount`.
BAD_DEPOSIT = {
    "end_user_id": "stock-tools-user",
    "message_id": "stock-tools-bad-deposit",
    "currency_code": "EUR",
    "amount": "10.001",
    "shopper_statement": "Shop",
    "user": {
        "first_name": "Åsa",
        "last_name": "Öberg",
        "country": "SE",
        "locale": "sv_SE",
        "email": "asa@example.com",
        "success_url": "https://merchant.example/ok",
        "fail_url": "https://merchant.example/fail",
    },
}
INSTALL = ("python3 -m pip install grpcio==1.85.1 grpcio-reflection==1.85.1 "
           "grpcio-health-checking==1.85.1 grpcio-status==1.85.1 protobuf==7.36.2")


def die(message: str, code: int = 2):
    """Prints a setup failure to stderr and exits with `code`."""
    print(f"{LABEL}: FAIL: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def imports():
    """The stock packages this script tests; exits 2 with the install line if one is missing."""
    try:
        import grpc
        from google.protobuf import descriptor_pool
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
            ProtoReflectionDescriptorDatabase,
        )
        from grpc_status import rpc_status  # noqa: F401 (checked here, used in bad_deposit)
    except ImportError as exc:
        die(f"cannot import a stock gRPC package ({exc}); run: {INSTALL}")
    return grpc, descriptor_pool, health_pb2, health_pb2_grpc, ProtoReflectionDescriptorDatabase


def rpc_error(err) -> str:
    """`CODE: details`, or just the code when the server sent no details."""
    details = err.details()
    return f"{err.code().name}: {details}" if details else err.code().name


def with_deadline_and_token(grpc, channel, token: str):
    """Wraps `channel` so every call has the deadline and, if `token`, the bearer token.

    The reflection database opens its streams itself, with neither: an interceptor adds both.
    """

    class Details(grpc.ClientCallDetails):
        def __init__(self, details):
            self.method = details.method
            self.timeout = DEADLINE_SECONDS if details.timeout is None else details.timeout
            metadata = list(details.metadata or ())
            if token:
                metadata.append(("authorization", f"Bearer {token}"))
            self.metadata = metadata
            self.credentials = details.credentials
            self.wait_for_ready = details.wait_for_ready
            self.compression = getattr(details, "compression", None)

    class Interceptor(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
        def intercept_unary_unary(self, continuation, details, request):
            return continuation(Details(details), request)

        def intercept_stream_stream(self, continuation, details, requests):
            return continuation(Details(details), requests)

    return grpc.intercept_channel(channel, Interceptor())


def bad_deposit(grpc, channel, pool, check):
    """Sends a Deposit built from reflection alone with amount "10.001" (refused before anything
    reaches Trustly, so safe against any sidecar) and reads the BadRequest detail with types
    from reflection, not from any installed google.rpc package."""
    from google.protobuf import json_format, message_factory
    from grpc_status import rpc_status

    name = "bad Deposit (amount 10.001)"
    try:
        request_type = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("trustly.v1.DepositRequest"))
        bad_request_type = message_factory.GetMessageClass(
            pool.FindMessageTypeByName("google.rpc.BadRequest"))
    except (KeyError, TypeError, grpc.RpcError) as err:
        check(name, False, f"cannot resolve the types by reflection: {err!r}")
        return
    request = json_format.ParseDict(BAD_DEPOSIT, request_type())
    deposit = channel.unary_unary(
        "/trustly.v1.PaymentService/Deposit",
        request_serializer=request_type.SerializeToString,
        response_deserializer=bytes,
    )
    try:
        deposit(request)
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
            check(name, False, f"{rpc_error(err)}, want INVALID_ARGUMENT")
            return
        status = rpc_status.from_call(err)
        details = status.details if status is not None else []
        violations = [
            (v.field, v.description)
            for any_detail in details
            if any_detail.type_url.endswith("/google.rpc.BadRequest")
            for v in bad_request_type.FromString(any_detail.value).field_violations
        ]
        fields = [field for field, _ in violations]
        listed = all(f"{f}: {d}" in err.details() for f, d in violations)
        check(name, fields == ["amount"] and listed,
              f"message {err.details()!r}; BadRequest {violations}")
        return
    check(name, False, "was accepted, want INVALID_ARGUMENT")


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        die(f"usage: {sys.argv[0]} ADDRESS (host:port of the sidecar's gRPC API)")
    address = sys.argv[1]
    grpc, descriptor_pool, health_pb2, health_pb2_grpc, ReflectionDatabase = imports()
    token = os.environ.get("TRUSTLY_SIDECAR_GRPC_TOKEN", "")

    passed, failed = 0, 0

    def check(name: str, ok: bool, detail: str):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"{LABEL}: ok   {name}: {detail}", flush=True)
        else:
            failed += 1
            print(f"{LABEL}: FAIL {name}: {detail}", flush=True)

    def finish() -> int:
        print(f"{LABEL}: {passed} passed, {failed} failed", flush=True)
        return 0 if failed == 0 else 1

    raw = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(raw).result(timeout=DEADLINE_SECONDS)
    except grpc.FutureTimeoutError:
        check("connect", False, f"no gRPC server answered at {address} "
                                f"within {DEADLINE_SECONDS:.0f} s")
        return finish()
    channel = with_deadline_and_token(grpc, raw, token)

    # --- reflection (v1alpha) ----------------------------------------------------------------
    database = ReflectionDatabase(channel)
    try:
        services = sorted(database.get_services())
    except grpc.RpcError as err:
        hint = {
            grpc.StatusCode.UNIMPLEMENTED: " (the server does not serve v1alpha reflection)",
            grpc.StatusCode.UNAUTHENTICATED: " (set TRUSTLY_SIDECAR_GRPC_TOKEN to the token)",
        }.get(err.code(), "")
        check("reflection v1alpha: list services", False, rpc_error(err) + hint)
        return finish()
    missing = [s for s in (*TRUSTLY_SERVICES, HEALTH_SERVICE) if s not in services]
    check("reflection v1alpha: list services", not missing,
          ", ".join(services) if not missing else f"missing {missing} in {services}")

    # A DescriptorPool over the reflection database resolves each file's imports by name, as
    # grpcurl does; a missing import raises here.
    pool = descriptor_pool.DescriptorPool(database)
    for service in (*TRUSTLY_SERVICES, HEALTH_SERVICE):
        try:
            methods = pool.FindServiceByName(service).methods_by_name
            check(f"reflection: resolve {service}", bool(methods),
                  f"{len(methods)} methods" if methods else "no methods")
        except (KeyError, TypeError, grpc.RpcError) as err:
            check(f"reflection: resolve {service}", False, repr(err))
    for message, file_name in ERROR_DETAILS.items():
        try:
            descriptor = pool.FindMessageTypeByName(message)
            fields = [f.name for f in descriptor.fields]
            check(f"reflection: resolve {message}", descriptor.file.name == file_name,
                  f"in {descriptor.file.name}, fields {fields}")
        except (KeyError, TypeError, grpc.RpcError) as err:
            check(f"reflection: resolve {message}", False, repr(err))

    bad_deposit(grpc, channel, pool, check)

    # --- health --------------------------------------------------------------------------------
    health = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    for service in ("", *TRUSTLY_SERVICES):
        shown = service or '"" (the server)'
        try:
            status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
            check(f"health: {shown}", status == serving,
                  health_pb2.HealthCheckResponse.ServingStatus.Name(status))
        except grpc.RpcError as err:
            check(f"health: {shown}", False, rpc_error(err))

    return finish()


if __name__ == "__main__":
    sys.exit(main())
