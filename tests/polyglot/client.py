#!/usr/bin/env python3
"""Polyglot smoke test: a Python gRPC client of trustly-sidecar, built from proto/ at run time.

Usage: python3 tests/polyglot/client.py --addr 127.0.0.1:50051

It compiles every .proto under <repo>/proto/trustly with grpc_tools.protoc into a temporary directory,
imports the generated stubs and, against a running sidecar (for example `cargo run -- --sandbox`),
calls Deposit, RegisterAccount, AccountPayout and an invalid Deposit that must be refused with
INVALID_ARGUMENT. Each call has a 30 s deadline. Exit 0 when every step passes, 1 on the first
failure, 2 when the stubs cannot be generated or imported.

If TRUSTLY_SIDECAR_GRPC_TOKEN is set (non-empty), every call carries the metadata
`authorization: Bearer <token>`.

Needs: pip install grpcio grpcio-tools
"""

import argparse
import importlib
import os
import random
import re
import sys
import tempfile
import uuid
from pathlib import Path

DEADLINE_SECONDS = 30.0
END_USER_ID = "py-user-1"
DIGITS = re.compile(r"[0-9]+")
LABEL = "python"

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
PROTO_ROOT = REPO_ROOT / "proto"


class StepFailed(Exception):
    """A step's call or assertion failed; the message says why."""


def die(message: str, code: int = 2):
    """Prints a setup failure to stderr and exits with `code`."""
    print(f"{LABEL}: FAIL: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def generate_stubs(out_dir: Path):
    """Compiles proto/ with grpc_tools.protoc into out_dir and returns (pb2, pb2_grpc, types_pb2)."""
    try:
        from grpc_tools import protoc
    except ImportError as exc:
        die(f"cannot import grpc_tools ({exc}); "
                         "run: python3 -m pip install grpcio grpcio-tools")
    from importlib.resources import files
    # The well-known types (google/protobuf/timestamp.proto, ...) that grpc_tools bundles.
    well_known = str(files("grpc_tools") / "_proto")

    if not PROTO_ROOT.is_dir():
        die(f"proto directory not found at {PROTO_ROOT}")
    # trustly/ only: proto/google/rpc holds vendored googleapis files for server reflection, and
    # generating them here would shadow the installed `google` package (protobuf's).
    sources = sorted(
        str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "trustly").rglob("*.proto"))
    if not sources:
        die(f"no .proto files under {PROTO_ROOT}")

    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *sources,
    ]
    rc = protoc.main(args)
    if rc != 0:
        die(f"grpc_tools.protoc exited {rc} compiling {PROTO_ROOT}")

    # Make every generated directory a regular package so that the temporary directory, first on
    # sys.path, wins over anything else named `trustly` that may be installed.
    for directory in [d for d in out_dir.rglob("*") if d.is_dir()]:
        (directory / "__init__.py").touch()
    sys.path.insert(0, str(out_dir))
    try:
        types_pb2 = importlib.import_module("trustly.v1.types_pb2")
        pb2 = importlib.import_module("trustly.v1.payment_service_pb2")
        pb2_grpc = importlib.import_module("trustly.v1.payment_service_pb2_grpc")
    except Exception as exc:
        die(f"cannot import the generated stubs: {exc!r}")
    return pb2, pb2_grpc, types_pb2


def digits(value: str) -> bool:
    return bool(DIGITS.fullmatch(value or ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True, help="the sidecar's gRPC address, host:port")
    opts = parser.parse_args()

    try:
        import grpc
    except ImportError as exc:
        die(f"cannot import grpc ({exc}); run: python3 -m pip install grpcio grpcio-tools")

    with tempfile.TemporaryDirectory(prefix="trustly-polyglot-py-") as tmp:
        pb2, pb2_grpc, types_pb2 = generate_stubs(Path(tmp))

        token = os.environ.get("TRUSTLY_SIDECAR_GRPC_TOKEN", "")
        metadata = (("authorization", f"Bearer {token}"),) if token else ()

        def user():
            return types_pb2.CheckoutUser(
                first_name="Åsa",
                last_name="Öberg 🚀",
                country="SE",
                locale="sv_SE",
                success_url="https://merchant.example/ok",
                fail_url="https://merchant.example/fail",
                email="asa@example.com",
            )

        def deposit_request(amount):
            return pb2.DepositRequest(
                message_id=str(uuid.uuid4()),
                end_user_id=END_USER_ID,
                currency_code="EUR",
                amount=amount,
                shopper_statement="Polyglot",
                user=user(),
            )

        def call(stub_method, name, request):
            try:
                return stub_method(request, timeout=DEADLINE_SECONDS, metadata=metadata)
            except grpc.RpcError as err:
                raise StepFailed(f"{name} failed: {err.code().name}: {err.details()}") from None

        passed = 0
        total = 4
        with grpc.insecure_channel(opts.addr) as channel:
            stub = pb2_grpc.PaymentServiceStub(channel)
            try:
                # (a) Deposit
                resp = call(stub.Deposit, "Deposit", deposit_request("100.00"))
                if not digits(resp.order_id):
                    raise StepFailed(f"Deposit: order_id {resp.order_id!r} is not all digits")
                if not resp.url.startswith("http"):
                    raise StepFailed(f"Deposit: url {resp.url!r} does not start with http")
                print(f"{LABEL}: step 1/{total} Deposit ok: order_id={resp.order_id} url={resp.url}",
                      flush=True)
                passed += 1

                # (b) RegisterAccount
                account_number = str(random.randint(10_000_000, 99_999_999))
                resp = call(stub.RegisterAccount, "RegisterAccount", pb2.RegisterAccountRequest(
                    end_user_id=END_USER_ID,
                    account=types_pb2.BankAccount(
                        clearing_house="SWEDEN",
                        bank_number="6112",
                        account_number=account_number,
                        first_name="Åsa",
                        last_name="Öberg",
                    ),
                ))
                if not digits(resp.account_id):
                    raise StepFailed(
                        f"RegisterAccount: account_id {resp.account_id!r} is not all digits")
                if not resp.descriptor.startswith("*"):
                    raise StepFailed(
                        f"RegisterAccount: descriptor {resp.descriptor!r} does not start with *")
                account_id = resp.account_id
                print(f"{LABEL}: step 2/{total} RegisterAccount ok: account_id={account_id} "
                      f"descriptor={resp.descriptor}", flush=True)
                passed += 1

                # (c) AccountPayout
                resp = call(stub.AccountPayout, "AccountPayout", pb2.AccountPayoutRequest(
                    account_id=account_id,
                    end_user_id=END_USER_ID,
                    message_id=str(uuid.uuid4()),
                    amount=types_pb2.Money(amount="10.00", currency_code="EUR"),
                    shopper_statement="Polyglot payout",
                ))
                if resp.accepted is not True:
                    raise StepFailed(f"AccountPayout: accepted is {resp.accepted!r}, want True")
                if not digits(resp.order_id):
                    raise StepFailed(f"AccountPayout: order_id {resp.order_id!r} is not all digits")
                print(f"{LABEL}: step 3/{total} AccountPayout ok: order_id={resp.order_id} "
                      f"accepted={resp.accepted}", flush=True)
                passed += 1

                # (d) Deposit with three decimals must be refused before anything reaches Trustly.
                try:
                    resp = stub.Deposit(deposit_request("10.001"), timeout=DEADLINE_SECONDS,
                                        metadata=metadata)
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
                        raise StepFailed(f"Deposit amount 10.001: got {err.code().name}: "
                                         f"{err.details()}, want INVALID_ARGUMENT") from None
                    print(f"{LABEL}: step 4/{total} Deposit amount 10.001 refused ok: "
                          f"INVALID_ARGUMENT: {err.details()}", flush=True)
                    passed += 1
                else:
                    raise StepFailed(f"Deposit amount 10.001: succeeded (order_id="
                                     f"{resp.order_id!r}), want INVALID_ARGUMENT")
            except StepFailed as exc:
                print(f"{LABEL}: FAIL at step {passed + 1}/{total} against {opts.addr}: {exc}",
                      file=sys.stderr, flush=True)
                print(f"{LABEL}: {passed} passed, 1 failed", flush=True)
                return 1

    print(f"{LABEL}: {passed} passed, 0 failed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
